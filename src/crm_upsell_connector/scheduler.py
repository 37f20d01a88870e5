"""``crm-upsell schedule`` on a SQLite store: one in-process worker running each connection's schedule.

APScheduler (3.x) fires the jobs; its job store is the ``scheduler_jobs`` table of the store, so
fire times survive restarts and runs missed while the worker was down are coalesced into one run on
start. A SQLite store has one worker: a second ``schedule`` on the same store is refused (a file lock
beside the database), since SQLite is for one host. PostgreSQL stores run any number of workers on
procrastinate instead (``crm_upsell_connector.jobs``); ``run_worker`` picks the right one.

- each run holds the connection's ``RunLock``, so a manual run and a scheduled run never overlap;
- a failed run is tried again after a backoff (``[scheduler] retries``), never past the next tick;
  errors another try will not fix (config, credentials, quota, a fatal API error) are not retried;
- SIGTERM or SIGINT stops every run after its current page (or write batch) is committed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from crm_upsell_connector.config import Config
from crm_upsell_connector.connector import ConnectorPlugin, load_plugins
from crm_upsell_connector.errors import BusyError, ConfigError
from crm_upsell_connector.jobs.run import attempt_run
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.workers import new_worker_id, record_alive, record_stopped

log = logging.getLogger(__name__)

JOBS_TABLE = "scheduler_jobs"
JOB_PREFIX = "run:"
JOB_FUNC = "crm_upsell_connector.scheduler:scheduled_run"

_current: Worker | None = None


def scheduled_run(connection: str, *, tick: datetime | None = None) -> None:
    """The job APScheduler calls (by this textual reference, which its job store keeps)."""
    worker = _current
    if worker is None or tick is None:
        log.warning("a scheduled run fired outside a worker; ignored", extra={"connection": connection})
        return
    worker.run_connection(connection, tick)


class _Firing:
    """A job as APScheduler's ``run_job`` uses it, with the tick added to the function's arguments.

    ``run_job`` reads only these attributes; the tick goes into the run's summary.
    """

    def __init__(self, job: Job, tick: datetime) -> None:
        self._job = job
        self.id = job.id
        self.name = job.name
        self.func = job.func
        self.args = job.args
        self.kwargs = {**job.kwargs, "tick": tick}
        self.misfire_grace_time = job.misfire_grace_time
        self._jobstore_alias = job._jobstore_alias

    def __str__(self) -> str:
        return str(self._job)


class TickExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """APScheduler's thread pool executor, telling each run which scheduled time it serves."""

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        super()._do_submit_job(_Firing(job, run_times[-1]), run_times)


