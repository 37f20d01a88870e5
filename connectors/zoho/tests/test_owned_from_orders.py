"""What an account owns from the product lines of Sales Orders and Invoices (issue 11), over HTTP
against the sandbox: owned tiers from order lines, once per account when a deal and an order (and an
invoice) list the same product, and an org without the module skipped with one warning."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date
from pathlib import Path
from typing import Any

import httpx
import pytest
from crm_upsell_zoho.connector import ZohoConnector, ZohoPlugin
from crm_upsell_zoho.sandbox import create_app, delete, sandbox_state, set_fields, zoho_id
from crm_upsell_zoho.sandbox.inventory import INVOICE_SHARE, SO_SHARE
from crm_upsell_zoho.settings import ZohoSettings

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.features import compute_features
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.models import LineItem
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver

PLUGIN = ZohoPlugin()


def _expected_tiers(scenario: Scenario, catalogue: dict[str, tuple[str, int]], share: int) -> dict[str, Any]:
    """Per company with orders (every ``share``-th): family -> tier of the latest won deal's product."""
    index = {c.key: i for i, c in enumerate(scenario.companies)}
    products = {p.key: p.sku for p in scenario.products}
    deals = {d.key: d for d in scenario.deals if d.stage == "closedwon"}
    best: dict[str, dict[str, tuple[date, int]]] = {}
    for item in scenario.line_items:
        deal = deals.get(item.deal_key)
        sku = products[item.product_key]
        if deal is None or sku not in catalogue or index[deal.company_key] % share:
            continue
        family, tier = catalogue[sku]
        mine = best.setdefault(deal.company_key, {})
        candidate = (deal.close_date.astimezone(UTC).date(), tier)
        if family not in mine or candidate > mine[family]:
            mine[family] = candidate
    return {key: {fam: float(v[1]) for fam, v in fams.items()} for key, fams in best.items()}


async def _features(owned_products: list[str]) -> tuple[Scenario, Any, dict[str, Any], dict[str, int]]:
    """A demo sync with ``owned_products`` set; the features per account, and the calls by endpoint."""
    options = SandboxOptions(accounts=30, seed=11)
    scenario = build_scenario(accounts=30, seed=11)
    app = create_app(scenario, options)
    with SandboxServer(app) as base_url, tempfile.TemporaryDirectory() as tmp:
        data = sandbox_config(PLUGIN, base_url, options, "sqlite:///" + str(Path(tmp) / "s.sqlite3"))
        data["connections"]["demo"]["settings"]["owned_products"] = owned_products
        config = parse_config(data, "test")
        session = Session.open(
            config, "demo", secrets=SecretResolver(environ=PLUGIN.sandbox_secrets(options))
        )
        async with session.connector() as connector:
            await connector.ensure_fields(ALL_FIELDS)
            await session.sync(connector)
            calls = dict(connector.stats.by_endpoint)
        rules = session.rules
        catalogue = {p.sku: (p.family, p.tier) for p in rules.products}
        with session.engine.connect() as db:
            rows = {
                r["account_id"]: r
                for r in compute_features(db, "demo", session.clock(), rules.features, rules.products)
            }
        session.engine.dispose()
    ids = {c.key: zoho_id(app, c.key) for c in scenario.companies}
    return scenario, catalogue, {key: rows.get(ids[key]) for key in ids}, calls


async def test_owned_tiers_of_several_accounts_come_from_sales_order_lines() -> None:
    scenario, catalogue, rows, calls = await _features(["sales_orders"])
    # Orders only: no deal's Products related list is read, and the lines come a page of orders a call.
    assert calls.get("GET Deals/{id}/Products", 0) == 0
    assert calls.get("GET Sales_Orders", 0) >= 1
    expected = _expected_tiers(scenario, catalogue, SO_SHARE)
    owning = [key for key, fams in expected.items() if fams]
    assert len(owning) >= 3
    for key in owning:
        assert dict(rows[key]["owned_tiers"]) == expected[key], key
    # An account without orders owns nothing when orders are the only source.
    index = {c.key: i for i, c in enumerate(scenario.companies)}
    others = [k for k in rows if index[k] % SO_SHARE and rows[k] is not None]
    assert others and all(not rows[k]["owned_tiers"] for k in others)


async def test_a_product_bought_through_a_deal_an_order_and_an_invoice_counts_once_per_account() -> None:
    scenario, catalogue, rows, calls = await _features(["deal_products", "sales_orders", "invoices"])
    assert calls.get("GET Invoices", 0) >= 1
    expected = _expected_tiers(scenario, catalogue, INVOICE_SHARE)
    owning = [key for key, fams in expected.items() if fams]
    assert owning
    for key in owning:
        row = rows[key]
        assert dict(row["owned_tiers"]) == expected[key], key
        skus = list(row["owned_skus"])
        assert len(skus) == len(set(skus))
        # One subscription per family: the quantity is the latest purchase's, not deal + order + invoice.
        assert row["products_owned"] == len(expected[key])


class _Org:
    def __init__(self) -> None:
        self.options = SandboxOptions(accounts=12, seed=5)
        self.scenario = build_scenario(accounts=12, seed=5)
        self.app = create_app(self.scenario, self.options)
        self.server = SandboxServer(self.app)
        self.base_url = ""

    def connector(self, **overrides: object) -> ZohoConnector:
        values = {**PLUGIN.sandbox_settings(self.base_url, self.options), **overrides}
        return ZohoConnector(
            ZohoSettings.model_validate(values),
            SecretResolver(PLUGIN.sandbox_secrets(self.options)),
            ConnectorContext("sbx", ()),
        )


