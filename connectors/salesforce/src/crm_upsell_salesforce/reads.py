"""Reading streams: full reads by Id, incremental reads by SystemModstamp, deletes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_connector.models import (
    Page,
)
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.mapping import (
    MODSTAMP,
    SOBJECTS,
    map_records,
    modified_at,
    parse_datetime,
)

if TYPE_CHECKING:
    pass

from crm_upsell_salesforce.querying import QueryingBase

log = logging.getLogger(__name__)


GET_DELETED_DAYS = 15
_GET_DELETED_MARGIN = timedelta(hours=1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class ReadsMixin(QueryingBase):
    """``read`` and ``read_deleted``."""

    async def read(
        self,
        stream: str,
        since: datetime | None,
        resume: str | None = None,
        skip_ids: frozenset[str] = frozenset(),
    ) -> AsyncIterator[Page]:
        sobject = self._sobject(stream)
        if since is None:
            pages = self._full_read(stream, lambda f: soql.select(sobject, f, order_by=("Id",)), resume)
        else:
            where = [soql.condition(MODSTAMP, ">=", since)]
            pages = self._incremental_read(
                stream,
                lambda f: soql.select(sobject, f, where=where, order_by=(MODSTAMP, "Id")),
                since,
                skip_ids,
            )
        async for page in pages:
            yield page

    async def _full_read(
        self, stream: str, build: Callable[[tuple[str, ...]], str], resume: str | None
    ) -> AsyncIterator[Page]:
        """Every record; each page's ``resume`` is the ``nextRecordsUrl`` to continue from."""
        endpoint = f"GET query {SOBJECTS[stream]}"
        batches = self._query(stream, build, resume=resume, endpoint=endpoint)
        try:
            first = await anext(batches)
        except StopAsyncIteration:
            return
        except FatalAPIError as exc:
            if not resume or exc.error_code not in ("INVALID_QUERY_LOCATOR", "NOT_FOUND"):
                raise
            # Query locators expire: an interrupted full read starts over, and says so.
            log.warning(
                "the saved Salesforce query position for %s has expired (%s); the full read starts "
                "again from the beginning",
                stream,
                exc.error_code,
            )
            batches = self._query(stream, build, endpoint=endpoint)
            try:
                first = await anext(batches)
            except StopAsyncIteration:
                return
        records, nxt = first
        yield Page(stream=stream, records=map_records(stream, records, self.options), resume=nxt)
        async for records, nxt in batches:
            yield Page(stream=stream, records=map_records(stream, records, self.options), resume=nxt)

    async def _incremental_read(
        self,
        stream: str,
        build: Callable[[tuple[str, ...]], str],
        since: datetime,
        skip_ids: frozenset[str],
    ) -> AsyncIterator[Page]:
        """One query ordered by ``SystemModstamp``; each batch's last stamp is its watermark."""
        async for raws, _nxt in self._query(stream, build, endpoint=f"GET query {SOBJECTS[stream]}"):
            fresh: list[dict[str, Any]] = []
            newest: datetime | None = None
            for raw in raws:
                stamp = modified_at(raw)
                if stamp is not None:
                    newest = stamp if newest is None or stamp > newest else newest
                    if stamp == since and str(raw.get("Id")) in skip_ids:
                        continue
                fresh.append(raw)
            if fresh:
                yield Page(stream=stream, records=map_records(stream, fresh, self.options), watermark=newest)

    async def read_deleted(self, stream: str, since: datetime | None) -> AsyncIterator[Page]:
        """getDeleted inside its window; ``queryAll`` on ``IsDeleted`` for anything older."""
        sobject = self._sobject(stream)
        if stream == "users":
            return  # users are deactivated (IsActive), never deleted
        now = datetime.now(UTC)
        if since is not None and since > now - timedelta(days=GET_DELETED_DAYS) + _GET_DELETED_MARGIN:
            try:
                page = await self._get_deleted(stream, sobject, since, now)
            except FatalAPIError as exc:
                if exc.error_code != "INVALID_REPLICATION_DATE":
                    raise
            else:
                yield page
                return
        where = [soql.condition("IsDeleted", "=", True)]
        if since is not None:
            where.append(soql.condition(MODSTAMP, ">=", since))
        query = soql.select(sobject, ("Id", MODSTAMP), where=where)
        async for raws, _nxt in self.client.query_pages(
            query, resource="queryAll", endpoint=f"GET queryAll {sobject}"
        ):
            ids = [str(r["Id"]) for r in raws if r.get("Id")]
            yield Page(stream=stream, deleted_ids=ids)

    async def _get_deleted(self, stream: str, sobject: str, since: datetime, now: datetime) -> Page:
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
        return Page(stream=stream, deleted_ids=ids, watermark=newest)
