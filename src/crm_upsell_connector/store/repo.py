"""Reads and writes of synced records and sync state: idempotent upserts keyed by CRM id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from crm_upsell_connector.models import ContactEngagement, Record, Stream
from crm_upsell_connector.store.schema import STREAM_TABLES, sync_state

# SQLite allows 32766 bound parameters per statement; stay well below for wide tables.
_MAX_ROWS_PER_STATEMENT = 500


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update ``rows`` by the table's primary key, in one or a few statements."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    dialect = conn.dialect.name
    for start in range(0, len(rows), _MAX_ROWS_PER_STATEMENT):
        chunk = rows[start : start + _MAX_ROWS_PER_STATEMENT]
        if dialect == "postgresql":
            pg = postgresql.insert(table).values(chunk)
            update = {c: pg.excluded[c] for c in chunk[0] if c not in keys}
            conn.execute(
                pg.on_conflict_do_update(index_elements=keys, set_=update)
                if update
                else pg.on_conflict_do_nothing()
            )
        else:
            lite = sqlite.insert(table).values(chunk)
            update = {c: lite.excluded[c] for c in chunk[0] if c not in keys}
            conn.execute(
                lite.on_conflict_do_update(index_elements=keys, set_=update)
                if update
                else lite.on_conflict_do_nothing()
            )


def record_row(connection: str, record: Record) -> dict[str, Any]:
    row = record.model_dump(mode="python")
    row["connection"] = connection
    if "kind" in row:
        row["kind"] = str(row["kind"])
    return row


def upsert_records(conn: Connection, connection: str, stream: Stream, records: Iterable[Record]) -> int:
    """Store records of one canonical stream; a record seen twice keeps its newest version.

    Records of other streams in the same page (engagement read with contacts) are stored by
    ``store.engagement.store_companions`` and not counted.
    """
    from crm_upsell_connector.store.engagement import keep_snapshots, store_companions

    records = list(records)
    others = [r for r in records if type(r).stream is not stream]
    if others:
        store_companions(conn, connection, others)
        records = [r for r in records if type(r).stream is stream]
    newest: dict[str, Record] = {}
    for record in records:
        seen = newest.get(record.id)
        if seen is None or record.updated_at >= seen.updated_at:
            newest[record.id] = record
    upsert(conn, STREAM_TABLES[stream.value], [record_row(connection, r) for r in newest.values()])
    if stream is Stream.CONTACT_ENGAGEMENT:
        keep_snapshots(conn, connection, [r for r in newest.values() if isinstance(r, ContactEngagement)])
    return len(newest)


def delete_records(conn: Connection, connection: str, stream: Stream, ids: Sequence[str]) -> int:
    table = STREAM_TABLES[stream.value]
    removed = 0
    for start in range(0, len(ids), _MAX_ROWS_PER_STATEMENT):
        chunk = list(ids[start : start + _MAX_ROWS_PER_STATEMENT])
        result = conn.execute(delete(table).where(table.c.connection == connection, table.c.id.in_(chunk)))
        removed += result.rowcount or 0
    return removed


def reconcile_present(
    conn: Connection, connection: str, stream: Stream, prefix: str, present: Iterable[str]
) -> int:
    """Delete stored records of ``stream`` whose id starts with ``prefix`` and is not in ``present``
    (every id the CRM still has with that prefix). Ids compare as exact, case-sensitive strings."""
    table = STREAM_TABLES[stream.value]
    keep = set(present)
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(
        select(table.c.id).where(table.c.connection == connection, table.c.id.like(pattern, escape="\\"))
    )
    gone = [row.id for row in rows if row.id.startswith(prefix) and row.id not in keep]
    return delete_records(conn, connection, stream, gone) if gone else 0


@dataclass
class SyncState:
    connection: str
    stream: str
    cursor: datetime | None = None
    resume: str | None = None
    boundary_ids: list[str] = field(default_factory=list)
    full_started_at: datetime | None = None
    deleted_checked_at: datetime | None = None
    records: int = 0


def load_sync_state(conn: Connection, connection: str, stream: str) -> SyncState:
    row = (
        conn.execute(
            select(sync_state).where(sync_state.c.connection == connection, sync_state.c.stream == stream)
        )
        .mappings()
        .first()
    )
    if row is None:
        return SyncState(connection, stream)
    return SyncState(
        connection,
        stream,
        cursor=row["cursor"],
        resume=row["resume"],
        boundary_ids=list(row["boundary_ids"] or []),
        full_started_at=row["full_started_at"],
        deleted_checked_at=row["deleted_checked_at"],
        records=row["records"],
    )


def save_sync_state(conn: Connection, state: SyncState, now: datetime) -> None:
    upsert(
        conn,
        sync_state,
        [
            {
                "connection": state.connection,
                "stream": state.stream,
                "cursor": state.cursor,
                "resume": state.resume,
                "boundary_ids": state.boundary_ids,
                "full_started_at": state.full_started_at,
                "deleted_checked_at": state.deleted_checked_at,
                "records": state.records,
                "updated_at": now,
            }
        ],
    )


def all_sync_states(conn: Connection, connection: str) -> list[SyncState]:
    rows = conn.execute(select(sync_state.c.stream).where(sync_state.c.connection == connection)).scalars()
    return [load_sync_state(conn, connection, stream) for stream in rows]
