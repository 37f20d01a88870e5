"""Reading HubSpot: every stream by list pages or by search, archived records, and the task lookup by key.

Full reads use the list endpoints (100 records a call, associations inline). Incremental reads use
search, keyed on the modification stamp rather than on search's ``after`` offset: every query starts
again at the last stamp read (``GTE``), so no query ever pages past search's 10,000-result cap and a
record modified mid-read (which jumps to the end of the sort order) can never push another one out
of view. More than one page of records sharing one millisecond is read by ``hs_object_id`` inside
that millisecond. Search carries no associations: one v4 batch association read per page adds them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from crm_upsell_connector.batching import chunked
from crm_upsell_connector.models import Page
from crm_upsell_hubspot.client import LIST_LIMIT, results_of
from crm_upsell_hubspot.mapping import map_objects, merged_away, modified_at, parse_datetime
from crm_upsell_hubspot.properties import modified_property, properties_for
from crm_upsell_hubspot.streams import (
    ASSOCIATION,
    LINK_CACHE_SIZE,
    OWNERS_LIMIT,
    HubSpotBase,
    from_ms,
    to_ms,
)


class ReadsMixin(HubSpotBase):
    """``read``, ``read_deleted`` and ``find_tasks``."""

    async def read(
        self,
        stream: str,
        since: datetime | None,
        resume: str | None = None,
        skip_ids: frozenset[str] = frozenset(),
    ) -> AsyncIterator[Page]:
        object_type = self._object_type(stream)
        if object_type == "owners":  # no search for owners, and there are few: always list them
            pages = self._list_read(stream, "/crm/v3/owners", {"limit": OWNERS_LIMIT}, resume)
        elif since is None:
            params: dict[str, Any] = {
                "limit": LIST_LIMIT,
                "properties": ",".join(properties_for(object_type, self.options)),
            }
            if object_type in ASSOCIATION:
                params["associations"] = ASSOCIATION[object_type]
            pages = self._list_read(stream, f"/crm/v3/objects/{object_type}", params, resume)
        else:
            pages = self._search_read(stream, since, skip_ids)
        async for page in pages:
            yield page

    async def _list_read(
        self, stream: str, path: str, params: dict[str, Any], resume: str | None
    ) -> AsyncIterator[Page]:
        """A full read by list pages; the last page carries the newest stamp seen as watermark."""
        newest: datetime | None = None
        async for results, after in self.client.list_pages(path, params, after=resume):
            for raw in results:
                stamp = modified_at(stream, raw)
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
                self._remember(stream, raw)
            records = map_objects(stream, results, self.options)
            yield Page(
                stream=stream,
                records=records,
                deleted_ids=merged_away(records),
                resume=after,
                watermark=None if after else newest,
            )

    def _stamp_ms(self, object_type: str, raw: Mapping[str, Any], default: int) -> int:
        stamp = modified_at(object_type, raw)
        return to_ms(stamp) if stamp is not None else default

    async def _search_read(
        self, stream: str, since: datetime, skip_ids: frozenset[str]
    ) -> AsyncIterator[Page]:
        """Keyset paging on the modification stamp: each query starts again at the last stamp read."""
        object_type = stream
        mod = modified_property(object_type)
        lo = to_ms(since)
        # Ids already read whose stamp is ``lo``: GTE returns them again, they need no second look.
        seen_at_lo: set[str] = set(skip_ids)
        # The first answer's ``total`` counts every record changed since ``since``: the size of this
        # read, for progress (Search API, "total" in the response:
        # https://developers.hubspot.com/docs/api-reference/latest/crm/search/guide).
        total: int | None = None
        while True:
            body = self._search_body(
                object_type, [{"propertyName": mod, "operator": "GTE", "value": str(lo)}], mod
            )
            data = await self.client.search(object_type, body)
            results = results_of(data)
            if total is None and isinstance(data.get("total"), int):
                total = int(data["total"])
            if not results:
                return
            stamps = [self._stamp_ms(object_type, r, lo) for r in results]
            full = len(results) >= self.settings.search_page_size
            if full and stamps[0] == stamps[-1]:
                # A whole page at one instant: read that millisecond by id, then move past it.
                async for page in self._read_instant(
                    stream, stamps[-1], seen_at_lo if stamps[0] == lo else set()
                ):
                    yield page.model_copy(update={"total": total})
                lo, seen_at_lo = stamps[-1] + 1, set()
                continue
            fresh = [
                raw
                for raw, stamp in zip(results, stamps, strict=True)
                if not (stamp == lo and str(raw.get("id")) in seen_at_lo)
            ]
            if fresh:
                page = await self._search_page(stream, fresh, from_ms(stamps[-1]))
                yield page.model_copy(update={"total": total})
            if not full:
                return
            last = stamps[-1]
            seen_at_lo = {str(r.get("id")) for r, s in zip(results, stamps, strict=True) if s == last}
            lo = last

    async def _read_instant(self, stream: str, stamp: int, skip: set[str]) -> AsyncIterator[Page]:
        """Every record modified in one millisecond, by ``hs_object_id`` (for > one page of them)."""
        object_type = stream
        mod = modified_property(object_type)
        last_id: str | None = None
        while True:
            filters = [
                {"propertyName": mod, "operator": "GTE", "value": str(stamp)},
                {"propertyName": mod, "operator": "LT", "value": str(stamp + 1)},
            ]
            if last_id is not None:
                filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": last_id})
            body = self._search_body(object_type, filters, "hs_object_id")
            results = results_of(await self.client.search(object_type, body))
            if not results:
                return
            fresh = [r for r in results if str(r.get("id")) not in skip]
            if fresh:
                yield await self._search_page(stream, fresh, from_ms(stamp))
            if len(results) < self.settings.search_page_size:
                return
            last_id = str(results[-1].get("id"))

    async def _search_page(self, stream: str, results: list[dict[str, Any]], last_stamp: datetime) -> Page:
        await self._attach_associations(stream, results)
        records = map_objects(stream, results, self.options)
        return Page(stream=stream, records=records, deleted_ids=merged_away(records), watermark=last_stamp)

    def _remember(self, object_type: str, raw: Mapping[str, Any]) -> None:
        """Keep a record's association under its modification stamp (see ``_attach_associations``)."""
        to_type = ASSOCIATION.get(object_type)
        stamp = modified_at(object_type, raw)
        if to_type is None or stamp is None or raw.get("id") in (None, ""):
            return
        assoc = raw.get("associations")
        block = assoc.get(to_type) if isinstance(assoc, dict) else None
        links = block.get("results") if isinstance(block, dict) else None
        key = (object_type, str(raw["id"]))
        self._links[key] = (stamp, list(links) if isinstance(links, list) else [])
        self._links.move_to_end(key)
        while len(self._links) > LINK_CACHE_SIZE:
            self._links.popitem(last=False)

    async def _attach_associations(self, object_type: str, results: list[dict[str, Any]]) -> None:
        """One v4 batch association read for a page of search results (which carry none).

        Records this connector has already read at the same modification stamp (the boundary that
        every incremental read re-reads) reuse the association seen then: a search by modification
        stamp could not have noticed a change that did not move the stamp either.
        """
        to_type = ASSOCIATION.get(object_type)
        if to_type is None:
            return
        wanted: list[str] = []
        for raw in results:
            if raw.get("id") in (None, ""):
                continue
            known = self._links.get((object_type, str(raw["id"])))
            if known is not None and known[0] == modified_at(object_type, raw):
                if known[1]:
                    raw["associations"] = {to_type: {"results": known[1]}}
            else:
                wanted.append(str(raw["id"]))
        if wanted:
            found = await self._read_associations(object_type, to_type, wanted)
            for raw in results:
                links = found.get(str(raw.get("id")))
                if links:
                    raw["associations"] = {to_type: {"results": links}}
        for raw in results:
            self._remember(object_type, raw)

    async def _read_associations(
        self, object_type: str, to_type: str, ids: list[str]
    ) -> dict[str, list[dict[str, str]]]:
        reply = await self.client.post(
            f"/crm/v4/associations/{object_type}/{to_type}/batch/read",
            {"inputs": [{"id": i} for i in dict.fromkeys(ids)]},
            idempotent=True,
            endpoint=f"POST /crm/v4/associations/{object_type}/{to_type}/batch/read",
        )
        found: dict[str, list[dict[str, str]]] = {}
        for item in results_of(reply):
            source = item.get("from")
            source_id = str(source.get("id")) if isinstance(source, dict) else None
            targets = item.get("to")
            if not source_id or not isinstance(targets, list):
                continue
            for target in targets:
                if not isinstance(target, dict) or target.get("toObjectId") in (None, ""):
                    continue
                labels = [
                    str(t.get("label") or "")
                    for t in target.get("associationTypes") or []
                    if isinstance(t, dict)
                ]
                kind = "primary" if any("primary" in label.lower() for label in labels) else "unlabeled"
                found.setdefault(source_id, []).append({"id": str(target["toObjectId"]), "type": kind})
        return found

    async def read_deleted(self, stream: str, since: datetime | None) -> AsyncIterator[Page]:
        """Archived records by list pages (archived records are not searchable)."""
        object_type = self._object_type(stream)
        if object_type == "owners":
            path, params = "/crm/v3/owners", {"limit": OWNERS_LIMIT, "archived": "true"}
        else:
            path = f"/crm/v3/objects/{object_type}"
            params = {"limit": LIST_LIMIT, "archived": "true", "properties": "hs_object_id"}
        newest: datetime | None = None
        async for results, after in self.client.list_pages(path, params, endpoint=f"GET {path} archived"):
            deleted: list[str] = []
            for raw in results:
                if raw.get("id") in (None, ""):
                    continue
                at = parse_datetime(raw.get("archivedAt")) or parse_datetime(raw.get("updatedAt"))
                if at is not None and (newest is None or at > newest):
                    newest = at
                if since is None or at is None or at >= since:
                    deleted.append(str(raw["id"]))
            yield Page(stream=stream, deleted_ids=deleted, watermark=None if after else newest)

    async def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        key_property = self.options.task_key_property
        found: dict[str, str] = {}
        for chunk in chunked(list(dict.fromkeys(keys)), 100):
            body = self._search_body(
                "tasks",
                [{"propertyName": key_property, "operator": "IN", "values": chunk}],
                "hs_object_id",
            )
            body["properties"] = [key_property]
            async for results, _total in self.client.search_pages("tasks", body):
                for item in results:
                    props = item.get("properties")
                    key = props.get(key_property) if isinstance(props, dict) else None
                    if key in chunk and item.get("id") is not None:
                        found.setdefault(str(key), str(item["id"]))
        return found
