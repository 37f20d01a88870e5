"""Lenient parsing of Salesforce values: dateTimes, text, ids and references, modification stamps.

A value that does not parse becomes None; a record without an ``Id`` or a readable
``SystemModstamp`` raises ``SkipRecord`` (the mapper skips it with a warning).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_SF_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def parse_datetime(value: Any) -> datetime | None:
    """Salesforce dateTimes (``2026-10-01T12:00:00.000+0000``) and dates; None where unreadable."""
    if value is None or isinstance(value, bool | int | float):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text_value = str(value).strip()
    if not text_value:
        return None
    try:
        parsed = datetime.fromisoformat(text_value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    try:
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00: before datetime.min once in UTC
        return None


def text(value: Any) -> str | None:
    """A field value as text, None for missing or blank (whole numbers without a trailing ``.0``)."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    out = str(value).strip()
    return out or None


def _lower(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in raw.items()}


def _ref(value: Any, prefix: str) -> str | None:
    """An id that points at the object with key ``prefix``; ids not shaped like Salesforce ids pass."""
    ident = text(value)
    if ident is None:
        return None
    if _SF_ID.fullmatch(ident) and not ident.startswith(prefix):
        return None  # WhatId on an opportunity, WhoId on a lead...
    return ident


class SkipRecord(ValueError):
    """A record that cannot be mapped; it is logged and left out."""


def _id(raw: Mapping[str, Any]) -> str:
    value = raw.get("id")
    if value is None or isinstance(value, bool | dict | list) or not str(value).strip():
        raise SkipRecord("it has no Id")
    return str(value).strip()


def modified_at(raw: Mapping[str, Any]) -> datetime | None:
    """``SystemModstamp`` (what incremental reads filter on), else ``LastModifiedDate``."""
    low = _lower(raw)
    return parse_datetime(low.get("systemmodstamp")) or parse_datetime(low.get("lastmodifieddate"))


def _updated(raw: Mapping[str, Any]) -> datetime:
    stamp = modified_at(raw)
    if stamp is None:
        raise SkipRecord(f"its SystemModstamp {raw.get('systemmodstamp')!r} cannot be read")
    return stamp


def _domain(website: Any) -> str | None:
    site = text(website)
    if site is None:
        return None
    site = re.sub(r"^[a-z][a-z0-9+.-]*://", "", site.lower()).split("/")[0].split("?")[0]
    site = site.removeprefix("www.")
    return site or None
