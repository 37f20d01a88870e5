"""Full sync, incremental sync and write-back against the Zoho CRM sandbox: calls, credits, wall time, RSS.

The sandbox runs as a separate process (``crm-upsell sandbox serve --crm zoho``), so the memory and CPU
measured are the connector's alone. The minimum number of calls is ``ceil(N / 200)`` per module read
(the records API returns at most 200 records a call), plus one record count per module a full read
sizes for progress (``GET /{module}/actions/count``: products, accounts, contacts, deals, tasks,
calls, events), plus one call per won or open deal for what it
sells (the deal's Products related list: Zoho has no batch read of related lists, COQL does not join
them), plus ``ceil(K / 200)`` per Sales_Orders / Invoices read when ``--owned-products`` names
``sales_orders`` / ``invoices`` (their product lines arrive inside the order pages), and ``ceil(M / 100)``
per write (100 records a call). See bench/README.md.
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
from crm_upsell_connector.connector import Connector, load_plugins
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.server import SandboxOptions
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store import schema

PAGE = 200
WRITE = 100
#: Streams that are a read of their own module; line items arrive inside the Deals pages.
MODULE_STREAMS = ("users", "products", "accounts", "contacts", "deals", "tasks", "calls", "events", "notes")
#: Streams whose full read first asks the module's record count (one call each, for progress totals).
COUNTED_STREAMS = ("products", "accounts", "contacts", "deals", "tasks", "calls", "events")


RELATED = "GET Deals/{id}/Products"
#: owned_products source -> the module its product lines are read from.
ORDER_MODULES = {"sales_orders": "Sales_Orders", "invoices": "Invoices"}


def minimum_full_calls(
    per_stream: dict[str, int],
    owning_deals: int,
    members_per_campaign: list[int] | None = None,
    orders: dict[str, int] | None = None,
) -> int:
    """``ceil(N / 200)`` per module read (at least one call each), plus one record-count call per
    module in :data:`COUNTED_STREAMS`, plus one related-list call per deal (the line items), plus
    ``ceil(K / 200)`` per order module read (``orders``: module -> records with lines).

    Campaign members (``members_per_campaign``, one count per campaign): ``ceil(campaigns / 200)``
    list calls plus, per campaign, ``ceil(members / 200)`` related-list calls (at least one: an
    empty list answers 204). Zoho has no call listing every membership at once.
    """
    base = sum(max(1, math.ceil(per_stream.get(s, 0) / PAGE)) for s in MODULE_STREAMS) + owning_deals
    base += len(COUNTED_STREAMS)  # "Get Record Count" sizes each module's full read
    base += sum(max(1, math.ceil(n / PAGE)) for n in (orders or {}).values())
    if members_per_campaign is None:
        return base
    campaigns = max(1, math.ceil(len(members_per_campaign) / PAGE))
    return base + campaigns + sum(max(1, math.ceil(n / PAGE)) for n in members_per_campaign)


def order_records(session: Session, modules: list[str]) -> dict[str, int]:
    """Orders / invoices whose lines are in the store, per module (from each line's ``extra``)."""
    import sqlalchemy as sa

    from crm_upsell_connector.store import schema

    li = schema.line_items
    found: dict[str, set[str]] = {m: set() for m in modules}
    with session.engine.connect() as conn:
        query = sa.select(li.c.extra).where(li.c.connection == session.name, li.c.account_id.is_not(None))
        for (extra,) in conn.execute(query):
            if isinstance(extra, dict) and extra.get("module") in found:
                found[extra["module"]].add(str(extra.get("record_id")))
    return {m: len(ids) for m, ids in found.items()}


def owning_deals(session: Session) -> int:
    """Deals in the store: the deals whose Products related list is read (every one)."""
    d = schema.deals
    with session.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(d.c.connection == session.name)
        return int(conn.execute(query).scalar_one())


def campaign_sizes(engine: sa.Engine, connection: str) -> list[int]:
    """Members per campaign as the sync stored them (campaigns without members are not seen here)."""
    cm = schema.campaign_members
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(cm.c.connection == connection).group_by(cm.c.campaign_id)
        return [int(n) for n in conn.execute(query).scalars()]


def credits_of(connector: Connector) -> int:
    return int(getattr(connector, "credits_used", 0))


def main(accounts: int, latency_ms: int, rate: int, concurrency: int, owned: list[str]) -> None:
    with sandbox_process("zoho", accounts, latency_ms, rate) as port:
        asyncio.run(measure(port, accounts, latency_ms, rate, concurrency, owned))


async def measure(
    port: int, accounts: int, latency_ms: int, rate: int, concurrency: int, owned: list[str]
) -> None:
    plugin = load_plugins()["zoho"]
    options = SandboxOptions(accounts=accounts, latency_ms=latency_ms, rate_limit_max=rate)
    with tempfile.TemporaryDirectory() as tmp:
        store = "sqlite:///" + str(Path(tmp) / "bench.sqlite3")
        data = sandbox_config(plugin, f"http://127.0.0.1:{port}", options, store)
        data["connections"]["demo"]["settings"]["max_concurrency"] = concurrency
        data["connections"]["demo"]["settings"]["owned_products"] = owned
        config = parse_config(data, "bench")
        session = Session.open(
            config, "demo", secrets=SecretResolver(environ=plugin.sandbox_secrets(options))
        )
        async with session.connector() as connector:
            await connector.ensure_fields(ALL_FIELDS)
            start_calls = connector.stats.calls
            start_tokens = connector.stats.by_endpoint.get("POST /oauth/v2/token", 0)
            start_credits = credits_of(connector)
            t0 = time.monotonic()
            report = await session.sync(connector)
            wall = time.monotonic() - t0
            # The token call is not an API call and costs no credits; leave it out of the ratio.
            token_calls = connector.stats.by_endpoint.get("POST /oauth/v2/token", 0) - start_tokens
            calls = connector.stats.calls - start_calls - token_calls
            per_stream = {s.stream: s.records for s in report.streams.values()}
            owning = owning_deals(session) if "deal_products" in owned else 0
            modules = [ORDER_MODULES[s] for s in owned if s in ORDER_MODULES]
            orders = order_records(session, modules)
            sizes = campaign_sizes(session.engine, session.name)
            minimum = minimum_full_calls(per_stream, owning, sizes, orders)
            related = connector.stats.by_endpoint.get(RELATED, 0)
            print("full sync:")
            for name, n in per_stream.items():
                print(f"  {name:<11} {n:>8} records")
            print(f"  owned products: {related} Products related-list calls for {owning} won or open deals")
            for module, n in orders.items():
                got = connector.stats.by_endpoint.get(f"GET {module}", 0)
                print(f"  owned products: {got} GET {module} calls for {n} records with product lines")
            print(f"  calls {calls} (minimum {minimum}, ratio {calls / minimum:.3f}, target <= 1.1)")
            print(f"  credits {credits_of(connector) - start_credits}")
            print(f"  wall {wall:.1f} s ({concurrency} in flight)")
            print(f"  retries {connector.stats.retries}, 429s {connector.stats.rate_limited}")
            print(f"  peak RSS {peak_rss_mb():.0f} MB (target <= 300)")

            before = connector.stats.calls
            before_by = dict(connector.stats.by_endpoint)
            retries_before = connector.stats.retries
            credits_before = credits_of(connector)
            t0 = time.monotonic()
            await session.sync(connector)
            for endpoint, n in sorted(connector.stats.by_endpoint.items()):
                if n > before_by.get(endpoint, 0):
                    print(f"    {endpoint}: {n - before_by.get(endpoint, 0)}")
            print(f"    (of which retries: {connector.stats.retries - retries_before})")
            print(
                f"incremental sync, nothing changed: {connector.stats.calls - before} calls, "
                f"{credits_of(connector) - credits_before} credits for {len(connector.streams)} streams "
                f"in {time.monotonic() - t0:.1f} s (target <= 1 per stream)"
            )

            recs = session.score()
            plan = session.plan(recs)
            before = connector.stats.calls
            credits_before = credits_of(connector)
            t0 = time.monotonic()
            applied = await session.apply(connector, plan)
            m_updates, m_tasks = applied.updated, applied.tasks_created
            ideal = math.ceil(m_updates / WRITE) + math.ceil(m_tasks / WRITE)
            used = connector.stats.calls - before
            print(
                f"write-back: {m_updates} accounts updated, {m_tasks} tasks created with {used} calls, "
                f"{credits_of(connector) - credits_before} credits (ideal {ideal}, "
                f"ratio {used / max(ideal, 1):.3f}, target <= 1.1) in {time.monotonic() - t0:.1f} s"
            )
            print(
                f"credits this run: {credits_of(connector)}; peak RSS overall {peak_rss_mb():.0f} MB "
                f"at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            )
        session.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--rate", type=int, default=190, help="sandbox requests per 10 s")
    parser.add_argument("--concurrency", type=int, default=5, help="the connector's max_concurrency")
    parser.add_argument(
        "--owned-products",
        default="deal_products",
        help="comma-separated owned_products sources: deal_products, sales_orders, invoices",
    )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    owned = [s.strip() for s in args.owned_products.split(",") if s.strip()]
    main(args.accounts, args.latency_ms, args.rate, args.concurrency, owned)