class Worker:
    """The ``crm-upsell schedule`` process of a SQLite store: a BackgroundScheduler on its job store."""

    def __init__(
        self,
        config: Config,
        *,
        engine: Engine | None = None,
        plugins: dict[str, ConnectorPlugin] | None = None,
        secrets: SecretResolver | None = None,
    ) -> None:
        self.config = config
        self.names = sorted(n for n, c in config.connections.items() if c.schedule and c.schedule.enabled)
        if not self.names:
            raise ConfigError(
                f"{config.source}: no connection has a schedule",
                hint="add [connections.NAME.schedule] with every = '15m' or cron = '*/15 * * * *'",
            )
        self.plugins = plugins if plugins is not None else load_plugins()
        self.secrets = secrets or SecretResolver()
        # Each run in progress holds a connection for its lock and uses another to write.
        pool = 2 * config.scheduler.threads + 2
        self.engine = engine if engine is not None else open_store(config.store.url, pool_size=pool)
        self._single: IO[str] | None = None
        for name in self.names:
            # Wrong settings or a missing connector fail now, not at the first tick.
            Session.open(
                config, name, plugins=self.plugins, engine=self.engine, secrets=self.secrets
            ).settings()
        started = datetime.now(UTC)
        self.id = new_worker_id(started)
        self.started_at = started
        self.stop = threading.Event()
        settings = config.scheduler
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.engine, tablename=JOBS_TABLE)},
            executors={"default": TickExecutor(max_workers=settings.threads)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )

    # ---- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        global _current
        self._single = _only_worker(self.engine)
        _current = self
        self.scheduler.start(paused=True)
        self._sync_jobs()
        self.heartbeat()
        self.scheduler.resume()
        log.info("worker started", extra={"worker": self.id, "connections": self.names})

    def shutdown(self) -> None:
        """Stop every run at its next checkpoint, wait for them, and leave the job store as it is."""
        global _current
        self.stop.set()
        log.info("stopping: runs in progress finish their current page first", extra={"worker": self.id})
        self.scheduler.shutdown(wait=True)
        record_stopped(self.engine, self.id)
        _current = None
        if self._single is not None:
            self._single.close()
            self._single = None
        log.info("worker stopped", extra={"worker": self.id})

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT; a second signal exits at once (the store stays consistent)."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if self.stop.is_set():
                log.warning("second signal: exiting now; the next run resumes from the last checkpoint")
                os._exit(128 + signum)
            log.info("received %s", signal.Signals(signum).name)
            self.stop.set()

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            self.start()
            while not self.stop.wait(self.config.scheduler.heartbeat_s):
                self.heartbeat()
        finally:
            if self.scheduler.running:
                self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _sync_jobs(self) -> None:
        """Make the job store hold one job per scheduled connection, keeping unchanged jobs as they are.

        A kept job keeps its next fire time, so a tick missed while every worker was down fires once
        (coalesced) on start. Jobs of connections no longer scheduled are removed: the workers sharing
        a store are meant to run the same config.
        """
        wanted = {JOB_PREFIX + name: name for name in self.names}
        for job in self.scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
                job.remove()
                log.info("removed the schedule of a connection no longer scheduled", extra={"job": job.id})
        for job_id, name in wanted.items():
            schedule = self.config.connections[name].schedule
            assert schedule is not None
            trigger = schedule.trigger()
            existing = self.scheduler.get_job(job_id)
            if existing is not None and repr(existing.trigger) == repr(trigger):
                log.info(
                    "schedule kept",
                    extra={
                        "connection": name,
                        "schedule": schedule.describe(),
                        "next_run": existing.next_run_time,
                    },
                )
                continue
            job = self.scheduler.add_job(
                JOB_FUNC,
                trigger,
                args=[name],
                id=job_id,
                name=f"run {name}",
                replace_existing=True,
            )
            log.info(
                "schedule set",
                extra={"connection": name, "schedule": schedule.describe(), "next_run": job.next_run_time},
            )

    def heartbeat(self) -> None:
        """Record that this worker is alive (``status`` shows it)."""
        record_alive(self.engine, self.id, self.started_at, self.names)

    # ---- one tick of one connection ---------------------------------------------------------------

    def next_tick(self, name: str) -> datetime | None:
        """The connection's next regular run after now, from its trigger.

        Computed, not read from APScheduler, whose shutdown holds the job store lock while it waits
        for the run threads: a run thread asking the scheduler then would never finish.
        """
        schedule = self.config.connections[name].schedule
        if schedule is None:
            return None
        fire: datetime | None = schedule.trigger().get_next_fire_time(None, datetime.now(UTC))
        return fire

    def run_connection(self, name: str, tick: datetime) -> None:
        """Run the pipeline for ``tick``, retrying after failures as configured."""
        extra = {"connection": name, "tick": tick.isoformat()}
        settings = self.config.scheduler
        attempt = 0
        while not self.stop.is_set():
            attempt += 1
            done = attempt_run(
                self.config,
                name,
                engine=self.engine,
                plugins=self.plugins,
                secrets=self.secrets,
                stop=self.stop,
                details={"tick": tick.isoformat(), "attempt": attempt, "worker": self.id},
                # A retry after a failed run is recorded as started by the worker, not the schedule.
                trigger="schedule" if attempt == 1 else "worker",
            )
            if done.outcome != "retry" or self.stop.is_set():
                return
            if attempt > settings.retries:
                log.error("giving up until the next regular run", extra={**extra, "attempts": attempt})
                return
            delay = settings.backoff_s(attempt)
            upcoming = self.next_tick(name)
            if upcoming is not None and datetime.now(UTC) + timedelta(seconds=delay) >= upcoming:
                log.warning(
                    "not retrying: the next regular run comes first", extra={**extra, "next_run": upcoming}
                )
                return
            log.warning("retrying after a failed run", extra={**extra, "in_s": delay, "attempt": attempt + 1})
            if self.stop.wait(delay):
                return


def _only_worker(engine: Engine) -> IO[str]:
    """A file lock beside the SQLite database held while the worker runs: one worker per store."""
    database = engine.url.database or "store"
    path = Path(f"{database}.scheduler.lock")
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BusyError(
            f"another 'crm-upsell schedule' is already running on the SQLite store {database}",
            hint="a SQLite store has one worker; for several workers use a PostgreSQL store ([store] url)",
        ) from None
    return handle


def run_worker(config: Config, *, on_start: Callable[[Worker], None] | None = None) -> None:
    """``crm-upsell schedule``: one worker until SIGTERM/SIGINT (procrastinate on PostgreSQL)."""
    if make_url(config.store.url).get_backend_name() == "postgresql":
        from crm_upsell_connector.jobs.worker import run_queue_worker

        run_queue_worker(config)
        return
    worker = Worker(config)
    if on_start is not None:
        on_start(worker)
    worker.run_forever()
