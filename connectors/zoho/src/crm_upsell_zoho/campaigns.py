"""Campaign membership of contacts and their e-mail opt-out, at the fewest calls Zoho CRM allows.

Zoho keeps campaign membership as the **Contacts** related list of each record of the **Campaigns**
module, with the member's ``Member_Status`` on it ("Get Related Records",
https://www.zoho.com/crm/developer/docs/api/v8/get-related-records.html; the related list's API name
from ``GET /settings/related_lists?module=Campaigns``). There is no call that lists every membership
at once, so a full read costs one ``GET /Campaigns`` page per 200 campaigns plus one related-list page
per 200 members of each campaign: calls grow with campaigns, never with contacts. An incremental read
asks ``GET /Campaigns`` with ``If-Modified-Since`` (one call, 304, when nothing changed) and re-reads
the members of the campaigns modified since. Zoho documents no modification stamp on a membership
itself; whether a member status change touches the campaign's ``Modified_Time`` is not documented
either, so the weekly full read (``sync --full``) is what catches a status changed without it.

A membership's id is ``<campaign id>:<contact id>``; a status counts as a response when it is one of
:data:`RESPONDED_STATUSES` (Zoho's default member statuses; an org may rename them). Contacts'
``Email_Opt_Out`` (a standard Contacts field, "Email Opt Out") becomes their unsubscribed flag.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from crm_upsell_connector.errors import AuthError, FatalAPIError
from crm_upsell_connector.models import CampaignMember, Contact, ContactEngagement, Page
from crm_upsell_connector.values import parse_bool
from crm_upsell_zoho.client import PAGE_LIMIT, ZohoClient, data_of, info_of
from crm_upsell_zoho.mapping import modified_at, parse_datetime, text

log = logging.getLogger(__name__)

CAMPAIGN_FIELDS = "Campaign_Name,Start_Date,End_Date,Modified_Time"
MEMBER_FIELDS = "Member_Status,Modified_Time"
RESPONDED_STATUSES = frozenset({"responded", "opened", "clicked"})
OPT_OUT = "Email_Opt_Out"
#: the OAuth scope reading campaigns and their members needs (README, "Scopes")
CAMPAIGNS_SCOPE = "ZohoCRM.modules.campaigns.READ"


def contact_engagement(raw: dict[str, Any], contact: Contact) -> ContactEngagement | None:
    """The contact's ``Email_Opt_Out`` as engagement; None where the field was not returned."""
    if OPT_OUT not in raw:
        return None
    return ContactEngagement(
        id=contact.id, updated_at=contact.updated_at, unsubscribed=parse_bool(raw[OPT_OUT])
    )


async def _pages(
    client: ZohoClient, path: str, params: dict[str, Any], headers: dict[str, str] | None, endpoint: str
) -> AsyncIterator[list[dict[str, Any]]]:
    page_no = 1
    while True:
        _, body = await client.request(
            "GET",
            path,
            kind="records",
            params={**params, "page": page_no, "per_page": PAGE_LIMIT},
            headers=headers,
            endpoint=endpoint,
        )
        rows = data_of(body)
        if rows:
            yield rows
        if not (info_of(body).get("more_records") and rows):
            return
        page_no += 1


async def _chain(
    first: list[dict[str, Any]], rest: AsyncIterator[list[dict[str, Any]]]
) -> AsyncIterator[list[dict[str, Any]]]:
    yield first
    async for rows in rest:
        yield rows


async def read_campaign_members(
    client: ZohoClient,
    since: datetime | None,
    if_modified_since: str | None,
    skip_ids: frozenset[str] = frozenset(),
) -> AsyncIterator[Page]:
    """One page per campaign read; a full read ends with the ids of every membership (deletes).

    An incremental read leaves out the campaigns ``If-Modified-Since`` shows again (its second of
    slack) that are older than ``since`` or were read at ``since`` already (``skip_ids`` holds their
    memberships): re-reading their members would cost calls and change nothing.
    """
    read_at_cursor = {i.partition(":")[0] for i in skip_ids}
    headers = {"If-Modified-Since": if_modified_since} if if_modified_since else None
    present: list[str] = []
    # Oldest change first, as every module is read: a page's stamp is then a safe cursor.
    params = {"fields": CAMPAIGN_FIELDS, "sort_by": "Modified_Time", "sort_order": "asc"}
    listing = _pages(client, "Campaigns", params, headers, "GET Campaigns")
    try:
        first = await anext(listing, None)
    except (AuthError, FatalAPIError) as exc:
        # A client without the Campaigns scope (OAUTH_SCOPE_MISMATCH), a profile without access
        # (NO_PERMISSION) or an org without the module (INVALID_MODULE): no campaign data, and the
        # rest of the sync goes on; a token refused outright fails the other streams anyway.
        if isinstance(exc, FatalAPIError) and exc.error_code not in ("INVALID_MODULE", "NO_PERMISSION"):
            raise
        log.warning(
            "Zoho refused to list campaigns (%s): campaign responses are missing; give the client the "
            "%s scope and the integration user's profile read access to Campaigns",
            exc.one_line(),
            CAMPAIGNS_SCOPE,
        )
        return
    if first is None:
        return
    async for campaigns in _chain(first, listing):
        for campaign in campaigns:
            cid = text(campaign.get("id"))
            stamp = modified_at(campaign)
            if cid is None or stamp is None:
                log.warning("skipping Zoho campaign %s: no id or Modified_Time", cid or "(no id)")
                continue
            if since is not None and (stamp < since or (stamp == since and cid in read_at_cursor)):
                continue
            name = text(campaign.get("Campaign_Name")) or ""
            start = parse_datetime(campaign.get("Start_Date"))
            records: list[CampaignMember] = []
            async for members in _pages(
                client,
                f"Campaigns/{cid}/Contacts",
                {"fields": MEMBER_FIELDS},
                None,
                "GET Campaigns/{id}/Contacts",
            ):
                for member in members:
                    contact_id = text(member.get("id"))
                    if contact_id is None:
                        continue
                    status = text(member.get("Member_Status"))
                    responded = (status or "").strip().lower() in RESPONDED_STATUSES
                    records.append(
                        CampaignMember(
                            id=f"{cid}:{contact_id}",
                            updated_at=stamp,
                            contact_id=contact_id,
                            campaign_id=cid,
                            campaign_name=name,
                            status=status,
                            responded=responded,
                            # Zoho keeps no response date on a membership: the campaign's start
                            # stands for it (a documented approximation; see the module docstring).
                            responded_at=start if responded else None,
                        )
                    )
            present.extend(r.id for r in records)
            yield Page(stream="campaign_members", records=list(records), watermark=stamp)
    if since is None:
        yield Page(stream="campaign_members", present_ids=present, present_prefix="")
