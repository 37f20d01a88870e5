"""Storing marketing engagement read beside contacts, and snapshots of its lifetime counters.

A connector may put :class:`~crm_upsell_connector.models.ContactEngagement` records into the pages of
its contacts stream (HubSpot reads the engagement properties with the contacts, no extra call).
They are stored in their own table; each time a contact's lifetime counters (opens, clicks, visits)
differ from the last snapshot kept for it, a new snapshot is kept, stamped with the contact's
modification time. ``features.engagement`` derives windowed figures from those snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select

from crm_upsell_connector.models import ContactEngagement, Record
from crm_upsell_connector.store import schema

_COUNTERS = ("email_opens", "email_clicks", "site_visits")
_CHUNK = 500
#: the longest window a feature looks back (365 days) and a day of margin: older snapshots are
#: only needed as that window's baseline
KEEP_DAYS = 366


def _latest_snapshots(conn: Connection, connection: str, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """contact id -> (taken_at, opens, clicks, visits) of its newest snapshot."""
    s = schema.engagement_snapshots
    newest = (
        select(s.c.contact_id, func.max(s.c.taken_at).label("at"))
        .where(s.c.connection == connection, s.c.contact_id.in_(ids))
        .group_by(s.c.contact_id)
        .subquery()
    )
    query = (
        select(s.c.contact_id, s.c.taken_at, *(s.c[c] for c in _COUNTERS))
        .join(
            newest,
            (s.c.contact_id == newest.c.contact_id) & (s.c.taken_at == newest.c.at),
        )
        .where(s.c.connection == connection)
    )
    return {row[0]: tuple(row[1:]) for row in conn.execute(query)}


def keep_snapshots(conn: Connection, connection: str, records: Sequence[ContactEngagement]) -> int:
    """Keep a snapshot of each record whose counters changed since its newest one; how many were kept.

    A record read again unchanged (the inclusive cursor re-reads the boundary) or older than the
    newest snapshot keeps nothing. Records without any counter (CRMs that keep none) keep nothing.
    """
    from crm_upsell_connector.store.repo import upsert

    kept = 0
    counted = [r for r in records if any(getattr(r, c) is not None for c in _COUNTERS)]
    for start in range(0, len(counted), _CHUNK):
        chunk = counted[start : start + _CHUNK]
        latest = _latest_snapshots(conn, connection, [r.id for r in chunk])
        rows: list[dict[str, Any]] = []
        for record in chunk:
            values = tuple(getattr(record, c) for c in _COUNTERS)
            seen = latest.get(record.id)
            if seen is not None and (seen[0] >= record.updated_at or tuple(seen[1:]) == values):
                continue
            rows.append(
                {"connection": connection, "contact_id": record.id, "taken_at": record.updated_at}
                | dict(zip(_COUNTERS, values, strict=True))
            )
        upsert(conn, schema.engagement_snapshots, rows)
        kept += len(rows)
        if rows:
            prune_snapshots(conn, connection, [r["contact_id"] for r in rows])
    return kept


def prune_snapshots(
    conn: Connection, connection: str, contact_ids: Sequence[str], now: datetime | None = None
) -> int:
    """Drop the contacts' snapshots that no window can need: of those older than ``KEEP_DAYS``,
    only the newest stays (the baseline of the longest window). Returns how many went."""
    s = schema.engagement_snapshots
    cutoff = (now or datetime.now(UTC)) - timedelta(days=KEEP_DAYS)
    newest_old = (
        select(s.c.contact_id, func.max(s.c.taken_at).label("at"))
        .where(s.c.connection == connection, s.c.contact_id.in_(contact_ids), s.c.taken_at <= cutoff)
        .group_by(s.c.contact_id)
    )
    removed = 0
    for contact_id, at in conn.execute(newest_old).all():
        result = conn.execute(
            delete(s).where(
                and_(s.c.connection == connection, s.c.contact_id == contact_id, s.c.taken_at < at)
            )
        )
        removed += result.rowcount or 0
    return removed


def store_companions(conn: Connection, connection: str, records: Sequence[Record]) -> None:
    """Store records of other canonical streams that came in a page (engagement beside contacts)."""
    from crm_upsell_connector.store.repo import record_row, upsert

    by_table: dict[str, dict[str, Record]] = {}
    for record in records:
        newest = by_table.setdefault(type(record).stream.value, {})
        seen = newest.get(record.id)
        if seen is None or record.updated_at >= seen.updated_at:
            newest[record.id] = record
    for name, newest in by_table.items():
        upsert(conn, schema.STREAM_TABLES[name], [record_row(connection, r) for r in newest.values()])
        engagement = [r for r in newest.values() if isinstance(r, ContactEngagement)]
        if engagement:
            keep_snapshots(conn, connection, engagement)
