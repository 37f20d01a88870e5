"""``crm-upsell run --queue`` and the jobs ``status`` shows, on a PostgreSQL store with one worker.

An operator queues a run: ``status`` lists it queued, a second ``--queue`` says one already waits,
a worker runs it under the connection's locks and records who asked. A run the CRM refuses fails
its job without retries (credentials need a person), and ``status`` lists it failed. A run that
fails on CRM errors is retried by procrastinate after the backoff, for the same tick. A second
worker on a SQLite store, and ``--queue`` on a SQLite store, are refused in one line each.
"""

from __future__ import annotations

import json
import signal
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.scheduling.support import setup, wait_for

# Scheduled, so that the worker starts, but with no tick near (a tick close by would stop retries).
YEARLY = 'cron = "0 3 1 1 *"'


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
        [("good", "hubspot"), ("refused", "hubspot"), ("flaky", "hubspot")],
        fresh_pg_url,
        accounts=5,
        schedules={"good": YEARLY, "refused": YEARLY, "flaky": YEARLY},
        scheduler={"retries": 3, "retry_backoff_s": 3.0},
        http={"max_attempts": 1, "backoff_initial_s": 0.1},
    ) as env:
        assert env.cli("--connection", "good", "setup").returncode == 0
        assert env.cli("--connection", "flaky", "setup").returncode == 0
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
        # The flaky connection's CRM answers every request with an error until its first run failed.
        flaky_url = env.crms[2].settings["base_url"]
        httpx.post(f"{flaky_url}/__sandbox/faults", json={"error_rate": 1.0}).raise_for_status()
        assert env.cli("--connection", "flaky", "run", "--queue").returncode == 0

        def heal_after_first_failure() -> None:
            wait_for(
                lambda: bool(
                    _rows(
                        fresh_pg_url,
                        "SELECT 1 FROM runs WHERE connection = 'flaky' AND command = 'run' "
                        "AND status IN ('failed', 'partial')",
                    )
                ),
                90,
                "a failed run",
                poll_s=0.1,
            )
            httpx.post(f"{flaky_url}/__sandbox/faults", json={"error_rate": 0.0}).raise_for_status()

        healer = threading.Thread(target=heal_after_first_failure, daemon=True)
        healer.start()
        worker = env.start_worker()
        try:

            def settled() -> bool:
                states = {j["connection"]: j["state"] for j in _jobs(env.cli("status", "--json").stdout)}
                return states == {"refused": "failed"}

            wait_for(settled, 120, "the queued runs to settle", poll_s=1.0)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 0
        healer.join(1)

        runs = _rows(
            fresh_pg_url,
            "SELECT connection, status, started_at, finished_at, summary FROM runs "
            "WHERE command = 'run' ORDER BY id",
        )
        by_name = {r.connection: r for r in runs}  # the last run of each
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
            ("flaky", "succeeded", 2),
        ]
        # The flaky run failed, then procrastinate ran the same job again after the backoff.
        failed, retried = [r for r in runs if r.connection == "flaky"]
        assert (failed.status, retried.status) in {("failed", "ok"), ("partial", "ok")}
        assert retried.summary["tick"] == failed.summary["tick"]
        assert (failed.summary["attempt"], retried.summary["attempt"]) == (1, 2)
        assert retried.started_at - failed.finished_at >= timedelta(seconds=2.9)
        text_status = env.cli("status").stdout
        assert "refused: failed" in text_status


def test_queue_and_a_second_worker_are_refused_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    with setup(tmp_path, [("main", "hubspot")], url, accounts=5, schedules={"main": YEARLY}) as env:
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
