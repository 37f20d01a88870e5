"""``crm-upsell status`` against a real store (SQLite and PostgreSQL).

The store is filled the way the product fills it: runs through start_run/finish_run, the scheduler's
job row (APScheduler's table: ``run:<connection>``, next_run_time in epoch seconds) and worker
heartbeats. Then what a user (or a monitoring check) sees is checked: the last and next run, the
credentials, the problems, the workers, the exit code, and that no secret value is ever printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text, update

from crm_upsell_connector.cli import main
from crm_upsell_connector.config import Config, parse_config
from crm_upsell_connector.jobs.app import QUEUE, RUN_TASK, connection_lock, run_job_kwargs
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.status import StatusReport, gather_status
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.runs import close_abandoned_runs, finish_run, start_run
from crm_upsell_connector.store.schema import runs, scheduler_jobs, workers

TOKEN_VAR = "CRM_UPSELL_STATUS_TEST_TOKEN"
EMEA_VAR = "CRM_UPSELL_STATUS_TEST_EMEA_TOKEN"
# Recognisable fake secret values: they must never appear in what status prints.
SECRET = "sk-fake-status-secret-7f3a9c1e5d"
EMEA_SECRET = "sk-fake-emea-secret-0b8e2d4f6a"
NEXT = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


# --- helpers -------------------------------------------------------------------------------------


def hubspot(var: str = TOKEN_VAR, schedule: dict[str, Any] | None = None) -> dict[str, Any]:
    connection: dict[str, Any] = {
        "crm": "hubspot",
        "settings": {"auth": "private_app", "token": f"env:{var}", "rate_limit_max": 100},
    }
    if schedule is not None:
        connection["schedule"] = schedule
    return connection


def make_config(store_url: str, scheduler: dict[str, Any] | None = None, **connections: Any) -> Config:
    data: dict[str, Any] = {"connections": connections, "store": {"url": store_url}}
    if scheduler:
        data["scheduler"] = scheduler
    return parse_config(data, "status.toml")


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = open_store(store_url)
    yield engine
    engine.dispose()


def record_run(
    engine: Engine,
    connection: str,
    status: str,
    summary: dict[str, Any],
    *,
    took_s: float | None = None,
    command: str = "run",
) -> int:
    """A finished run as the pipeline records it; ``took_s`` sets its duration exactly."""
    run_id = start_run(engine, connection, command)
    finish_run(engine, run_id, status, summary)
    if took_s is not None:
        with engine.begin() as conn:
            finished = conn.execute(select(runs.c.finished_at).where(runs.c.id == run_id)).scalar_one()
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(started_at=finished - timedelta(seconds=took_s))
            )
    return run_id


def set_next_run(engine: Engine, connection: str, when: datetime) -> None:
    """SQLite: the row APScheduler's SQLAlchemyJobStore keeps for a scheduled connection.
    PostgreSQL: the connection's run job for the tick ``when``, waiting in procrastinate's queue."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            lock = connection_lock(connection)
            conn.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args) "
                    "VALUES (:queue, :task, :lock, :lock, CAST(:args AS jsonb))"
                ),
                {
                    "queue": QUEUE,
                    "task": RUN_TASK,
                    "lock": lock,
                    "args": json.dumps(run_job_kwargs(connection, when)),
                },
            )
            return
        conn.execute(
            insert(scheduler_jobs).values(
                id=f"run:{connection}", next_run_time=when.timestamp(), job_state=b"\x80\x04N."
            )
        )


def add_worker(
    engine: Engine,
    worker_id: str,
    *,
    started_at: datetime,
    seen_at: datetime,
    stopped_at: datetime | None = None,
    connections: list[str] | None = None,
) -> None:
    host, pid, _ = worker_id.split(":")
    with engine.begin() as conn:
        conn.execute(
            insert(workers).values(
                id=worker_id,
                host=host,
                pid=int(pid),
                started_at=started_at,
                seen_at=seen_at,
                stopped_at=stopped_at,
                connections=connections or ["main"],
            )
        )


