"""``python -m crm_upsell_connector`` runs the CLI."""

from crm_upsell_connector.cli import entry

entry()
