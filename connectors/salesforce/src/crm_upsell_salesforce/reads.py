"""Reading streams with ``queryAll``: changed, archived and deleted rows in one pass.

``queryAll`` returns what ``query`` does plus deleted rows still in the Recycle Bin and archived
Tasks and Events (closed activities older than about a year, which ``query`` no longer returns):
SOQL and SOSL Reference, "QueryAll" and "ALL ROWS"; REST API Developer Guide, "Execute a SOQL Query
that Includes Deleted Items". Rows with ``IsDeleted = true`` become the page's ``deleted_ids``,
archived rows count as any other. A full read (``ORDER BY Id``) also lists every live id at its end,
so the store drops whatever the org no longer has without a delete query of its own; its resume
position is the last committed Id, which never expires.

Long reads: a ``QUERY_TIMEOUT`` is retried once, then the window is halved (:mod:`.windows`) until
it answers; an ``INVALID_QUERY_LOCATOR`` in the middle of a read (locators expire, and an org keeps
only so many open) restarts the query after the last Id (or stamp) committed, never from scratch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_connector.models import Page, Record
from crm_upsell_connector.values import parse_bool
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.deletes import DeletesMixin
from crm_upsell_salesforce.enrich import CURRENCY_STREAMS, enrich, merged_into
from crm_upsell_salesforce.mapping import MODSTAMP, map_records, modified_at
from crm_upsell_salesforce.marketing import optional_object_missing
from crm_upsell_salesforce.windows import KEY_PREFIXES, IdWindow, StampWindow, mid_id

log = logging.getLogger(__name__)

RESUME_PREFIX = "id:"
TIMEOUT_RETRIES = 1
#: Restarts of one window after expired locators without a single new row before giving up.
_STALLED_RESTARTS = 3


class _Narrow(Exception):
    """A window kept timing out: read it in halves."""

    def __init__(self, cause: FatalAPIError) -> None:
        super().__init__(cause.one_line())
        self.cause = cause


class ReadsMixin(DeletesMixin):
    """``read``: full reads by Id, incremental reads by SystemModstamp, both through ``queryAll``."""

    @staticmethod
    def _resource(stream: str) -> str:
        return "query" if stream == "users" else "queryAll"  # users are deactivated, never deleted

    @staticmethod
    def _with_is_deleted(stream: str, fields: tuple[str, ...]) -> tuple[str, ...]:
        if stream == "users" or any(f.lower() == "isdeleted" for f in fields):
            return fields
        return (*fields, "IsDeleted")

    async def _batches(
        self,
        stream: str,
        build: Callable[[tuple[str, ...]], str],
        endpoint: str,
        totals: list[int] | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The batches of one query; a ``QUERY_TIMEOUT`` on opening it is retried, then :class:`_Narrow`.
        ``totals`` receives the ``totalSize`` of the first query answered (later ones add nothing)."""
        attempt = 0
        while True:
            try:
                async for raws, _nxt in self._query(
                    stream, build, resource=self._resource(stream), endpoint=endpoint, totals=totals
                ):
                    attempt = -1  # opened: a later failure is not a timeout of the opening call
                    yield raws
                return
            except FatalAPIError as exc:
                if exc.error_code != "QUERY_TIMEOUT" or attempt < 0:
                    raise
                attempt += 1
                if attempt > TIMEOUT_RETRIES:
                    raise _Narrow(exc) from None
                log.warning("Salesforce %s: the query timed out; trying it once more", endpoint)

    @staticmethod
    def _split(raws: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        live: list[dict[str, Any]] = []
        deleted: list[dict[str, Any]] = []
        for raw in raws:
            (deleted if parse_bool(raw.get("IsDeleted")) and raw.get("Id") else live).append(raw)
        return live, deleted

    async def _records(
        self, stream: str, live: list[dict[str, Any]], deleted: list[dict[str, Any]]
    ) -> list[Record]:
        """Mapped records with home amounts, bodies and merges filled in (:mod:`.enrich`)."""
        records = map_records(stream, live, self.options)
        rates = await self.rates() if stream in CURRENCY_STREAMS and records else None
        return enrich(stream, records, live, rates, merged_into(deleted))

    async def read(
        self,
        stream: str,
        since: datetime | None,
        resume: str | None = None,
        skip_ids: frozenset[str] = frozenset(),
    ) -> AsyncIterator[Page]:
        sobject = self._sobject(stream)
        if stream in self._unavailable:
            return
        pages = (
            self._full_read(stream, sobject, resume)
            if since is None
            else self._incremental_read(stream, sobject, since, skip_ids)
        )
        try:
            async for page in pages:
                yield page
        except FatalAPIError as exc:
            if not optional_object_missing(stream, exc):
                raise
            self._unavailable.add(stream)

    # ---- full reads: Id order ---------------------------------------------------------------------

    def _id_query(self, stream: str, sobject: str, window: IdWindow) -> Callable[[tuple[str, ...]], str]:
        def build(fields: tuple[str, ...]) -> str:
            where = []
            if window.after:
                where.append(soql.condition("Id", ">", window.after))
            if window.through:
                where.append(soql.condition("Id", "<=", window.through))
            return soql.select(sobject, self._with_is_deleted(stream, fields), where=where, order_by=("Id",))

        return build

    async def _id_window(
        self, stream: str, sobject: str, window: IdWindow, totals: list[int] | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every row of ``window``; an expired locator restarts after ``window.after``."""
        endpoint = f"GET {self._resource(stream)} {sobject}"
        stalled = 0
        while True:
            try:
                async for raws in self._batches(
                    stream, self._id_query(stream, sobject, window), endpoint, totals
                ):
                    if raws:
                        stalled = 0
                        window.after = str(raws[-1].get("Id") or window.after)
                    yield raws
                return
            except FatalAPIError as exc:
                if exc.error_code not in ("INVALID_QUERY_LOCATOR", "NOT_FOUND"):
                    raise
                stalled += 1
                if stalled > _STALLED_RESTARTS:
                    raise
                log.warning(
                    "Salesforce %s: the query locator expired (%s); reading on after Id %s",
                    sobject,
                    exc.error_code,
                    window.after or "(start)",
                )

    async def _full_read(self, stream: str, sobject: str, resume: str | None) -> AsyncIterator[Page]:
        """Every row by Id. Each page's ``resume`` is ``id:<last Id>``; a read that starts from the
        beginning ends with a page listing every live id (reconcile by ids)."""
        after: str | None = None
        if resume and resume.startswith(RESUME_PREFIX):
            after = resume[len(RESUME_PREFIX) :] or None
        elif resume:
            log.warning(
                "the saved Salesforce read position for %s is not understood; reading from the start", stream
            )
        prefix = KEY_PREFIXES.get(sobject, "")
        present: list[str] | None = [] if after is None and prefix else None
        windows = [IdWindow(after)]
        # The first query's totalSize sizes the read (rows after ``after``); narrowed windows and
        # restarts after an expired locator keep it: progress only, never an extra call.
        totals: list[int] = []
        while windows:
            window = windows[0]
            try:
                async for raws in self._id_window(stream, sobject, window, totals):
                    live, deleted = self._split(raws)
                    if present is not None:
                        present.extend(str(r["Id"]) for r in live if r.get("Id"))
                    if not raws:
                        continue
                    yield Page(
                        stream=stream,
                        records=await self._records(stream, live, deleted),
                        deleted_ids=[str(r["Id"]) for r in deleted],
                        resume=f"{RESUME_PREFIX}{window.after}" if window.after else None,
                        total=totals[0] if totals else None,
                    )
            except _Narrow as narrow:
                mid = mid_id(prefix, window.after, window.through) if prefix else None
                if mid is None:
                    raise narrow.cause from None
                log.warning("Salesforce %s: reading Ids up to %s and after it separately", sobject, mid)
                windows[:1] = [IdWindow(window.after, mid), IdWindow(mid, window.through)]
                continue
            windows.pop(0)
        if present is not None:
            self._fully_read.add(stream)
            # Resumable like the others: a stop right after this page does not restart the read.
            last = present[-1] if present else None  # ids are read in ascending order
            yield Page(
                stream=stream,
                present_ids=present,
                present_prefix=prefix,
                resume=f"{RESUME_PREFIX}{last}" if last else None,
                total=totals[0] if totals else None,
            )

    # ---- incremental reads: SystemModstamp order ---------------------------------------------------

    def _stamp_query(
        self, stream: str, sobject: str, window: StampWindow
    ) -> Callable[[tuple[str, ...]], str]:
        def build(fields: tuple[str, ...]) -> str:
            where = [soql.condition(MODSTAMP, ">=", window.start)]
            if window.end is not None:
                where.append(soql.condition(MODSTAMP, "<", window.end))
            return soql.select(
                sobject, self._with_is_deleted(stream, fields), where=where, order_by=(MODSTAMP, "Id")
            )

        return build

    async def _incremental_read(
        self, stream: str, sobject: str, since: datetime, skip_ids: frozenset[str]
    ) -> AsyncIterator[Page]:
        """Rows changed at or after ``since`` (deleted ones as ``deleted_ids``); each page's watermark
        is its newest stamp."""
        endpoint = f"GET {self._resource(stream)} {sobject}"
        windows = [StampWindow(since)]
        totals: list[int] = []  # the first query's totalSize, as in _full_read
        while windows:
            window = windows[0]
            stalled = 0
            try:
                while True:
                    try:
                        async for raws in self._batches(
                            stream, self._stamp_query(stream, sobject, window), endpoint, totals
                        ):
                            page = await self._stamp_page(stream, raws, window, since, skip_ids)
                            if page is not None:
                                stalled = 0
                                yield page.model_copy(update={"total": totals[0] if totals else None})
                        break
                    except FatalAPIError as exc:
                        if exc.error_code not in ("INVALID_QUERY_LOCATOR", "NOT_FOUND"):
                            raise
                        stalled += 1
                        if stalled > _STALLED_RESTARTS:
                            raise
                        log.warning(
                            "Salesforce %s: the query locator expired; reading on from %s",
                            sobject,
                            window.start.isoformat(),
                        )
            except _Narrow as narrow:
                halves = window.halves(datetime.now(UTC))
                if halves is None:
                    raise narrow.cause from None
                log.warning(
                    "Salesforce %s: the query timed out; reading changes before and after %s apart",
                    sobject,
                    halves[1].start.isoformat(),
                )
                windows[:1] = list(halves)
                continue
            windows.pop(0)

    async def _stamp_page(
        self,
        stream: str,
        raws: list[dict[str, Any]],
        window: StampWindow,
        since: datetime,
        skip_ids: frozenset[str],
    ) -> Page | None:
        fresh: list[dict[str, Any]] = []
        deleted: list[dict[str, Any]] = []
        newest: datetime | None = None
        for raw in raws:
            stamp = modified_at(raw)
            rid = str(raw.get("Id") or "")
            if stamp is not None:
                if stamp == window.start and rid in window.seen:
                    continue  # read before an expired locator restarted the query
                if stamp > window.start:
                    window.start, window.seen = stamp, set()
                window.seen.add(rid)
                newest = stamp if newest is None or stamp > newest else newest
                if stamp == since and rid in skip_ids:
                    continue
            (deleted if parse_bool(raw.get("IsDeleted")) and rid else fresh).append(raw)
        if not fresh and not deleted:
            return None
        return Page(
            stream=stream,
            records=await self._records(stream, fresh, deleted),
            deleted_ids=[str(r["Id"]) for r in deleted],
            watermark=newest,
        )
