"""Full sync, incremental sync and write-back against the HubSpot sandbox: calls, wall time, peak RSS.

The sandbox runs as a separate process at HubSpot's Pro limit (190 requests / 10 s) with 100 ms of
latency per request. See bench/README.md for the minimum number of calls these are compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench.common import peak_rss_mb, sandbox_process
from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import load_plugins
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.server import SandboxOptions
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store import schema


def minimum_full_calls(per_stream: dict[str, int]) -> int:
    """List endpoints: 100 objects per call; the owners API: 500 per call (see README.md)."""
    return sum(math.ceil(n / (500 if stream == "owners" else 100)) or 1 for stream, n in per_stream.items())


def main(accounts: int, latency_ms: int, rate: int) -> None:
    with sandbox_process("hubspot", accounts, latency_ms, rate) as port:
        asyncio.run(measure(port, accounts, latency_ms, rate))


async def measure(port: int, accounts: int, latency_ms: int, rate: int) -> None:
    plugin = load_plugins()["hubspot"]
    options = SandboxOptions(accounts=accounts, latency_ms=latency_ms, rate_limit_max=rate)
    with tempfile.TemporaryDirectory() as tmp:
        store = "sqlite:///" + str(Path(tmp) / "bench.sqlite3")
        config = parse_config(sandbox_config(plugin, f"http://127.0.0.1:{port}", options, store), "bench")
        session = Session.open(
            config, "demo", secrets=SecretResolver(environ=plugin.sandbox_secrets(options))
        )
        async with session.connector() as connector:
            await connector.ensure_fields(ALL_FIELDS)
            start_calls = connector.stats.calls
            t0 = time.monotonic()
            report = await session.sync(connector)
            wall = time.monotonic() - t0
            calls = connector.stats.calls - start_calls
            per_stream = {s.stream: s.records for s in report.streams.values()}
            minimum = minimum_full_calls(per_stream)
            bound = minimum / (rate / 10)
            print("full sync:")
            for name, n in per_stream.items():
                print(f"  {name:<11} {n:>8} records")
            # Marketing engagement comes inside the contacts' pages: rows, but no call of its own.
            with session.engine.connect() as conn:
                engaged = conn.execute(
                    sa.select(sa.func.count()).select_from(schema.contact_engagement)
                ).scalar_one()
            print(f"  {'engagement':<11} {engaged:>8} rows (read with the contacts, no extra call)")
            print(f"  calls {calls} (minimum {minimum}, ratio {calls / minimum:.3f}, target <= 1.1)")
            print(
                f"  wall {wall:.1f} s (rate-limit bound {minimum / (rate / 10):.1f} s, ratio {wall / bound:.3f}, target <= 1.2)"
            )
            print(f"  retries {connector.stats.retries}, 429s {connector.stats.rate_limited}")
            print(f"  peak RSS {peak_rss_mb():.0f} MB (target <= 300)")

            before = connector.stats.calls
            before_by = dict(connector.stats.by_endpoint)
            retries_before = connector.stats.retries
            t0 = time.monotonic()
            await session.sync(connector)
            for endpoint, n in sorted(connector.stats.by_endpoint.items()):
                if n > before_by.get(endpoint, 0):
                    print(f"    {endpoint}: {n - before_by.get(endpoint, 0)}")
            print(f"    (of which retries: {connector.stats.retries - retries_before})")
            print(
                f"incremental sync, nothing changed: {connector.stats.calls - before} calls for "
                f"{len(connector.streams)} streams in {time.monotonic() - t0:.1f} s (target <= 1 per stream)"
            )

            recs = session.score()
            plan = session.plan(recs)
            before = connector.stats.calls
            t0 = time.monotonic()
            applied = await session.apply(connector, plan)
            m_updates, m_tasks = applied.updated, applied.tasks_created
            ideal = math.ceil(m_updates / 100) + math.ceil(m_tasks / 100)
            used = connector.stats.calls - before
            print(
                f"write-back: {m_updates} companies updated, {m_tasks} tasks created with {used} calls "
                f"(ideal {ideal}, ratio {used / max(ideal, 1):.3f}, target <= 1.05) in {time.monotonic() - t0:.1f} s"
            )
            print(f"peak RSS overall {peak_rss_mb():.0f} MB at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        session.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--rate", type=int, default=190)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(args.accounts, args.latency_ms, args.rate)