def status_of(config: Config, engine: Engine, environ: dict[str, str], now: datetime | None = None) -> Any:
    return gather_status(config, engine, SecretResolver(environ), now=now)


def only(report: StatusReport) -> Any:
    assert len(report.connections) == 1
    return report.connections[0]


OK_SUMMARY = {
    "trigger": "schedule",
    "dry_run": False,
    "host": "worker-a",
    "pid": 4242,
    "records": 1234,
    "proposals": 56,
    "tasks_created": 7,
    "updated": 9,
    "status": "ok",
}


# --- gather_status -------------------------------------------------------------------------------


def test_a_connection_never_run_is_healthy_when_its_secret_resolves(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, main=hubspot())

    report = status_of(config, engine, {TOKEN_VAR: SECRET})

    c = only(report)
    assert (c.name, c.crm) == ("main", "hubspot")
    assert c.last_run is None
    assert c.last_ok_at is None
    assert c.schedule is None and c.next_run is None
    assert c.credentials.state == "ok"
    assert c.credentials.detail == "1 secret(s) found"
    assert c.problems == []
    assert report.healthy
    assert report.workers == []


def test_a_scheduled_connection_not_yet_picked_up_by_a_worker_is_healthy(
    store_url: str, engine: Engine
) -> None:
    config = make_config(store_url, main=hubspot(schedule={"every": "15m"}))

    c = only(status_of(config, engine, {TOKEN_VAR: SECRET}))

    assert c.schedule == "every 15m"
    assert c.next_run is None
    assert c.problems == []


def test_an_ok_run_shows_its_counts_duration_and_the_next_run(store_url: str, engine: Engine) -> None:
    config = make_config(
        store_url, main=hubspot(schedule={"cron": "*/15 * * * *", "timezone": "Europe/Berlin"})
    )
    run_id = record_run(engine, "main", "ok", OK_SUMMARY, took_s=42.5)
    set_next_run(engine, "main", NEXT)

    report = status_of(config, engine, {TOKEN_VAR: SECRET})

    c = only(report)
    last = c.last_run
    assert last is not None
    assert (last.id, last.status, last.trigger, last.worker) == (run_id, "ok", "schedule", "worker-a:4242")
    assert (last.records, last.proposals, last.tasks_created, last.updated) == (1234, 56, 7, 9)
    assert last.duration_s == 42.5
    assert last.error is None and last.error_kind is None
    assert c.last_ok_at == last.finished_at
    assert c.schedule == "cron '*/15 * * * *' (Europe/Berlin)"
    assert c.next_run == NEXT
    assert c.credentials.state == "ok"
    assert "accepted by the CRM on the last run" in c.credentials.detail
    assert c.problems == []
    assert report.healthy

    data = json.loads(json.dumps(report.to_json()))
    assert data["healthy"] is True
    (conn,) = data["connections"]
    assert conn["next_run"] == "2031-05-06T07:08:09+00:00"
    assert conn["last_run"]["records"] == 1234
    assert conn["last_run"]["duration_s"] == 42.5
    assert conn["credentials"] == {"state": "ok", "detail": c.credentials.detail}


def test_only_full_runs_of_the_same_connection_count_as_its_last_run(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, main=hubspot(), emea=hubspot(EMEA_VAR))
    main_run = record_run(engine, "main", "ok", OK_SUMMARY)
    # Later: a failed sync by hand on main and a failed run of another connection.
    record_run(engine, "main", "failed", {"error": "boom"}, command="sync")
    record_run(engine, "emea", "failed", {"error": "emea is down", "error_kind": "RetriableAPIError"})

    report = status_of(config, engine, {TOKEN_VAR: SECRET, EMEA_VAR: EMEA_SECRET})

    by_name = {c.name: c for c in report.connections}
    assert [c.name for c in report.connections] == ["emea", "main"]
    assert by_name["main"].last_run is not None and by_name["main"].last_run.id == main_run
    assert by_name["main"].problems == []
    assert by_name["emea"].problems == ["last run failed: emea is down"]
    assert not report.healthy


