"""``crm-upsell schedule``: run each connection's pipeline on its schedule, on one or many workers.

APScheduler (3.x) fires the jobs; its job store is the ``scheduler_jobs`` table of the product's
database, so fire times survive restarts and runs missed while no worker was up are coalesced into
one run on start. Several workers (processes or hosts) may share one store, PostgreSQL for hosts:

- every worker schedules the same jobs and may see the same tick fire; each tick is claimed by
  inserting ``(connection, tick)`` into ``schedule_ticks``, whose primary key lets exactly one
  worker win it;
- the winner runs under the connection's ``RunLock`` (a PostgreSQL session advisory lock, a file
  lock on SQLite), so two runs of one connection never overlap, whoever started them; the lock
  dies with its holder's database session, so when a worker dies mid-run the next tick, claimed by
  a live worker, takes the connection over and resumes from the committed pages and the outbox;
- a failed run is tried again after a backoff (``[scheduler] retries``), never past the next tick;
- SIGTERM or SIGINT stops every run after its current page (or write batch) is committed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from crm_upsell_connector.apply import ApplyReport
from crm_upsell_connector.config import Config
from crm_upsell_connector.connector import ConnectorPlugin, load_plugins
from crm_upsell_connector.errors import (
    AuthError,
    BusyError,
    ConfigError,
    ConnectorError,
    FatalAPIError,
    MassChangeError,
    QuotaError,
    StopRequested,
)
from crm_upsell_connector.pipeline import PipelineReport, Session
from crm_upsell_connector.plan import Plan
from crm_upsell_connector.report.session import write_configured_report
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.schema import schedule_ticks, workers
from crm_upsell_connector.sync import Progress, SyncReport

log = logging.getLogger(__name__)

JOBS_TABLE = "scheduler_jobs"
JOB_PREFIX = "run:"
JOB_FUNC = "crm_upsell_connector.scheduler:scheduled_run"
# Claimed ticks older than this are pruned by the heartbeat.
TICK_RETENTION = timedelta(days=30)
WORKER_RETENTION = timedelta(days=7)
# Errors another try will not fix: the run waits for a person, or for the next tick (quota).
# A run held by the mass-change guard waits for a person: retrying would only hold it again.
_NOT_RETRIED = (ConfigError, AuthError, QuotaError, FatalAPIError, MassChangeError)

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

    ``run_job`` reads only these attributes; the tick is what makes a firing claimable.
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


class LogView:
    """Reports a scheduled run's steps as log records with structured fields."""

    def __init__(self, connection: str) -> None:
        self.extra = {"connection": connection}

    def progress(self, label: str) -> AbstractContextManager[Progress]:
        return nullcontext(lambda _what, _n: None)

    def synced(self, report: SyncReport) -> None:
        log.info(
            "synced",
            extra={
                **self.extra,
                "records": report.records,
                "deleted": report.deleted,
                "failed_streams": report.failed,
            },
        )
        if report.failed:
            log.warning(
                "nothing written to the CRM this run because a stream failed to sync", extra=self.extra
            )

    def scored(self, recs: list[Recommendation]) -> None:
        proposals = sum(1 for r in recs if r.proposal is not None)
        log.info("scored", extra={**self.extra, "accounts": len(recs), "proposals": proposals})

    def planned(self, plan: Plan) -> None:
        log.info("planned", extra={**self.extra, "updates": len(plan.changes), "tasks": len(plan.tasks)})

    def applied(self, report: ApplyReport) -> None:
        log.info(
            "applied",
            extra={
                **self.extra,
                "updated": report.updated,
                "tasks_created": report.tasks_created,
                "write_failures": len(report.failed),
            },
        )
        for kind, ref, reason in report.failed[:20]:
            log.warning("write failed: %s %s: %s", kind, ref, reason, extra=self.extra)


