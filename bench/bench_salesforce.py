"""Full sync, incremental sync and write-back against the Salesforce sandbox: calls, wall time, peak RSS.

The sandbox runs as a separate process (``crm-upsell sandbox serve --crm salesforce``), so the memory
measured is the connector's. The minimum number of calls: one SOQL batch per 2,000 records per
stream (``ceil(N / 2000)``, at least one), and ``ceil(M / 200)`` sObject Collections calls for each
of the account updates and the task creations. The OAuth token request is not an API call in
Salesforce's count and is reported apart.
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

from bench.common import peak_rss_mb, sandbox_process
from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import load_plugins
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.server import SandboxOptions
from crm_upsell_connector.secrets import SecretResolver

TOKEN_ENDPOINT = "POST /services/oauth2/token"
QUERY_BATCH = 2000
COLLECTION_LIMIT = 200


def minimum_full_calls(per_stream: dict[str, int]) -> int:
    return sum(max(1, math.ceil(n / QUERY_BATCH)) for n in per_stream.values())


def api_calls(by_endpoint: dict[str, int], before: dict[str, int] | None = None) -> int:
    before = before or {}
    return sum(n - before.get(k, 0) for k, n in by_endpoint.items() if k != TOKEN_ENDPOINT)


def main(accounts: int, latency_ms: int, rate: int) -> None:
    with sandbox_process("salesforce", accounts, latency_ms, rate) as port:
        asyncio.run(measure(port, accounts, latency_ms, rate))


async def measure(port: int, accounts: int, latency_ms: int, rate: int) -> None:
    plugin = load_plugins()["salesforce"]
    options = SandboxOptions(accounts=accounts, latency_ms=latency_ms, rate_limit_max=rate)
    with tempfile.TemporaryDirectory() as tmp:
        store = "sqlite:///" + str(Path(tmp) / "bench.sqlite3")
        config = parse_config(sandbox_config(plugin, f"http://127.0.0.1:{port}", options, store), "bench")
        session = Session.open(
            config, "demo", secrets=SecretResolver(environ=plugin.sandbox_secrets(options))
        )
        async with session.connector() as connector:
            await connector.ensure_fields(ALL_FIELDS)
            before = dict(connector.stats.by_endpoint)
            t0 = time.monotonic()
            report = await session.sync(connector)
            wall = time.monotonic() - t0
            calls = api_calls(connector.stats.by_endpoint, before)
            tokens = connector.stats.by_endpoint.get(TOKEN_ENDPOINT, 0)
            per_stream = {s.stream: s.records for s in report.streams.values()}
            minimum = minimum_full_calls(per_stream)
            print("full sync:")
            for name, n in per_stream.items():
                print(f"  {name:<14} {n:>8} records")
            print(f"  API calls {calls} (minimum {minimum}, ratio {calls / minimum:.3f}, target <= 1.1)")
            print(f"  token requests {tokens} (not API calls)")
            print(
                f"  wall {wall:.1f} s; retries {connector.stats.retries}, 429s {connector.stats.rate_limited}"
            )
            print(f"  peak RSS {peak_rss_mb():.0f} MB (target <= 300)")

            before = dict(connector.stats.by_endpoint)
            t0 = time.monotonic()
            await session.sync(connector)
            used = api_calls(connector.stats.by_endpoint, before)
            for endpoint, n in sorted(connector.stats.by_endpoint.items()):
                if n > before.get(endpoint, 0):
                    print(f"    {endpoint}: {n - before.get(endpoint, 0)}")
            print(
                f"incremental sync, nothing changed: {used} calls for {len(connector.streams)} streams "
                f"in {time.monotonic() - t0:.1f} s (target <= 1 per stream)"
            )

            recs = session.score()
            plan = session.plan(recs)
            before = dict(connector.stats.by_endpoint)
            t0 = time.monotonic()
            applied = await session.apply(connector, plan)
            m_updates, m_tasks = applied.updated, applied.tasks_created
            ideal = math.ceil(m_updates / COLLECTION_LIMIT) + math.ceil(m_tasks / COLLECTION_LIMIT)
            used = api_calls(connector.stats.by_endpoint, before)
            print(
                f"write-back: {m_updates} accounts updated, {m_tasks} tasks created, {len(applied.failed)} "
                f"failed, with {used} calls (ideal {ideal}, ratio {used / max(ideal, 1):.3f}, target <= 1.1) "
                f"in {time.monotonic() - t0:.1f} s"
            )
            budget = getattr(getattr(connector, "client", None), "budget", None)
            if budget is not None:
                print(f"daily API share: {budget.spent} calls of an allowance of {budget.allowance}")
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
