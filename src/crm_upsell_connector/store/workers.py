"""The ``workers`` table: which ``crm-upsell schedule`` processes are alive, for ``crm-upsell status``.

Informational only: nothing coordinates through it (procrastinate's own ``procrastinate_workers``
heartbeats decide, on PostgreSQL, when a silent worker's run is taken over).
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import SQLAlchemyError

from crm_upsell_connector.store.schema import workers

log = logging.getLogger(__name__)

#: Workers stopped, or silent (killed) for this long, are forgotten.
WORKER_RETENTION = timedelta(days=7)


def new_worker_id(started: datetime) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{started:%Y%m%dT%H%M%S}"


def record_alive(engine: Engine, worker_id: str, started_at: datetime, connections: list[str]) -> None:
    """Record that the worker is alive now; a database error is logged, never raised."""
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            updated = conn.execute(
                update(workers).where(workers.c.id == worker_id).values(seen_at=now)
            ).rowcount
            if not updated:
                conn.execute(
                    insert(workers).values(
                        id=worker_id,
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        started_at=started_at,
                        seen_at=now,
                        connections=connections,
                    )
                )
            conn.execute(delete(workers).where(workers.c.seen_at < now - WORKER_RETENTION))
    except SQLAlchemyError as exc:
        log.warning("heartbeat not recorded: %s", type(exc).__name__)


def record_stopped(engine: Engine, worker_id: str) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(
                update(workers).where(workers.c.id == worker_id).values(stopped_at=datetime.now(UTC))
            )
    except SQLAlchemyError as exc:
        log.warning("could not record the worker's stop: %s", type(exc).__name__)
