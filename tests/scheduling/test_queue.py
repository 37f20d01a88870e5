"""``crm-upsell run --queue`` and the jobs ``status`` shows, on a PostgreSQL store with one worker.

An operator queues a run: ``status`` lists it queued, a second ``--queue`` says one already waits,
a worker runs it under the connection's locks and records who asked. A run the CRM refuses fails
its job without retries (credentials need a person), and ``status`` lists it failed. A second
worker on a SQLite store, and ``--queue`` on a SQLite store, are refused in one line each.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.scheduling.support import setup, wait_for

# Scheduled, so that the worker starts, but not before the test is over.
HOURLY = 'every = "1h"'


def _rows(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        engine.dispose()


def _jobs(status_json: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = json.loads(status_json)["jobs"]
    return jobs


@pytest.mark.postgres
def test_queued_runs_run_on_a_worker_and_status_shows_queued_and_failed_jobs(
    tmp_path: Path, fresh_pg_url: str
) -> None:
    with setup(
        tmp_path,
        [("good", "hubspot"), ("refused", "hubspot")],
        fresh_pg_url,
        accounts=5,
        schedules={"good": HOURLY, "refused": HOURLY},
        scheduler={"retries": 3, "retry_backoff_s": 0.5},
    ) as env:
        assert env.cli("--connection", "good", "setup").returncode == 0
        queued = env.cli("--connection", "good", "run", "--queue")
        assert queued.returncode == 0, queued.stderr
        assert "queued job" in queued.stdout
        again = env.cli("--connection", "good", "run", "--queue")
        assert again.returncode == 7 and "already waiting in the queue" in again.stderr, again.stderr
        status = env.cli("status", "--json")
        (job,) = _jobs(status.stdout)
        assert (job["connection"], job["state"], job["attempts"]) == ("good", "queued", 0)
        assert "@" in job["queued_by"]
        assert "job " in env.cli("status").stdout and ": queued" in env.cli("status").stdout

        # The refused connection's CRM gets another connection's token.
        refused_var = next(iter(env.crms[1].secrets))
        env.environ[refused_var] = "not-the-token"
        assert env.cli("--connection", "refused", "run", "--queue").returncode == 0

        worker = env.start_worker()
        try:

            def settled() -> bool:
                states = {j["connection"]: j["state"] for j in _jobs(env.cli("status", "--json").stdout)}
                return states == {"refused": "failed"}

            wait_for(settled, 90, "the queued runs to settle", poll_s=1.0)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 0

        runs = _rows(
            fresh_pg_url, "SELECT connection, status, summary FROM runs WHERE command = 'run' ORDER BY id"
        )
        by_name = {r.connection: r for r in runs}
        assert by_name["good"].status == "ok"
        assert by_name["good"].summary["trigger"] == "queue" and "@" in by_name["good"].summary["queued_by"]
        # Credentials the CRM refused are not retried: one run, and its job failed after one attempt.
        assert [r.status for r in runs if r.connection == "refused"] == ["failed"]
        jobs = _rows(
            fresh_pg_url,
            "SELECT args ->> 'connection' AS connection, status, attempts FROM procrastinate_jobs ORDER BY id",
        )
        assert [(j.connection, j.status, j.attempts) for j in jobs] == [
            ("good", "succeeded", 1),
            ("refused", "failed", 1),
        ]
        text_status = env.cli("status").stdout
        assert "refused: failed" in text_status


def test_queue_and_a_second_worker_are_refused_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    with setup(tmp_path, [("main", "hubspot")], url, accounts=5, schedules={"main": HOURLY}) as env:
        queued = env.cli("run", "--queue")
        assert queued.returncode == 2, queued.stderr
        assert queued.stderr.startswith("error: run --queue needs a PostgreSQL store")
        first = env.start_worker()
        try:
            wait_for(lambda: "worker started" in env.logs[0].read_text(errors="replace"), 30, "the worker")
            second = env.cli("schedule", timeout=60)
            assert second.returncode == 7, second.stderr
            assert "another 'crm-upsell schedule' is already running" in second.stderr
        finally:
            first.send_signal(signal.SIGTERM)
            assert first.wait(60) == 0
