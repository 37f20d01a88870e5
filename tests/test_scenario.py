"""The seeded scenario: reproducible, sized as asked, and its planted personas look like what they are."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from crm_upsell_connector.sandbox import COMPLAINT_PREFIX, DEFAULT_NOW, PRODUCTS, UPGRADE_PATH, build_scenario
from crm_upsell_connector.sandbox.scenario import PERSONA_MIX, Scenario

NOW = DEFAULT_NOW
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(1000, seed=11)


def owned_skus(sc: Scenario) -> dict[str, set[str]]:
    """SKUs on won deals, per company key (what each account owns)."""
    by_key = {p.key: p.sku for p in sc.products}
    won = {d.key: d.company_key for d in sc.deals if d.stage == "closedwon"}
    owned: dict[str, set[str]] = defaultdict(set)
    for item in sc.line_items:
        if item.deal_key in won:
            owned[won[item.deal_key]].add(by_key[item.product_key])
    return owned


def test_same_seed_same_data_and_other_seed_other_data() -> None:
    first = build_scenario(60, seed=5)
    again = build_scenario(60, seed=5)
    other = build_scenario(60, seed=6)
    assert first == again
    assert first.companies != other.companies
    assert first.now == NOW


def test_now_shifts_every_timestamp_consistently() -> None:
    later = NOW + timedelta(days=30)
    shifted = build_scenario(30, seed=5, now=later)
    assert shifted.now == later
    assert max(c.updated_at for c in shifted.companies) <= later
    assert max(a.updated_at for a in shifted.activities) <= later


def test_sizes_follow_the_parameters(scenario: Scenario) -> None:
    n = len(scenario.companies)
    assert n == 1000
    assert 2.4 <= len(scenario.contacts) / n <= 3.6
    assert 1.6 <= len(scenario.deals) / n <= 3.0
    assert 2.4 <= len(scenario.line_items) / n <= 4.5
    assert 16 <= len(scenario.activities) / n <= 24
    assert len(scenario.owners) == 1000 // 40 + 2
    assert len(build_scenario(10).owners) == 3
    bigger = build_scenario(100, seed=1, activities_per_account=40, contacts_per_account=6)
    assert len(bigger.activities) / 100 >= 32
    assert len(bigger.contacts) / 100 >= 5


def test_keys_are_unique_and_references_resolve(scenario: Scenario) -> None:
    for records in (
        scenario.companies,
        scenario.contacts,
        scenario.deals,
        scenario.line_items,
        scenario.activities,
        scenario.owners,
        scenario.products,
    ):
        keys = [r.key for r in records]
        assert len(keys) == len(set(keys))
    companies = {c.key for c in scenario.companies}
    contacts = {c.key for c in scenario.contacts}
    owners = {o.key for o in scenario.owners}
    deals = {d.key for d in scenario.deals}
    assert all(c.company_key in companies for c in scenario.contacts)
    assert all(d.company_key in companies and d.owner_key in owners for d in scenario.deals)
    assert all(i.deal_key in deals for i in scenario.line_items)
    assert all(a.company_key in companies and a.owner_key in owners for a in scenario.activities)
    assert all(a.contact_key is None or a.contact_key in contacts for a in scenario.activities)


def test_product_catalogue_is_exactly_the_documented_one() -> None:
    got = {(p.sku, p.name, p.family, p.tier, p.unit_price) for p in PRODUCTS}
    assert got == {
        ("CRM-STARTER", "CRM Starter", "crm", 1, 25.0),
        ("CRM-PRO", "CRM Professional", "crm", 2, 60.0),
        ("CRM-ENT", "CRM Enterprise", "crm", 3, 120.0),
        ("MKT-BASIC", "Marketing Basic", "marketing", 1, 400.0),
        ("MKT-PRO", "Marketing Pro", "marketing", 2, 900.0),
        ("SUP-STD", "Standard Support", "support", 1, 150.0),
        ("SUP-PREM", "Premium Support", "support", 2, 500.0),
        ("ANL-ADDON", "Analytics Add-on", "analytics", 1, 300.0),
    }


def test_persona_mix(scenario: Scenario) -> None:
    counts = scenario.persona_counts()
    for persona, share in PERSONA_MIX.items():
        assert counts[persona] == round(share * 1000), persona
    assert counts["average"] == 1000 - sum(round(s * 1000) for s in PERSONA_MIX.values())
    assert all(scenario.planted[c.key] == c.persona for c in scenario.companies)


def test_upgrade_candidates_look_like_upgrade_candidates(scenario: Scenario) -> None:
    owned = owned_skus(scenario)
    recent: dict[str, Counter[str]] = defaultdict(Counter)
    for a in scenario.activities:
        if NOW - 90 * DAY <= a.occurred_at <= NOW:
            if a.kind == "meeting" and a.outcome == "completed":
                recent[a.company_key]["meetings"] += 1
            if a.kind == "email" and a.direction == "inbound":
                recent[a.company_key]["inbound"] += 1
    renewals = Counter(
        d.company_key for d in scenario.deals if d.stage == "closedwon" and "Renewal" in d.name
    )
    open_deals = {d.company_key for d in scenario.deals if d.stage not in ("closedwon", "closedlost")}
    for c in scenario.companies:
        if c.persona not in ("upgrade_candidate", "covered", "do_not_contact"):
            continue
        assert owned[c.key] & set(UPGRADE_PATH), c
        assert c.seats_purchased
        assert c.seats_active is not None
        assert c.seats_active / c.seats_purchased >= 0.9
        assert NOW - c.created_at > timedelta(days=365)
        assert renewals[c.key] >= 2
        assert recent[c.key]["meetings"] >= 4
        assert recent[c.key]["inbound"] >= 4
        assert c.nps_score in (9, 10)
        assert c.onboarding_stage == "live"
        assert c.do_not_contact is (c.persona == "do_not_contact")
        assert (c.key in open_deals) is (c.persona == "covered")


def test_covered_accounts_have_an_open_deal_for_the_upgrade(scenario: Scenario) -> None:
    owned = owned_skus(scenario)
    by_key = {p.key: p.sku for p in scenario.products}
    open_skus: dict[str, set[str]] = defaultdict(set)
    open_deals = {d.key: d.company_key for d in scenario.deals if d.stage not in ("closedwon", "closedlost")}
    for item in scenario.line_items:
        if item.deal_key in open_deals:
            open_skus[open_deals[item.deal_key]].add(by_key[item.product_key])
    for c in scenario.companies:
        if c.persona == "covered":
            upgrades = {UPGRADE_PATH[s] for s in owned[c.key] if s in UPGRADE_PATH}
            assert upgrades & open_skus[c.key]


def test_at_risk_dormant_new_and_cross_sell_personas(scenario: Scenario) -> None:
    owned = owned_skus(scenario)
    complaints = {
        a.company_key
        for a in scenario.activities
        if a.subject.startswith(COMPLAINT_PREFIX)
        and a.outcome == "complaint"
        and a.direction == "inbound"
        and NOW - 30 * DAY <= a.occurred_at <= NOW
    }
    latest: dict[str, datetime] = {}
    for a in scenario.activities:
        latest[a.company_key] = max(latest.get(a.company_key, a.occurred_at), a.occurred_at)
    for c in scenario.companies:
        if c.persona == "at_risk":
            assert c.key in complaints
            assert c.nps_score is not None
            assert c.nps_score <= 5
            assert c.seats_active is not None
            assert c.seats_purchased
            assert c.seats_active / c.seats_purchased < 0.5
        else:
            assert c.key not in complaints
        if c.persona == "dormant":
            assert latest[c.key] < NOW - 180 * DAY
        if c.persona == "new_customer":
            assert NOW - c.created_at < 90 * DAY
            assert c.onboarding_stage in ("kickoff", "implementation")
        if c.persona == "cross_sell_candidate":
            families = {s.split("-")[0] for s in owned[c.key]}
            assert "CRM" in families
            assert not {"MKT", "SUP"} <= families
            assert c.nps_score is not None
            assert c.nps_score >= 8


def test_names_include_japanese_and_quotes(scenario: Scenario) -> None:
    names = [c.name for c in scenario.companies]
    assert any("株式会社" in n for n in names)
    assert any("'" in n for n in names)
    assert any('"' in n for n in names)
    assert len({c.domain for c in scenario.companies}) == len(names)


def test_timestamps_are_millisecond_precise_ordered_and_sometimes_collide(scenario: Scenario) -> None:
    stamps = [a.updated_at for a in scenario.activities] + [c.updated_at for c in scenario.companies]
    assert all(s.tzinfo is UTC and s.microsecond % 1000 == 0 for s in stamps)
    assert all(s <= NOW for s in stamps)
    for a in scenario.activities:
        if a.occurred_at <= NOW:
            assert a.occurred_at <= a.updated_at <= a.occurred_at + timedelta(days=46)
    collisions = sum(n for n in Counter(stamps).values() if n > 1)
    assert collisions >= 50
    spread = max(c.updated_at for c in scenario.companies) - min(c.updated_at for c in scenario.companies)
    assert spread > timedelta(days=365)


@pytest.mark.slow
def test_twenty_thousand_accounts_build_quickly() -> None:
    started = time.perf_counter()
    big = build_scenario(20_000, seed=7)
    assert time.perf_counter() - started < 20
    assert len(big.activities) > 380_000
