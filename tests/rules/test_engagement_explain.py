"""``explain`` on a disengaged account: the engagement factor, the guardrail and how figures are derived."""

from __future__ import annotations

import sqlalchemy as sa

from crm_upsell_connector.cli.explain import render_explanation
from crm_upsell_connector.cli.output import console
from crm_upsell_connector.features import compute_features
from crm_upsell_connector.rules import RuleEngine, RulesConfig
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.scenario.marketing import build_marketing

from .scenario_store import CONNECTION, load_scenario


def test_explain_shows_the_engagement_factor_the_guardrail_and_derivations(
    example_rules: RulesConfig,
) -> None:
    scenario = build_scenario(accounts=300, seed=7)
    engine = sa.create_engine("sqlite://")
    now = load_scenario(engine, scenario)
    with engine.connect() as conn:
        features = list(
            compute_features(conn, CONNECTION, now, example_rules.features, example_rules.products)
        )
    recs = {r.account_id: r for r in RuleEngine(example_rules).evaluate(features, now)}
    lookalike = recs[sorted(build_marketing(scenario).lookalikes)[0]]
    with console.capture() as captured:
        render_explanation(lookalike)
    text = " ".join(captured.get().split())
    assert "marketing_engagement" in text
    assert "No proposal: blocked by marketing_disengaged" in text
    assert "unsubscribed_share" in text and "days_since_last_engagement" in text
    # The facts say how each engagement figure is derived, in plain words.
    assert "opted out of marketing e-mail" in text
