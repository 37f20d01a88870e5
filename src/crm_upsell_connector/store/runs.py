"""The runs table: one row per command that talks to a CRM, with its outcome and summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from crm_upsell_connector.store.schema import runs


def start_run(engine: Engine, connection: str, command: str, summary: dict[str, Any] | None = None) -> int:
    """A new run, ``running``; ``summary`` holds what is known at the start (who runs it, why)."""
    with engine.begin() as conn:
        result = conn.execute(
            insert(runs).values(
                connection=connection,
                command=command,
                started_at=datetime.now(UTC),
                status="running",
                summary=summary or {},
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish_run(engine: Engine, run_id: int, status: str, summary: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(finished_at=datetime.now(UTC), status=status, summary=summary)
        )


def close_abandoned_runs(engine: Engine, connection: str) -> int:
    """Mark runs still 'running' as 'interrupted'; call only while holding the connection's RunLock.

    Holding the lock proves that no other run of the connection is alive, so such rows belong to a
    process or host that died mid-run. Their summaries are kept.
    """
    with engine.begin() as conn:
        result = conn.execute(
            update(runs)
            .where(runs.c.connection == connection, runs.c.status == "running")
            .values(finished_at=datetime.now(UTC), status="interrupted")
        )
        return result.rowcount or 0


@dataclass(frozen=True)
class RunRecord:
    """One row of the runs table as ``crm-upsell runs`` and the report show it."""

    id: int
    connection: str
    command: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    summary: dict[str, Any]

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def run_history(
    conn: Connection,
    connection: str,
    *,
    commands: Sequence[str] | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> list[RunRecord]:
    """The connection's runs (of ``commands`` only, started at or after ``since``), newest first.

    The one reading of the run history: ``crm-upsell runs`` and ``crm-upsell report`` both use it.
    """
    query = select(runs).where(runs.c.connection == connection)
    if commands is not None:
        query = query.where(runs.c.command.in_(list(commands)))
    if since is not None:
        query = query.where(runs.c.started_at >= since)
    order = (runs.c.started_at.desc(), runs.c.id.desc()) if newest_first else (runs.c.started_at, runs.c.id)
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    return [
        RunRecord(
            id=row.id,
            connection=row.connection,
            command=row.command,
            started_at=row.started_at,
            finished_at=row.finished_at,
            status=row.status,
            summary=dict(row.summary or {}),
        )
        for row in conn.execute(query)
    ]
