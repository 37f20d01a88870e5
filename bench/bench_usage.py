"""Usage sources at scale: 1,000,000 usage rows matched and featurised for 100,000 accounts.

A CSV export (one row per workspace domain and day, ten days per account, ordered by day as
analytics exports are) is read into a SQLite store that holds 100,000 accounts, as the usage stream
of a sync does (chunks of 10,000 rows, a commit per chunk, only changed values stored); then the
match report and the usage features of every account are computed, as ``check``/``sync`` and
``score`` do. Prints the time of each step and the peak memory of the process.

    uv run --frozen python -m bench.bench_usage                    # 1,000,000 rows, 100,000 accounts
    uv run --frozen python -m bench.bench_usage --accounts 10000   # a quick run (100,000 rows)
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import peak_rss_mb
from crm_upsell_connector.config import parse_config
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store import schema
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.sync import SyncReport
from crm_upsell_connector.usage.features import usage_features
from crm_upsell_connector.usage.matching import stored_match_report
from crm_upsell_connector.usage.stream import UsageSyncer

NOW = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
DAYS = 10


def _domain(i: int) -> str:
    return f"customer-{i}.example.com"


def seed_accounts(engine: sa.Engine, accounts: int) -> None:
    rows = [
        {
            "connection": "bench",
            "id": str(10_000_000 + i),
            "name": f"Customer {i}",
            "domain": _domain(i) if i % 50 else f"www.{_domain(i).upper()}",
            "updated_at": NOW,
            "fields": {},
            "product_fields": {},
            "extra": {},
        }
        for i in range(accounts)
    ]
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(schema.accounts.insert(), rows[start : start + 5000])


def write_csv(path: Path, accounts: int) -> int:
    """Ten days per account, 90 days apart at most; 2% of domains belong to no account."""
    rng = random.Random(7)
    seats = [rng.randint(5, 200) for _ in range(accounts)]
    days = [(NOW - timedelta(days=10 * (DAYS - 1 - d))).date().isoformat() for d in range(DAYS)]
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["workspace_domain", "day", "seats_in_use", "active_users"])
        for day in days:
            for i in range(accounts):
                if rng.random() < 0.3:  # about a third of the values change from one day to the next
                    seats[i] = max(1, seats[i] + rng.randint(-5, 8))
                domain = _domain(i) if i % 50 != 7 else f"no-such-account-{i}.example.org"
                out.writerow([domain, day, seats[i], seats[i] + i % 4])
                rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-usage-") as tmp:
        work = Path(tmp)
        engine = open_store(f"sqlite:///{work / 'store.sqlite3'}")
        t = time.perf_counter()
        seed_accounts(engine, args.accounts)
        rows = write_csv(work / "usage.csv", args.accounts)
        print(f"set-up: {args.accounts:,} accounts, {rows:,} usage rows in {time.perf_counter() - t:.1f} s")
        config = parse_config(
            {
                "connections": {"bench": {"crm": "hubspot"}},
                "usage": {
                    "sources": [
                        {
                            "name": "product",
                            "path": "usage.csv",
                            "key": "workspace_domain",
                            "date_column": "day",
                            "metrics": {
                                "seats_in_use": {"column": "seats_in_use"},
                                "active_users": {"column": "active_users"},
                            },
                        }
                    ]
                },
            },
            str(work / "config.toml"),
        )
        syncer = UsageSyncer(engine, config.usage, "bench", SecretResolver({}), clock=lambda: NOW)
        report = SyncReport()
        rss_before = peak_rss_mb()
        t, cpu = time.perf_counter(), time.process_time()
        asyncio.run(syncer.run(report))
        read_s, read_cpu = time.perf_counter() - t, time.process_time() - cpu
        stream = report.streams["usage:product"]
        print(
            f"read + match-detect + store: {read_s:.1f} s ({rows / read_s:,.0f} rows/s; "
            f"CPU {read_cpu:.1f} s, {rows / read_cpu:,.0f} rows per CPU second), "
            f"{stream.pages} chunks, {stream.records:,} history rows stored (changed values only)"
        )
        print(report.usage["product"]["line"])
        t, cpu = time.perf_counter(), time.process_time()
        with engine.connect() as conn:
            stored_match_report(conn, "bench", config.usage.sources[0])
            match_s = time.perf_counter() - t
            t, cpu = time.perf_counter(), time.process_time()
            features = usage_features(conn, "bench", NOW, config.usage)
        feature_s, feature_cpu = time.perf_counter() - t, time.process_time() - cpu
        print(f"match report: {match_s:.1f} s")
        print(
            f"featurise (value today, change over 30 and 90 days, per metric): {feature_s:.1f} s "
            f"(CPU {feature_cpu:.1f} s) "
            f"for {len(features):,} matched accounts"
        )
        sample = features[str(10_000_001)]
        print(f"e.g. account 10000001: {sample}")
        print(
            f"total {read_s + match_s + feature_s:.1f} s; peak memory {peak_rss_mb():.0f} MB "
            f"(before the read: {rss_before:.0f} MB)"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
