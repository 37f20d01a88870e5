"""The rule pass on hand-made features: picks, uplift, guardrails, reasons, trace, tasks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from crm_upsell_connector.rules import RuleEngine, RulesConfig, load_rules, render_task, task_key

from .conftest import features, owning, small_config

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def run(rules: RulesConfig, *rows: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {r.account_id: r for r in RuleEngine(rules).evaluate(list(rows), NOW, **kw)}


def busy(account_id: str = "a1", **values: Any) -> dict[str, Any]:
    """An account on CRM Starter with 46 of 50 seats in use and 6 meetings in 90 days."""
    base = {
        **owning("CRM-STARTER", "crm", 1.0, 50.0),
        "seats_purchased": 50.0,
        "seats_active": 46.0,
        "meetings_90d": 6.0,
        "nps_score": 9.0,
        "days_since_last_activity": 3.0,
    }
    return features(account_id, **{**base, **values})


def test_upgrade_to_next_tier_with_uplift_and_reason(small_rules: RulesConfig) -> None:
    rec = run(small_rules, busy())["a1"]
    assert rec.proposal is not None
    assert (rec.proposal.kind, rec.proposal.product_sku, rec.proposal.rule) == (
        "upgrade",
        "CRM-PRO",
        "crm_up",
    )
    assert rec.proposal.uplift == (60.0 - 25.0) * 12 * 50
    assert rec.reason == "Upgrade to CRM Professional: uses 46 of 50 seats. Pro adds automation."
    assert rec.facts["seats_active"] == 46.0
    assert rec.blocked_by is None
    assert rec.score == 75.0  # engagement 6/10 x 50 + satisfaction 9/10 x 50
    assert rec.segment == "champion"
    assert list(rec.tags) == ["busy"]


def test_upgrade_from_top_tier_is_not_applicable(small_rules: RulesConfig) -> None:
    rec = run(small_rules, busy(**owning("CRM-ENT", "crm", 3.0, 50.0)))["a1"]
    entry = next(t for t in rec.trace if t.name == "crm_up")
    assert entry.value is True
    assert entry.detail == "not applicable: already on the top crm tier"
    assert rec.proposal is not None
    assert rec.proposal.product_sku == "MKT-BASIC"


def test_cross_sell_skips_owned_family_and_annualises(small_rules: RulesConfig) -> None:
    rows = busy(seats_active=10.0)
    rows["owned_families"] = ["crm", "marketing"]
    rows["owned_tiers"] = {"crm": 1.0, "marketing": 1.0}
    rec = run(small_rules, rows)["a1"]
    assert rec.proposal is not None
    assert rec.proposal.product_sku == "SUP-STD"
    assert rec.proposal.uplift == 150.0  # a yearly price counts once


def test_missing_value_is_not_satisfied_and_not_a_crash(small_rules: RulesConfig) -> None:
    rec = run(small_rules, features("a1", nps_score=None, meetings_90d=1.0))["a1"]
    assert rec.proposal is None
    assert rec.reason == "No proposal: no rule matched."
    satisfaction = next(f for f in rec.factors if f.name == "satisfaction")
    assert satisfaction.value is None
    assert satisfaction.normalised is None
    assert satisfaction.points == 0.0
    assert rec.segment == "unmeasured"


def test_null_error_is_recorded_in_trace() -> None:
    data = small_config()
    data["cross_sell"][0]["when"] = "nps_score > 8.0"
    rules = load_rules(data, "config.toml")
    rec = run(rules, features("a1", nps_score=None))["a1"]
    entry = next(t for t in rec.trace if t.name == "mkt")
    assert entry.value is None
    assert entry.error


def test_blocking_guardrail(small_rules: RulesConfig) -> None:
    rec = run(small_rules, busy(do_not_contact=True))["a1"]
    assert rec.proposal is None
    assert rec.blocked_by == "do_not_contact"
    assert "Would have proposed CRM Professional" in rec.reason


def test_guardrail_kinds_let_retention_through(small_rules: RulesConfig) -> None:
    rows = busy(seats_active=5.0, complaints_90d=2.0, **owning("CRM-PRO", "crm", 2.0, 50.0))
    rec = run(small_rules, rows)["a1"]
    assert rec.proposal is not None
    assert (rec.proposal.kind, rec.proposal.product_sku) == ("retention", "CRM-STARTER")
    assert rec.proposal.uplift == (25.0 - 60.0) * 12 * 50  # a downsell gives revenue up


def test_complaint_blocks_upsell_even_without_retention_candidate(small_rules: RulesConfig) -> None:
    rec = run(small_rules, busy(complaints_90d=1.0))["a1"]
    assert rec.proposal is None
    assert rec.blocked_by == "complaint"


def test_cooldown(small_rules: RulesConfig) -> None:
    assert run(small_rules, busy(days_since_last_proposal=30.0))["a1"].blocked_by == "cooldown"
    assert run(small_rules, busy(days_since_last_proposal=120.0))["a1"].proposal is not None


def test_open_upsell_task(small_rules: RulesConfig) -> None:
    rec = run(small_rules, busy(open_upsell_tasks=1.0))["a1"]
    assert rec.blocked_by == "open_upsell_task"
    assert rec.proposal is not None  # still shown on the account: it is the task in flight
    assert not rec.wants_task


def test_open_deal_covers_family(small_rules: RulesConfig) -> None:
    rec = run(small_rules, busy(open_deals=1.0, open_deal_families=["crm"], open_deal_skus=["CRM-PRO"]))["a1"]
    assert rec.blocked_by == "open_deal"
    other = run(small_rules, busy(open_deals=1.0, open_deal_families=["analytics"]))["a1"]
    assert other.proposal is not None


def test_open_deal_account_scope() -> None:
    data = small_config()
    data["guardrails"]["open_deal_blocks"] = "account"
    rules = load_rules(data, "config.toml")
    assert run(rules, busy(open_deals=1.0, open_deal_families=["analytics"]))["a1"].blocked_by == "open_deal"


def test_owner_cap_in_uplift_times_score_order(small_rules: RulesConfig) -> None:
    rows = [busy(f"a{i}", seats_purchased=50.0 + i, seats_active=50.0 + i) for i in range(5)]
    for row in rows:
        row["owned_quantity"] = {"crm": row["seats_purchased"]}
    recs = run(small_rules, *rows, owner_open_tasks_this_week={"o1": 1})
    tasked = sorted(a for a, r in recs.items() if r.wants_task)
    assert tasked == ["a3", "a4"]  # cap 3, one already used: the two biggest uplifts get tasks
    assert recs["a0"].blocked_by == "owner_weekly_cap"


def test_priority_and_tie_order() -> None:
    data = small_config()
    data["cross_sell"][1]["priority"] = 5  # support now beats the upgrade
    rules = load_rules(data, "config.toml")
    rec = run(rules, busy())["a1"]
    assert rec.proposal is not None
    assert rec.proposal.rule == "sup"


def test_output_sorted_and_independent_of_input_order(small_rules: RulesConfig) -> None:
    rows = [busy("b"), features("a"), busy("c", do_not_contact=True)]
    engine = RuleEngine(small_rules)
    first = engine.evaluate(rows, NOW)
    assert [r.account_id for r in first] == ["a", "b", "c"]
    assert engine.evaluate(list(reversed(rows)), NOW) == first


def test_explain_text_lists_everything(small_rules: RulesConfig) -> None:
    text = run(small_rules, busy())["a1"].explain_text()
    for needle in (
        "Loyalty score 75.0",
        "engagement",
        "Proposal: Upgrade -> CRM Professional",
        "crm_up",
        "do_not_contact",
        "cooldown",
        "owner_weekly_cap",
        "Facts:",
    ):
        assert needle in text


def test_task_rendering(small_rules: RulesConfig) -> None:
    rec = run(small_rules, busy())["a1"]
    task = render_task(rec, small_rules, NOW, "USD")
    assert task.subject == "Upgrade: propose CRM Professional to Account a1"
    assert "uses 46 of 50 seats" in task.body
    assert "CRM Professional" in task.body
    assert "USD 21,000" in task.body
    # The org's home currency shows with the amount; with none known, the amount stands alone.
    assert "Expected uplift: EUR 21,000 per year" in render_task(rec, small_rules, NOW, "eur").body
    assert "Expected uplift: 21,000 per year" in render_task(rec, small_rules, NOW).body
    assert task.due == date(2026, 11, 8)
    assert task.priority == "medium"
    assert task_key(rec) == task_key(rec)
    assert len(task_key(rec)) <= 64
    draft = task.draft(task_key(rec), rec.account_id, rec.owner_id)
    assert draft.owner_id == "o1"


def test_task_rendering_from_the_tasks_section_alone(small_rules: RulesConfig) -> None:
    rec = run(small_rules, busy())["a1"]
    assert render_task(rec, small_rules.tasks, NOW) == render_task(rec, small_rules, NOW)


def test_records_dump_like_pydantic_models(small_rules: RulesConfig) -> None:
    rec = run(small_rules, busy())["a1"]
    dumped = rec.model_dump(mode="json")
    assert dumped["proposal"]["product_sku"] == "CRM-PRO"
    assert dumped["factors"][0] == rec.factors[0].model_dump(mode="json")
    assert type(rec).model_validate(rec.model_dump()) == rec


def test_amounts_in_reasons_carry_the_home_currency_code() -> None:
    config = small_config()
    config["upgrades"][0]["reason"] = "won $revenue_won_365d this year on $seats_active seats"
    rules = load_rules(config, "<test>")
    row = busy(revenue_won_365d=13_400.0)
    rec = RuleEngine(rules, currency="JPY").evaluate([row], NOW)[0]
    assert rec.reason.startswith("Upgrade to CRM Professional: won JPY 13,400 this year on 46 seats.")
    plain = RuleEngine(rules).evaluate([row], NOW)[0]  # no home currency known: the number alone
    assert "won 13400 this year" in plain.reason
