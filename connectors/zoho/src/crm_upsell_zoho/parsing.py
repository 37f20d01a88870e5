"""Reading Zoho's values leniently: datetimes, text, lookups, ids and stamps of raw records."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from crm_upsell_connector.values import parse_number


def parse_datetime(value: Any) -> datetime | None:
    """Zoho's ISO 8601 with offset (``2026-01-15T10:20:30+05:30``) or a date; None if unreadable."""
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
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00: before datetime.min once in UTC
        return None


def zoho_datetime(value: datetime) -> str:
    """A datetime as Zoho writes and reads them: seconds, with an offset (``+00:00``)."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def text(value: Any) -> str | None:
    """A value as text, None for missing or blank; booleans as ``true``/``false``, whole numbers
    without ``.0``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return None
    out = str(value).strip()
    return out or None


def lookup_id(value: Any) -> str | None:
    """The id of a lookup ``{name, id}`` (or a bare id)."""
    if isinstance(value, dict):
        return text(value.get("id"))
    if isinstance(value, str | int) and not isinstance(value, bool):
        return text(value)
    return None


def get_ci(raw: Mapping[str, Any], name: str) -> Any:
    """``raw[name]``, matching the key without regard to case (``seats_purchased`` ~ ``Seats_Purchased``)."""
    if name in raw:
        return raw[name]
    lowered = name.lower()
    for key, value in raw.items():
        if key.lower() == lowered:
            return value
    return None


class SkipRecord(ValueError):
    """A record that cannot be mapped; it is logged and left out."""


def record_id(raw: Mapping[str, Any]) -> str:
    value = raw.get("id")
    if value is None or isinstance(value, bool | dict | list) or not str(value).strip():
        raise SkipRecord("it has no id")
    return str(value).strip()


def modified_at(raw: Mapping[str, Any]) -> datetime | None:
    return parse_datetime(raw.get("Modified_Time"))


def updated_stamp(raw: Mapping[str, Any]) -> datetime:
    stamp = modified_at(raw)
    if stamp is None:
        raise SkipRecord(f"its Modified_Time {raw.get('Modified_Time')!r} cannot be read")
    return stamp


def home_amount(amount: float | None, rate: Any) -> float | None:
    """An amount in the org's home currency: Zoho's ``Exchange_Rate`` is units of the record's
    currency per unit of the home currency ("Multi Currency Support",
    https://www.zoho.com/crm/developer/docs/api/v8/multi-currency-support.html), so home = amount /
    rate. A single-currency org has no rate: the amount is already in the home currency."""
    if amount is None:
        return None
    if rate is None:
        return amount
    value = parse_number(rate)
    if value is None or value <= 0 or not math.isfinite(value):
        return None  # unreadable rate: no home amount rather than a wrong one
    return round(amount / value, 2)