class Worker:
    """One ``crm-upsell schedule`` process: a BackgroundScheduler on the shared job store."""

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
        for name in self.names:
            # Wrong settings or a missing connector fail now, not at the first tick.
            Session.open(
                config, name, plugins=self.plugins, engine=self.engine, secrets=self.secrets
            ).settings()
        started = datetime.now(UTC)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{started:%Y%m%dT%H%M%S}"
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
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(workers).where(workers.c.id == self.id).values(stopped_at=datetime.now(UTC))
                )
        except SQLAlchemyError as exc:
            log.warning("could not record the worker's stop: %s", type(exc).__name__)
        _current = None
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
        """Record that this worker is alive (``status`` shows it) and prune old claimed ticks."""
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                updated = conn.execute(
                    update(workers).where(workers.c.id == self.id).values(seen_at=now)
                ).rowcount
                if not updated:
                    conn.execute(
                        insert(workers).values(
                            id=self.id,
                            host=socket.gethostname(),
                            pid=os.getpid(),
                            started_at=self.started_at,
                            seen_at=now,
                            connections=self.names,
                        )
                    )
                conn.execute(delete(schedule_ticks).where(schedule_ticks.c.tick < now - TICK_RETENTION))
                # Workers stopped, or silent (killed) for long, are forgotten after a while.
                conn.execute(delete(workers).where(workers.c.seen_at < now - WORKER_RETENTION))
        except SQLAlchemyError as exc:
            log.warning("heartbeat not recorded: %s", type(exc).__name__)

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
        """Claim ``tick`` for ``name`` and run the pipeline, retrying after failures as configured."""
        extra = {"connection": name, "tick": tick.isoformat()}
        if self.stop.is_set():
            return
        if not self._claim(name, tick):
            log.debug("tick taken by another worker", extra=extra)
            return
        settings = self.config.scheduler
        attempt = 0
        while True:
            attempt += 1
            if self._attempt(name, attempt, extra) != "retry" or self.stop.is_set():
                return
            if attempt > settings.retries:
                log.error("giving up until the next regular run", extra={**extra, "attempts": attempt})
                return
            delay = min(settings.retry_backoff_max_s, settings.retry_backoff_s * 2 ** (attempt - 1))
            upcoming = self.next_tick(name)
            if upcoming is not None and datetime.now(UTC) + timedelta(seconds=delay) >= upcoming:
                log.warning(
                    "not retrying: the next regular run comes first", extra={**extra, "next_run": upcoming}
                )
                return
            log.warning("retrying after a failed run", extra={**extra, "in_s": delay, "attempt": attempt + 1})
            if self.stop.wait(delay):
                return

    def _claim(self, name: str, tick: datetime) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(schedule_ticks).values(
                        connection=name, tick=tick, worker=self.id, claimed_at=datetime.now(UTC)
                    )
                )
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            log.error("cannot claim the tick: %s", type(exc).__name__, extra={"connection": name})
            return False
        return True

    def _attempt(self, name: str, attempt: int, extra: dict[str, Any]) -> str:
        """One run: ``done`` (also when it failed for good), ``busy`` or ``retry``."""
        try:
            session = Session.open(
                self.config, name, plugins=self.plugins, engine=self.engine, secrets=self.secrets
            )
            session.stop = self.stop
            # A worker's retry after a failed run is recorded as started by the worker, not the schedule.
            session.trigger = "schedule" if attempt == 1 else "worker"
            with session.writing():
                log.info("run started", extra={**extra, "attempt": attempt, "worker": self.id})
                report = asyncio.run(_run(session, {**extra, "attempt": attempt, "worker": self.id}))
        except BusyError:
            log.info("skipped: another run of this connection is still going", extra=extra)
            return "busy"
        except StopRequested:
            log.info("run stopped at a checkpoint; the next run resumes from it", extra=extra)
            return "done"
        except _NOT_RETRIED as exc:
            log.error("run failed: %s", exc.one_line(), extra={**extra, "error_kind": type(exc).__name__})
            return "done"
        except ConnectorError as exc:
            log.error("run failed: %s", exc.one_line(), extra={**extra, "error_kind": type(exc).__name__})
            return "retry"
        except Exception:
            log.exception("run failed with an internal error", extra=extra)
            return "retry"
        log.info("run finished", extra={**extra, **_public(report)})
        return "done" if report.ok else "retry"


async def _run(session: Session, details: dict[str, Any]) -> PipelineReport:
    async with session.connector() as connector:
        report = await session.run_pipeline(
            connector, trigger=session.trigger, view=LogView(session.name), details=details
        )
    write_configured_report(session)  # [report] path
    return report


def _public(report: PipelineReport) -> dict[str, Any]:
    keys = ("records", "proposals", "updated", "tasks_created", "write_failures", "calls")
    picked = {k: report.summary[k] for k in keys if k in report.summary}
    return {"run_id": report.run_id, "status": report.status, **picked}


def run_worker(config: Config, *, on_start: Callable[[Worker], None] | None = None) -> None:
    """``crm-upsell schedule``: one worker until SIGTERM/SIGINT."""
    worker = Worker(config)
    if on_start is not None:
        on_start(worker)
    worker.run_forever()
