"""Reading Zoho CRM notes incrementally by what "Get Notes" documents
(https://www.zoho.com/crm/developer/docs/api/v8/get-notes.html).

``GET /Notes`` takes ``page``, ``per_page``, ``fields``, ``sort_by`` and ``sort_order``, and documents no
``If-Modified-Since`` header, so the connector does not send one. It sorts by ``Modified_Time``
descending and stops at the first note older than the cursor's second: an unchanged org costs one
call, and a note edited while the read runs moves to the top, above the stamp the next run starts
from, so nothing is lost. Past 2,000 notes the read follows ``next_page_token`` as the records API
does. ``$se_module`` is not a Notes field: the parent's module is ``Parent_Id.module.api_name``.

Only some profiles may list every note. When Zoho answers 403 ``NO_PERMISSION`` the stream is skipped
with one warning naming :data:`NOTES_PERMISSION` (``check`` reports it too); the rest of the sync goes on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_connector.models import Page
from crm_upsell_zoho.client import (
    PAGE_LIMIT,
    PAGE_PARAM_MAX_RECORDS,
    PermissionDenied,
    ZohoClient,
    data_of,
    info_of,
)
from crm_upsell_zoho.mapping import MappingOptions, fields_for, map_records, modified_at

__all__ = ["NOTES_PERMISSION", "read_notes"]

log = logging.getLogger(__name__)

#: What the integration user's profile needs to list every note (Zoho CRM > Setup > Users and Control
#: > Security Control > Profiles): view permission on Notes across the org.
NOTES_PERMISSION = "the profile permission to view all notes (Profiles > Notes: View)"


async def read_notes(
    client: ZohoClient, since: datetime | None, skip_ids: frozenset[str], options: MappingOptions
) -> AsyncIterator[Page]:
    """Pages of notes changed at or after ``since`` (all notes when None), newest first; the last page
    carries the newest stamp as its watermark (only then is everything after the cursor read)."""
    floor = since.replace(microsecond=0) if since is not None else None
    params = {
        "fields": ",".join(fields_for("notes", options)),
        "per_page": PAGE_LIMIT,
        "sort_by": "Modified_Time",
        "sort_order": "desc",
    }
    newest: datetime | None = None
    page_no, token = 1, None
    while True:
        query = {**params, **({"page_token": token} if token else {"page": page_no})}
        try:
            _, body = await client.request("GET", "Notes", kind="records", params=query, endpoint="GET Notes")
        except PermissionDenied as exc:
            log.warning(
                "Zoho refused to list notes (%s): the notes stream is skipped; give the integration user %s",
                exc.code,
                NOTES_PERMISSION,
            )
            return
        rows = data_of(body)
        fresh = []
        older = False
        for raw in rows:
            stamp = modified_at(raw)
            if stamp is not None and newest is None:
                newest = stamp
            if stamp is not None and floor is not None and stamp < floor:
                older = True
                break
            if stamp is not None and since is not None and stamp == since and str(raw.get("id")) in skip_ids:
                continue
            fresh.append(raw)
        more = bool(info_of(body).get("more_records")) and bool(rows) and not older
        records = map_records("notes", fresh, options)
        if records or not more:
            yield Page(stream="notes", records=records, watermark=None if more else newest)
        if not more:
            return
        if token is None and page_no * PAGE_LIMIT < PAGE_PARAM_MAX_RECORDS:
            page_no += 1
            continue
        next_token = info_of(body).get("next_page_token")
        if not next_token:
            raise FatalAPIError(
                f"Zoho reports more notes past {PAGE_PARAM_MAX_RECORDS} but gave no next_page_token"
            )
        token = str(next_token)
