"""SOQL text built safely: every value is escaped, every name is checked, nothing is pasted raw.

Salesforce's escape sequences for quoted strings are ``\\n \\r \\t \\b \\f \\" \\' \\\\``; any other
character (Japanese included) stands for itself. Field and object names cannot be quoted in SOQL,
so they are checked against the API-name grammar instead and refused when they do not fit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _ESCAPES))
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")


def quote(value: str) -> str:
    """``value`` as a quoted SOQL string literal."""
    if not isinstance(value, str):
        raise TypeError(f"quote() takes text, not {type(value).__name__}")
    # A NUL cannot be escaped in SOQL and has no business in a filter value.
    if "\x00" in value:
        raise ValueError("a SOQL value cannot contain a NUL character")
    return "'" + _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value) + "'"


def literal(value: datetime | date | bool | int | float | str | None) -> str:
    """Any filter value as SOQL: dateTimes in UTC with milliseconds, dates, booleans, numbers, text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a SOQL dateTime needs a timezone")
        moment = value.astimezone(UTC)
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("SOQL has no NaN or infinity")
        return repr(value)
    return quote(value)


def name(value: str) -> str:
    """A field or object API name (``Account``, ``Crm_Upsell_Key__c``, ``Owner.Email``), checked."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or len(value) > 255:
        raise ValueError(f"{value!r} is not a Salesforce API name")
    return value


def in_list(values: Iterable[str]) -> str:
    """``('a', 'b')`` for ``IN``; an empty list cannot be written in SOQL and is refused."""
    items = [quote(v) for v in values]
    if not items:
        raise ValueError("an IN list needs at least one value")
    return "(" + ", ".join(items) + ")"


def select(
    sobject: str,
    fields: Sequence[str],
    *,
    where: Sequence[str] = (),
    order_by: Sequence[str] = (),
    limit: int | None = None,
) -> str:
    """``SELECT ... FROM ... [WHERE a AND b] [ORDER BY ...] [LIMIT n]``.

    ``where`` holds conditions already built with :func:`condition` (or from checked names and
    :func:`literal`); this function never sees a raw value.
    """
    cols = ", ".join(name(f) for f in dict.fromkeys(fields))
    text = f"SELECT {cols} FROM {name(sobject)}"  # noqa: S608 - names checked, values escaped
    if where:
        text += " WHERE " + " AND ".join(where)
    if order_by:
        text += " ORDER BY " + ", ".join(name(f) for f in order_by)
    if limit is not None:
        text += f" LIMIT {int(limit)}"
    return text


_OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"})


def condition(field: str, operator: str, value: datetime | date | bool | int | float | str | None) -> str:
    """``field op value`` with the value escaped (for ``IN``, pass the list to :func:`in_condition`)."""
    if operator not in _OPERATORS or operator in ("IN", "NOT IN"):
        raise ValueError(f"unsupported SOQL operator {operator!r}")
    return f"{name(field)} {operator} {literal(value)}"


def in_condition(field: str, values: Iterable[str], *, negate: bool = False) -> str:
    return f"{name(field)} {'NOT IN' if negate else 'IN'} {in_list(values)}"
