"""Records merged in the CRM: the survivor takes over the merged-away records' history in the store.

When a CRM merges two records, the merged-away one stops existing (HubSpot lists the old ids in the
survivor's ``hs_merged_object_ids``; Salesforce leaves a deleted row with ``MasterRecordId``; Zoho
deletes the merged record). Connectors report the old ids as ``Page.deleted_ids`` and put them in
the survivor's ``extra["merged_ids"]``. Before the old rows are deleted, what pointed at them
(contacts, deals, activities, line items, task keys) is re-pointed to the survivor, so the survivor's
features include both records' history. Re-pointing is idempotent: a merge seen again moves nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa

from crm_upsell_connector.models import Record, Stream
from crm_upsell_connector.store import schema

log = logging.getLogger(__name__)

# stream -> (table, column) pairs whose values are ids of that stream
_REFERENCES: dict[Stream, tuple[tuple[sa.Table, str], ...]] = {
    Stream.ACCOUNTS: (
        (schema.contacts, "account_id"),
        (schema.deals, "account_id"),
        (schema.activities, "account_id"),
        (schema.task_keys, "account_id"),
    ),
    Stream.CONTACTS: ((schema.activities, "contact_id"),),
    Stream.DEALS: ((schema.line_items, "deal_id"),),
}


def merged_into(records: Iterable[Record]) -> dict[str, str]:
    """merged-away id -> survivor id, from the survivors' ``extra["merged_ids"]``."""
    moves: dict[str, str] = {}
    for record in records:
        for old in record.extra.get("merged_ids") or ():
            old_id = str(old)
            if old_id and old_id != record.id:
                moves[old_id] = record.id
    return moves


def fold_merges(conn: sa.Connection, connection: str, stream: Stream, records: Iterable[Record]) -> int:
    """Re-point references from merged-away ids to their survivors and delete the merged-away rows.

    Returns how many references moved. Writes still queued for a merged-away account are superseded
    (never sent to an id the CRM no longer has); the survivor gets its own from the next plan.
    """
    moves = merged_into(records)
    if not moves:
        return 0
    moved = 0
    outbox = schema.outbox
    if stream is Stream.ACCOUNTS:
        conn.execute(
            sa.update(outbox)
            .where(
                outbox.c.connection == connection,
                outbox.c.account_id.in_(list(moves)),
                outbox.c.status.in_(("pending", "failed")),
            )
            .values(status="superseded", error="the account was merged into another one")
        )
    for table, column in _REFERENCES.get(stream, ()):
        col = table.c[column]
        for old, survivor in moves.items():
            result = conn.execute(
                sa.update(table)
                .where(table.c.connection == connection, col == old)
                .values({column: survivor})
            )
            moved += result.rowcount or 0
    own = schema.STREAM_TABLES[stream.value]
    conn.execute(sa.delete(own).where(own.c.connection == connection, own.c.id.in_(list(moves))))
    log.info(
        "%d %s merged into others: %d reference(s) moved to the survivors", len(moves), stream.value, moved
    )
    return moved
