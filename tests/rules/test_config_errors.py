"""Every kind of config mistake fails the load with the file, the key, the position and the names."""

from __future__ import annotations

import re
from typing import Any

import pytest

from crm_upsell_connector.errors import ConfigError, RuleError
from crm_upsell_connector.rules import load_rules

from .conftest import small_config


def _fail(data: dict[str, Any], error: type[Exception] = ConfigError) -> str:
    with pytest.raises(error) as info:
        load_rules(data, "config.toml")
    return str(info.value)


def test_unknown_name_names_key_position_and_known_names() -> None:
    data = small_config()
    data["upgrades"][0]["when"] = "seat_usd > 0.9"
    message = _fail(data, RuleError)
    assert message.startswith("config.toml: upgrades[0].when: unknown name 'seat_usd' at 1:1; known names: ")
    assert "seat_utilization" in message
    assert "meetings_90d" in message


def test_unknown_name_position_on_later_line() -> None:
    data = small_config()
    data["cross_sell"][1]["when"] = "meetings_90d > 1.0 &&\n  meetngs > 2.0"
    assert "cross_sell[1].when: unknown name 'meetngs' at 2:3" in _fail(data, RuleError)


def test_syntax_error_has_position() -> None:
    data = small_config()
    data["guardrails"]["block"][0]["when"] = "do_not_contact =="
    message = _fail(data, RuleError)
    assert re.search(r"config.toml: guardrails.block\[0\].when: syntax error at 1:\d+", message)


def test_type_error_int_plus_double() -> None:
    data = small_config()
    data["scoring"]["factors"][0]["expr"] = "meetings_90d + 1"
    message = _fail(data, RuleError)
    assert "scoring.factors[0].expr: type error" in message
    assert "meetings_90d: number" in message


def test_type_error_string_compared_with_number() -> None:
    data = small_config()
    data["upgrades"][0]["when"] = "account_name > 3.0"
    assert "upgrades[0].when: type error" in _fail(data, RuleError)


def test_condition_must_be_bool() -> None:
    data = small_config()
    data["cross_sell"][0]["when"] = "meetings_90d * 2.0"
    assert "cross_sell[0].when: a condition must give true or false, this gives number" in _fail(
        data, RuleError
    )


def test_factor_must_be_number() -> None:
    data = small_config()
    data["scoring"]["factors"][0]["expr"] = "meetings_90d > 2.0"
    assert "scoring.factors[0].expr: must give a number, this gives bool" in _fail(data, RuleError)


def test_unknown_function() -> None:
    data = small_config()
    data["cross_sell"][0]["when"] = "account_name.lowerAscii() == 'x'"
    assert "unknown function 'lowerAscii' at 1:14" in _fail(data, RuleError)


def test_comprehension_variables_are_not_unknown_names() -> None:
    data = small_config()
    data["cross_sell"][0]["when"] = "owned_families.exists(f, f == 'crm')"
    load_rules(data, "config.toml")


def test_map_access_on_sample_is_not_a_type_error() -> None:
    data = small_config()
    data["cross_sell"][0]["when"] = "owned_tiers.crm >= 2.0"
    load_rules(data, "config.toml")


def test_tags_are_not_visible_to_factors() -> None:
    data = small_config()
    data["scoring"]["factors"][0]["expr"] = "score"
    assert "unknown name 'score'" in _fail(data, RuleError)


def test_unknown_key_is_reported_with_path() -> None:
    data = small_config()
    data["upgrades"][0]["whne"] = "true"
    assert "config.toml: upgrades.0.whne: unknown key" in _fail(data).replace("[0]", ".0")


def test_wrong_value_type() -> None:
    data = small_config()
    data["scoring"]["factors"][1]["weight"] = "heavy"
    assert "config.toml: scoring.factors[1].weight:" in _fail(data)


def test_unknown_product_sku() -> None:
    data = small_config()
    data["cross_sell"][0]["product"] = "MKT-PLATINUM"
    assert "config.toml: cross_sell[0].product: unknown SKU 'MKT-PLATINUM'" in _fail(data)


def test_upgrade_family_without_tiers() -> None:
    data = small_config()
    data["upgrades"][0]["family"] = "marketing"
    assert "upgrades[0].family: family 'marketing' has only one tier" in _fail(data)


def test_upgrade_needs_family_or_product() -> None:
    data = small_config()
    data["upgrades"][0]["product"] = "CRM-PRO"
    assert "give exactly one of family" in _fail(data)


def test_duplicate_rule_names() -> None:
    data = small_config()
    data["cross_sell"][1]["name"] = "mkt"
    assert "cross_sell[1].name: 'mkt' is already used by cross_sell[0]" in _fail(data)


def test_duplicate_sku() -> None:
    data = small_config()
    data["products"].append(dict(data["products"][0]))
    assert "products[5].sku: 'CRM-STARTER' is listed twice" in _fail(data)


def test_bands_must_ascend() -> None:
    data = small_config()
    data["scoring"]["factors"][0] = {
        "name": "x", "expr": "meetings_90d", "weight": 1, "normalise": "bands",
        "bands": [{"at_least": 5, "score": 1.0}, {"at_least": 1, "score": 0.5}],
    }  # fmt: skip
    assert "scoring.factors[0]: bands must be in ascending order" in _fail(data)


def test_minmax_bounds() -> None:
    data = small_config()
    data["scoring"]["factors"][0]["min"] = 10
    data["scoring"]["factors"][0]["max"] = 1
    assert "min must be below max" in _fail(data)


def test_matrix_shape() -> None:
    data = small_config()
    data["segments"]["cells"] = [["a", "b"], ["c", "d"]]
    assert "segments: cells must be 3 rows" in _fail(data)


def test_template_unknown_placeholder() -> None:
    data = small_config(tasks={"subject": "Propose $produkt"})
    assert "config.toml: tasks.subject: unknown name '$produkt'" in _fail(data)


def test_reason_template_unknown_feature() -> None:
    data = small_config()
    data["upgrades"][0]["reason"] = "uses $seats_usd seats"
    assert "upgrades[0].reason: unknown feature '$seats_usd'" in _fail(data)


def test_mapped_field_cannot_shadow_engine_names() -> None:
    data = small_config()
    data["features"]["fields"]["score"] = {"field": "score", "type": "number"}
    assert "features.fields.score" in _fail(data)


def test_mapped_field_cannot_shadow_builtin() -> None:
    data = small_config()
    data["features"]["fields"]["tenure_days"] = {"field": "tenure", "type": "number"}
    assert "already a built-in feature" in _fail(data)


def test_other_sections_are_ignored(small_rules: Any) -> None:
    data = small_config()
    data["connection"] = {"crm": "hubspot"}
    assert load_rules(data, "config.toml").products[0].sku == "CRM-STARTER"


def test_example_config_loads(example_rules: Any) -> None:
    assert len(example_rules.products) == 8
    assert {r.kind for r in example_rules.compiled.rules} == {"upgrade", "cross_sell", "retention"}
