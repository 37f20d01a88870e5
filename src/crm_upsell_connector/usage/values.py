"""Values from source rows: metric numbers, the day a row holds for, and modification stamps."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

from crm_upsell_connector.values import parse_number


def parse_metric(raw: Any) -> float | None:
    """A metric as a float (``Decimal`` from a database, ``"1,234"`` from a CSV); ``None`` when empty."""
    if raw is None:
        return None
    if type(raw) is str:  # the common case in a file: a plain number, parsed at C speed
        try:
            number = float(raw)
        except ValueError:
            return parse_number(raw)
        return number if math.isfinite(number) else None
    if not isinstance(raw, int | float | str | bool):
        raw = str(raw)  # Decimal and friends
    return parse_number(raw)


def parse_stamp(raw: Any) -> datetime | None:
    """A modification stamp as an aware UTC datetime; naive values are read as UTC."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    else:
        text = str(raw).strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_day(raw: Any) -> date | None:
    """The day a row's values hold for, from a date, a timestamp or their ISO text."""
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    stamp = parse_stamp(raw)
    return stamp.date() if stamp is not None else None
