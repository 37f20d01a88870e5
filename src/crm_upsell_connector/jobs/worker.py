"""``crm-upsell schedule`` on a PostgreSQL store: a procrastinate worker; start as many as you like.

- Each scheduled connection is a periodic job of the run task (``schedules.py``): whatever the
  number of workers, procrastinate defers it once per tick, and its queueing lock keeps at most one
  run of a connection waiting.
- A worker runs up to ``[scheduler] threads`` jobs at once, each in its own thread. A job runs the
  pipeline under the connection's ``RunLock`` (the lock manual runs take too), and procrastinate's
  job ``lock`` keeps two jobs of one connection from running at the same time.
- A failed run is retried by procrastinate's retry policy (``RunRetry``): after
  ``retry_backoff_s``, doubling up to ``retry_backoff_max_s``, at most ``retries`` times, never past
  the next tick and never while the next run already waits. Errors another try will not fix
  (config, credentials, quota, a fatal API error) fail the job at once.
- Every worker sends procrastinate a heartbeat each ``heartbeat_s``. Each worker looks for jobs of
  workers silent for ``stalled_after_s`` (default 10 s) at every heartbeat and gives them back to
  the queue, where a live worker takes the run over and resumes it from the last committed page.
- SIGTERM or SIGINT: no new job is taken, runs in progress stop after their current page (or write
  batch), and the worker leaves once they have; a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from procrastinate import exceptions as pexc
from procrastinate.job_context import JobContext
from procrastinate.jobs import Job, Status
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy import text

from crm_upsell_connector.config import Config
from crm_upsell_connector.connector import ConnectorPlugin, load_plugins
from crm_upsell_connector.errors import ConfigError, StoreError
from crm_upsell_connector.jobs.app import QUEUE, RUN_TASK, connection_lock, make_app
from crm_upsell_connector.jobs.run import attempt_run
from crm_upsell_connector.jobs.schedules import register_schedules
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.workers import new_worker_id, record_alive, record_stopped

log = logging.getLogger("crm_upsell_connector.scheduler")


class RunFailed(Exception):
    """A run that failed for good: procrastinate marks its job ``failed`` (``status`` lists it)."""


class RetryRun(Exception):
    """A run to try again in ``delay_s`` seconds (``RunRetry`` turns it into procrastinate's retry)."""

    def __init__(self, message: str, delay_s: float) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class RunRetry(BaseRetryStrategy):
    """procrastinate's retry policy for runs: retry exactly the runs the job asked to retry."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryRun):
            return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=exception.delay_s))
        return None


class _QuietOwnFailures(logging.Filter):
    """procrastinate logs a failed job with its traceback; ours are already logged in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], RunFailed | RetryRun):
            record.exc_info = None
            record.exc_text = None
        return True


