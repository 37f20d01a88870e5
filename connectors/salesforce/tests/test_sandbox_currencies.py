"""The sandbox renders the shared scenario's currencies as they are: each account's and deal's own
currency, amounts already in it, the scenario's exchange rates as CurrencyType rows, and the
connector's corporate amounts equal to the scenario's home amounts (no second conversion)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.schema import deals, line_items
from crm_upsell_connector.sync import Syncer

from .conftest import Org, run_org

V = "/services/data/v62.0"
AUTH = {"Authorization": "Bearer sandbox-token"}


@pytest.fixture(scope="module")
def org() -> Iterator[Org]:
    """40 accounts at seed 3: a few billed in yen and euros (read only here)."""
    yield from run_org(40)


def _records(org: Org, soql: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=org.base_url, headers=AUTH) as client:
        r = client.get(f"{V}/query", params={"q": soql})
        assert r.status_code == 200, r.text
        body = r.json()
        out: list[dict[str, Any]] = body["records"]
        while not body["done"]:
            body = client.get(body["nextRecordsUrl"]).json()
            out.extend(body["records"])
    return out


def test_accounts_and_deals_carry_the_scenario_currency_and_amount(org: Org) -> None:
    sc = org.state.scenario
    accounts = {
        r["Id"]: r["CurrencyIsoCode"] for r in _records(org, "SELECT Id, CurrencyIsoCode FROM Account")
    }
    assert accounts == {org.state.salesforce_id(c.key): c.currency for c in sc.companies}
    opps = {r["Id"]: r for r in _records(org, "SELECT Id, Amount, CurrencyIsoCode FROM Opportunity")}
    assert len(opps) == len(sc.deals)
    for deal in sc.deals:
        row = opps[org.state.salesforce_id(deal.key)]
        assert (row["Amount"], row["CurrencyIsoCode"]) == (deal.amount, deal.currency), deal.name
    items = {
        r["Id"]: r
        for r in _records(org, "SELECT Id, UnitPrice, ListPrice, CurrencyIsoCode FROM OpportunityLineItem")
    }
    for item in sc.line_items:
        row = items[org.state.salesforce_id(item.key)]
        assert (row["UnitPrice"], row["CurrencyIsoCode"]) == (item.unit_price, item.currency)
        assert row["ListPrice"] == item.unit_price  # from the price book entry in the same currency


def test_currency_types_and_corporate_currency_are_the_scenario_settings(org: Org) -> None:
    sc = org.state.scenario
    (organization,) = _records(org, "SELECT DefaultCurrencyIsoCode FROM Organization")
    assert organization["DefaultCurrencyIsoCode"] == sc.home_currency
    types = _records(org, "SELECT IsoCode, ConversionRate, IsCorporate, DecimalPlaces FROM CurrencyType")
    assert {t["IsoCode"]: t["ConversionRate"] for t in types} == sc.exchange_rates
    assert [t["IsoCode"] for t in types if t["IsCorporate"]] == [sc.home_currency]
    assert {t["IsoCode"]: t["DecimalPlaces"] for t in types}["JPY"] == 0  # yen have no minor unit
    assert set(sc.currencies()) <= {t["IsoCode"] for t in types}


async def test_every_stored_home_amount_is_the_scenarios(org: Org, tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store'}.sqlite3")
    c = org.connector()
    try:
        await Syncer(engine, c, "sbx", SyncSettings(delete_check_hours=0, clock_skew_s=0)).run()
    finally:
        await c.close()
    with engine.connect() as conn:
        stored = {row.id: row for row in conn.execute(select(deals))}
        stored_items = {row.id: row for row in conn.execute(select(line_items))}
    engine.dispose()
    sc = org.state.scenario
    assert len(stored) == len(sc.deals)
    foreign = 0
    for deal in sc.deals:
        row = stored[org.state.salesforce_id(deal.key)]
        assert row.amount_home == pytest.approx(deal.amount_home, abs=0.51), deal.name
        assert (row.amount, row.currency) == (deal.amount, deal.currency), deal.name
        if deal.currency == sc.home_currency:
            assert row.amount == row.amount_home
            continue
        foreign += 1
        rate = sc.exchange_rates[deal.currency]
        # Converted once: amount / amount_home is the currency's rate, not its square (3,211,102,556
        # JPY for a 143,000 USD deal was the scenario's yen converted again as if they were dollars).
        assert row.amount / row.amount_home == pytest.approx(rate, rel=0.01), deal.name
        assert row.amount / row.amount_home != pytest.approx(rate * rate, rel=0.01), deal.name
    assert foreign >= 10  # yen and euro deals were checked, not only dollars
    for item in sc.line_items:
        row = stored_items[org.state.salesforce_id(item.key)]
        assert row.amount_home == pytest.approx(item.unit_price_home * item.quantity, abs=0.51)
    # What accounts own (Assets) is priced in the account's currency and reaches home at its rate.
    currency = {org.state.salesforce_id(c.key): c.currency for c in sc.companies}
    assets = [row for row in stored_items.values() if row.extra.get("object") == "Asset"]
    assert {currency[row.extra["account_id"]] for row in assets} == {"USD", "EUR", "JPY"}
    for row in assets:
        rate = sc.exchange_rates[currency[row.extra["account_id"]]]
        assert row.amount_home == pytest.approx(row.amount / rate, abs=0.01), row


def test_an_opportunity_product_takes_a_price_book_entry_in_its_opportunitys_currency() -> None:
    for org in run_org(40):
        sc = org.state.scenario
        deal = next(d for d in sc.deals if d.currency == "JPY")
        product = sc.products[0]
        opp_id = org.state.salesforce_id(deal.key)
        entries = {
            r["CurrencyIsoCode"]: r["Id"]
            for r in _records(
                org,
                f"SELECT Id, CurrencyIsoCode FROM PricebookEntry WHERE Product2Id = "
                f"'{org.state.salesforce_id(product.key)}'",
            )
        }
        assert set(entries) == set(sc.currencies())
        line = {"attributes": {"type": "OpportunityLineItem"}, "OpportunityId": opp_id, "Quantity": 1}
        with httpx.Client(base_url=org.base_url, headers=AUTH) as client:
            r = client.post(
                f"{V}/composite/sobjects",
                json={
                    "records": [
                        {**line, "UnitPrice": 700, "PricebookEntryId": entries["USD"]},
                        {**line, "UnitPrice": 100_000, "PricebookEntryId": entries["JPY"]},
                    ]
                },
            )
        assert r.status_code == 200, r.text
        wrong, right = r.json()
        assert not wrong["success"] and wrong["errors"][0]["statusCode"] == "FIELD_INTEGRITY_EXCEPTION"
        assert right["success"], right
        (made,) = _records(
            org, f"SELECT CurrencyIsoCode, UnitPrice FROM OpportunityLineItem WHERE Id = '{right['id']}'"
        )
        assert (made["CurrencyIsoCode"], made["UnitPrice"]) == ("JPY", 100_000)