def test_a_run_refused_by_the_crm_marks_the_credentials_rejected(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, main=hubspot(schedule={"every": "15m"}))
    record_run(engine, "main", "ok", OK_SUMMARY)
    error = "hubspot: the CRM refused the token (401 Unauthorized): check connections.main.settings.token"
    record_run(
        engine,
        "main",
        "failed",
        {"trigger": "schedule", "host": "worker-a", "pid": 1, "error": error, "error_kind": "AuthError"},
    )

    report = status_of(config, engine, {TOKEN_VAR: SECRET})

    c = only(report)
    assert c.credentials.state == "rejected"
    assert c.credentials.detail == error
    assert c.last_run is not None and c.last_run.status == "failed"
    assert c.last_ok_at is not None  # the earlier good run is still shown
    assert f"credentials rejected: {error}" in c.problems
    assert f"last run failed: {error}" in c.problems
    assert not report.healthy


def test_a_run_failing_for_another_reason_keeps_the_credentials_ok(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, main=hubspot())
    record_run(
        engine, "main", "failed", {"error": "HTTP 503 from the CRM", "error_kind": "RetriableAPIError"}
    )

    report = status_of(config, engine, {TOKEN_VAR: SECRET})

    c = only(report)
    assert c.credentials.state == "ok"
    assert c.problems == ["last run failed: HTTP 503 from the CRM"]
    assert not report.healthy


def test_a_missing_secret_is_reported_without_any_value(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, main=hubspot())

    report = status_of(config, engine, {"SOMETHING_ELSE": SECRET})

    c = only(report)
    assert c.credentials.state == "missing"
    assert TOKEN_VAR in c.credentials.detail and "not set" in c.credentials.detail
    assert "connections.main.settings.token" in c.credentials.detail
    assert any(p.startswith("credentials missing: ") for p in c.problems)
    assert not report.healthy
    assert SECRET not in json.dumps(report.to_json())


def test_a_secret_only_the_workers_can_read_is_unverified_not_missing(store_url: str, engine: Engine) -> None:
    # status run from an admin's shell, without the service's environment file, after good runs.
    config = make_config(store_url, main=hubspot())
    record_run(engine, "main", "ok", {"trigger": "schedule", "records": 3})

    report = status_of(config, engine, {})

    c = only(report)
    assert c.credentials.state == "unverified"
    assert TOKEN_VAR in c.credentials.detail and "accepted by the CRM" in c.credentials.detail
    assert c.problems == []
    assert report.healthy


def test_a_keyring_reference_resolves_from_its_environment_override(store_url: str, engine: Engine) -> None:
    connection = hubspot()
    connection["settings"]["token"] = "keyring:status-test-token"
    config = make_config(store_url, main=connection)

    report = status_of(config, engine, {"CRM_UPSELL_STATUS_TEST_TOKEN": SECRET})

    assert only(report).credentials.state == "ok"
    assert report.healthy
    assert SECRET not in json.dumps(report.to_json())


@pytest.mark.parametrize("status", ["partial", "interrupted"])
def test_a_partial_or_interrupted_last_run_needs_attention(
    store_url: str, engine: Engine, status: str
) -> None:
    config = make_config(store_url, main=hubspot())
    record_run(engine, "main", "ok", OK_SUMMARY)
    if status == "interrupted":
        start_run(engine, "main", "run")  # a worker died mid-run...
        assert close_abandoned_runs(engine, "main") == 1  # ...and the next one closed its row
    else:
        record_run(engine, "main", "partial", {**OK_SUMMARY, "status": "partial"})

    report = status_of(config, engine, {TOKEN_VAR: SECRET})

    c = only(report)
    assert c.last_run is not None and c.last_run.status == status
    assert c.last_ok_at is not None
    assert c.problems == [f"last run {status}"]
    assert not report.healthy


