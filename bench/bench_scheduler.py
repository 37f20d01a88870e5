"""Scheduler benchmark: several ``crm-upsell schedule`` workers on one PostgreSQL store.

The workers are whatever ``crm-upsell schedule`` runs on PostgreSQL: procrastinate workers since
issue 19 (before it, APScheduler on a shared job store with a claim table).

Starts sandbox CRMs (in this process's threads) for C connections, W workers sharing a throwaway
PostgreSQL database, runs them for a while, SIGKILLs the worker that is in the middle of a run, and
prints: how late runs start after their tick, how long runs with nothing new take, how soon the
killed worker's connection is taken over, how many ticks ran (and whether any ran twice), and how the
runs were spread over the workers.

    uv run python -m bench.bench_scheduler                      # 6 connections, 3 workers, 90 s
    uv run python -m bench.bench_scheduler --connections 3 --seconds 45
    # the scale-out figure: 200 tiny connections on 4 workers, no kill
    uv run python -m bench.bench_scheduler --connections 200 --workers 4 --accounts 5 \
        --latency-ms 0 --every 120 --seconds 360 --no-kill

"Runs per minute" counts runs started between the first tick and the end; "ticks due" counts the
ticks of every connection in that window that had passed when the workers were stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text

from tests.scheduling.support import setup

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _runs(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT id, connection, status, started_at, finished_at, summary FROM runs "
                        "WHERE command = 'run' ORDER BY started_at"
                    )
                )
            )
    finally:
        engine.dispose()


def _busy_pid(url: str, pids: set[int]) -> tuple[str, int] | None:
    """A connection syncing right now and the pid of the worker running it (from the run's summary)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT r.connection, r.summary FROM runs r JOIN runs s ON s.connection = r.connection "
                    "AND s.command = 'sync' AND s.status = 'running' "
                    "WHERE r.command = 'run' AND r.status = 'running'"
                )
            ).all()
    finally:
        engine.dispose()
    for connection, summary in rows:
        pid = int((summary if isinstance(summary, dict) else json.loads(summary)).get("pid", 0))
        if pid in pids:
            return str(connection), pid
    return None


