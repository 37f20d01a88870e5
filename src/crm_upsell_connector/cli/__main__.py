"""``python -m crm_upsell_connector.cli`` runs the CLI."""

from crm_upsell_connector.cli import entry

entry()
