"""Invariants over random customer bases (hypothesis)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crm_upsell_connector.rules import RuleEngine, load_rules
from crm_upsell_connector.rules.engine import PACING_GUARDRAILS

from .conftest import features, small_config

NOW = datetime(2026, 11, 1, tzinfo=UTC)
RULES = load_rules(small_config(), "config.toml")
CAP = 3

maybe_number = st.one_of(st.none(), st.floats(min_value=0, max_value=200, allow_nan=False))
count = st.integers(min_value=0, max_value=12).map(float)


@st.composite
def account(draw: st.DrawFn, index: int) -> dict[str, Any]:
    tier = draw(st.sampled_from([None, 1.0, 2.0, 3.0]))
    sku = {1.0: "CRM-STARTER", 2.0: "CRM-PRO", 3.0: "CRM-ENT"}.get(tier or 0.0)
    owned: dict[str, Any] = {}
    if sku is not None:
        owned = {
            "owned_skus": [sku],
            "owned_families": ["crm"],
            "owned_products": {"crm": sku},
            "owned_tiers": {"crm": tier},
            "owned_quantity": {"crm": draw(st.floats(min_value=1, max_value=100))},
        }
    return features(
        f"acct-{index:03d}",
        owner_id=draw(st.sampled_from(["o1", "o2", None])),
        meetings_90d=draw(count),
        complaints_90d=draw(st.sampled_from([0.0, 0.0, 1.0])),
        open_upsell_tasks=draw(st.sampled_from([0.0, 0.0, 1.0, 2.0])),
        days_since_last_proposal=draw(maybe_number),
        open_deal_families=draw(st.sampled_from([[], ["crm"], ["marketing"]])),
        seats_purchased=draw(maybe_number),
        seats_active=draw(maybe_number),
        nps_score=draw(st.one_of(st.none(), st.integers(0, 10).map(float))),
        do_not_contact=draw(st.sampled_from([None, True, False])),
        **owned,
    )


@st.composite
def base(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(min_value=1, max_value=25))
    return [draw(account(i)) for i in range(n)]


already = st.dictionaries(st.sampled_from(["o1", "o2", ""]), st.integers(0, 4))


@settings(max_examples=60, deadline=None)
@given(rows=base(), used=already)
def test_invariants(rows: list[dict[str, Any]], used: dict[str, int]) -> None:
    recs = RuleEngine(RULES).evaluate(rows, NOW, owner_open_tasks_this_week=used)
    by_id = {r["account_id"]: r for r in rows}
    new_tasks: Counter[str] = Counter()
    for rec in recs:
        row = by_id[rec.account_id]
        if rec.blocked_by is not None and rec.blocked_by not in PACING_GUARDRAILS:
            assert rec.proposal is None  # an unsuitable account gets no proposal at all
        if not rec.wants_task:
            continue  # a guardrail-blocked account never gets a task
        assert row["open_upsell_tasks"] < 1  # never two open upsell tasks on one account
        assert row["do_not_contact"] is not True
        last = row["days_since_last_proposal"]
        assert last is None or last >= 90
        if rec.proposal.kind != "retention":
            assert row["complaints_90d"] == 0
        assert 0 <= rec.score <= 100
        new_tasks[row["owner_id"] or ""] += 1
    for owner, n in new_tasks.items():
        assert used.get(owner, 0) + n <= max(CAP, used.get(owner, 0))  # the cap is never exceeded


@settings(max_examples=30, deadline=None)
@given(rows=base(), seed=st.integers(0, 1000))
def test_deterministic(rows: list[dict[str, Any]], seed: int) -> None:
    engine = RuleEngine(RULES)
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    assert engine.evaluate(rows, NOW) == engine.evaluate(shuffled, NOW)
