"""SOQL building: every value escaped (hostile ones included), every name checked, dateTimes in UTC."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from crm_upsell_salesforce import soql

HOSTILE = [
    "O'Brien",
    "' OR Name != '",
    "x' OR Id != null OR Name = 'y",
    "back\\slash",
    "trailing backslash\\",
    "\\' OR 1=1 --",
    'double "quotes"',
    "line\nbreak\r\ttab",
    "SELECT Id FROM User WHERE IsActive = true",
    "') OR (Name LIKE '%",
    "株式会社テスト'; DELETE",
    "%_wildcards_%",
    "\b\f",
]
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def read_literal(text: str) -> tuple[str, str]:
    """Parse one quoted SOQL literal at the start of ``text`` as Salesforce would: (value, rest)."""
    assert text[0] == "'"
    out: list[str] = []
    i = 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            out.append(_UNESCAPE[text[i + 1]])
            i += 2
        elif char == "'":
            return "".join(out), text[i + 1 :]
        else:
            out.append(char)
            i += 1
    raise AssertionError("unterminated literal")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_one_literal(value: str) -> None:
    quoted = soql.quote(value)
    parsed, rest = read_literal(quoted)
    assert parsed == value
    assert rest == ""  # nothing leaks out of the literal
    assert "\n" not in quoted and "\r" not in quoted


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_in_a_where_clause(value: str) -> None:
    query = soql.select("Task", ("Id",), where=[soql.condition("Subject", "=", value)])
    prefix = "SELECT Id FROM Task WHERE Subject = "
    assert query.startswith(prefix)
    parsed, rest = read_literal(query[len(prefix) :])
    assert parsed == value and rest == ""


def test_in_list_escapes_every_value() -> None:
    condition = soql.in_condition("Crm_Upsell_Key__c", ["a", "b'c", "d\\"])
    assert condition == "Crm_Upsell_Key__c IN ('a', 'b\\'c', 'd\\\\')"
    with pytest.raises(ValueError, match="at least one"):
        soql.in_list([])


def test_the_sandbox_parser_reads_hostile_values_back_when_present() -> None:
    sandbox_soql = pytest.importorskip("crm_upsell_salesforce.sandbox.soql_parse")
    for value in HOSTILE:
        query = soql.select("Account", ("Id", "Name"), where=[soql.condition("Name", "=", value)])
        parsed = sandbox_soql.parse_soql(query)
        assert parsed.sobject == "Account"
        where = parsed.where
        assert isinstance(where, sandbox_soql.Condition)
        assert (where.field, where.op) == ("Name", "=")
        assert isinstance(where.value, sandbox_soql.Lit) and where.value.value == value


@pytest.mark.parametrize(
    "bad",
    ["Name, Id", "Name FROM User", "Name--", "1Name", "Name'", "", "Na me", "Name;", "Owner..Email"],
)
def test_names_are_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="API name"):
        soql.select("Account", (bad,))
    with pytest.raises(ValueError, match="API name"):
        soql.select(bad, ("Id",))


def test_names_that_are_fine() -> None:
    assert soql.name("Crm_Upsell_Key__c") == "Crm_Upsell_Key__c"
    assert soql.name("ns__Seats__c") == "ns__Seats__c"
    assert soql.name("Owner.Email") == "Owner.Email"


def test_datetime_literals_are_utc_with_milliseconds() -> None:
    tokyo = timezone(timedelta(hours=9))
    moment = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=tokyo)
    assert soql.literal(moment) == "2026-11-01T00:30:15.123Z"
    assert soql.literal(date(2026, 1, 2)) == "2026-01-02"
    assert soql.literal(True) == "true" and soql.literal(None) == "null"
    assert soql.literal(3) == "3" and soql.literal(2.5) == "2.5"
    with pytest.raises(ValueError, match="timezone"):
        soql.literal(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="NaN"):
        soql.literal(float("nan"))


def test_operators_are_a_closed_set() -> None:
    assert soql.condition("SystemModstamp", ">=", datetime(2026, 1, 1, tzinfo=UTC)) == (
        "SystemModstamp >= 2026-01-01T00:00:00.000Z"
    )
    for op in ("OR", "= 1 OR Name =", "IN", "LIKE"):
        with pytest.raises(ValueError, match="operator"):
            soql.condition("Name", op, "x")


def test_nul_is_refused_and_non_text_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        soql.quote("a\x00b")
    with pytest.raises(TypeError):
        soql.quote(5)  # type: ignore[arg-type]


def test_select_shape() -> None:
    query = soql.select(
        "Account",
        ("Id", "Name", "Id", "SystemModstamp"),
        where=[soql.condition("SystemModstamp", ">=", datetime(2026, 1, 1, tzinfo=UTC))],
        order_by=("SystemModstamp", "Id"),
        limit=5,
    )
    assert query == (
        "SELECT Id, Name, SystemModstamp FROM Account WHERE SystemModstamp >= "
        "2026-01-01T00:00:00.000Z ORDER BY SystemModstamp, Id LIMIT 5"
    )
    assert re.fullmatch(r"[ -~]+", query)
