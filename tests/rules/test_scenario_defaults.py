"""The shipped config.example.toml on the sandbox scenario: planted candidates found, at-risk spared."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from crm_upsell_connector.features import compute_features
from crm_upsell_connector.rules import Recommendation, RuleEngine, RulesConfig, render_task
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.scenario.marketing import build_marketing

from .scenario_store import CONNECTION, load_scenario

SPARED = ("at_risk", "dormant", "new_customer", "covered", "do_not_contact")


@pytest.fixture(scope="module", params=[7, 2024])
def outcome(
    request: pytest.FixtureRequest, example_rules: RulesConfig
) -> tuple[dict[str, str], list[Recommendation]]:
    scenario = build_scenario(accounts=800, seed=request.param)
    engine = sa.create_engine("sqlite://")
    now = load_scenario(engine, scenario)
    with engine.connect() as conn:
        features = list(
            compute_features(conn, CONNECTION, now, example_rules.features, example_rules.products)
        )
    # Upgrade candidates whose people unsubscribed and went quiet are planted apart: "disengaged".
    planted = dict(scenario.planted)
    for key in build_marketing(scenario).lookalikes:
        planted[key] = "disengaged_lookalike"
    return planted, RuleEngine(example_rules).evaluate(features, now)


def _by_persona(outcome: tuple[dict[str, str], list[Recommendation]]) -> dict[str, list[Recommendation]]:
    planted, recs = outcome
    groups: dict[str, list[Recommendation]] = {}
    for rec in recs:
        groups.setdefault(planted[rec.account_id], []).append(rec)
    return groups


def test_upgrade_candidates_get_upgrades(outcome: tuple[dict[str, str], list[Recommendation]]) -> None:
    recs = _by_persona(outcome)["upgrade_candidate"]
    upgrades = [r for r in recs if r.proposal is not None and r.proposal.kind == "upgrade"]
    assert len(upgrades) >= 0.85 * len(recs)
    assert all(r.proposal.product_sku in ("CRM-PRO", "CRM-ENT") for r in upgrades if r.proposal)
    # Whoever is left out lost to the per-owner weekly cap, nothing else.
    assert {r.blocked_by for r in recs if not r.wants_task} <= {"owner_weekly_cap"}


def test_no_disengaged_account_is_picked_for_an_upgrade(
    outcome: tuple[dict[str, str], list[Recommendation]],
) -> None:
    groups = _by_persona(outcome)
    lookalikes = groups["disengaged_lookalike"]
    assert len(lookalikes) >= 5
    # Their usage says "upgrade"; the marketing guardrail is what stops them.
    assert {r.blocked_by for r in lookalikes} == {"marketing_disengaged"}
    # The trace shows an upgrade rule matched before the guardrail struck it out.
    upgrade_rules = {"crm_seat_pressure", "support_premium", "marketing_pro"}
    assert all(any(t.name in upgrade_rules and t.value is True for t in r.trace) for r in lookalikes)
    assert all(r.proposal is None for r in lookalikes)
    disengaged = [*lookalikes, *groups["at_risk"], *groups["dormant"]]
    assert [r.account_id for r in disengaged if r.wants_task] == []


def test_engaged_upgrade_candidates_score_higher_on_marketing(
    outcome: tuple[dict[str, str], list[Recommendation]],
) -> None:
    def points(rec: Recommendation) -> float:
        return next(f.points for f in rec.factors if f.name == "marketing_engagement")

    groups = _by_persona(outcome)
    engaged = [points(r) for r in groups["upgrade_candidate"]]
    disengaged = [points(r) for r in groups["disengaged_lookalike"]]
    assert min(engaged) > max(disengaged)


def test_cross_sell_candidates_get_cross_sells(outcome: tuple[dict[str, str], list[Recommendation]]) -> None:
    recs = _by_persona(outcome)["cross_sell_candidate"]
    cross = [r for r in recs if r.proposal is not None and r.proposal.kind == "cross_sell"]
    assert len(cross) >= 0.7 * len(recs)


@pytest.mark.parametrize("persona", SPARED)
def test_spared_personas_get_nothing(
    outcome: tuple[dict[str, str], list[Recommendation]], persona: str
) -> None:
    recs = _by_persona(outcome)[persona]
    assert recs
    assert [r.account_id for r in recs if r.proposal is not None] == []
    assert all(r.blocked_by is not None for r in recs)


def test_average_accounts_are_rarely_sold_to(outcome: tuple[dict[str, str], list[Recommendation]]) -> None:
    recs = _by_persona(outcome)["average"]
    assert sum(r.proposal is not None for r in recs) <= 0.05 * len(recs)


def test_expected_blockers(outcome: tuple[dict[str, str], list[Recommendation]]) -> None:
    groups = _by_persona(outcome)
    expected = {
        "at_risk": "recent_complaint",
        "dormant": "dormant",
        "new_customer": "new_customer",
        "covered": "open_deal",
        "do_not_contact": "do_not_contact",
    }
    for persona, blocker in expected.items():
        counts = Counter(r.blocked_by for r in groups[persona])
        assert counts.most_common(1)[0][0] == blocker, (persona, counts)


def test_reasons_and_tasks_state_the_facts(
    outcome: tuple[dict[str, str], list[Recommendation]], example_rules: RulesConfig
) -> None:
    rec = next(r for r in _by_persona(outcome)["upgrade_candidate"] if r.proposal is not None)
    assert "seats" in rec.reason
    assert "meetings" in rec.reason
    assert "renewals won" in rec.reason
    assert rec.segment == "champion"
    assert "high_loyalty" in rec.tags
    task = render_task(rec, example_rules, build_scenario(0).now)
    assert rec.proposal is not None
    assert rec.proposal.product_name in task.body
    assert rec.reason in task.body
