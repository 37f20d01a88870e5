"""The Zoho sandbox renders the shared scenario's currencies as they are: each deal's amount,
``Currency`` and ``Exchange_Rate`` from the scenario, the org's currencies (``GET /org/currencies``)
from its home currency and rates, orders and invoices in their deal's currency; so the connector's
home amounts (``Amount / Exchange_Rate``) equal the scenario's, converted once, over real HTTP."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from crm_upsell_zoho.connector import ZohoPlugin
from crm_upsell_zoho.sandbox import create_app, sandbox_state, zoho_id
from crm_upsell_zoho.sandbox.inventory import SOrder
from sqlalchemy import select

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.schema import deals, line_items

PLUGIN = ZohoPlugin()
OPTIONS = SandboxOptions(accounts=40, seed=3)


class Org:
    """A running sandbox org over real HTTP, built from a scenario with yen and euro accounts."""

    def __init__(self, app: Any, scenario: Scenario, base_url: str) -> None:
        self.app, self.scenario, self.base_url = app, scenario, base_url

    def get(self, path: str, **params: str) -> Any:
        headers = {"Authorization": f"Zoho-oauthtoken {OPTIONS.token}"}
        r = httpx.get(f"{self.base_url}/crm/v8/{path}", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def org() -> Iterator[Org]:
    scenario = build_scenario(accounts=OPTIONS.accounts, seed=OPTIONS.seed)
    app = create_app(scenario, OPTIONS)
    with SandboxServer(app) as base_url:
        yield Org(app, scenario, base_url)


def test_the_scenario_has_foreign_deals_to_check(org: Org) -> None:
    used = {d.currency for d in org.scenario.deals}
    assert {"JPY", "EUR", org.scenario.home_currency} <= used


def test_org_currencies_are_the_scenarios_home_currency_and_rates(org: Org) -> None:
    sc = org.scenario
    rows = org.get("org/currencies")["currencies"]
    assert {r["iso_code"]: float(r["exchange_rate"]) for r in rows} == pytest.approx(sc.exchange_rates)
    assert [r["iso_code"] for r in rows if r["is_base"]] == [sc.home_currency]
    assert org.get("org")["org"][0]["currency"].endswith(f"- {sc.home_currency}")


def test_deals_carry_the_scenario_amount_currency_and_rate(org: Org) -> None:
    sc = org.scenario
    by_id = {zoho_id(org.app, d.key): d for d in sc.deals}
    seen: dict[str, dict[str, Any]] = {}
    page = 1
    while True:
        body = org.get("Deals", fields="Amount,Currency,Exchange_Rate", per_page="200", page=str(page))
        seen.update({row["id"]: row for row in body["data"]})
        if not body["info"]["more_records"]:
            break
        page += 1
    assert set(seen) == set(by_id)
    for record_id, row in seen.items():
        deal = by_id[record_id]
        got = (row["Amount"], row["Currency"], row["Exchange_Rate"])
        assert got == (deal.amount, deal.currency, pytest.approx(deal.exchange_rate)), deal.name


async def test_after_a_full_sync_every_home_amount_is_the_scenarios(org: Org) -> None:
    sc = org.scenario
    with tempfile.TemporaryDirectory() as tmp:
        data = sandbox_config(PLUGIN, org.base_url, OPTIONS, "sqlite:///" + str(Path(tmp) / "s.sqlite3"))
        data["connections"]["demo"]["settings"]["owned_products"] = [
            "deal_products",
            "sales_orders",
            "invoices",
        ]
        config = parse_config(data, "test")
        session = Session.open(
            config, "demo", secrets=SecretResolver(environ=PLUGIN.sandbox_secrets(OPTIONS))
        )
        async with session.connector() as connector:
            await session.sync(connector)
        with session.engine.connect() as db:
            stored = {row.id: row for row in db.execute(select(deals))}
            lines = list(db.execute(select(line_items)))
        session.engine.dispose()
    assert len(stored) == len(sc.deals)
    foreign: set[str] = set()
    for deal in sc.deals:
        row = stored[zoho_id(org.app, deal.key)]
        assert (row.amount, row.currency) == (deal.amount, deal.currency), deal.name
        assert row.amount_home == pytest.approx(deal.amount_home, abs=0.51), deal.name
        if deal.currency == sc.home_currency:
            assert row.amount == row.amount_home
            continue
        foreign.add(deal.currency)
        rate = sc.exchange_rates[deal.currency]
        # Converted once: amount / amount_home is the currency's rate, never its square (a yen deal
        # was the scenario's yen multiplied by 150 again, as if they were dollars).
        assert row.amount / row.amount_home == pytest.approx(rate, rel=0.01), deal.name
        assert row.amount / row.amount_home != pytest.approx(rate * rate, rel=0.01), deal.name
    assert foreign >= {"JPY", "EUR"}
    # Order and invoice lines are in their deal's currency and reach home at the deal's rate.
    sb = sandbox_state(org.app).org
    deal_of = {d.key: d for d in sc.deals}
    home_of: dict[tuple[str, str], float] = {}
    for item in sc.line_items:
        key = (item.deal_key, zoho_id(org.app, item.product_key))
        home_of[key] = home_of.get(key, 0.0) + item.unit_price_home * item.quantity
    checked: set[str] = set()
    for line in lines:
        module = line.extra.get("module")
        if module not in ("Sales_Orders", "Invoices"):
            continue
        source = sb.tables[module].recs[int(line.extra["record_id"])].src
        assert isinstance(source, SOrder) and source.deal_key
        deal_key = source.deal_key if module == "Sales_Orders" else source.deal_key.removeprefix("so-")
        assert line.amount_home == pytest.approx(home_of[(deal_key, line.product_id)], abs=0.51), line
        currency = deal_of[deal_key].currency
        checked.add(currency)
        assert line.amount / line.amount_home == pytest.approx(sc.exchange_rates[currency], rel=0.01)
    assert sc.home_currency in checked and checked - {sc.home_currency}  # yen orders at this seed
