"""The scenario's marketing engagement as store rows (a CRM that keeps counters and campaigns)."""

from __future__ import annotations

from typing import Any

from crm_upsell_connector.sandbox.scenario import Scenario
from crm_upsell_connector.sandbox.scenario.marketing import build_marketing

CONNECTION = "sandbox"


def add_marketing_rows(rows: dict[str, list[dict[str, Any]]], scenario: Scenario) -> None:
    """Engagement per contact (with one counter snapshot at the contact's stamp) and campaign members."""
    marketing = build_marketing(scenario)
    names = {c.key: c.name for c in marketing.campaigns}
    updated = {c.key: c.updated_at for c in scenario.contacts}
    rows.setdefault("engagement_snapshots", [])
    for key, e in marketing.engagement.items():
        rows["contact_engagement"].append(
            {
                "connection": CONNECTION,
                "id": key,
                "email_opens": float(e.email_opens),
                "email_clicks": float(e.email_clicks),
                "email_bounces": float(e.email_bounces),
                "last_open_at": e.last_open_at,
                "last_click_at": e.last_click_at,
                "site_visits": float(e.site_visits),
                "last_visit_at": e.last_visit_at,
                "unsubscribed": e.unsubscribed,
                "updated_at": updated[key],
                "extra": {},
            }
        )
        rows["engagement_snapshots"].append(
            {
                "connection": CONNECTION,
                "contact_id": key,
                "taken_at": updated[key],
                "email_opens": float(e.email_opens),
                "email_clicks": float(e.email_clicks),
                "site_visits": float(e.site_visits),
            }
        )
    for m in marketing.members:
        rows["campaign_members"].append(
            {
                "connection": CONNECTION,
                "id": m.key,
                "contact_id": m.contact_key,
                "campaign_id": m.campaign_key,
                "campaign_name": names[m.campaign_key],
                "status": m.status,
                "responded": m.responded,
                "responded_at": m.responded_at,
                "created_at": m.created_at,
                "updated_at": m.updated_at,
                "extra": {},
            }
        )
