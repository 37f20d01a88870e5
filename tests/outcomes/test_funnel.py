"""The funnel and the uplift: counts per step, intervals from statsmodels, and plain verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm_upsell_connector.outcomes.funnel import summarise
from crm_upsell_connector.outcomes.track import Outcome

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def outcome(
    i: int, *, rule: str = "r", status: str = "task", done: bool = False, won: bool | None = None
) -> Outcome:
    return Outcome(
        id=str(i),
        account_id=f"a{i}",
        proposed_at=T0,
        window_ends_at=T0 + timedelta(days=90),
        rule=rule,
        kind="upgrade",
        product_sku="CRM-PRO",
        product_family="crm",
        segment="champion",
        owner_id="o1",
        score=80.0,
        uplift=1000.0,
        status=status,
        not_sent_reason="owner_weekly_cap" if status == "not_sent" else None,
        task_key=f"k{i}" if status == "task" else None,
        task_created_at=T0 if status == "task" else None,
        task_done_at=T0 if done else None,
        deal_id=f"d{i}" if won is not None else None,
        deal_opened_at=T0 if won is not None else None,
        deal_won=won,
        revenue_home=1200.0 if won else None,
    )


def test_the_funnel_counts_each_step_with_wilson_intervals() -> None:
    rows = [outcome(i, done=i < 6, won=(True if i < 3 else False if i < 5 else None)) for i in range(10)]
    rows += [outcome(100 + i, status="not_sent") for i in range(2)]
    summary = summarise(rows)
    (group,) = summary.groups
    counts = {s.name: s.count for s in group.steps}
    assert counts == {"proposed": 12, "task_created": 10, "task_done": 6, "deal_opened": 5, "deal_won": 3}
    assert group.revenue_won == pytest.approx(3600.0)
    assert group.not_sent == 2
    won = group.steps[-1]
    # Wilson interval of 3/12 (statsmodels proportion_confint, method="wilson").
    assert won.share == pytest.approx(0.25)
    assert (won.low, won.high) == pytest.approx((0.0889, 0.5323), abs=1e-3)
    assert won.of_previous == pytest.approx(3 / 5)


def test_uplift_against_the_holdout_with_an_interval_and_plain_verdicts() -> None:
    treated = [outcome(i, won=i < 40) for i in range(100)]
    held = [outcome(1000 + i, status="held_out", won=(True if i < 10 else None)) for i in range(100)]
    summary = summarise(treated + held)
    (u,) = summary.uplift
    assert (u.treated, u.treated_won, u.held_out, u.held_out_won) == (100, 40, 100, 10)
    assert u.uplift == pytest.approx(0.30)
    assert u.low is not None and u.high is not None and 0.17 < u.low < 0.30 < u.high < 0.42
    assert u.verdict == "proposals win more deals than the holdout"
    assert summary.held_out == 100
    # Held-out proposals are not in the funnel.
    assert summary.total.steps[0].count == 100

    small = summarise([outcome(i, won=True) for i in range(12)] + [outcome(99, status="held_out")])
    assert small.uplift[0].verdict.startswith("too small to tell (12 vs 1")
    none = summarise([outcome(i) for i in range(40)])
    assert none.uplift[0].verdict == "no held-out accounts for this rule (yet)"
    even = summarise(
        [outcome(i, won=i < 5) for i in range(50)]
        + [outcome(100 + i, status="held_out", won=i < 5 or None) for i in range(50)]
    )
    assert even.uplift[0].verdict.startswith("no clear difference yet")
