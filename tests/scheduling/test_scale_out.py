"""Scale-out: three ``crm-upsell schedule`` workers (procrastinate) share one PostgreSQL store; one
is killed mid-run.

Three connections (two HubSpot portals and a Salesforce org, each its own sandbox with its own
credentials) run every few seconds. While one connection's run is in its sync, the worker running it
is SIGKILLed. Then: another worker takes the connection over within one interval plus the
heartbeat timeout (``stalled_after_s``) and resumes it; every connection ran, on more than one
worker; no two runs of a connection ever overlapped; procrastinate's job table holds each tick of a
connection once and nothing left running; no tick ran to the end twice; the two surviving workers
stop cleanly on SIGTERM; and the sandbox CRMs hold every task the store knows exactly once, with no
outbox entry left open.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.scheduling.support import Setup, setup, wait_for

pytestmark = pytest.mark.postgres

INTERVAL_S = 4
# procrastinate's heartbeat timeout (the default of [scheduler] stalled_after_s) and how often the
# workers look for stalled jobs ([scheduler] heartbeat_s below).
STALLED_S = 10.0
HEARTBEAT_S = 1.0
CONNECTIONS = [("portal-a", "hubspot"), ("portal-b", "hubspot"), ("org", "salesforce")]


def _rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def _runs(url: str) -> list[Any]:
    return _rows(
        url,
        "SELECT id, connection, status, started_at, finished_at, summary FROM runs "
        "WHERE command = 'run' ORDER BY connection, started_at",
    )


def _summary(row: Any) -> dict[str, Any]:
    value = row.summary
    return value if isinstance(value, dict) else json.loads(value or "{}")


def _victim(url: str) -> tuple[str, int, int] | None:
    """A connection whose run is syncing right now (some page committed), and the pid running it."""
    rows = _rows(
        url,
        """
        SELECT r.connection, r.summary FROM runs r
        JOIN runs s ON s.connection = r.connection AND s.command = 'sync' AND s.status = 'running'
        JOIN sync_state st ON st.connection = r.connection
        JOIN procrastinate_jobs j ON j.id = (r.summary ->> 'job_id')::bigint AND j.status = 'doing'
        WHERE r.command = 'run' AND r.status = 'running' AND st.updated_at > s.started_at
        LIMIT 1
        """,
    )
    if not rows:
        return None
    summary = _summary(rows[0])
    return str(rows[0].connection), int(summary["pid"]), int(summary["job_id"])


def _jobs(url: str) -> list[Any]:
    return _rows(
        url,
        "SELECT id, status, args ->> 'connection' AS connection, (args ->> 'timestamp')::bigint AS tick, "
        "attempts FROM procrastinate_jobs WHERE task_name = 'crm_upsell.run_connection' ORDER BY id",
    )


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 60) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout_s)


def test_three_workers_one_killed_mid_run(tmp_path: Path, fresh_pg_url: str) -> None:
    with setup(
        tmp_path,
        CONNECTIONS,
        fresh_pg_url,
        accounts=120,
        latency_ms=30,
        schedules={name: f'every = "{INTERVAL_S}s"' for name, _ in CONNECTIONS},
        scheduler={"threads": 3, "retries": 1, "retry_backoff_s": 1.0, "heartbeat_s": HEARTBEAT_S},
    ) as env:
        for name, _ in CONNECTIONS:
            done = env.cli("--connection", name, "setup")
            assert done.returncode == 0, done.stderr
        workers = [env.start_worker() for _ in range(3)]
        try:
            _exercise(env, fresh_pg_url, workers)
        finally:
            for process in workers:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
        _check_crms(env, fresh_pg_url)


def _exercise(env: Setup, url: str, workers: list[subprocess.Popen[bytes]]) -> None:
    by_pid = {p.pid: p for p in workers}
    found: list[tuple[str, int, int]] = []

    def victim_running() -> bool:
        hit = _victim(url)
        if hit is not None and hit[1] in by_pid:
            found.append(hit)
            return True
        return False

    wait_for(victim_running, 90, "a run in the middle of its sync", poll_s=0.05)
    connection, pid, job_id = found[-1]
    os.kill(pid, signal.SIGKILL)
    killed_at = datetime.now(UTC)
    by_pid[pid].wait(10)
    survivors = [p for p in workers if p.pid != pid]

    def taken_over() -> bool:
        return any(
            r.connection == connection
            and r.status == "ok"
            and r.started_at > killed_at
            and _summary(r).get("pid") != pid
            for r in _runs(url)
        )

    # The dead worker's job holds the connection until its heartbeat is STALLED_S old; then it goes
    # back to the queue (or the next tick's job, already waiting, replaces it) and a live worker
    # resumes the interrupted sync: within one interval plus the heartbeat timeout (plus one look
    # for stalled jobs, and a second of slack for a loaded machine).
    bound = INTERVAL_S + STALLED_S + HEARTBEAT_S + 1.5
    wait_for(taken_over, bound + 60, f"another worker to take {connection} over")
    first_ok_after = min(
        r.started_at
        for r in _runs(url)
        if r.connection == connection and r.status == "ok" and r.started_at > killed_at
    )
    assert (first_ok_after - killed_at).total_seconds() <= bound, (
        "not taken over within one interval plus the heartbeat timeout"
    )

    def every_connection_ran_twice_since() -> bool:
        ok = Counter(r.connection for r in _runs(url) if r.status == "ok" and r.started_at > killed_at)
        return all(ok[name] >= 2 for name, _ in CONNECTIONS)

    wait_for(every_connection_ran_twice_since, 90, "two more runs of every connection")
    for process in survivors:
        assert _stop(process) == 0, "a worker did not stop cleanly on SIGTERM"

    runs = _runs(url)
    # The killed worker may have been running other connections too (it has three threads): each run
    # it left behind is marked interrupted and was taken over by another worker.
    interrupted = [r for r in runs if r.status == "interrupted"]
    assert connection in {r.connection for r in interrupted}, [(r.connection, r.status) for r in runs]
    for r in interrupted:
        assert _summary(r)["pid"] == pid and r.started_at < killed_at
        assert any(
            o.connection == r.connection
            and o.status == "ok"
            and o.started_at > killed_at
            and _summary(o)["pid"] != pid
            for o in runs
        ), f"{r.connection} was not taken over"
    assert not [r for r in runs if r.status in ("running", "failed", "partial")], [
        (r.connection, r.status, _summary(r).get("error")) for r in runs
    ]
    # Never two runs of one connection at once, and never one tick run to the end twice (a tick cut
    # short by the kill may be resumed under the same tick: that is the takeover).
    for name, _ in CONNECTIONS:
        mine = sorted((r for r in runs if r.connection == name), key=lambda r: r.started_at)
        assert len(mine) >= 3, f"{name} ran {len(mine)} time(s)"
        for before, after in itertools.pairwise(mine):
            assert before.finished_at is not None and before.finished_at <= after.started_at, (
                f"{name}: runs {before.id} and {after.id} overlapped"
            )
        ticks = Counter(_summary(r).get("tick") for r in mine if r.status != "interrupted")
        assert max(ticks.values()) == 1, f"{name}: a tick ran twice: {ticks.most_common(1)}"
    # procrastinate's job table: each tick of a connection deferred once, nothing left running (the
    # dead worker's job was given back to the queue or replaced by the next tick's job).
    jobs = _jobs(url)
    per_tick = Counter((j.connection, j.tick) for j in jobs)
    assert max(per_tick.values()) == 1, f"a tick was deferred twice: {per_tick.most_common(1)}"
    assert not [j for j in jobs if j.status == "doing"], [(j.id, j.connection, j.status) for j in jobs]
    assert {j.connection for j in jobs if j.status == "succeeded"} == {n for n, _ in CONNECTIONS}
    # The killed job was given back to the queue and run again (a second attempt), or marked failed
    # because the next tick's job already waited.
    (killed_job,) = [j for j in jobs if j.id == job_id]
    assert (killed_job.status, killed_job.attempts >= 2) in {("succeeded", True), ("failed", False)}, (
        killed_job
    )
    # The work was shared: runs happened on more than one worker.
    assert len({_summary(r).get("pid") for r in runs}) >= 2


def _check_crms(env: Setup, url: str) -> None:
    open_outbox = _rows(
        url, "SELECT connection, kind, ref, status FROM outbox WHERE status IN ('pending', 'sent', 'failed')"
    )
    assert not open_outbox, open_outbox
    for crm in env.crms:
        tasks = crm.tasks()
        keys = Counter(key for key, _ in tasks)
        assert keys and max(keys.values()) == 1, f"{crm.name}: a task was created twice"
        known = {row.key for row in _rows(url, "SELECT key FROM task_keys WHERE connection = :c", c=crm.name)}
        assert set(keys) == known, f"{crm.name}: the CRM's tasks and the store's task keys differ"
        proposed = {
            row.account_id
            for row in _rows(
                url,
                "SELECT account_id FROM recommendations WHERE connection = :c AND kind IS NOT NULL",
                c=crm.name,
            )
        }
        assert proposed <= set(crm.account_fields()), (
            f"{crm.name}: an account with a proposal has no product fields"
        )
