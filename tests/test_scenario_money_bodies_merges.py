"""The scenario's currencies, rich-text bodies and duplicate companies, as every sandbox serves them."""

from __future__ import annotations

from collections import defaultdict

import pytest

from crm_upsell_connector.sandbox.scenario import EXCHANGE_RATES, HOME_CURRENCY, Scenario, build_scenario
from crm_upsell_connector.text import html_to_text

COMPLAINT_WORDS = ("complaint", "cancel", "クレーム", "解約")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(400, seed=3)


def test_a_few_accounts_are_billed_in_yen_or_euros_with_home_amounts(scenario: Scenario) -> None:
    by_company = {c.key: c for c in scenario.companies}
    foreign = [d for d in scenario.deals if d.currency != HOME_CURRENCY]
    assert {d.currency for d in foreign} == {"JPY", "EUR"}
    assert 0.03 <= len({d.company_key for d in foreign}) / len(scenario.companies) <= 0.25
    assert scenario.currencies()[0] == HOME_CURRENCY
    for deal in scenario.deals:
        assert deal.currency == by_company[deal.company_key].currency
        assert deal.amount_home == pytest.approx(deal.amount / EXCHANGE_RATES[deal.currency], abs=0.01)
        assert deal.exchange_rate == EXCHANGE_RATES[deal.currency]
        if deal.currency == "JPY":
            assert deal.amount == round(deal.amount) and deal.amount > 50 * deal.amount_home
    deal_currency = {d.key: d.currency for d in scenario.deals}
    for item in scenario.line_items:
        assert item.currency == deal_currency[item.deal_key]
        assert item.unit_price_home == scenario.product(item.product_key).unit_price


def test_two_million_yen_is_13400_in_the_home_currency() -> None:
    assert 2_000_000 / EXCHANGE_RATES["JPY"] == pytest.approx(13_400)


def test_bodies_have_paragraphs_and_line_breaks_and_read_back_whole(scenario: Scenario) -> None:
    multi = [a for a in scenario.activities if "</p><p>" in a.body_html]
    breaks = [a for a in scenario.activities if "<br>" in a.body_html]
    assert len(multi) > 100 and len(breaks) > 100
    for a in scenario.activities[:3000]:
        assert html_to_text(a.body_html) == a.body
    assert all("<p>" not in a.body for a in scenario.activities)


def test_at_risk_accounts_have_a_complaint_only_the_body_tells(scenario: Scenario) -> None:
    buried: dict[str, list[str]] = defaultdict(list)
    for a in scenario.activities:
        subject_says = any(w in a.subject.lower() for w in COMPLAINT_WORDS)
        first_line = a.body.split("\n")[0]
        body_says = any(w in a.body.lower() for w in COMPLAINT_WORDS)
        if body_says and not subject_says and not any(w in first_line.lower() for w in COMPLAINT_WORDS):
            assert a.direction != "outbound"
            buried[a.company_key].append(a.body_html)
    at_risk = {k for k, p in scenario.planted.items() if p == "at_risk"}
    assert set(buried) == at_risk
    htmls = [h for hs in buried.values() for h in hs]
    assert any("</p><p>" in h for h in htmls) and any("<br>" in h for h in htmls)


def test_duplicate_companies_share_a_name_and_have_their_own_history(scenario: Scenario) -> None:
    assert 1 <= len(scenario.merges) <= 4
    by_key = {c.key: c for c in scenario.companies}
    with_deals = {d.company_key for d in scenario.deals}
    with_acts = {a.company_key for a in scenario.activities}
    for survivor, duplicate in scenario.merges:
        assert survivor != duplicate
        assert by_key[survivor].name == by_key[duplicate].name
        assert by_key[survivor].domain != by_key[duplicate].domain
        assert {survivor, duplicate} <= with_deals & with_acts
    keys = [k for pair in scenario.merges for k in pair]
    assert len(keys) == len(set(keys))
    assert build_scenario(10).merges == []
