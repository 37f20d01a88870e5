"""Scheduler benchmark: several ``crm-upsell schedule`` workers on one PostgreSQL store.

Starts sandbox CRMs (in this process's threads) for C connections, W workers sharing a throwaway
PostgreSQL database, runs them for a while, SIGKILLs the worker that is in the middle of a run, and
prints: how late runs start after their tick, how long runs with nothing new take, how soon the
killed worker's connection is taken over, how many ticks ran (and whether any ran twice), and how the
runs were spread over the workers.

    uv run python -m bench.bench_scheduler                      # 6 connections, 3 workers, 90 s
    uv run python -m bench.bench_scheduler --connections 3 --seconds 45
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
from datetime import UTC, datetime
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
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT r.connection, t.worker FROM runs r JOIN LATERAL (SELECT worker FROM schedule_ticks "
                    "WHERE connection = r.connection ORDER BY tick DESC LIMIT 1) t ON true "
                    "WHERE r.command = 'sync' AND r.status = 'running'"
                )
            ).all()
    finally:
        engine.dispose()
    for connection, worker in rows:
        pid = int(str(worker).split(":")[1])
        if pid in pids:
            return str(connection), pid
    return None


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
                scheduler={"threads": max(2, args.connections), "heartbeat_s": 2.0},
            ) as env,
        ):
            for n, _ in crms:
                done = env.cli("--connection", n, "setup")
                assert done.returncode == 0, done.stderr
            print(
                f"{len(crms)} connections ({args.accounts} accounts each), {args.workers} workers, every {args.every}s"
            )
            workers = [env.start_worker() for _ in range(args.workers)]
            started = time.monotonic()
            killed: tuple[str, int, datetime] | None = None
            try:
                while time.monotonic() - started < args.seconds:
                    if killed is None and time.monotonic() - started > args.seconds / 3:
                        hit = _busy_pid(url, {p.pid for p in workers})
                        if hit is not None:
                            os.kill(hit[1], signal.SIGKILL)
                            killed = (hit[0], hit[1], datetime.now(UTC))
                            print(f"killed worker pid {hit[1]} while it synced {hit[0]}", flush=True)
                    time.sleep(0.1)
            finally:
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
            _report(url, killed, stops, args.every)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _report(
    url: str, killed: tuple[str, int, datetime] | None, stops: list[tuple[int, float]], every: int
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
