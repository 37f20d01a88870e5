"""Sales Orders and Invoices whose list read came back without their line items.

Zoho's "Get Records" page does not say whether a list read returns a line item subform named in
``fields``; the "Subform API" page
(https://www.zoho.com/crm/developer/docs/api/v8/subforms.html) documents that ``GET
/{module_API_name}/{record_ID}`` returns a record's subform data. So the connector asks the list for
the subform (one call per 200 orders) and, for any record the list returned *without* the subform
key, reads that record on its own (one call each, concurrently within ``max_concurrency``), logging
once per module that it does so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_zoho.client import data_of

if TYPE_CHECKING:
    from crm_upsell_zoho.client import ZohoClient

__all__ = ["with_line_items"]

log = logging.getLogger(__name__)
_told: set[str] = set()


async def _one(client: ZohoClient, module: str, raw: Mapping[str, Any], fields: str) -> dict[str, Any] | None:
    try:
        _, body = await client.request(
            "GET",
            f"{module}/{raw['id']}",
            kind="records",
            params={"fields": fields},
            endpoint=f"GET {module}/{{id}}",
        )
    except FatalAPIError as exc:
        if exc.error_code == "INVALID_DATA":  # deleted meanwhile: the deleted read removes its lines
            log.info("Zoho %s %s is gone; its lines are not read (%s)", module, raw["id"], exc.one_line())
            return None
        raise
    rows = data_of(body)
    return rows[0] if rows and isinstance(rows[0], dict) else None


async def with_line_items(
    client: ZohoClient, module: str, subform: str, fields: str, raws: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``raws`` with every record carrying its ``subform``: those the list returned without it are
    read one by one (records gone meanwhile are left out)."""
    missing = [i for i, raw in enumerate(raws) if subform not in raw and raw.get("id")]
    if not missing:
        return list(raws)
    if module not in _told:
        _told.add(module)
        log.info(
            "Zoho listed %s without %s: reading those records one by one (one call each)", module, subform
        )
    fetched = await asyncio.gather(*(_one(client, module, raws[i], fields) for i in missing))
    out = list(raws)
    for i, full in zip(missing, fetched, strict=True):
        out[i] = full if full is not None else {}
    return [raw for raw in out if raw]
