"""Deletes the reads cannot see: getDeleted inside its window, and reconcile by ids past it.

Reads go through ``queryAll`` and bring deleted rows along, but only while those rows are in the
Recycle Bin; rows purged from it (emptied, hard-deleted, or purged within hours of a mass delete)
vanish without a trace. getDeleted says from when it can answer: ``earliestDateAvailable`` is "the
timestamp of the last physically deleted object" (SOAP API Developer Guide, "GetDeletedResult";
REST API Developer Guide, "Get a List of Deleted Records Within a Given Timeframe"; results go back
at most 15 days). When the last delete check is older than that, the connector lists every live id
instead (``SELECT Id ... ORDER BY Id``, ceil(N / 2000) calls) and the store drops the rest.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_connector.models import Page
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.mapping import parse_datetime
from crm_upsell_salesforce.querying import QueryingBase
from crm_upsell_salesforce.windows import KEY_PREFIXES

log = logging.getLogger(__name__)

GET_DELETED_DAYS = 15
_GET_DELETED_MARGIN = timedelta(hours=1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class DeletesMixin(QueryingBase):
    """``read_deleted``."""

    async def read_deleted(self, stream: str, since: datetime | None) -> AsyncIterator[Page]:
        """Nothing after a complete full read in this run (it listed every live id); getDeleted when
        its log reaches back to ``since``; otherwise every live id (reconcile by ids)."""
        sobject = self._sobject(stream)
        if stream == "users" or stream in self._fully_read or stream in self._unavailable:
            return  # users are deactivated (IsActive), never deleted
        now = datetime.now(UTC)
        if since is not None and since > now - timedelta(days=GET_DELETED_DAYS) + _GET_DELETED_MARGIN:
            try:
                page, earliest = await self._get_deleted(stream, sobject, since, now)
            except FatalAPIError as exc:
                if exc.error_code != "INVALID_REPLICATION_DATE":
                    raise
                log.warning(
                    "Salesforce getDeleted cannot answer for %s since %s: reconciling by ids", sobject, since
                )
            else:
                yield page
                if earliest is None or earliest <= since:
                    return
                log.warning(
                    "Salesforce purged deleted %s records up to %s, after the last delete check (%s): "
                    "reconciling by ids so that none is missed",
                    sobject,
                    earliest.isoformat(),
                    since.isoformat(),
                )
        async for page in self._reconcile(stream, sobject):
            yield page

    async def _reconcile(self, stream: str, sobject: str) -> AsyncIterator[Page]:
        prefix = KEY_PREFIXES.get(sobject)
        if prefix is None:
            return
        ids: list[str] = []
        query = soql.select(sobject, ("Id",), order_by=("Id",))
        async for raws, _nxt in self.client.query_pages(query, endpoint=f"GET query {sobject} ids"):
            ids.extend(str(r["Id"]) for r in raws if r.get("Id"))
        yield Page(stream=stream, present_ids=ids, present_prefix=prefix)

    async def _get_deleted(
        self, stream: str, sobject: str, since: datetime, now: datetime
    ) -> tuple[Page, datetime | None]:
        # getDeleted ignores seconds: round the end up to the next minute, or a record deleted
        # earlier in this minute would fall outside the window (the start rounds down by itself).
        end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        data = await self.client.get(
            f"sobjects/{soql.name(sobject)}/deleted/",
            {"start": _iso(since), "end": _iso(end)},
            endpoint=f"GET sobjects/{sobject}/deleted",
        )
        found = data.get("deletedRecords") if isinstance(data, dict) else None
        ids: list[str] = []
        newest: datetime | None = None
        for item in found if isinstance(found, list) else []:
            if not isinstance(item, dict) or not item.get("id"):
                continue
            ids.append(str(item["id"]))
            at = parse_datetime(item.get("deletedDate"))
            if at is not None and (newest is None or at > newest):
                newest = at
        earliest = parse_datetime(data.get("earliestDateAvailable")) if isinstance(data, dict) else None
        return Page(stream=stream, deleted_ids=ids, watermark=newest), earliest