def test_an_overdue_next_run_needs_attention(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, main=hubspot(schedule={"every": "15m"}))
    now = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)
    set_next_run(engine, "main", now - timedelta(minutes=10))

    report = status_of(config, engine, {TOKEN_VAR: SECRET}, now=now)

    c = only(report)
    assert c.next_run == now - timedelta(minutes=10)
    assert len(c.problems) == 1
    assert "overdue since 2030-01-02 11:50 UTC" in c.problems[0]
    assert "worker" in c.problems[0]
    assert not report.healthy


def test_a_next_run_a_little_in_the_past_is_not_overdue(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, main=hubspot(schedule={"every": "15m"}))
    now = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)
    set_next_run(engine, "main", now - timedelta(minutes=4))  # a worker is about to pick it up

    report = status_of(config, engine, {TOKEN_VAR: SECRET}, now=now)

    assert only(report).problems == []
    assert report.healthy


def test_a_disabled_schedule_is_never_overdue(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, main=hubspot(schedule={"every": "15m", "enabled": False}))
    now = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)
    set_next_run(engine, "main", now - timedelta(hours=3))  # left behind from when it was enabled

    report = status_of(config, engine, {TOKEN_VAR: SECRET}, now=now)

    c = only(report)
    assert c.schedule is None and c.next_run is None
    assert c.problems == []
    assert report.healthy


def test_workers_alive_silent_and_stopped(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, main=hubspot(schedule={"every": "15m"}))
    now = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)
    add_worker(
        # Within the heartbeat timeout ([scheduler] stalled_after_s, 10 s by default): alive.
        engine,
        "host-a:11:1",
        started_at=now - timedelta(hours=2),
        seen_at=now - timedelta(seconds=5),
    )
    add_worker(
        engine,
        "host-b:22:1",
        started_at=now - timedelta(hours=1),
        seen_at=now - timedelta(minutes=5),
        connections=["main", "emea"],
    )
    add_worker(
        engine,
        "host-c:33:1",
        started_at=now - timedelta(hours=3),
        seen_at=now - timedelta(hours=1),
        stopped_at=now - timedelta(hours=1),
    )
    # Killed two days ago and never heard of since: no longer listed.
    add_worker(engine, "host-d:44:1", started_at=now - timedelta(days=3), seen_at=now - timedelta(days=2))

    report = status_of(config, engine, {TOKEN_VAR: SECRET}, now=now)

    assert [(w.id, w.alive) for w in report.workers] == [("host-a:11:1", True), ("host-b:22:1", False)]
    a, b = report.workers
    assert (a.host, a.pid, a.seen_at) == ("host-a", 11, now - timedelta(seconds=5))
    assert b.connections == ["main", "emea"]
    assert report.healthy  # a silent worker alone is not a connection problem
    data = json.loads(json.dumps(report.to_json()))
    assert [(w["id"], w["alive"]) for w in data["workers"]] == [("host-a:11:1", True), ("host-b:22:1", False)]


def test_a_longer_heartbeat_keeps_a_worker_alive_longer(store_url: str, engine: Engine) -> None:
    config = make_config(store_url, scheduler={"heartbeat_s": 120}, main=hubspot())
    now = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)
    add_worker(engine, "host-b:22:1", started_at=now - timedelta(hours=1), seen_at=now - timedelta(minutes=5))
    add_worker(engine, "host-d:44:1", started_at=now - timedelta(hours=1), seen_at=now - timedelta(minutes=7))

    report = status_of(config, engine, {TOKEN_VAR: SECRET}, now=now)

    assert [(w.id, w.alive) for w in report.workers] == [("host-b:22:1", True), ("host-d:44:1", False)]


# --- the CLI -------------------------------------------------------------------------------------


