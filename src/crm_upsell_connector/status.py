"""``crm-upsell status``: per connection, the last run, the next run and the credentials' health.

Read from the store only (the runs table, the scheduler's job store or, on PostgreSQL, the job
queue, and the workers' heartbeats)
plus the secret references of each connection; it makes no CRM call, so it is cheap enough for a
monitoring check every minute. ``healthy`` is false when a connection needs attention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from crm_upsell_connector.config import Config
from crm_upsell_connector.errors import AuthError, ConfigError
from crm_upsell_connector.jobs.admin import JobStatus, list_jobs, uses_queue
from crm_upsell_connector.jobs.admin import next_runs as queued_next_runs
from crm_upsell_connector.scheduler import JOB_PREFIX
from crm_upsell_connector.secrets import SecretResolver, parse_ref
from crm_upsell_connector.store.schema import runs, scheduler_jobs, workers

# A next run this far in the past means no worker is picking the connection up.
OVERDUE = timedelta(minutes=5)
# A worker that stopped reporting (killed, host gone) is listed as silent for this long.
SILENT_WORKERS_SHOWN = timedelta(days=1)
_PROBLEM_RUNS = ("failed", "partial", "interrupted", "held")
_ACCEPTED_RUNS = ("ok", "partial", "dry-run", "stopped", "held")
_CREDENTIAL_PROBLEMS = ("missing", "rejected")


@dataclass
class LastRun:
    id: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    trigger: str | None
    worker: str | None
    records: int | None
    proposals: int | None
    tasks_created: int | None
    updated: int | None
    error: str | None
    error_kind: str | None


@dataclass
class Credentials:
    state: str  # ok, unverified (not readable here, accepted on the last run), missing, rejected
    detail: str


@dataclass
class ConnectionStatus:
    name: str
    crm: str
    schedule: str | None
    next_run: datetime | None
    last_run: LastRun | None
    last_ok_at: datetime | None
    credentials: Credentials
    problems: list[str] = field(default_factory=list)


@dataclass
class WorkerStatus:
    id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    alive: bool
    connections: list[str]


@dataclass
class StatusReport:
    connections: list[ConnectionStatus]
    workers: list[WorkerStatus]
    #: PostgreSQL stores: run jobs queued, running, or failed in the last day (jobs/admin.py).
    jobs: list[JobStatus] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not any(c.problems for c in self.connections)

    def to_json(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return {
            "healthy": self.healthy,
            "connections": [clean(asdict(c)) for c in self.connections],
            "workers": [clean(asdict(w)) for w in self.workers],
            "jobs": [clean(asdict(j)) for j in self.jobs],
        }


def gather_status(
    config: Config,
    engine: Engine,
    secrets: SecretResolver,
    *,
    now: datetime | None = None,
    names: list[str] | None = None,
) -> StatusReport:
    """The status of ``names`` (default: every configured connection) and of the live workers."""
    now = now or datetime.now(UTC)
    alive_after = now - timedelta(seconds=config.scheduler.stalled_s)
    with engine.connect() as conn:
        jobs: list[JobStatus] = []
        if uses_queue(config):
            jobs = list_jobs(conn, names, now)
            next_runs = queued_next_runs(conn, config, jobs)
        else:
            next_runs = {
                str(row.id).removeprefix(JOB_PREFIX): datetime.fromtimestamp(row.next_run_time, UTC)
                for row in conn.execute(select(scheduler_jobs.c.id, scheduler_jobs.c.next_run_time))
                if row.next_run_time is not None and str(row.id).startswith(JOB_PREFIX)
            }
        report = StatusReport(
            [
                _connection(conn, config, name, secrets, next_runs.get(name), now)
                for name in (names if names is not None else sorted(config.connections))
            ],
            [
                WorkerStatus(
                    w.id,
                    w.host,
                    w.pid,
                    w.started_at,
                    w.seen_at,
                    w.seen_at >= alive_after,
                    list(w.connections),
                )
                for w in conn.execute(
                    select(workers)
                    .where(workers.c.stopped_at.is_(None), workers.c.seen_at >= now - SILENT_WORKERS_SHOWN)
                    .order_by(workers.c.started_at)
                )
            ],
            jobs,
        )
    return report


def _connection(
    conn: Connection,
    config: Config,
    name: str,
    secrets: SecretResolver,
    next_run: datetime | None,
    now: datetime,
) -> ConnectionStatus:
    connection = config.connections[name]
    schedule = connection.schedule if connection.schedule and connection.schedule.enabled else None
    last = _last_run(conn, name)
    last_ok_at = conn.execute(
        select(runs.c.finished_at)
        .where(runs.c.connection == name, runs.c.command == "run", runs.c.status == "ok")
        .order_by(runs.c.id.desc())
        .limit(1)
    ).scalar()
    status = ConnectionStatus(
        name,
        connection.crm,
        schedule.describe() if schedule else None,
        next_run if schedule else None,
        last,
        last_ok_at,
        _credentials(name, connection.settings, secrets, last),
    )
    if status.credentials.state in _CREDENTIAL_PROBLEMS:
        status.problems.append(f"credentials {status.credentials.state}: {status.credentials.detail}")
    if last is not None and last.status == "held":
        # The guard's reason is the run's error, shown on the run's own line; this says what it means.
        status.problems.append(
            "last run held by the mass-change guard, nothing written: review the plan, then "
            "'crm-upsell run --allow-mass-change' or raise the [apply] threshold"
        )
    elif last is not None and last.status in _PROBLEM_RUNS:
        status.problems.append(f"last run {last.status}" + (f": {last.error}" if last.error else ""))
    if schedule and next_run is not None and next_run < now - OVERDUE:
        status.problems.append(f"overdue since {next_run:%Y-%m-%d %H:%M} UTC: is a worker running?")
    return status


def _last_run(conn: Connection, name: str) -> LastRun | None:
    row = conn.execute(
        select(runs)
        .where(runs.c.connection == name, runs.c.command == "run")
        .order_by(runs.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    summary: dict[str, Any] = dict(row.summary or {})
    duration = (row.finished_at - row.started_at).total_seconds() if row.finished_at else None
    worker = f"{summary['host']}:{summary['pid']}" if "host" in summary and "pid" in summary else None
    return LastRun(
        id=row.id,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=round(duration, 3) if duration is not None else None,
        trigger=summary.get("trigger"),
        worker=worker,
        records=summary.get("records"),
        proposals=summary.get("proposals"),
        tasks_created=summary.get("tasks_created"),
        updated=summary.get("updated"),
        error=summary.get("error"),
        error_kind=summary.get("error_kind"),
    )


def _credentials(
    name: str, settings: dict[str, Any], secrets: SecretResolver, last: LastRun | None
) -> Credentials:
    """Every secret reference resolvable, and not rejected by the CRM on the last run.

    ``status`` may run in another environment than the workers (an admin's shell, not the service's
    environment file): a secret missing here while the last run was accepted is ``unverified``.
    """
    refs = []
    missing: str | None = None
    for key, value in sorted(settings.items()):
        if not isinstance(value, str) or value.partition(":")[0] not in ("keyring", "env"):
            continue
        try:
            parse_ref(value)
        except ConfigError:
            continue
        refs.append(value)
        try:
            secrets.resolve(value, what=f"connections.{name}.settings.{key}")
        except AuthError as exc:
            missing = missing or exc.one_line()
    if last is not None and last.status == "failed" and last.error_kind == "AuthError":
        return Credentials("rejected", last.error or "the CRM refused the credentials")
    if missing is not None:
        if last is not None and last.status in _ACCEPTED_RUNS:
            return Credentials(
                "unverified",
                f"{missing}; the last run ({last.started_at:%Y-%m-%d %H:%M} UTC) was accepted by the CRM, "
                "so the workers' environment has it",
            )
        return Credentials("missing", missing)
    if not refs:
        return Credentials("ok", "no secret references in the settings")
    detail = f"{len(refs)} secret(s) found"
    if last is not None and last.status != "failed":
        detail += f", accepted by the CRM on the last run ({last.started_at:%Y-%m-%d %H:%M} UTC)"
    return Credentials("ok", detail)


__all__ = ["ConnectionStatus", "StatusReport", "gather_status"]
