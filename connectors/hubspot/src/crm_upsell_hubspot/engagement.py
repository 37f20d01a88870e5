"""Marketing engagement from HubSpot contact properties, read with the contacts (no extra call).

HubSpot keeps a contact's marketing e-mail engagement and web analytics as default contact
properties ("HubSpot's default contact properties",
https://knowledge.hubspot.com/properties/hubspots-default-contact-properties, sections "Email
information" and "Web analytics history"; the CRM contacts API returns any of them asked for in
``properties``: https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/guide):

- ``hs_email_open``, ``hs_email_click``, ``hs_email_bounce``: marketing e-mails opened, clicked,
  bounced (lifetime counts; empty for a contact never sent one);
- ``hs_email_last_open_date``, ``hs_email_last_click_date``: the last open and click;
- ``hs_email_optout``: "Unsubscribed from all email" (``"true"``/``"false"``);
- ``hs_analytics_num_visits`` ("Number of sessions"), ``hs_analytics_last_visit_timestamp``
  ("Time of last session").

HubSpot keeps lifetime counts only; the store keeps them per sync and the features derive windows
from the change (see ``crm_upsell_connector.features.engagement``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_upsell_connector.models import Contact, ContactEngagement
from crm_upsell_connector.values import parse_bool, parse_number
from crm_upsell_hubspot.mapping import parse_datetime

ENGAGEMENT_PROPERTIES: tuple[str, ...] = (
    "hs_email_open",
    "hs_email_click",
    "hs_email_bounce",
    "hs_email_last_open_date",
    "hs_email_last_click_date",
    "hs_email_optout",
    "hs_analytics_num_visits",
    "hs_analytics_last_visit_timestamp",
)


def map_engagement(raw: Mapping[str, Any], contact: Contact) -> ContactEngagement | None:
    """The contact's engagement, or None when HubSpot returned none of the properties."""
    props = raw.get("properties")
    if not isinstance(props, dict) or all(props.get(p) in (None, "") for p in ENGAGEMENT_PROPERTIES):
        return None
    return ContactEngagement(
        id=contact.id,
        updated_at=contact.updated_at,
        email_opens=parse_number(props.get("hs_email_open")),
        email_clicks=parse_number(props.get("hs_email_click")),
        email_bounces=parse_number(props.get("hs_email_bounce")),
        last_open_at=parse_datetime(props.get("hs_email_last_open_date")),
        last_click_at=parse_datetime(props.get("hs_email_last_click_date")),
        site_visits=parse_number(props.get("hs_analytics_num_visits")),
        last_visit_at=parse_datetime(props.get("hs_analytics_last_visit_timestamp")),
        unsubscribed=parse_bool(props.get("hs_email_optout")),
    )
