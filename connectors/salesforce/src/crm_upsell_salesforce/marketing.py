"""Marketing engagement from Salesforce: ``CampaignMember`` as a query stream, contacts' e-mail opt-out.

Object Reference, "CampaignMember"
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_campaignmember.htm):
the relationship between a campaign and a lead or contact; ``CampaignId``, ``ContactId`` (empty
for a lead), ``Status``, ``HasResponded`` and ``FirstRespondedDate`` (a date); it supports
``query`` and ``getDeleted``, so it is read like every other stream (by Id, then by
``SystemModstamp``, deletes through ``queryAll``'s ``IsDeleted``). Object Reference, "Contact":
``HasOptedOutOfEmail`` (the contact does not want e-mail from campaigns). It is an optional field
for the contacts query: where the integration user cannot see it the column is left out and the
opt-out is missing, never a failed sync. An org without campaigns (no Marketing User, or the
object not licensed) answers ``INVALID_TYPE`` for ``CampaignMember``: the stream then reads
nothing, with one warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_connector.models import CampaignMember, Contact, ContactEngagement
from crm_upsell_connector.values import parse_bool

log = logging.getLogger(__name__)

#: streams whose sObject an org may not have at all; their absence reads as no data
OPTIONAL_STREAMS = frozenset({"campaign_members"})

CAMPAIGN_MEMBER_FIELDS: tuple[str, ...] = (
    "ContactId",
    "CampaignId",
    "Status",
    "HasResponded",
    "FirstRespondedDate",
    "CreatedDate",
)
#: the Contact's marketing e-mail field, read where the org lets the integration user see it
OPT_OUT = "HasOptedOutOfEmail"


def map_campaign_member(raw: Mapping[str, Any], options: object) -> CampaignMember:
    """One ``CampaignMember`` (keys in lower case, as ``mapping`` hands them over)."""
    from crm_upsell_salesforce.mapping import _id, _updated, parse_datetime, text

    responded = bool(parse_bool(raw.get("hasresponded")))
    return CampaignMember(
        id=_id(raw),
        updated_at=_updated(raw),
        contact_id=text(raw.get("contactid")),
        campaign_id=text(raw.get("campaignid")),
        status=text(raw.get("status")),
        responded=responded,
        responded_at=parse_datetime(raw.get("firstrespondeddate")) if responded else None,
        created_at=parse_datetime(raw.get("createddate")),
    )


def contact_engagement(raw: Mapping[str, Any], contact: Contact) -> ContactEngagement | None:
    """The contact's opt-out as engagement, or None where the org did not return the field."""
    if OPT_OUT.lower() not in raw:
        return None
    return ContactEngagement(
        id=contact.id, updated_at=contact.updated_at, unsubscribed=parse_bool(raw.get(OPT_OUT.lower()))
    )


def optional_object_missing(stream: str, exc: FatalAPIError) -> bool:
    """Whether ``exc`` says the org has no such sObject for an optional stream (logged once here).

    SOQL answers ``INVALID_TYPE`` ("sObject type 'CampaignMember' is not supported") for an object
    the org or the integration user does not have (SOQL and SOSL Reference, error codes).
    """
    if stream not in OPTIONAL_STREAMS or exc.error_code != "INVALID_TYPE":
        return False
    log.warning(
        "Salesforce org has no CampaignMember (or the integration user cannot read it): campaign "
        "responses are missing; grant read access to Campaigns to use them"
    )
    return True
