"""The usage streams: each source read in chunks into ``usage_values``, a commit per chunk.

A chunk's rows, the history rows they change and the stream's position are written in one
transaction, as CRM pages are. Only values that differ from the value in force on the row's day
are written, so a value read again unchanged adds nothing and carries forward. An incremental
source (``:since`` and ``cursor_column``) asks only for rows stamped at or after its cursor: just
past the newest stamp of its last complete read, never past the start of that read minus the
clock-skew margin (rows near it are read again, which changes nothing). After a complete full
read, a key the source no longer returns gets an empty value from that day (its account then has
no usage); an incremental read cannot see removals, so its values carry forward. A failing source fails its own
stream: the CRM streams and the other sources are not touched.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from crm_upsell_connector.errors import ConnectorError, StopRequested
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store import schema
from crm_upsell_connector.store.repo import SyncState, load_sync_state, save_sync_state
from crm_upsell_connector.sync import Progress, StreamReport, SyncReport
from crm_upsell_connector.usage.config import UsageConfig, UsageSource
from crm_upsell_connector.usage.keys import source_key
from crm_upsell_connector.usage.matching import stored_match_report
from crm_upsell_connector.usage.readers import Row, SourceReader, UsageSourceError
from crm_upsell_connector.usage.values import parse_day, parse_metric, parse_stamp

log = logging.getLogger(__name__)
_IN_LIST = 500  # keys per IN (...) lookup: well within SQLite's bound-parameter limit


@dataclass
class UsageReadReport:
    """What one read of a source did."""

    source: str
    mode: str  # full, incremental
    rows: int = 0
    stored: int = 0  # history rows written (values that changed)
    pages: int = 0
    without_key: int = 0
    undated: int = 0
    duplicates: int = 0
    bad_values: int = 0
    ended: int = 0  # keys a full read no longer returned: no value from today on


def _history(
    conn: sa.Connection, connection: str, source: str, keys: Sequence[str], first: date, last: date
) -> dict[str, tuple[list[date], list[dict[str, Any]]]]:
    """key -> ([days ascending], [metrics]): what decides the values in force from ``first`` to ``last``.

    That is each key's newest row before ``first`` and its rows from ``first`` to ``last``; an
    export ordered by day asks for one or two rows per key, however long the history.
    """
    u = schema.usage_values
    older = sa.alias(u, "older")
    newest_before = (
        sa.select(sa.func.max(older.c.observed_on))
        .where(
            older.c.connection == u.c.connection,
            older.c.source == u.c.source,
            older.c.key == u.c.key,
            older.c.observed_on < first,
        )
        .scalar_subquery()
    )
    found: dict[str, tuple[list[date], list[dict[str, Any]]]] = {}
    for start in range(0, len(keys), _IN_LIST):
        part = keys[start : start + _IN_LIST]
        query = (
            sa.select(u.c.key, u.c.observed_on, u.c.metrics)
            .where(
                u.c.connection == connection,
                u.c.source == source,
                u.c.key.in_(part),
                sa.or_(u.c.observed_on.between(first, last), u.c.observed_on == newest_before),
            )
            .order_by(u.c.key, u.c.observed_on)
        )
        for key, day, metrics in conn.execute(query):
            days, values = found.setdefault(key, ([], []))
            days.append(day)
            values.append(metrics)
    return found


def _upsert_values(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert or replace history rows: one statement, executed for many rows (compiled once)."""
    if not rows:
        return
    table = schema.usage_values
    insert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    statement = insert.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={"metrics": insert.excluded.metrics, "read_at": insert.excluded.read_at},
    )
    conn.execute(statement, rows)


def _in_force(history: tuple[list[date], list[dict[str, Any]]] | None, day: date) -> dict[str, Any] | None:
    """The values in force on ``day``: the newest history row on or before it."""
    if history is None:
        return None
    days, values = history
    at = bisect.bisect_right(days, day)
    return values[at - 1] if at else None


