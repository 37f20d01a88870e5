"""Benchmark: features (SQL) plus the rule pass for 100,000 accounts and 2,000,000 activities.

Fills a SQLite store file with synthetic rows (bulk ``executemany`` through the DB-API, in the
format SQLAlchemy reads back), then times ``compute_features`` and ``RuleEngine.evaluate`` with the
shipped ``config.example.toml``. Prints accounts per second, wall time and peak RSS.

    uv run python -m bench.bench_rules [--accounts 100000] [--activities 2000000] [--db PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import peak_rss_mb
from crm_upsell_connector.features import compute_features
from crm_upsell_connector.rules import RuleEngine, load_rules, segment_counts
from crm_upsell_connector.store import schema

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 1, tzinfo=UTC)
CONN = "bench"
SKUS = [
    ("CRM-STARTER", 25.0),
    ("CRM-PRO", 60.0),
    ("CRM-ENT", 120.0),
    ("MKT-BASIC", 400.0),
    ("SUP-STD", 150.0),
]
KINDS = ("email", "email", "email", "call", "call", "meeting", "note", "task")


def ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime storage format


BODY = (
    "Discussed current usage and the goals for next quarter with the operations lead; "
    "reviewed seat usage, the reporting setup and the upcoming renewal timeline.\n\n"
)
FOLLOW_UP = "Next step: share the admin guide and book a follow-up call in two weeks."
BURIED = "They said they will cancel the analytics add-on unless exports are fixed."


def fill(path: Path, accounts: int, activities: int, seed: int = 1) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    schema.metadata.create_all(engine)
    engine.dispose()
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    now_s = ts(NOW)

    def account_rows() -> Iterator[tuple[object, ...]]:
        for i in range(accounts):
            seats = rng.choice((5, 10, 20, 50, 100))
            fields = {
                "seats_purchased": str(seats),
                "seats_active": str(rng.randint(0, seats)),
                "nps_score": str(rng.randint(0, 10)) if rng.random() < 0.8 else None,
                "onboarding_stage": rng.choice(("live", "live", "live", "implementation")),
                "do_not_contact": "true" if rng.random() < 0.02 else "false",
            }
            created = NOW - timedelta(days=rng.randint(10, 2000))
            yield (CONN, f"a{i:06d}", f"Account {i}", f"o{i % 500:03d}", "customer", ts(created), now_s,
                   json.dumps(fields), "{}", "{}")  # fmt: skip

    db.executemany(
        "INSERT INTO accounts (connection, id, name, owner_id, lifecycle_stage, created_at, updated_at,"
        " fields, product_fields, extra) VALUES (?,?,?,?,?,?,?,?,?,?)",
        account_rows(),
    )
    db.executemany(
        "INSERT INTO contacts (connection, id, account_id, name, updated_at, extra) VALUES (?,?,?,?,?,?)",
        ((CONN, f"c{i:07d}", f"a{i // 3:06d}", "Contact", now_s, "{}") for i in range(accounts * 3)),
    )
    db.executemany(
        "INSERT INTO products (connection, id, sku, name, unit_price, updated_at, extra) VALUES (?,?,?,?,?,?,?)",
        ((CONN, f"p-{sku}", sku, sku, price, now_s, "{}") for sku, price in SKUS),
    )
    deals, items = [], []
    for i in range(accounts):
        for k in range(rng.randint(1, 3)):
            won = k == 0 or rng.random() < 0.7
            closed = won or rng.random() < 0.5
            when = NOW - timedelta(days=rng.randint(1, 1500))
            deal_id = f"d{i:06d}-{k}"
            name = f"Account {i} - Renewal" if k else f"Account {i} - New"
            deals.append(
                (CONN, deal_id, f"a{i:06d}", name, closed, won, rng.uniform(1e3, 5e4), ts(when), now_s, "{}")
            )
            sku, price = rng.choice(SKUS)
            items.append((CONN, f"l{i:06d}-{k}", deal_id, f"p-{sku}", None, "item", rng.randint(1, 50), price,
                          now_s, "{}"))  # fmt: skip
    db.executemany(
        "INSERT INTO deals (connection, id, account_id, name, is_closed, is_won, amount, close_date, updated_at,"
        " extra) VALUES (?,?,?,?,?,?,?,?,?,?)",
        deals,
    )
    db.executemany(
        "INSERT INTO line_items (connection, id, deal_id, product_id, sku, name, quantity, unit_price,"
        " updated_at, extra) VALUES (?,?,?,?,?,?,?,?,?,?)",
        items,
    )
    del deals, items

    def activity_rows() -> Iterator[tuple[object, ...]]:
        for n in range(activities):
            kind = rng.choice(KINDS)
            account = f"a{rng.randrange(accounts):06d}"
            direction = rng.choice(("inbound", "outbound")) if kind in ("email", "call") else None
            complaint = direction == "inbound" and rng.random() < 0.01
            when = NOW - timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
            # Whole bodies (two paragraphs, ~250 characters): the complaint scan reads them all.
            buried = direction != "outbound" and rng.random() < 0.01
            yield (CONN, f"x{n:08d}", kind, account, None, ts(when), direction,
                   "complaint" if complaint else None, "Complaint: outage" if complaint else "Subject",
                   BODY + (BURIED if buried else FOLLOW_UP),
                   "open" if kind == "task" else None, None, now_s, "{}")  # fmt: skip

    db.executemany(
        "INSERT INTO activities (connection, id, kind, account_id, contact_id, occurred_at, direction, outcome,"
        " subject, body, status, upsell_key, updated_at, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        activity_rows(),
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=2_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or create this store file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not path.exists():
            started = time.perf_counter()
            fill(path, args.accounts, args.activities)
            print(f"fill: {args.accounts:,} accounts, {args.activities:,} activities in "
                  f"{time.perf_counter() - started:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")  # fmt: skip
        rss_before = peak_rss_mb()
        with (ROOT / "config.example.toml").open("rb") as f:
            rules = load_rules(tomllib.load(f), "config.example.toml")
        engine = sa.create_engine(f"sqlite:///{path}")
        started = time.perf_counter()
        with engine.connect() as conn:
            features = compute_features(conn, CONN, NOW, rules.features, rules.products)
        t_features = time.perf_counter() - started
        scored = time.perf_counter()
        recs = RuleEngine(rules).evaluate(features, NOW)
        t_rules = time.perf_counter() - scored
        total = t_features + t_rules
        n = len(recs)
        print(f"features: {t_features:.2f} s   rules: {t_rules:.2f} s   total: {total:.2f} s")
        print(f"accounts/s: {n / total:,.0f} ({n:,} accounts)")
        print(f"peak RSS: {peak_rss_mb():.0f} MB (after filling the store: {rss_before:.0f} MB)")
        kinds = Counter(r.proposal.kind for r in recs if r.proposal)
        print(f"segments: {segment_counts(recs)}")
        print(f"proposals: {dict(kinds)}; blocked: {sum(r.blocked_by is not None for r in recs):,}")


if __name__ == "__main__":
    main()