class QueueWorker:
    """One procrastinate worker process for the scheduled connections of ``config``."""

    def __init__(
        self,
        config: Config,
        *,
        plugins: dict[str, ConnectorPlugin] | None = None,
        secrets: SecretResolver | None = None,
    ) -> None:
        self.config = config
        self.settings = config.scheduler
        self.names = sorted(n for n, c in config.connections.items() if c.schedule and c.schedule.enabled)
        if not self.names:
            raise ConfigError(
                f"{config.source}: no connection has a schedule",
                hint="add [connections.NAME.schedule] with every = '15m' or cron = '*/15 * * * *'",
            )
        self.plugins = plugins if plugins is not None else load_plugins()
        self.secrets = secrets or SecretResolver()
        # Each run in progress holds a connection for its lock and uses another to write. Opening
        # the store migrates it, procrastinate's tables included.
        self.engine = open_store(config.store.url, pool_size=2 * self.settings.threads + 2)
        for name in self.names:
            # Wrong settings or a missing connector fail now, not at the first tick.
            Session.open(
                config, name, plugins=self.plugins, engine=self.engine, secrets=self.secrets
            ).settings()
        self.started_at = datetime.now(UTC)
        self.id = new_worker_id(self.started_at)
        self.stop = threading.Event()
        # procrastinate holds one connection for LISTEN; the rest serve the deferrer, the fetches,
        # the heartbeat and each job's end (several at once when jobs end together).
        self.app = make_app(config.store.url, pool_size=self.settings.threads + 3)
        self.app.task(name=RUN_TASK, queue=QUEUE, pass_context=True, retry=RunRetry())(self.run_job)
        register_schedules(self.app, config, self.names)

    # ---- the job ----------------------------------------------------------------------------------

    def run_job(
        self, context: JobContext, timestamp: int, connection: str, queued_by: str | None = None
    ) -> str:
        """The run task: one run of ``connection`` for the tick ``timestamp`` (seconds since the epoch)."""
        tick = datetime.fromtimestamp(timestamp, UTC)
        attempt = context.job.attempts + 1
        details: dict[str, Any] = {
            "tick": tick.isoformat(),
            "attempt": attempt,
            "worker": self.id,
            "job_id": context.job.id,
        }
        if queued_by:
            details["queued_by"] = queued_by
        done = attempt_run(
            self.config,
            connection,
            engine=self.engine,
            plugins=self.plugins,
            secrets=self.secrets,
            stop=self.stop,
            details=details,
            # A retry after a failed run is recorded as started by the worker, not the schedule.
            trigger="queue" if queued_by else "schedule" if attempt == 1 else "worker",
        )
        if done.outcome == "done":
            return "ok"
        if done.outcome == "failed":
            raise RunFailed(done.error)
        extra = {"connection": connection, "tick": tick.isoformat(), "attempt": attempt}
        delay, why = self._retry_in(connection, attempt)
        if delay is not None:
            log.warning("retrying after a failed run", extra={**extra, "in_s": delay, "attempt": attempt + 1})
            raise RetryRun(done.error, delay)
        if done.outcome == "busy":
            log.info("skipped: %s", why, extra=extra)
            return "skipped"
        log.error("giving up until the next regular run: %s", why, extra=extra)
        raise RunFailed(f"{done.error} (not retried: {why})")

    def _retry_in(self, name: str, attempt: int) -> tuple[float | None, str]:
        """Seconds until the next try of ``name``'s run, or None and why it is not tried again."""
        if attempt > self.settings.retries:
            return None, f"{attempt} tries made"
        delay = self.settings.backoff_s(attempt)
        schedule = self.config.connections[name].schedule
        now = datetime.now(UTC)
        upcoming = schedule.trigger().get_next_fire_time(None, now) if schedule is not None else None
        if upcoming is not None and now + timedelta(seconds=delay) >= upcoming:
            return None, "the next regular run comes first"
        # A run already waiting in the queue does what the retry would do (and procrastinate keeps
        # one waiting job per connection).
        with self.engine.connect() as conn:
            waiting = conn.execute(
                text("SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = :lock AND status = 'todo'"),
                {"lock": connection_lock(name)},
            ).first()
        if waiting is not None:
            return None, "the next run is already queued"
        return delay, ""

    # ---- life cycle -------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT; a second signal exits at once (the store stays consistent)."""
        logging.getLogger("procrastinate.worker").addFilter(_QuietOwnFailures())
        asyncio.run(self._main())

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        # procrastinate runs each (synchronous) job in the loop's default executor.
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=self.settings.threads + 2, thread_name_prefix="run")
        )
        await asyncio.to_thread(record_alive, self.engine, self.id, self.started_at, self.names)
        async with self.app.open_async():
            worker = asyncio.create_task(
                self.app.run_worker_async(
                    queues=[QUEUE],
                    name=self.id,
                    concurrency=self.settings.threads,
                    install_signal_handlers=False,
                    update_heartbeat_interval=self.settings.heartbeat_s,
                    stalled_worker_timeout=self.settings.stalled_s,
                    fetch_job_polling_interval=min(5.0, self.settings.heartbeat_s),
                )
            )
            housekeeping = asyncio.create_task(self._housekeeping())

            def on_signal(signum: int) -> None:
                if self.stop.is_set():
                    log.warning("second signal: exiting now; the next run resumes from the last checkpoint")
                    os._exit(128 + signum)
                log.info("received %s", signal.Signals(signum).name)
                log.info(
                    "stopping: runs in progress finish their current page first", extra={"worker": self.id}
                )
                self.stop.set()
                worker.cancel()

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal, sig)
            log.info("worker started", extra={"worker": self.id, "connections": self.names})
            try:
                await worker
            except asyncio.CancelledError:
                if not self.stop.is_set():
                    raise
            finally:
                housekeeping.cancel()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        if not self.stop.is_set():
            # procrastinate stops its worker when its heartbeat or its LISTEN connection fails.
            self.stop.set()
            raise StoreError(
                "the job queue's worker stopped: it lost its connection to the database",
                hint="the service manager starts it again (exit code 4); runs resume from their last checkpoint",
            )
        await asyncio.to_thread(record_stopped, self.engine, self.id)
        log.info("worker stopped", extra={"worker": self.id})

    async def _housekeeping(self) -> None:
        """At each heartbeat: tell ``status`` this worker is alive, and take over stalled runs."""
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            await asyncio.to_thread(record_alive, self.engine, self.id, self.started_at, self.names)
            try:
                await self.recover_stalled()
            except pexc.ConnectorException as exc:
                log.warning("could not look for stalled runs: %s", type(exc).__name__)

    async def recover_stalled(self) -> None:
        """Give the runs of workers silent for ``stalled_after_s`` back to the queue.

        A job left ``doing`` by a dead worker would otherwise hold its connection's procrastinate
        lock for ever. It goes back to ``todo`` (procrastinate's retry) and a live worker resumes the
        run; if the connection's next run already waits, that one covers it and the dead job is
        marked failed. Several workers may find the same job: only the first change applies.
        """
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(
            queue=QUEUE, task_name=RUN_TASK, seconds_since_heartbeat=self.settings.stalled_s
        )
        for job in stalled:
            assert job.id is not None
            extra = {"job_id": job.id, "connection": job.task_kwargs.get("connection")}
            try:
                await manager.retry_job_by_id_async(job_id=job.id, retry_at=datetime.now(UTC))
            except pexc.UniqueViolation:
                await manager.finish_job_by_id_async(job_id=job.id, status=Status.FAILED, delete_job=False)
                log.warning("a silent worker's run was dropped: the connection's next run waits", extra=extra)
            except pexc.ConnectorException:
                continue  # another worker took it first
            else:
                log.warning("taking over the run of a worker gone silent", extra=extra)


def run_queue_worker(config: Config) -> None:
    """``crm-upsell schedule`` with a PostgreSQL store: one procrastinate worker until SIGTERM/SIGINT."""
    QueueWorker(config).run_forever()
