"""How many records a module holds, for the progress of a full read.

"Get Record Count" (https://www.zoho.com/crm/developer/docs/api/v8/get-record-count.html):
``GET /crm/v8/{module}/actions/count`` answers ``{"count": <records>}``; it takes optional filters
(``criteria``, ``email``, ``phone``, ``word``, ``cvid``) that a full read does not use. One call, one
credit like a records page. The count is for progress and estimates only: when it fails the read goes
on without a total (one debug line), and a count given as a digit string is read as a number (Zoho's
tag record count answers ``"count": "3"``, so both forms are accepted).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from crm_upsell_connector.errors import APIError
from crm_upsell_connector.models import Page
from crm_upsell_zoho.client import PermissionDenied, ZohoClient

log = logging.getLogger(__name__)

__all__ = ["record_count", "with_total"]


async def record_count(client: ZohoClient, module: str) -> int | None:
    """The number of records in ``module`` (its API name, e.g. ``Accounts``), or None where Zoho
    gives none (an error, or an answer without a count)."""
    try:
        _, body = await client.request(
            "GET", f"{module}/actions/count", kind="records", endpoint=f"GET {module}/actions/count"
        )
    except (APIError, PermissionDenied) as exc:
        log.debug("Zoho %s: no record count (%s); progress shows no total", module, exc.one_line())
        return None
    count = body.get("count")
    if isinstance(count, str) and count.isdigit():
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        log.debug("Zoho %s: the record count answer has no count; progress shows no total", module)
        return None
    return count


async def with_total(pages: AsyncIterator[Page], total: int) -> AsyncIterator[Page]:
    """``pages`` with ``total`` set on each."""
    async for page in pages:
        yield page.model_copy(update={"total": total})
