"""crm-upsell-connector: loyalty scoring and upsell write-back for the CRM a team already uses."""

from __future__ import annotations

__version__ = "0.1.0"
