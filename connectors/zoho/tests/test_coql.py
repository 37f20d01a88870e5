"""COQL built from hostile values: every value stays one literal, every name stays a plain api_name."""

from __future__ import annotations

import pytest
from crm_upsell_zoho.coql import (
    MAX_IN_VALUES,
    UnsafeValue,
    coql_credits,
    criteria_equals,
    identifier,
    in_list,
    quote,
    select_in,
)
from crm_upsell_zoho.sandbox.coql_parse import Cond, parse_coql

HOSTILE = [
    "plain-key",
    "it's",
    "'",
    "\\",
    "\\'",
    "x' or id is not null --",
    "') or (Subject like '%",
    "a\\' or '1'='1",
    "株式会社エー'；DROP",
    "trailing backslash\\",
    "line\nbreak",
    "percent % and _ wildcard",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_stays_one_literal(value: str) -> None:
    query = select_in("Tasks", ["id", "Upsell_task_key"], "Upsell_task_key", [value, "other"])
    parsed = parse_coql(query)  # the sandbox's tokenizer reads values as data, like Zoho's
    where = parsed.where
    assert isinstance(where, Cond)
    assert where.field == "Upsell_task_key"
    assert where.op == "in"
    assert where.values == (value, "other")


def test_quote_escapes_backslash_before_quote() -> None:
    assert quote("it's") == "'it\\'s'"
    assert quote("a\\b") == "'a\\\\b'"
    assert quote("\\'") == "'\\\\\\''"


@pytest.mark.parametrize("value", ["nul\x00byte", "bell\x07", "esc\x1b[0m"])
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(UnsafeValue):
        quote(value)


@pytest.mark.parametrize("name", ["Subject; drop", "a b", "x'", "1abc", "", "Upsell_key)--"])
def test_names_must_be_api_names(name: str) -> None:
    with pytest.raises(UnsafeValue):
        identifier(name)
    with pytest.raises(UnsafeValue):
        select_in("Tasks", [name], "Subject", ["x"])


def test_in_list_bounds() -> None:
    with pytest.raises(UnsafeValue):
        in_list([])
    with pytest.raises(UnsafeValue):
        in_list(["k"] * (MAX_IN_VALUES + 1))
    assert in_list(["a", "b"]) == "('a','b')"


def test_limit_and_offset_are_checked() -> None:
    with pytest.raises(UnsafeValue):
        select_in("Tasks", ["id"], "Subject", ["x"], limit=2001)
    with pytest.raises(UnsafeValue):
        select_in("Tasks", ["id"], "Subject", ["x"], offset=-1)
    query = select_in("Tasks", ["id"], "Subject", ["x"], offset=200, limit=200)
    assert query.endswith("limit 200, 200")


def test_credits_follow_the_limit() -> None:
    assert [coql_credits(n) for n in (1, 200, 201, 1000, 1001, 2000)] == [1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "(Email:equals:plain)"),
        ("a)or(b", "(Email:equals:a\\)or\\(b)"),
        ("x,y:z", "(Email:equals:x\\,y\\:z)"),
        ("back\\slash", "(Email:equals:back\\\\slash)"),
    ],
)
def test_search_criteria_values_are_escaped(value: str, expected: str) -> None:
    assert criteria_equals("Email", value) == expected
