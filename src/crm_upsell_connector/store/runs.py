"""The runs table: one row per command that talks to a CRM, with its outcome and summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update

from crm_upsell_connector.store.schema import runs


def start_run(
    engine: Engine,
    connection: str,
    command: str,
    summary: dict[str, Any] | None = None,
    *,
    trigger: str = "manual",
    parent_id: int | None = None,
) -> int:
    """A new run, ``running``; ``summary`` holds what is known at the start (who runs it, why).

    ``trigger`` says how it was started: ``manual`` (a command), ``schedule`` (a worker's regular
    tick) or ``worker`` (a worker's retry after a failed run); ``parent_id`` is the pipeline run a
    step (sync, apply) belongs to.
    """
    with engine.begin() as conn:
        result = conn.execute(
            insert(runs).values(
                connection=connection,
                command=command,
                trigger=trigger,
                parent_id=parent_id,
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
    """One row of the run history, as ``crm-upsell runs`` and the HTML report show it.

    ``summary`` is what the run recorded: for pipeline runs ``records`` and ``streams`` (records per
    stream), ``calls``, ``updated``, ``tasks_created``, ``failures`` (kind, ref, reason), ``error``,
    ``guard`` (why the mass-change guard held it), and who ran it (``host``, ``pid``).
    """

    id: int
    connection: str
    command: str
    trigger: str | None  # manual, schedule, worker
    parent_id: int | None  # the pipeline run this step belongs to
    status: str
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any]

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "connection": self.connection,
            "command": self.command,
            "trigger": self.trigger,
            "parent_id": self.parent_id,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_s": self.duration_s,
            "summary": self.summary,
        }


def _record(row: Row[Any]) -> RunRecord:
    summary: dict[str, Any] = dict(row.summary or {})
    trigger = row.trigger or summary.get("trigger")
    return RunRecord(
        id=row.id,
        connection=row.connection,
        command=row.command,
        trigger="manual" if trigger == "cli" else trigger,
        parent_id=row.parent_id,
        status=row.status,
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at) if row.finished_at is not None else None,
        summary=summary,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def list_runs(
    engine: Engine,
    connection: str | None = None,
    *,
    limit: int = 20,
    commands: Sequence[str] | None = None,
    since: datetime | None = None,
    steps: bool = False,
    parent_id: int | None = None,
) -> list[RunRecord]:
    """The newest runs first: of ``connection`` (all when None), of ``commands`` (all when None),
    started at or after ``since``; at most ``limit`` (no limit when 0). The sync and apply steps
    of a pipeline run are left out unless ``steps``; ``parent_id`` lists the steps of one run."""
    with engine.connect() as conn:
        return run_history(
            conn,
            connection,
            commands=commands,
            since=since,
            limit=limit or None,
            steps=steps,
            parent_id=parent_id,
        )


def run_history(
    conn: Connection,
    connection: str | None,
    *,
    commands: Sequence[str] | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    newest_first: bool = True,
    steps: bool | None = None,
    parent_id: int | None = None,
) -> list[RunRecord]:
    """The one reading of the run history: ``crm-upsell runs`` and ``crm-upsell report`` both use it.

    Runs of ``connection`` (all when None), of ``commands`` (all when None), started at or after
    ``since``, newest first unless ``newest_first`` is False, at most ``limit``. The sync and apply
    steps of a pipeline run are included when ``steps`` (by default: when ``commands`` names
    them); ``parent_id`` lists the steps of one run.
    """
    query = select(runs)
    if parent_id is not None:
        query = query.where(runs.c.parent_id == parent_id)
    elif not (steps if steps is not None else commands is not None):
        query = query.where(runs.c.parent_id.is_(None))
    if connection is not None:
        query = query.where(runs.c.connection == connection)
    if commands is not None:
        query = query.where(runs.c.command.in_(list(commands)))
    if since is not None:
        query = query.where(runs.c.started_at >= since)
    query = query.order_by(runs.c.id.desc() if newest_first else runs.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [_record(row) for row in conn.execute(query)]


def get_run(engine: Engine, run_id: int) -> RunRecord | None:
    """One run by its id, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    return _record(row) if row is not None else None
