"""The procrastinate app of a PostgreSQL store: its connector, the run task's name, queue and locks.

procrastinate (https://procrastinate.readthedocs.io) keeps its jobs in tables of the store's own
database (``procrastinate_jobs``, ``procrastinate_workers``, ``procrastinate_periodic_defers``,
``procrastinate_events``), installed and upgraded by the store's migrations (migration
``i19_procrastinate``). No broker is added.

Every run of a connection is a job of the task ``RUN_TASK`` with ``lock`` and ``queueing_lock``
both set to ``connection_lock(name)``: procrastinate never starts two jobs with the same lock at
once (so a late tick waits for the run in progress), and never keeps more than one job with the
same queueing lock waiting (so ticks never pile up behind a slow run). The run itself also holds
the connection's ``RunLock`` (store/lock.py), the lock manual runs take too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import procrastinate
from sqlalchemy.engine import make_url

RUN_TASK = "crm_upsell.run_connection"
QUEUE = "crm_upsell"
#: Ticks missed while no worker ran are run once on start if the latest is at most this old
#: (procrastinate's periodic ``max_delay``); older ones are skipped until the next tick.
CATCH_UP_S = 6 * 3600


def connection_lock(name: str) -> str:
    """The procrastinate ``lock`` and ``queueing_lock`` of connection ``name``'s run jobs."""
    return f"crm-upsell:{name}"


def conninfo(store_url: str) -> str:
    """The libpq connection string of a ``postgresql+psycopg://`` store URL (for psycopg's pool)."""
    return make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(store_url: str, *, pool_size: int = 4) -> procrastinate.App:
    """An app on the store's database; open it (``async with app.open_async()``) before use.

    ``pool_size`` caps the connections procrastinate itself holds (fetching jobs, heartbeats, the
    LISTEN connection that wakes workers when a job is deferred).
    """
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(store_url), min_size=1, max_size=max(2, pool_size)
    )
    return procrastinate.App(connector=connector, periodic_defaults={"max_delay": CATCH_UP_S})


def run_job_kwargs(name: str, tick: datetime, **more: Any) -> dict[str, Any]:
    """A run job's arguments: the connection and the tick it serves (whole seconds since the epoch).

    ``timestamp`` is the argument procrastinate gives periodic jobs; manual ``run --queue`` jobs use
    the time they were queued.
    """
    return {"connection": name, "timestamp": int(tick.astimezone(UTC).timestamp()), **more}
