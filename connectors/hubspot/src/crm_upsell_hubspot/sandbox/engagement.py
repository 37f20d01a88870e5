"""The sandbox's marketing engagement contact properties, from the scenario's marketing data.

The properties and their types follow "HubSpot's default contact properties"
(https://knowledge.hubspot.com/properties/hubspots-default-contact-properties): HubSpot calculates
them from e-mail events and web analytics, so they are read-only (``readOnlyValue``) to the API.
A contact never sent a marketing e-mail has empty e-mail counters, as in HubSpot.
"""

from __future__ import annotations

from typing import Any

from crm_upsell_connector.sandbox.scenario import Scenario, SContact
from crm_upsell_connector.sandbox.scenario.marketing import SEngagement, build_marketing
from crm_upsell_hubspot.sandbox.common import _iso
from crm_upsell_hubspot.sandbox.store import Getter

_BOOL = [
    {"label": "True", "value": "true", "displayOrder": 0, "hidden": False},
    {"label": "False", "value": "false", "displayOrder": 1, "hidden": False},
]

#: name, label, type, fieldType, options, read-only value (the shape of ``property_defs``)
ENGAGEMENT_PROPERTY_DEFS: list[tuple[str, str, str, str, list[dict[str, Any]], bool]] = [
    ("hs_email_open", "Marketing emails opened", "number", "number", [], True),
    ("hs_email_click", "Marketing emails clicked", "number", "number", [], True),
    ("hs_email_bounce", "Marketing emails bounced", "number", "number", [], True),
    ("hs_email_last_open_date", "Last marketing email open date", "datetime", "date", [], True),
    ("hs_email_last_click_date", "Last marketing email click date", "datetime", "date", [], True),
    ("hs_email_optout", "Unsubscribed from all email", "bool", "booleancheckbox", _BOOL, True),
    ("hs_analytics_num_visits", "Number of Sessions", "number", "number", [], True),
    ("hs_analytics_last_visit_timestamp", "Time of last session", "datetime", "date", [], True),
]


def engagement_getters(scenario: Scenario) -> dict[str, Getter]:
    """Contact property name -> value getter for the engagement properties."""
    marketing = build_marketing(scenario)
    table = marketing.engagement

    def of(contact: SContact) -> SEngagement | None:
        return table.get(contact.key)

    def emailed(contact: SContact) -> bool:
        e = of(contact)
        return e is not None and (e.email_opens > 0 or e.email_bounces > 0 or e.unsubscribed)

    def count(attr: str) -> Getter:
        def get(contact: SContact) -> str | None:
            e = of(contact)
            return str(getattr(e, attr)) if e is not None and emailed(contact) else None

        return get

    def when(attr: str) -> Getter:
        def get(contact: SContact) -> str | None:
            e = of(contact)
            value = getattr(e, attr) if e is not None else None
            return _iso(value) if value is not None else None

        return get

    def visits(contact: SContact) -> str | None:
        e = of(contact)
        return str(e.site_visits) if e is not None and e.site_visits else None

    def optout(contact: SContact) -> str | None:
        e = of(contact)
        return None if e is None else ("true" if e.unsubscribed else "false")

    return {
        "hs_email_open": count("email_opens"),
        "hs_email_click": count("email_clicks"),
        "hs_email_bounce": count("email_bounces"),
        "hs_email_last_open_date": when("last_open_at"),
        "hs_email_last_click_date": when("last_click_at"),
        "hs_email_optout": optout,
        "hs_analytics_num_visits": visits,
        "hs_analytics_last_visit_timestamp": when("last_visit_at"),
    }