def _queue_delays(url: str) -> None:
    """procrastinate only: how long after its tick a run job was queued, and taken by a worker."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT to_regclass('procrastinate_events')")).scalar():
                return
            rows = conn.execute(
                text(
                    "SELECT (j.args ->> 'timestamp')::float AS tick, "
                    "extract(epoch FROM min(e.at) FILTER (WHERE e.type = 'deferred')) AS deferred, "
                    "extract(epoch FROM min(e.at) FILTER (WHERE e.type = 'started')) AS started "
                    "FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id "
                    "WHERE j.task_name = 'crm_upsell.run_connection' GROUP BY j.id"
                )
            ).all()
    finally:
        engine.dispose()
    queued = [float(r.deferred) - r.tick for r in rows if r.deferred is not None]
    taken = [float(r.started) - r.tick for r in rows if r.started is not None]
    if queued and taken:
        print(
            f"job queued after tick: median {statistics.median(queued) * 1000:.0f} ms, p95 "
            f"{_pct(queued, 0.95) * 1000:.0f} ms; taken by a worker: median "
            f"{statistics.median(taken) * 1000:.0f} ms, p95 {_pct(taken, 0.95) * 1000:.0f} ms"
        )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=6)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--every", type=int, default=5, help="seconds between ticks")
    parser.add_argument("--seconds", type=int, default=90, help="how long the workers run")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="runs at once per worker (default: all)")
    parser.add_argument("--no-kill", action="store_true", help="do not SIGKILL a worker mid-run")
    args = parser.parse_args()

    admin = psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)
    name = f"crm_upsell_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    crms = [(f"c{i}", "salesforce" if i % 3 == 2 else "hubspot") for i in range(args.connections)]
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            setup(
                Path(tmp),
                crms,
                url,
                accounts=args.accounts,
                latency_ms=args.latency_ms,
                schedules={n: f'every = "{args.every}s"' for n, _ in crms},
                scheduler={"threads": args.threads or max(2, args.connections), "heartbeat_s": 2.0},
            ) as env,
        ):
            env.setup_all()
            print(
                f"{len(crms)} connections ({args.accounts} accounts each), {args.workers} workers "
                f"({args.threads or 'all'} at once each), every {args.every}s, {args.seconds}s; "
                f"load average before: {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            workers = [env.start_worker() for _ in range(args.workers)]
            started = time.monotonic()
            window = (datetime.now(UTC), datetime.now(UTC))
            killed: tuple[str, int, datetime] | None = None
            loads: list[float] = []
            try:
                while time.monotonic() - started < args.seconds:
                    if (
                        int(time.monotonic() - started) % 10 == 0
                        and len(loads) < (time.monotonic() - started) / 10
                    ):
                        loads.append(os.getloadavg()[0])
                    if not args.no_kill and killed is None and time.monotonic() - started > args.seconds / 3:
                        hit = _busy_pid(url, {p.pid for p in workers})
                        if hit is not None:
                            os.kill(hit[1], signal.SIGKILL)
                            killed = (hit[0], hit[1], datetime.now(UTC))
                            print(f"killed worker pid {hit[1]} while it synced {hit[0]}", flush=True)
                    time.sleep(0.1)
            finally:
                window = (window[0], datetime.now(UTC))
                for p in workers:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                stops = []
                for p in workers:
                    t0 = time.monotonic()
                    try:
                        code = p.wait(120)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        code = p.wait()
                    stops.append((code, time.monotonic() - t0))
            _report(url, killed, stops, args.every, window, len(crms))
            if loads:
                print(f"load average while running: max {max(loads):.2f}, mean {statistics.mean(loads):.2f}")
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _report(
    url: str,
    killed: tuple[str, int, datetime] | None,
    stops: list[tuple[int, float]],
    every: int,
    window: tuple[datetime, datetime],
    connections: int,
) -> None:
    runs = _runs(url)
    summaries = [r.summary if isinstance(r.summary, dict) else json.loads(r.summary) for r in runs]
    lateness = [
        (r.started_at - datetime.fromisoformat(s["tick"])).total_seconds()
        for r, s in zip(runs, summaries, strict=True)
    ]
    first: set[str] = set()
    idle: list[float] = []
    for r in runs:
        if r.status == "ok" and r.finished_at is not None:
            if r.connection in first:
                idle.append((r.finished_at - r.started_at).total_seconds())
            first.add(r.connection)
    ticks = Counter((r.connection, s["tick"]) for r, s in zip(runs, summaries, strict=True))
    print(f"runs: {len(runs)}  by status: {dict(Counter(r.status for r in runs))}")
    print(f"ticks run twice: {sum(1 for n in ticks.values() if n > 1)}")
    print(f"runs per worker: {sorted(Counter(s['pid'] for s in summaries).values(), reverse=True)}")
    print(
        f"start after tick: median {statistics.median(lateness) * 1000:.0f} ms, "
        f"p95 {_pct(lateness, 0.95) * 1000:.0f} ms, max {max(lateness) * 1000:.0f} ms"
    )
    # Interval ticks fall on multiples of `every` seconds from midnight UTC (config.INTERVAL_ANCHOR).
    begin, end = window
    midnight = begin.replace(hour=0, minute=0, second=0, microsecond=0)
    first_tick = (int((begin - midnight).total_seconds()) // every + 1) * every
    due = max(0, int((end - midnight).total_seconds()) // every * every - first_tick) // every + 1
    in_window = [
        r
        for r, s in zip(runs, summaries, strict=True)
        if (datetime.fromisoformat(s["tick"]) - midnight).total_seconds() >= first_tick
    ]
    minutes = (end - (midnight + timedelta(seconds=first_tick))).total_seconds() / 60
    print(
        f"ticks due after start: {due * connections}, run: {len(in_window)}; "
        f"runs per minute: {len(in_window) / minutes:.1f} (over {minutes:.1f} min from the first tick)"
    )
    _queue_delays(url)
    if idle:
        print(
            f"runs after the first (incremental): median {statistics.median(idle):.2f} s, "
            f"p95 {_pct(idle, 0.95):.2f} s"
        )
    if killed is not None:
        connection, pid, at = killed
        after = [
            r.started_at
            for r, s in zip(runs, summaries, strict=True)
            if r.connection == connection and r.started_at > at and s["pid"] != pid
        ]
        took = (min(after) - at).total_seconds() if after else float("nan")
        print(f"takeover of {connection} after the kill: {took:.2f} s (interval {every} s)")
    print(f"stop on SIGTERM: exit codes {[c for c, _ in stops]}, slowest {max(t for _, t in stops):.2f} s")


if __name__ == "__main__":
    main()