class UsageSyncer:
    """Reads every usage source of one connection; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        usage: UsageConfig,
        connection: str,
        secrets: SecretResolver,
        *,
        clock: Callable[[], datetime],
        skew: timedelta = timedelta(seconds=60),
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.usage = usage
        self.connection = connection
        self.secrets = secrets
        self.clock = clock
        self.skew = skew
        self.progress = progress
        self.stop = stop
        self.guard = guard

    async def run(self, report: SyncReport, *, full: bool = False) -> None:
        """Read each source (in a worker thread: drivers block); results and failures go to ``report``."""
        for source in self.usage.for_connection(self.connection):
            if self.stop is not None and self.stop.is_set():
                raise StopRequested("sync stopped on request", hint="the next run resumes from there")
            try:
                read = await asyncio.to_thread(self.sync_source, source, full=full)
            except StopRequested:
                raise
            except ConnectorError as exc:
                line = exc.one_line()
                log.warning(
                    "usage stream %s failed; the other streams are not affected: %s", source.stream, line
                )
                report.failed[source.stream] = line
                continue
            report.streams[source.stream] = StreamReport(
                source.stream, read.mode, read.stored, read.ended, read.pages
            )
            with self.engine.connect() as conn:
                matches = stored_match_report(conn, self.connection, source)
            report.usage[source.name] = {**matches.to_json(), "rows": read.rows, "line": matches.line()}

    def sync_source(self, source: UsageSource, *, full: bool = False) -> UsageReadReport:
        """One source's read; raises ``UsageSourceError``/``ConfigError`` naming the source."""
        with self.engine.connect() as conn:
            state = load_sync_state(conn, self.connection, source.stream)
        incremental = source.cursor_column is not None and state.cursor is not None and not full
        since = state.cursor if incremental else None
        started = self.clock()
        report = UsageReadReport(source.name, "incremental" if incremental else "full")
        state.full_started_at = started  # a read in progress (shown in the sync state until it ends)
        newest: datetime | None = None
        seen: set[str] = set()
        reader = SourceReader(source, self.secrets)
        for rows in self._chunks(reader, since):
            newest = self._commit_chunk(source, state, rows, started.date(), report, newest, seen)
            if self.stop is not None and self.stop.is_set():
                raise StopRequested("sync stopped on request", hint="the next run reads this source again")
        if not incremental:
            if not seen:
                # An empty export is far likelier a broken one than a customer base without usage.
                raise reader.fail(
                    f"returned no rows with a key (of {report.rows} read); the values read before are kept",
                    hint=f"check the source; column {source.key!r} holds the key",
                )
            report.ended = self._end_missing(source, state, seen, started.date())
        if source.cursor_column is not None and newest is not None:
            # As for CRM streams (sync._close_instant): once a read is complete, an instant older
            # than its start minus the skew margin cannot gain rows, so the next read starts after it.
            limit = started - self.skew
            cursor = newest + timedelta(milliseconds=1) if newest < limit else limit
            state.cursor = max(state.cursor, cursor) if incremental and state.cursor else cursor
        state.full_started_at = None
        with self.engine.begin() as conn:
            save_sync_state(conn, state, self.clock())
        return report

    def _end_missing(self, source: UsageSource, state: SyncState, seen: set[str], today: date) -> int:
        """After a complete full read: a key the source no longer returns has no value from today."""
        u = schema.usage_values
        blank = dict.fromkeys(source.metrics)
        latest: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            query = (
                sa.select(u.c.key, u.c.metrics)
                .where(u.c.connection == self.connection, u.c.source == source.name, u.c.observed_on <= today)
                .order_by(u.c.key, u.c.observed_on)
            )
            for key, metrics in conn.execution_options(yield_per=20_000).execute(query):
                if key not in seen:
                    latest[key] = metrics
        gone = [key for key, metrics in latest.items() if metrics != blank]
        if self.guard is not None:
            self.guard()
        read_at = self.clock()
        with self.engine.begin() as conn:
            _upsert_values(
                conn,
                [
                    {
                        "connection": self.connection,
                        "source": source.name,
                        "key": key,
                        "observed_on": today,
                        "metrics": blank,
                        "read_at": read_at,
                    }
                    for key in gone
                ],
            )
            state.records += len(gone)
            save_sync_state(conn, state, read_at)
        return len(gone)

    def _chunks(self, reader: SourceReader, since: datetime | None) -> Iterator[list[Row]]:
        """The reader's chunks; anything unexpected a driver raises fails this source only."""
        chunks = reader.chunks(since)
        while True:
            try:
                rows = next(chunks)
            except StopIteration:
                return
            except ConnectorError:
                raise
            except Exception as exc:  # a driver's own exception type (pyarrow, a warehouse dialect)
                raise reader.fail("reading failed", exc) from None
            yield rows

    def _commit_chunk(
        self,
        source: UsageSource,
        state: SyncState,
        rows: list[Row],
        today: date,
        report: UsageReadReport,
        newest: datetime | None,
        seen: set[str],
    ) -> datetime | None:
        parsed: dict[tuple[str, date], dict[str, Any]] = {}
        for row in rows:
            report.rows += 1
            key = source_key(row.get(source.key), source.match)
            if key is None:
                report.without_key += 1
                continue
            day = today
            if source.date_column is not None:
                found = parse_day(row.get(source.date_column))
                if found is None:
                    report.undated += 1
                    continue
                day = found
            if source.cursor_column is not None:
                stamp = parse_stamp(row.get(source.cursor_column))
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
            metrics: dict[str, Any] = {}
            for name, metric in source.metrics.items():
                raw = row.get(metric.column)
                value = parse_metric(raw)
                if value is None and raw is not None and str(raw).strip():
                    report.bad_values += 1
                metrics[name] = value
            if (key, day) in parsed:
                report.duplicates += 1
            parsed[(key, day)] = metrics
            seen.add(key)
        if self.guard is not None:
            self.guard()
        read_at = self.clock()
        with self.engine.begin() as conn:
            keys = sorted({k for k, _ in parsed})
            span = [d for _, d in parsed] or [today]
            history = _history(conn, self.connection, source.name, keys, min(span), max(span))
            changed = []
            for (key, day), metrics in sorted(parsed.items()):
                if _in_force(history.get(key), day) == metrics:
                    continue
                changed.append(
                    {
                        "connection": self.connection,
                        "source": source.name,
                        "key": key,
                        "observed_on": day,
                        "metrics": metrics,
                        "read_at": read_at,
                    }
                )
                days, values = history.setdefault(key, ([], []))
                at = bisect.bisect_right(days, day)
                if at and days[at - 1] == day:
                    values[at - 1] = metrics
                else:
                    days.insert(at, day)
                    values.insert(at, metrics)
            _upsert_values(conn, changed)
            state.records += len(changed)
            save_sync_state(conn, state, read_at)
        report.stored += len(changed)
        report.pages += 1
        if self.progress is not None:
            self.progress(source.stream, len(rows))
        return newest


__all__ = ["UsageReadReport", "UsageSourceError", "UsageSyncer"]
