"""The runs table: one row per command that talks to a CRM, with its outcome and summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, update

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
