"""Sync: read each stream's pages since its cursor and store them, committing the cursor with each page.

A crash loses at most the page in flight. A full read resumes from the paging position saved with
its last committed page. The cursor comes from the data's own modification stamps, is re-read
inclusively next time (duplicates collapse in the upsert), and never moves past the moment the
stream started being read, so records changed during a long sync are read again next time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.connector import Connector
from crm_upsell_connector.errors import AuthError, ConfigError, ConnectorError, QuotaError, StopRequested
from crm_upsell_connector.merges import fold_merges
from crm_upsell_connector.models import Page
from crm_upsell_connector.store.repo import (
    SyncState,
    delete_records,
    load_sync_state,
    reconcile_present,
    save_sync_state,
    upsert_records,
)

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]


@dataclass
class StreamReport:
    stream: str
    mode: str  # full, resumed, incremental
    records: int = 0
    deleted: int = 0
    pages: int = 0


@dataclass
class SyncReport:
    streams: dict[str, StreamReport] = field(default_factory=dict)
    #: streams that failed after their retries, with the reason; the others completed.
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.streams.values())

    @property
    def deleted(self) -> int:
        return sum(s.deleted for s in self.streams.values())


# Enough to spare the lookups of a typical boundary; any beyond are simply read again.
_MAX_BOUNDARY = 2000


class _Edge:
    """The newest modification stamp seen in a read, and the ids that carry it."""

    def __init__(self) -> None:
        self.newest: datetime | None = None
        self.ids: set[str] = set()

    def see(self, page: Page) -> None:
        for record in page.records:
            if self.newest is None or record.updated_at > self.newest:
                self.newest = record.updated_at
                self.ids = {record.id}
            elif record.updated_at == self.newest and len(self.ids) < _MAX_BOUNDARY:
                self.ids.add(record.id)


def _close_instant(state: SyncState, edge: _Edge, limit: datetime) -> bool:
    """Move the cursor just past the newest instant read when that instant is complete.

    Mid-read, the cursor stays on the last stamp read and is re-read inclusively. Once a read has
    finished, an instant older than the read's start minus the skew margin cannot gain records
    (the margin covers the CRM's clock and its search index lag), so the next read may start
    after it, and costs one call when nothing changed, however many records share that instant.
    """
    if edge.newest is None or state.cursor != edge.newest or edge.newest >= limit:
        return False
    state.cursor = edge.newest + timedelta(milliseconds=1)
    state.boundary_ids = []
    return True


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Syncer:
    def __init__(
        self,
        engine: Engine,
        connector: Connector,
        connection: str,
        settings: SyncSettings,
        *,
        clock: Callable[[], datetime] = _utcnow,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        #: called before each commit; raises when this run may no longer write (its lock was lost).
        self.guard = guard
        self.connector = connector
        self.connection = connection
        self.settings = settings
        self.clock = clock
        self.progress = progress
        #: when set (SIGTERM, SIGINT), each stream stops after committing the page it is reading.
        self.stop = stop

    async def run(self, *, full: bool = False, streams: list[str] | None = None) -> SyncReport:
        """Sync the given (default: all) streams, several at once.

        A stream that fails after its retries keeps its last committed page and is reported in
        ``failed``; the other streams go on. Credentials refused or an API quota reached stop
        every stream (they would fail the same way), and are raised as they are.
        """
        names = streams or list(self.connector.streams)
        unknown = [n for n in names if n not in self.connector.streams]
        if unknown:
            raise ConfigError(
                f"unknown stream(s): {', '.join(unknown)}",
                hint=f"streams: {', '.join(self.connector.streams)}",
            )
        report = SyncReport()
        gate = asyncio.Semaphore(self.settings.parallel_streams)
        stopped: list[str] = []

        async def one(name: str) -> None:
            async with gate:
                try:
                    self._check_stop()
                    report.streams[name] = await self.sync_stream(name, full=full)
                except StopRequested:
                    stopped.append(name)
                except (AuthError, QuotaError):
                    raise
                except ConnectorError as exc:
                    log.warning(
                        "stream %s failed and resumes from its last page next run: %s", name, exc.one_line()
                    )
                    report.failed[name] = exc.one_line()

        try:
            async with asyncio.TaskGroup() as group:
                for name in names:
                    group.create_task(one(name))
        except BaseExceptionGroup as failed:
            # The other streams were stopped at a committed page; report the first cause as it is.
            raise _first_leaf(failed) from None
        if stopped:
            raise StopRequested(
                f"sync stopped on request; {len(stopped)} stream(s) kept their last committed page",
                hint="the next run resumes from there",
            )
        report.streams = {n: report.streams[n] for n in names if n in report.streams}
        return report

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise StopRequested("stop requested")

    async def sync_stream(self, stream: str, *, full: bool = False) -> StreamReport:
        with self.engine.connect() as conn:
            state = load_sync_state(conn, self.connection, stream)
        skew = timedelta(seconds=self.settings.clock_skew_s)
        if full and state.full_started_at is None:
            state.resume = None
        resuming = state.full_started_at is not None
        first_read = state.cursor is None and not resuming
        started = self.clock()
        if resuming or full or state.cursor is None:
            report = await self._read_full(state, skew, resumed=resuming)
        else:
            report = await self._read_incremental(state, skew)
        if first_read and not full:
            # Nothing was stored before this read, so nothing archived earlier can linger here.
            state.deleted_checked_at = started
            self._save(state)
        elif full or self._delete_pass_due(state):
            self._check_stop()
            report.deleted = await self._delete_pass(state, skew)
        return report

    async def _read_full(self, state: SyncState, skew: timedelta, *, resumed: bool) -> StreamReport:
        report = StreamReport(state.stream, "resumed" if resumed else "full")
        if state.full_started_at is None:
            state.full_started_at = self.clock()
            state.records = 0
        started = state.full_started_at
        edge = _Edge()
        async for page in self.connector.read(state.stream, None, state.resume):
            edge.see(page)
            state.resume = page.resume
            self._commit_page(state, page, report)
            self._check_stop()
        # Everything changed since the read began is read again next time.
        limit = started - skew
        state.cursor = min(edge.newest, limit) if edge.newest is not None else limit
        state.boundary_ids = sorted(edge.ids) if state.cursor == edge.newest else []
        _close_instant(state, edge, limit)
        state.resume = None
        state.full_started_at = None
        self._save(state)
        return report

    async def _read_incremental(self, state: SyncState, skew: timedelta) -> StreamReport:
        report = StreamReport(state.stream, "incremental")
        limit = self.clock() - skew
        skip = frozenset(state.boundary_ids)
        edge = _Edge()
        async for page in self.connector.read(state.stream, state.cursor, None, skip):
            edge.see(page)
            if page.watermark is not None and state.cursor is not None:
                cursor = max(state.cursor, min(page.watermark, limit))
                at_cursor = [r.id for r in page.records if r.updated_at == cursor]
                if cursor != state.cursor:
                    state.boundary_ids = at_cursor[:_MAX_BOUNDARY]
                else:
                    state.boundary_ids = sorted(set(state.boundary_ids) | set(at_cursor))[:_MAX_BOUNDARY]
                state.cursor = cursor
            self._commit_page(state, page, report)
            self._check_stop()
        if _close_instant(state, edge, limit):
            self._save(state)
        return report

    def _commit_page(self, state: SyncState, page: Page, report: StreamReport) -> None:
        """Records, deletions and the new stream position in one transaction."""
        kind = self.connector.streams[state.stream]
        if self.guard is not None:
            self.guard()
        with self.engine.begin() as conn:
            stored = upsert_records(conn, self.connection, kind, page.records)
            fold_merges(conn, self.connection, kind, page.records)
            if page.deleted_ids:
                report.deleted += delete_records(conn, self.connection, kind, page.deleted_ids)
            if page.present_ids is not None:
                report.deleted += reconcile_present(
                    conn, self.connection, kind, page.present_prefix, page.present_ids
                )
            state.records += stored
            save_sync_state(conn, state, self.clock())
        report.records += stored
        report.pages += 1
        if self.progress is not None:
            self.progress(state.stream, stored)

    def _delete_pass_due(self, state: SyncState) -> bool:
        if state.deleted_checked_at is None:
            return True
        due = state.deleted_checked_at + timedelta(hours=self.settings.delete_check_hours)
        return self.clock() >= due

    async def _delete_pass(self, state: SyncState, skew: timedelta) -> int:
        started = self.clock()
        since = state.deleted_checked_at - skew if state.deleted_checked_at else None
        kind = self.connector.streams[state.stream]
        removed = 0
        async for page in self.connector.read_deleted(state.stream, since):
            if page.deleted_ids or page.present_ids is not None:
                with self.engine.begin() as conn:
                    removed += delete_records(conn, self.connection, kind, page.deleted_ids)
                    if page.present_ids is not None:
                        removed += reconcile_present(
                            conn, self.connection, kind, page.present_prefix, page.present_ids
                        )
        state.deleted_checked_at = started
        self._save(state)
        return removed

    def _save(self, state: SyncState) -> None:
        with self.engine.begin() as conn:
            save_sync_state(conn, state, self.clock())
