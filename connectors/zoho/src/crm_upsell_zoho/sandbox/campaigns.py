"""The Campaigns module, its members (the Contacts related list with ``Member_Status``) and contacts'
``Email_Opt_Out``, from the scenario's marketing data.

Zoho CRM keeps campaigns as a standard module (``Campaign_Name``, ``Type``, ``Status``,
``Start_Date``, ``End_Date``) whose Contacts related list carries each member's ``Member_Status``
("Get Related Records", https://www.zoho.com/crm/developer/docs/api/v8/get-related-records.html;
"Update Related Records" sets ``Member_Status``); "Email Opt Out" (``Email_Opt_Out``) is a standard
Contacts field. The sandbox serves ``Sent`` and ``Responded`` statuses (Zoho's defaults).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_upsell_connector.sandbox.scenario import SContact
from crm_upsell_connector.sandbox.scenario.marketing import SCampaign, build_marketing
from crm_upsell_zoho.sandbox.schema import _f
from crm_upsell_zoho.sandbox.store import DAY_MS, ModuleDef, Rec, Table, ms_of

if TYPE_CHECKING:
    from crm_upsell_zoho.sandbox.org import Org

#: the related-list fields that belong to the relation, not to the related module
RELATION_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {("Campaigns", "Contacts"): ("Member_Status",)}


def add_campaigns(org: Org) -> None:
    """Define the module and fields, load the campaigns and remember who is on each."""
    marketing = build_marketing(org.scenario)
    mod = ModuleDef("Campaigns", "Campaign", org.new_id(), "Campaign_Name", None)
    org.modules["Campaigns"] = mod
    _f(org, mod, "Owner", "Campaign Owner", "ownerlookup")
    _f(org, mod, "Campaign_Name", "Campaign Name", "text", mandatory=True)
    _f(org, mod, "Type", "Type", "picklist", options=("Email", "Webinar", "Event"))
    _f(org, mod, "Status", "Status", "picklist", options=("Planning", "Active", "Inactive", "Complete"))
    _f(org, mod, "Start_Date", "Start Date", "date")
    _f(org, mod, "End_Date", "End Date", "date")
    for name, label in (("Created_By", "Created By"), ("Modified_By", "Modified By")):
        _f(org, mod, name, label, "ownerlookup", read_only=True)
    _f(org, mod, "Created_Time", "Created Time", "datetime", read_only=True)
    _f(org, mod, "Modified_Time", "Modified Time", "datetime", read_only=True)
    admin = org.admin.id
    now = org.scenario.now
    mod.getters = {
        "Owner": lambda s: admin,
        "Created_By": lambda s: admin,
        "Modified_By": lambda s: admin,
        "Campaign_Name": lambda s: s.name,
        "Type": lambda s: s.kind,
        "Status": lambda s: "Complete" if s.end < now else "Active",
        "Start_Date": lambda s: s.start.date().isoformat(),
        "End_Date": lambda s: s.end.date().isoformat(),
    }
    contacts = org.modules["Contacts"]
    _f(org, contacts, "Email_Opt_Out", "Email Opt Out", "boolean")
    engagement = marketing.engagement

    def opt_out(s: SContact) -> bool:
        e = engagement.get(s.key)
        return bool(e and e.unsubscribed)

    contacts.getters["Email_Opt_Out"] = opt_out
    table = org.tables.setdefault("Campaigns", Table("Campaigns"))
    by_key: dict[str, int] = {}
    last_change: dict[str, int] = {}
    for member in marketing.members:
        at = ms_of(member.updated_at)
        last_change[member.campaign_key] = max(last_change.get(member.campaign_key, 0), at)
    for campaign in marketing.campaigns:
        cid = org.new_id()
        by_key[campaign.key] = cid
        org.ids[campaign.key] = cid
        start = ms_of(campaign.start)
        # A campaign's record changes when its members' statuses do (see campaigns.py in the connector).
        table.recs[cid] = Rec(
            cid, campaign, start - 30 * DAY_MS, max(start, last_change.get(campaign.key, 0))
        )
    table.finish_load()
    members: dict[int, list[tuple[int, str]]] = {}
    for member in marketing.members:
        members.setdefault(by_key[member.campaign_key], []).append(
            (org.ids[member.contact_key], "Responded" if member.responded else "Sent")
        )
    org.campaign_members = members


__all__ = ["RELATION_FIELDS", "SCampaign", "add_campaigns"]
