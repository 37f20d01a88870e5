"""What operators do with the job queue of a PostgreSQL store: queue a run now, see the jobs.

``queue_run`` is ``crm-upsell run --queue``: a run job deferred to the workers with the connection's
locks, so it never overlaps a run of the same connection (scheduled or manual). ``list_jobs`` and
``next_runs`` feed ``crm-upsell status``; they read procrastinate's tables with plain SQL.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from procrastinate import exceptions as pexc
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from crm_upsell_connector.config import Config
from crm_upsell_connector.errors import BusyError, ConfigError
from crm_upsell_connector.jobs.app import QUEUE, RUN_TASK, connection_lock, make_app, run_job_kwargs
from crm_upsell_connector.store.engine import open_store

#: Failed jobs stay listed by ``status`` this long after they failed.
FAILED_SHOWN = timedelta(days=1)


@dataclass
class JobStatus:
    """A run job as ``status`` shows it; ``state`` is ``queued``, ``running`` or ``failed``.

    ``attempts`` counts the tries finished (procrastinate's count): 0 for a run never tried yet,
    1 for a job that failed on its first try.
    """

    id: int
    connection: str
    state: str
    tick: datetime | None
    attempts: int
    since: datetime | None
    queued_by: str | None


def uses_queue(config: Config) -> bool:
    """True when the store is PostgreSQL, whose workers share procrastinate's job queue."""
    return make_url(config.store.url).get_backend_name() == "postgresql"


def queue_run(config: Config, name: str) -> int:
    """Defer a run of ``name`` to the workers now; its job id.

    Raises ConfigError on a SQLite store and BusyError when a run of ``name`` already waits.
    """
    if not uses_queue(config):
        raise ConfigError(
            "run --queue needs a PostgreSQL store: a SQLite store has no job queue",
            hint="run without --queue, or set [store] url to a PostgreSQL database",
        )
    open_store(config.store.url).dispose()  # migrated: procrastinate's tables exist
    by = f"{getpass.getuser()}@{socket.gethostname()}"
    app = make_app(config.store.url, pool_size=2)

    async def defer() -> int:
        async with app.open_async():
            deferrer = app.configure_task(
                RUN_TASK,
                queue=QUEUE,
                lock=connection_lock(name),
                queueing_lock=connection_lock(name),
                task_kwargs=run_job_kwargs(name, datetime.now(UTC), queued_by=by),
            )
            return await deferrer.defer_async()

    try:
        return asyncio.run(defer())
    except pexc.AlreadyEnqueued:
        raise BusyError(
            f"a run of connection '{name}' is already waiting in the queue",
            hint="it starts as soon as a worker is free and no other run of it is going; "
            "'crm-upsell status' lists the jobs",
        ) from None


def list_jobs(conn: Connection, names: list[str] | None, now: datetime) -> list[JobStatus]:
    """Run jobs queued or running, and those failed within ``FAILED_SHOWN``, oldest first."""
    rows = conn.execute(
        text(
            """
            SELECT j.id, j.status, j.args, j.attempts,
                   (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id) AS since
              FROM procrastinate_jobs j
             WHERE j.task_name = :task
               AND (j.status IN ('todo', 'doing')
                    OR (j.status = 'failed' AND EXISTS (
                        SELECT 1 FROM procrastinate_events e
                         WHERE e.job_id = j.id AND e.type = 'failed' AND e.at >= :shown)))
             ORDER BY j.id
            """
        ),
        {"task": RUN_TASK, "shown": now - FAILED_SHOWN},
    )
    states = {"todo": "queued", "doing": "running", "failed": "failed"}
    jobs: list[JobStatus] = []
    for row in rows:
        args = dict(row.args or {})
        connection = str(args.get("connection", "?"))
        if names is not None and connection not in names:
            continue
        stamp = args.get("timestamp")
        jobs.append(
            JobStatus(
                int(row.id),
                connection,
                states[str(row.status)],
                datetime.fromtimestamp(int(stamp), UTC) if isinstance(stamp, int) else None,
                int(row.attempts),
                row.since,
                args.get("queued_by"),
            )
        )
    return jobs


def next_runs(conn: Connection, config: Config, jobs: list[JobStatus]) -> dict[str, datetime]:
    """Per scheduled connection, its next run: the tick of its queued job, else the tick after the
    last one a worker deferred. A connection no worker has deferred yet has none.

    Read with the connection's own trigger, so a next run long past means no worker defers it.
    """
    waiting = {j.connection: j.tick for j in jobs if j.state == "queued" and j.tick is not None}
    deferred = {
        str(row.periodic_id): int(row.defer_timestamp)
        for row in conn.execute(
            text(
                "SELECT periodic_id, max(defer_timestamp) AS defer_timestamp "
                "FROM procrastinate_periodic_defers WHERE task_name = :task GROUP BY periodic_id"
            ),
            {"task": RUN_TASK},
        )
    }
    result: dict[str, datetime] = {}
    for name, connection in config.connections.items():
        schedule = connection.schedule
        if schedule is None or not schedule.enabled:
            continue
        if name in waiting:
            result[name] = waiting[name]
        elif name in deferred:
            after = datetime.fromtimestamp(deferred[name], UTC) + timedelta(microseconds=1)
            fire = schedule.trigger().get_next_fire_time(None, after)
            if fire is not None:
                result[name] = fire.astimezone(UTC)
    return result
