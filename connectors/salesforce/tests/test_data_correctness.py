"""Data the rules can trust, as a Salesforce org holds it: amounts in their own and the corporate currency, whole
activity bodies, and merged records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.models import Activity, ActivityKind, Deal, FieldUpdate, LineItem, Record
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.schema import accounts, contacts
from crm_upsell_connector.sync import Syncer

from .conftest import Org, run_org


async def _read(org: Org, stream: str) -> list[Record]:
    c = org.connector()
    try:
        return [r async for page in c.read(stream, None) for r in page.records]
    finally:
        await c.close()


@pytest.fixture
def multi_org() -> Iterator[Org]:
    """An org big enough that some accounts are billed in yen and euros (tests change it)."""
    yield from run_org(40)


async def test_deals_in_other_currencies_get_corporate_amounts(multi_org: Org) -> None:
    org = multi_org
    c = org.connector()
    try:
        assert await c.home_currency() == "USD"
    finally:
        await c.close()
    sc = org.state.scenario
    deals = [d for d in await _read(org, "opportunities") if isinstance(d, Deal)]
    by_key = {org.state.salesforce_id(d.key): d for d in sc.deals}
    assert {d.currency for d in deals} == {"USD", "EUR", "JPY"}  # a few accounts keep other currencies
    for deal in deals:
        source = by_key[deal.id]
        # The original is the scenario's own amount and currency; the corporate one its amount_home,
        # converted by the connector from CurrencyType (never convertCurrency()).
        assert (deal.amount, deal.currency) == (source.amount, source.currency), deal
        assert deal.amount_home == pytest.approx(source.amount_home, abs=0.51), deal
        if deal.currency == "JPY":
            assert deal.amount is not None and deal.amount_home is not None
            assert deal.amount > 100 * deal.amount_home
    items = [i for i in await _read(org, "line_items") if isinstance(i, LineItem) and i.deal_id]
    home_prices = {org.state.salesforce_id(i.key): i.unit_price_home * i.quantity for i in sc.line_items}
    by_deal = {d.id: d for d in deals}
    assert {by_deal[i.deal_id].currency for i in items} == {"USD", "EUR", "JPY"}  # type: ignore[index]
    for item in items:
        if by_deal[item.deal_id].currency == "USD":  # type: ignore[index]
            assert item.amount_home == item.amount
        assert item.amount_home == pytest.approx(home_prices[item.id], abs=0.51), item


async def test_two_million_yen_is_13400_dollars_with_dated_rates(multi_org: Org) -> None:
    """Advanced currency management: the rate of the close date, not today's."""
    org = multi_org
    deals = [d for d in await _read(org, "opportunities") if isinstance(d, Deal) and d.currency == "JPY"]
    deal = deals[0]
    assert deal.close_date is not None
    close = deal.close_date.date().isoformat()
    org.state.set_dated_rates("JPY", [("2000-01-01", 100.0), (close, 2_000_000 / 13_400)])
    org.state.set_fields("Opportunity", deal.id, {"Amount": 2_000_000})
    after = {d.id: d for d in await _read(org, "opportunities") if isinstance(d, Deal)}[deal.id]
    assert after.amount == 2_000_000 and after.currency == "JPY"
    assert after.amount_home == pytest.approx(13_400)
    # Before the close date's period began the older rate applies: the same yen at 100 per dollar.
    earlier = next(d for d in deals if d.close_date is not None and d.close_date.date().isoformat() < close)
    moved = {d.id: d for d in await _read(org, "opportunities") if isinstance(d, Deal)}[earlier.id]
    assert moved.amount is not None and moved.amount_home == pytest.approx(moved.amount / 100.0, abs=0.01)


async def test_a_single_currency_org_needs_no_setting(org: Org) -> None:
    org.state.make_single_currency()
    c = org.connector()
    try:
        assert await c.home_currency() == "USD"  # Organization.DefaultCurrencyIsoCode
        deals = [d async for page in c.read("opportunities", None) for d in page.records]
    finally:
        await c.close()
    assert deals and all(isinstance(d, Deal) and d.amount_home == d.amount for d in deals)


async def test_bodies_are_whole_plain_text_and_emails_keep_their_direction(org: Org) -> None:
    tasks = [t for t in await _read(org, "tasks") if isinstance(t, Activity)]
    notes = [t for t in tasks if t.kind is ActivityKind.NOTE and t.body]
    assert notes and all("\n\n" in n.body for n in notes)  # the second paragraph is there
    emails = [t for t in tasks if t.kind is ActivityKind.EMAIL and t.body]
    assert emails and not any("<p>" in e.body or "<br>" in e.body for e in emails)
    assert {e.direction for e in emails} == {"inbound", "outbound"}
    target = notes[0]
    org.state.set_fields(
        "Task",
        target.id,
        {
            "Description": "<p>Quarterly review went fine.</p><p>Then: the export is <b>broken</b> again<br>and slow</p>"
        },
    )
    after = {t.id: t for t in await _read(org, "tasks") if isinstance(t, Activity)}[target.id]
    assert after.body == "Quarterly review went fine.\n\nThen: the export is broken again\nand slow"


async def test_a_merge_removes_the_merged_away_account_and_writes_to_it_are_gone(
    org: Org, tmp_path: Path
) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store'}.sqlite3")
    settings = SyncSettings(delete_check_hours=0, clock_skew_s=0)
    c = org.connector()
    try:
        await Syncer(engine, c, "sbx", settings).run()
    finally:
        await c.close()
    survivor, merged = org.live("Account")[:2]
    moved = [
        i
        for i in org.live("Contact")
        if org.state.value("Contact", org.state.tables["Contact"].recs[i], "AccountId") == merged
    ]
    assert org.state.merge("Account", survivor, [merged]) == [merged]
    c = org.connector()
    try:
        await Syncer(engine, c, "sbx", settings).run()
        (result,) = await c.update_accounts([FieldUpdate(account_id=merged, values={"segment": "champion"})])
    finally:
        await c.close()
    with engine.connect() as conn:
        stored = {row.id: row for row in conn.execute(select(accounts))}
        owners = {row.id: row.account_id for row in conn.execute(select(contacts))}
    engine.dispose()
    assert merged not in stored
    assert stored[survivor].extra.get("merged_ids") == [merged]
    assert moved and all(owners[i] == survivor for i in moved)  # the history moved to the survivor
    assert result.gone and not result.ok and not result.retriable
