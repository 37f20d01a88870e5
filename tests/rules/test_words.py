"""What reps read: task bodies in plain sentences, labels from [locale], English and Japanese."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import sqlalchemy as sa

from crm_upsell_connector.features import compute_features
from crm_upsell_connector.fields import fields_for, segment_ids
from crm_upsell_connector.labels import Labels
from crm_upsell_connector.rules import Recommendation, RuleEngine, RulesConfig, load_rules, render_task
from crm_upsell_connector.sandbox.scenario import build_scenario

from .conftest import EXAMPLE
from .scenario_store import CONNECTION, load_scenario


def _rules(**locale: Any) -> RulesConfig:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    if locale:
        data["locale"] = locale
        if locale.get("language") == "ja":
            data.pop("tasks", None)  # the [locale] language's own task text
    return load_rules(data, "config.toml")


@pytest.fixture(scope="module")
def recommendations(example_rules: RulesConfig) -> list[Recommendation]:
    scenario = build_scenario(accounts=300, seed=7)
    engine = sa.create_engine("sqlite://")
    now = load_scenario(engine, scenario)
    with engine.connect() as conn:
        features = list(
            compute_features(conn, CONNECTION, now, example_rules.features, example_rules.products)
        )
    return RuleEngine(example_rules).evaluate(features, now)


def _identifiers(rules: RulesConfig, recs: list[Recommendation]) -> set[str]:
    """Every name a rep must never read: features, rules, guardrails, tags, segment ids."""
    names = set(rules.compiled.schema)
    names |= {r.name for r in (*rules.upgrades, *rules.cross_sell, *rules.retention)}
    names |= {g.name for g in rules.guardrails.block}
    names |= set(rules.segments.tags)
    names |= set(segment_ids(rules))
    names |= {t for r in recs for t in r.tags}
    # a single plain word ("score", "contacts", "industry", "expand") may be a word in a sentence
    return {n for n in names if "_" in n}


def test_task_bodies_carry_no_identifiers(
    example_rules: RulesConfig, recommendations: list[Recommendation]
) -> None:
    proposals = [r for r in recommendations if r.wants_task]
    assert len(proposals) >= 10
    forbidden = _identifiers(example_rules, recommendations)
    now = build_scenario(0).now
    for rec in proposals:
        task = render_task(rec, example_rules, now, owner_name="Erin Wright")
        text = task.subject + "\n" + task.body
        found = {name for name in forbidden if re.search(rf"\b{re.escape(name)}\b", text)}
        assert not found, f"{rec.account_id}: identifiers in the task: {found}\n{text}"
        assert "Rule:" not in text and "$" not in text


def test_the_facts_read_as_sentences_with_units(
    example_rules: RulesConfig, recommendations: list[Recommendation]
) -> None:
    rec = next(r for r in recommendations if r.wants_task and "seats_active" in r.facts)
    body = render_task(rec, example_rules, build_scenario(0).now).body
    facts = body.split("What we know:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert facts and all(line.startswith("- ") for line in facts)
    assert any(re.fullmatch(r"- uses \d+ of its \d+ seats \(\d+%\)", line) for line in facts), facts
    assert any(re.fullmatch(r"- \d+ meetings in the last 90 days", line) for line in facts), facts
    assert any(re.fullmatch(r"- customer for \d+ (years|months|days)", line) for line in facts), facts


def test_labels_turn_numbers_into_words() -> None:
    en = Labels.for_language("en")
    assert en.fact("tenure_days", 1100.0) == "customer for 3 years"
    assert en.fact("tenure_days", 75.0) == "customer for 2 months"
    assert en.fact("days_since_last_activity", 1.0) == "last contact 1 day ago"
    assert en.fact("seat_utilization", 0.97) == "97% of purchased seats in use"
    assert en.fact("expected_uplift", 8400.0, currency="USD") == "expected USD 8,400 more revenue per year"
    assert en.seats({"seats_active": 48.0, "seats_purchased": 50.0}) == "uses 48 of its 50 seats (96%)"
    assert en.fact("owned_tiers", {"crm": 2}) is None  # a map means nothing to a rep as it is
    assert en.fact("some_feature", 3.0) is None  # no label and no description: left out
    assert en.fact("some_feature", 3.0, description="support tickets open") == "support tickets open: 3"
    ja = Labels.for_language("ja")
    assert ja.fact("tenure_days", 1100.0) == "取引期間 3年"
    assert ja.segment("at_risk") == "解約リスク"


def test_japanese_task_text_and_labels(recommendations: list[Recommendation]) -> None:
    rules = _rules(language="ja")
    rec = next(r for r in recommendations if r.wants_task and r.proposal and r.proposal.kind == "upgrade")
    task = render_task(rec, rules, build_scenario(0).now)
    assert task.subject.startswith("アップグレード: ")
    assert "今提案する理由" in task.body
    assert "わかっていること" in task.body
    assert any(line.startswith("- 取引期間 ") for line in task.body.splitlines())


def test_labels_are_configurable_in_one_place(recommendations: list[Recommendation]) -> None:
    rules = _rules(
        language="en",
        segments={"at_risk": "Churn risk"},
        kinds={"upgrade": "Step up"},
        guardrails={"dormant": "Quiet for months"},
        facts={"meetings_90d": "met them $value times this quarter"},
    )
    segment = next(f for f in fields_for(rules) if f.name == "segment")
    assert segment.type == "enumeration"
    assert segment.options == segment_ids(rules)
    assert dict(zip(segment.options, segment.option_labels, strict=True))["at_risk"] == "Churn risk"
    assert dict(zip(segment.options, segment.option_labels, strict=True))["champion"] == "Champion"
    rec = next(r for r in recommendations if r.wants_task and r.proposal and r.proposal.kind == "upgrade")
    task = render_task(rec, rules, build_scenario(0).now)
    assert task.subject.startswith("Step up: ")
    assert re.search(r"- met them \d+ times this quarter", task.body)


def test_a_fact_phrase_with_an_unknown_placeholder_is_a_config_error() -> None:
    from crm_upsell_connector.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        _rules(facts={"meetings_90d": "$meetings meetings"})
    assert "locale.facts" in info.value.one_line()
    assert "$value" in info.value.one_line()


def test_the_segment_field_lists_every_segment_with_its_label(example_rules: RulesConfig) -> None:
    segment = next(f for f in fields_for(example_rules) if f.name == "segment")
    assert segment.type == "enumeration"
    assert set(segment.options) == {
        "at_risk",
        "nurture",
        "activate",
        "develop",
        "expand",
        "loyal",
        "champion",
        "unmeasured",
    }
    assert "Seat use unknown" in segment.option_labels
    assert all("_" not in label for label in segment.option_labels)
    ja = next(f for f in fields_for(_rules(language="ja")) if f.name == "segment")
    assert "解約リスク" in ja.option_labels


def test_a_blocked_reason_names_no_rule(
    recommendations: list[Recommendation], example_rules: RulesConfig
) -> None:
    rule_names = {
        r.name for r in (*example_rules.upgrades, *example_rules.cross_sell, *example_rules.retention)
    }
    for rec in recommendations:
        assert not any(name in rec.reason for name in rule_names), rec.reason


def test_the_reason_starts_in_the_locale_language(recommendations: list[Recommendation]) -> None:
    en = Labels.for_language("en")
    ja = Labels.for_language("ja")
    assert en.proposal("upgrade", "CRM Professional", "uses 46 of 50 seats") == (
        "Upgrade to CRM Professional: uses 46 of 50 seats."
    )
    assert (
        ja.proposal("cross_sell", "Marketing Basic", "打ち合わせ 5 件")
        == "クロスセル (Marketing Basic): 打ち合わせ 5 件。"
    )
    upgrade = next(r for r in recommendations if r.wants_task and r.proposal and r.proposal.kind == "upgrade")
    assert upgrade.reason.startswith(f"Upgrade to {upgrade.proposal.product_name}: ")  # type: ignore[union-attr]
