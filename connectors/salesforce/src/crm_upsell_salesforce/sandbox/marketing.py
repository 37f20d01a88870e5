"""Campaigns, campaign members and e-mail opt-outs: the scenario's marketing data as Salesforce keeps it.

Object Reference, "CampaignMember"
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_campaignmember.htm):
``CampaignId`` (required), ``ContactId``, ``Status`` (the campaign's member status picklist; "Sent"
and "Responded" are the defaults of a new campaign), ``HasResponded`` (read-only: whether the status
counts as responded) and ``FirstRespondedDate`` (read-only date the member first reached a responded
status); the object supports ``query``, ``getUpdated`` and ``getDeleted``. "Campaign": ``Name``,
``Type``, ``Status``, ``StartDate``, ``EndDate``, ``IsActive``. "Contact": ``HasOptedOutOfEmail``
(the contact does not want e-mail sent from campaigns).
"""

from __future__ import annotations

from crm_upsell_connector.sandbox.scenario.marketing import build_marketing
from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.common import sf_date, to_ms
from crm_upsell_salesforce.sandbox.schema import FieldDef, _f, _owner, _ref
from crm_upsell_salesforce.sandbox.store import Rec

DAY_MS = 86_400_000


def marketing_schema() -> dict[str, list[FieldDef]]:
    """The Campaign and CampaignMember fields the sandbox serves (see the module docstring)."""
    return {
        "Campaign": [
            _f("Name", "string", length=80, required=True, nillable=False),
            _f("Type", "picklist"),
            _f("Status", "picklist"),
            _f("StartDate", "date"),
            _f("EndDate", "date"),
            _f("IsActive", "boolean"),
            _owner(),
        ],
        "CampaignMember": [
            _ref("CampaignId", "Campaign", "Campaign", "c", required=True, nillable=False),
            _ref("ContactId", "Contact", "Contact", "c"),
            _f("Status", "picklist"),
            _f("HasResponded", "boolean", ""),
            _f("FirstRespondedDate", "date", ""),
        ],
    }


class MarketingData(OrgBase):
    """Loads campaigns, their members and contacts' opt-outs from the scenario."""

    def _load_marketing(self) -> None:
        for otype in ("Campaign", "CampaignMember"):
            self._getters.setdefault(otype, {})
            self._computed.setdefault(otype, {})
        marketing = build_marketing(self.scenario)
        owner = self.tables["User"].ids[0] if self.tables["User"].ids else None
        campaign_ids: dict[str, str] = {}
        for campaign in marketing.campaigns:
            start = to_ms(campaign.start)
            rec = self._marketing_row(
                "Campaign",
                {
                    "Name": campaign.name,
                    "Type": campaign.kind,
                    "Status": "Completed" if campaign.end < self.scenario.now else "In Progress",
                    "StartDate": sf_date(start),
                    "EndDate": sf_date(to_ms(campaign.end)),
                    "IsActive": campaign.end >= self.scenario.now,
                    "OwnerId": owner,
                },
                start - 30 * DAY_MS,
                start,
            )
            campaign_ids[campaign.key] = rec.id
        for member in marketing.members:
            self._marketing_row(
                "CampaignMember",
                {
                    "CampaignId": campaign_ids[member.campaign_key],
                    "ContactId": self.ids[member.contact_key],
                    "Status": "Responded" if member.responded else "Sent",
                    "HasResponded": member.responded,
                    "FirstRespondedDate": sf_date(to_ms(member.responded_at))
                    if member.responded_at
                    else None,
                },
                to_ms(member.created_at),
                to_ms(member.updated_at),
            )
        contacts = self.tables["Contact"]
        for key, engagement in marketing.engagement.items():
            contact = contacts.recs.get(self.ids[key])
            if contact is not None and engagement.unsubscribed:
                contact.over = {**(contact.over or {}), "HasOptedOutOfEmail": True}

    def _marketing_row(self, otype: str, values: dict[str, object], created: int, modified: int) -> Rec:
        table = self.tables[otype]
        rec = Rec(self._new_id(table), None, created, max(created, modified))
        rec.over = dict(values)
        table.add(rec)
        return rec