def write_config(tmp_path: Path, store_url: str) -> Path:
    """Two scheduled connections, main and emea, each with its own env: token."""
    path = tmp_path / "config.toml"
    path.write_text(
        f"""\
[connections.main]
crm = "hubspot"

[connections.main.settings]
token = "env:{TOKEN_VAR}"

[connections.main.schedule]
every = "15m"

[connections.emea]
crm = "hubspot"

[connections.emea.settings]
token = "env:{EMEA_VAR}"

[connections.emea.schedule]
cron = "0 6 * * *"
timezone = "Europe/Berlin"

[store]
url = "{store_url}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cli_store(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Engine]]:
    """A config with two connections, both of whose secrets are set, and its store."""
    monkeypatch.setenv(TOKEN_VAR, SECRET)
    monkeypatch.setenv(EMEA_VAR, EMEA_SECRET)
    config = write_config(tmp_path, store_url)
    engine = open_store(store_url)
    yield config, engine
    engine.dispose()


def run_status(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    captured = capsys.readouterr()
    # No secret value in anything status prints.
    for secret in (SECRET, EMEA_SECRET):
        assert secret not in captured.out
        assert secret not in captured.err
    return code, captured.out, captured.err


def fill_healthy(engine: Engine) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    record_run(engine, "main", "ok", OK_SUMMARY, took_s=42.5)
    set_next_run(engine, "main", NEXT)
    set_next_run(engine, "emea", NEXT + timedelta(hours=1))
    add_worker(engine, "host-a:11:1", started_at=now - timedelta(hours=1), seen_at=now)
    add_worker(
        engine,
        "host-z:99:1",
        started_at=now - timedelta(hours=2),
        seen_at=now - timedelta(hours=1),
        stopped_at=now - timedelta(hours=1),
    )
    return now


def test_status_text_shows_each_connection_and_healthy(
    cli_store: tuple[Path, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    config, engine = cli_store
    fill_healthy(engine)

    code, out, err = run_status(config, capsys, "status")

    assert code == 0, out + err
    assert err == ""
    assert "main (hubspot, every 15m)" in out
    assert "emea (hubspot, cron '0 6 * * *' (Europe/Berlin))" in out
    assert "ok, took 42.5s (schedule on worker-a:4242)" in out
    assert "1234 record(s) synced, 56 proposal(s), 7 task(s) created, 9 account(s) updated" in out
    assert "last run     never" in out  # emea
    assert "next run     2031-05-06 07:08:09 UTC" in out
    assert "next run     2031-05-06 08:08:09 UTC" in out
    assert out.count("credentials  ok") == 2
    assert "worker host-a:11:1: alive" in out
    assert "host-z" not in out  # a stopped worker is not listed
    assert "attention" not in out
    assert out.rstrip().splitlines()[-1] == "healthy"


def test_status_text_says_needs_attention_and_exits_1(
    cli_store: tuple[Path, Engine], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, engine = cli_store
    fill_healthy(engine)
    monkeypatch.delenv(EMEA_VAR)
    record_run(
        engine, "main", "failed", {"error": "the CRM refused the token (401)", "error_kind": "AuthError"}
    )

    code, out, _ = run_status(config, capsys, "status")

    assert code == 1
    assert "credentials  missing: connections.emea.settings.token" in out
    assert f"environment variable {EMEA_VAR} is not set" in out
    assert "credentials  rejected: the CRM refused them in the last run (the error above)" in out
    assert "error        the CRM refused the token (401)" in out
    assert "last ok      " in out  # when main last worked
    assert out.count("the CRM refused the token (401)") == 1  # each error once
    assert "attention    last run failed" not in out
    assert out.rstrip().splitlines()[-1] == "needs attention"


def test_status_without_workers_says_how_to_start_one(
    cli_store: tuple[Path, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = cli_store

    code, out, _ = run_status(config, capsys, "status")

    assert code == 0
    assert "no worker running (start one with 'crm-upsell schedule')" in out
    assert out.count("last run     never") == 2


def test_status_json_has_the_documented_keys(
    cli_store: tuple[Path, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    config, engine = cli_store
    now = fill_healthy(engine)

    code, out, _ = run_status(config, capsys, "status", "--json")

    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"healthy", "connections", "workers"}
    assert data["healthy"] is True
    by_name = {c["name"]: c for c in data["connections"]}
    assert set(by_name) == {"main", "emea"}
    for c in by_name.values():
        assert {"last_run", "next_run", "credentials", "problems", "schedule"} <= set(c)
        assert c["credentials"]["state"] == "ok"
        assert c["problems"] == []
    main_run = by_name["main"]["last_run"]
    assert (main_run["status"], main_run["records"], main_run["tasks_created"]) == ("ok", 1234, 7)
    assert main_run["duration_s"] == 42.5
    assert datetime.fromisoformat(main_run["started_at"]) <= datetime.now(UTC)
    assert by_name["main"]["next_run"] == "2031-05-06T07:08:09+00:00"
    assert by_name["emea"]["last_run"] is None
    assert [(w["id"], w["alive"], w["connections"]) for w in data["workers"]] == [
        ("host-a:11:1", True, ["main"])
    ]
    assert datetime.fromisoformat(data["workers"][0]["seen_at"]) == now


def test_status_json_of_an_unhealthy_store_exits_1_without_secrets(
    cli_store: tuple[Path, Engine], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, engine = cli_store
    monkeypatch.delenv(TOKEN_VAR)
    set_next_run(engine, "emea", datetime.now(UTC) - timedelta(minutes=30))

    code, out, _ = run_status(config, capsys, "status", "--json")

    assert code == 1
    data = json.loads(out)
    assert data["healthy"] is False
    by_name = {c["name"]: c for c in data["connections"]}
    assert by_name["main"]["credentials"]["state"] == "missing"
    assert TOKEN_VAR in by_name["main"]["credentials"]["detail"]
    assert by_name["emea"]["credentials"]["state"] == "ok"
    assert any("overdue" in p for p in by_name["emea"]["problems"])


def test_status_for_one_connection(
    cli_store: tuple[Path, Engine], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, engine = cli_store
    fill_healthy(engine)
    monkeypatch.delenv(EMEA_VAR)  # emea needs attention; main does not

    code, out, _ = run_status(config, capsys, "--connection", "main", "status")
    assert code == 0
    assert "main (hubspot" in out
    assert "emea" not in out
    assert out.rstrip().splitlines()[-1] == "healthy"

    code, out, _ = run_status(config, capsys, "--connection", "main", "status", "--json")
    assert code == 0
    data = json.loads(out)
    assert [c["name"] for c in data["connections"]] == ["main"]
    assert data["healthy"] is True

    code, out, _ = run_status(config, capsys, "--connection", "emea", "status")
    assert code == 1
    assert "main (hubspot" not in out
    assert "needs attention" in out


def test_status_for_an_unknown_connection_is_one_error_line(
    cli_store: tuple[Path, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = cli_store

    code, out, err = run_status(config, capsys, "--connection", "asia", "status")

    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert "no connection named 'asia'" in lines[0]
    assert "configured: emea, main" in lines[0]


@pytest.mark.parametrize(
    "error",
    [
        "400 Bad Request: unknown property [crm_upsell_score]",
        "404 Not Found: no such path [/crm/v3/objects/companies]",
    ],
)
def test_a_stored_error_is_shown_verbatim(
    cli_store: tuple[Path, Engine], capsys: pytest.CaptureFixture[str], error: str
) -> None:
    config, engine = cli_store
    record_run(engine, "main", "failed", {"error": error, "error_kind": "FatalAPIError"})

    code, out, err = run_status(config, capsys, "status")

    assert code == 1, err
    assert f"error        {error}" in out
    assert out.count(error) == 1  # shown once, not again as an "attention" line