@pytest.fixture
def org() -> Iterator[_Org]:
    o = _Org()
    with o.server as base_url:
        o.base_url = base_url
        yield o


@pytest.fixture
async def conn(org: _Org) -> AsyncIterator[ZohoConnector]:
    c = org.connector(owned_products=["deal_products", "sales_orders", "invoices"])
    yield c
    await c.close()


async def _lines(conn: ZohoConnector, stream: str) -> list[LineItem]:
    return [
        r
        for page in [p async for p in conn.read(stream, None)]
        for r in page.records
        if isinstance(r, LineItem)
    ]


async def test_order_lines_name_their_account_product_and_sku(org: _Org, conn: ZohoConnector) -> None:
    lines = await _lines(conn, "sales_order_items")
    assert lines
    accounts = {zoho_id(org.app, c.key) for i, c in enumerate(org.scenario.companies) if i % SO_SHARE == 0}
    skus = {p.sku for p in org.scenario.products}
    for line in lines:
        assert line.deal_id is None and line.account_id in accounts
        assert line.sku in skus and line.product_id and line.quantity >= 1
    assert {line.account_id for line in await _lines(conn, "invoice_items")} <= accounts


async def test_an_org_without_the_invoices_module_skips_it_with_one_warning_and_check_says_so(
    org: _Org, conn: ZohoConnector, caplog: pytest.LogCaptureFixture
) -> None:
    state = sandbox_state(org.app)
    del state.org.tables["Invoices"], state.org.modules["Invoices"]  # an edition without Invoices
    with caplog.at_level(logging.WARNING):
        assert await _lines(conn, "invoice_items") == []
    warnings = [r for r in caplog.records if "no Invoices module" in r.getMessage()]
    assert len(warnings) == 1 and "'invoices'" in warnings[0].getMessage()
    assert await _lines(conn, "sales_order_items")  # the other source reads on
    checks = {c.item: c for c in await conn.check()}
    assert not checks["read Invoices"].ok and "no Invoices module" in checks["read Invoices"].detail
    assert checks["read Sales_Orders"].ok


async def test_sources_not_configured_are_not_read_or_checked(org: _Org) -> None:
    conn = org.connector()
    try:
        assert await _lines(conn, "sales_order_items") == []
        assert not any(e.endswith(("Sales_Orders", "Invoices")) for e in conn.stats.by_endpoint)
        assert "read Sales_Orders" not in {c.item for c in await conn.check()}
    finally:
        await conn.close()


async def test_the_sandbox_refuses_a_field_sales_orders_do_not_have(org: _Org) -> None:
    async with httpx.AsyncClient(
        base_url=org.base_url, headers={"Authorization": f"Zoho-oauthtoken {org.options.token}"}
    ) as raw:
        ok = await raw.get("/crm/v8/Sales_Orders", params={"fields": "Account_Name,Ordered_Items"})
        assert ok.status_code == 200
        row = ok.json()["data"][0]["Ordered_Items"][0]
        assert {"Product_Name", "Quantity", "ListPrice", "Total"} <= set(row)
        assert row["Product_Name"]["Product_Code"]
        bad = await raw.get("/crm/v8/Sales_Orders", params={"fields": "Account_Name,Invoiced_Items"})
        assert bad.status_code == 400 and bad.json()["code"] == "INVALID_DATA"


async def test_a_cancelled_order_no_longer_owns_its_products(org: _Org, conn: ZohoConnector) -> None:
    pages = [p async for p in conn.read("sales_order_items", None)]
    lines = [r for p in pages for r in p.records if isinstance(r, LineItem)]
    watermark = max(p.watermark for p in pages if p.watermark is not None)
    order_id = str(lines[0].extra["record_id"])
    ids = {line.id for line in lines if line.extra["record_id"] == order_id}
    set_fields(org.app, "Sales_Orders", order_id, {"Status": "Cancelled"})
    later = [p async for p in conn.read("sales_order_items", watermark)]
    assert ids <= {i for p in later for i in p.deleted_ids}
    assert not any(isinstance(r, LineItem) and r.id in ids for p in later for r in p.records)


async def test_a_deleted_order_takes_its_lines_with_it(org: _Org, conn: ZohoConnector) -> None:
    lines = await _lines(conn, "sales_order_items")
    order_id = str(lines[0].extra["record_id"])
    mine = [line.id for line in lines if line.extra["record_id"] == order_id]
    assert mine and all(i.startswith(f"{order_id}:") for i in mine)
    delete(org.app, "Sales_Orders", [order_id])
    pages = [p async for p in conn.read_deleted("sales_order_items", None)]
    # Every stored line with the order's prefix that is not present (none is) is removed.
    assert [(p.present_prefix, p.present_ids) for p in pages if p.present_ids is not None] == [
        (f"{order_id}:", [])
    ]
    assert not [p async for p in org.connector().read_deleted("sales_order_items", None)]  # not configured


async def test_orders_listed_without_their_line_items_are_read_one_by_one(
    org: _Org, conn: ZohoConnector
) -> None:
    listed = await _lines(conn, "sales_order_items")
    sandbox_state(org.app).org.line_items_in_lists = False
    again = org.connector(owned_products=["sales_orders"])
    try:
        lines = await _lines(again, "sales_order_items")
        orders = {line.extra["record_id"] for line in lines}
        assert again.stats.by_endpoint.get("GET Sales_Orders/{id}", 0) == len(orders)
    finally:
        await again.close()
    assert sorted(line.id for line in lines) == sorted(line.id for line in listed)
