"""Building COQL queries (and search criteria) from values that may be hostile.

COQL is SQL-like text sent as ``{"select_query": "..."}``; a value put into it unescaped could end the
string literal and change the query. Every value goes through :func:`quote` (a single-quoted literal
with backslash and quote escaped, control characters refused) and every name through
:func:`identifier` (an api_name: letters, digits and ``_`` only). Search criteria
(``(Field:equals:value)``) escape their own metacharacters with :func:`criteria_value`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: COQL's IN takes at most this many values (Zoho documents 50).
MAX_IN_VALUES = 50
#: A query returns at most this many rows per call (LIMIT offset, count).
MAX_LIMIT = 2000


class UnsafeValue(ValueError):
    """A value or name that cannot be put into a query safely."""


def identifier(name: str) -> str:
    """``name`` if it is a plain api_name (``Upsell_task_key``); otherwise :class:`UnsafeValue`."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise UnsafeValue(f"{name!r} is not a Zoho api_name")
    return name


def quote(value: str) -> str:
    """``value`` as a COQL string literal: ``it's`` -> ``'it\\'s'``.

    Backslashes are doubled first, then single quotes are backslash-escaped, so no input can close
    the literal. Line breaks and tabs stay as they are (inside a literal they are data); other
    control characters (NUL...) are refused.
    """
    if not isinstance(value, str):
        raise UnsafeValue(f"a COQL value must be text, not {type(value).__name__}")
    if _CONTROL.search(value):
        raise UnsafeValue("a COQL value must not contain control characters")
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def in_list(values: Iterable[str]) -> str:
    """``('a','b')`` for ``IN``; at most :data:`MAX_IN_VALUES` values."""
    items = [quote(v) for v in values]
    if not items:
        raise UnsafeValue("IN needs at least one value")
    if len(items) > MAX_IN_VALUES:
        raise UnsafeValue(f"IN takes at most {MAX_IN_VALUES} values, got {len(items)}")
    return "(" + ",".join(items) + ")"


def select_in(
    module: str,
    fields: Sequence[str],
    key: str,
    values: Sequence[str],
    *,
    offset: int = 0,
    limit: int = MAX_LIMIT,
) -> str:
    """``select f1, f2 from Module where key in ('..') limit offset, count``, every part checked."""
    if not fields:
        raise UnsafeValue("select needs at least one field")
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise UnsafeValue(f"limit must be 1..{MAX_LIMIT} and offset >= 0")
    columns = ", ".join(identifier(f) for f in fields)
    # Every part is an identifier() or a quote()d literal: nothing arrives unescaped.
    where = f"{identifier(key)} in {in_list(values)}"
    return f"select {columns} from {identifier(module)} where {where} limit {int(offset)}, {int(limit)}"  # noqa: S608


_CRITERIA_SPECIAL = re.compile(r"([\\(),:])")


def criteria_value(value: str) -> str:
    """A value for search criteria ``(Field:equals:value)``: ``\\``, ``(``, ``)``, ``,`` and ``:``
    are backslash-escaped so the value cannot close the condition or start another one."""
    if not isinstance(value, str):
        raise UnsafeValue(f"a criteria value must be text, not {type(value).__name__}")
    if _CONTROL.search(value) or "\n" in value or "\r" in value:
        raise UnsafeValue("a criteria value must not contain control characters")
    return _CRITERIA_SPECIAL.sub(r"\\\1", value)


def criteria_equals(field: str, value: str) -> str:
    return f"({identifier(field)}:equals:{criteria_value(value)})"


def coql_credits(limit: int) -> int:
    """API credits one COQL call costs by its LIMIT (Zoho: 1-200 -> 1, 201-1000 -> 2, 1001-2000 -> 3)."""
    if limit <= 200:
        return 1
    if limit <= 1000:
        return 2
    return 3
