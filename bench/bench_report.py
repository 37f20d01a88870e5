"""Benchmark: ``crm-upsell outcomes`` and ``crm-upsell report`` for 100,000 accounts with a year of history.

Fills a SQLite store with synthetic rows (bulk ``executemany``, in the format SQLAlchemy reads back):
100,000 accounts and their current recommendations; a year of daily runs (sync, apply, run rows,
with segment counts); a proposal wave every week (about 3,000 each: tasks, not sent, held out); the
outbox and CRM task rows of every task, half of them done; deals (with line items) opened for about a
third of the proposals within their window, plus 200,000 other deals over the year. Then, in a fresh
process so the memory measured is theirs alone, times the outcome summary (every proposal's outcome
computed from the store, the funnel and the uplift per rule) and the whole report (gathered, drawn,
written). Prints the wall time, the CPU time and the peak RSS of each (the CPU time
tells what a busy machine's wall time hides).

    uv run python -m bench.bench_report [--accounts 100000] [--db PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import peak_rss_mb
from crm_upsell_connector.rules import load_rules
from crm_upsell_connector.rules.config import RulesConfig
from crm_upsell_connector.store import schema

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 1, tzinfo=UTC)
CONN = "bench"
WEEKS = 52
PER_WEEK = 3000
OTHER_DEALS = 200_000
SEGMENTS = ("champion", "loyal", "develop", "activate", "expand", "nurture", "at_risk", "unmeasured")


def ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime storage format


def rules() -> RulesConfig:
    data = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    return load_rules({k: v for k, v in data.items() if k in RulesConfig.model_fields}, "config.example.toml")


def fill(path: Path, accounts: int, seed: int = 1) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    schema.metadata.create_all(engine)
    engine.dispose()
    rng = random.Random(seed)
    catalogue = rules().products
    rule_names = [r.name for r in (*rules().upgrades, *rules().cross_sell)]
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    now_s = ts(NOW)

    def account_rows() -> Iterator[tuple[object, ...]]:
        for i in range(accounts):
            name = f"株式会社テスト{i}" if i % 12 == 0 else f"Account {i}"
            yield (CONN, f"a{i:06d}", name, f"o{i % 500:03d}", now_s, "{}", "{}", "{}")

    db.executemany(
        "INSERT INTO accounts (connection, id, name, owner_id, updated_at, fields, product_fields, extra)"
        " VALUES (?,?,?,?,?,?,?,?)",
        account_rows(),
    )
    db.executemany(
        "INSERT INTO products (connection, id, sku, name, unit_price, updated_at, extra) VALUES (?,?,?,?,?,?,?)",
        ((CONN, f"p-{p.sku}", p.sku, p.name, p.unit_price, now_s, "{}") for p in catalogue),
    )

    def recommendation_rows() -> Iterator[tuple[object, ...]]:
        for i in range(accounts):
            score = rng.uniform(0, 100)
            utilization = rng.random() if rng.random() < 0.95 else None
            facts = {"score": score, "segment": "x", "utilization": utilization}
            proposing = rng.random() < 0.4
            product = rng.choice(catalogue)
            yield (CONN, f"a{i:06d}", now_s, score, rng.choice(SEGMENTS), "[]",
                   "upgrade" if proposing else None, product.sku if proposing else None,
                   rng.uniform(100, 50_000) if proposing else None,
                   f"Upgrade to {product.name}: uses 92% of its seats" if proposing else "No proposal",
                   rng.choice(rule_names) if proposing else None, None, "[]", json.dumps(facts))  # fmt: skip

    db.executemany(
        "INSERT INTO recommendations (connection, account_id, computed_at, score, segment, tags, kind,"
        " product_sku, uplift, reason, rule, blocked_by, factors, facts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        recommendation_rows(),
    )

    runs = []
    start = NOW - timedelta(days=365)
    for day in range(365):
        when = start + timedelta(days=day, hours=6)
        segments = {s: accounts // len(SEGMENTS) + rng.randint(-500, 500) for s in SEGMENTS}
        for command, summary in (
            ("sync", {"records": rng.randint(100, 5000), "calls": rng.randint(10, 200)}),
            (
                "apply",
                {"updated": rng.randint(0, 3000), "tasks_created": 400, "failed": 0, "segments": segments},
            ),
            ("run", {"records": 3000, "calls": 150, "segments": segments, "trigger": "schedule"}),
        ):
            runs.append((CONN, command, ts(when), ts(when + timedelta(minutes=4)), "ok", json.dumps(summary)))
    db.executemany(
        "INSERT INTO runs (connection, command, started_at, finished_at, status, summary) VALUES (?,?,?,?,?,?)",
        runs,
    )

    proposals, outbox, tasks, deals, items = [], [], [], [], []
    for week in range(WEEKS):
        at = start + timedelta(weeks=week)
        for n in range(PER_WEEK):
            account = f"a{rng.randrange(accounts):06d}"
            product = rng.choice(catalogue)
            r = rng.random()
            status = "task" if r < 0.7 else "not_sent" if r < 0.85 else "held_out"
            pid = hashlib.sha256(f"{week}-{n}".encode()).hexdigest()[:40]
            key = pid[:32] if status == "task" else None
            proposals.append((CONN, pid, account, ts(at), ts(at + timedelta(days=90)), rng.choice(rule_names),
                              "upgrade", product.sku, product.family, rng.choice(SEGMENTS),
                              f"o{rng.randrange(500):03d}", rng.uniform(40, 100), rng.uniform(100, 9000),
                              status, "owner_weekly_cap" if status == "not_sent" else None, key))  # fmt: skip
            if key is not None:
                outbox.append(
                    (CONN, "task", key, account, "{}", "done", 1, ts(at), ts(at + timedelta(minutes=1)))
                )
                done = rng.random() < 0.5
                tasks.append((CONN, f"t{week:02d}{n:05d}", "task", account, ts(at + timedelta(days=7)),
                              "Upgrade", "", "done" if done else "open", key,
                              ts(at + timedelta(days=rng.randint(1, 30))), "{}"))  # fmt: skip
            if rng.random() < 0.33:
                opened = at + timedelta(days=rng.randint(0, 120))
                closed = rng.random() < 0.7
                won = closed and rng.random() < 0.6
                deal_id = f"pd{week:02d}{n:05d}"
                deals.append((CONN, deal_id, account, "Upgrade deal", closed, won, product.unit_price * 12,
                              "USD", product.unit_price * 12, ts(opened + timedelta(days=20)), ts(opened),
                              now_s, "{}"))  # fmt: skip
                items.append(
                    (CONN, f"l{deal_id}", deal_id, f"p-{product.sku}", product.sku, product.name, now_s)
                )
    for n in range(OTHER_DEALS):
        opened = start + timedelta(seconds=rng.randint(0, 365 * 86400))
        product = rng.choice(catalogue)
        deal_id = f"od{n:07d}"
        deals.append((CONN, deal_id, f"a{rng.randrange(accounts):06d}", "Renewal", True, rng.random() < 0.8,
                      rng.uniform(1e3, 5e4), "USD", None, ts(opened + timedelta(days=30)), ts(opened), now_s,
                      "{}"))  # fmt: skip
        items.append((CONN, f"l{deal_id}", deal_id, f"p-{product.sku}", product.sku, product.name, now_s))
    db.executemany(
        "INSERT INTO proposals (connection, id, account_id, proposed_at, window_ends_at, rule, kind, product_sku,"
        " product_family, segment, owner_id, score, uplift, status, not_sent_reason, task_key)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        proposals,
    )
    db.executemany(
        "INSERT INTO outbox (connection, kind, ref, account_id, payload, status, attempts, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        outbox,
    )
    db.executemany(
        "INSERT INTO activities (connection, id, kind, account_id, occurred_at, subject, body, status,"
        " upsell_key, updated_at, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        tasks,
    )
    db.executemany(
        "INSERT INTO deals (connection, id, account_id, name, is_closed, is_won, amount, currency, amount_home,"
        " close_date, created_at, updated_at, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        deals,
    )
    db.executemany(
        "INSERT INTO line_items (connection, id, deal_id, product_id, sku, name, updated_at, extra, quantity)"
        " VALUES (?,?,?,?,?,?,?,'{}',1)",
        items,
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()
    print(
        f"store: {accounts:,} accounts, {len(proposals):,} proposals, {len(tasks):,} tasks, "
        f"{len(deals):,} deals, {len(runs):,} runs",
        flush=True,
    )


def measure(path: Path, what: str) -> None:
    """In this (fresh) process: time one of the two commands' work and print time and peak RSS."""
    from crm_upsell_connector.outcomes import load_outcomes, summarise
    from crm_upsell_connector.report import gather_report, write_report

    config = rules()
    engine = sa.create_engine(f"sqlite:///{path}")
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    started = time.perf_counter()
    with engine.connect() as conn:
        if what == "outcomes":
            families = {p.sku: p.family for p in config.products}
            outcomes = load_outcomes(conn, CONN, families, home_currency="USD")
            summary = summarise(outcomes, "rule", 90)
            detail = f"{len(outcomes):,} proposals, {len(summary.groups)} rules"
        else:
            data = gather_report(conn, CONN, config, NOW)
            out = write_report(data, path.with_suffix(".html"))
            detail = f"{out.stat().st_size / 1e6:.1f} MB of HTML"
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    print(
        f"{what:<9} {elapsed:6.2f} s wall, {cpu:6.2f} s CPU   peak RSS {peak_rss_mb():6.0f} MB   ({detail})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or create this store file")
    parser.add_argument("--measure", choices=("outcomes", "report"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.db, args.measure)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not path.exists():
            began = time.perf_counter()
            fill(path, args.accounts)
            print(f"filled in {time.perf_counter() - began:.1f} s", flush=True)
        for what in ("outcomes", "report"):
            cmd = [sys.executable, "-m", "bench.bench_report", "--db", str(path), "--measure", what]
            subprocess.run(cmd, check=True)
        print("targets: each under 30 s and 500 MB")


if __name__ == "__main__":
    main()
