"""Conversions of stored values into feature values, value sharing, and small SQL aggregate helpers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from crm_upsell_connector.features.spec import ACTIVITY_KINDS, WINDOWS, MappedType
from crm_upsell_connector.values import parse_bool, parse_number

# ---- conversions ------------------------------------------------------------------------------


def aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # SQLite hands back naive datetimes; the store writes UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def days_since(now: datetime, then: datetime | None) -> float | None:
    then = aware(then)
    if then is None:
        return None
    # Whole days: the facts quoted in reasons (and written to the CRM) stay the same all day long.
    return float(math.floor((now - then).total_seconds() / 86400.0))


def _to_date_days(raw: Any, now: datetime) -> float | None:
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return days_since(now, value)


def convert_mapped(raw: Any, type_: MappedType, now: datetime) -> Any:
    """A raw CRM field value as the feature type; unparseable or empty is ``None``."""
    if type_ == "number":
        return parse_number(raw)
    if type_ == "bool":
        return parse_bool(raw)
    if type_ == "date":
        return _to_date_days(raw, now)
    if raw is None:
        return None
    text = str(raw)
    return text if text.strip() else None


COUNTS = tuple(
    [name for window in WINDOWS for name in (f"activities_{window}d", f"inbound_{window}d")]
    + [f"{kind}s_{window}d" for window in WINDOWS for kind in ACTIVITY_KINDS]
    + ["complaints_30d", "complaints_90d"]
)
DEAL_NUMBERS = (
    "deals_won",
    "deals_won_365d",
    "deals_lost_365d",
    "renewals_won",
    "revenue_won_365d",
    "revenue_won_total",
    "open_deals",
    "open_deal_amount",
)


class Interner:
    """Shares equal values between accounts: 100,000 feature rows of small counts and the same few
    product maps would otherwise hold millions of identical objects."""

    def __init__(self) -> None:
        self._numbers: dict[float, float] = {}
        self._values: dict[Any, Any] = {}

    def number(self, value: Any) -> float:
        number = float(value) if value is not None else 0.0
        return (
            self._numbers.setdefault(number, number) if number.is_integer() and abs(number) < 1e6 else number
        )

    def list(self, values: list[str]) -> list[str]:
        return self._values.setdefault(("l", *values), values)  # type: ignore[no-any-return]

    def map(self, values: dict[str, Any]) -> dict[str, Any]:
        return self._values.setdefault(("m", *values.items()), values)  # type: ignore[no-any-return]

    def value(self, value: Any) -> Any:
        """A string (owner id, stage...) or number shared with its equals; ``None`` stays ``None``."""
        if isinstance(value, float):
            return self.number(value)
        if isinstance(value, str):
            return self._values.setdefault(("s", value), value)
        return value


# ---- SQL --------------------------------------------------------------------------------------


def count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def sum_if(condition: sa.ColumnElement[bool], value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, value), else_=0.0))


def max_if(condition: sa.ColumnElement[bool], value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.max(sa.case((condition, value), else_=sa.null()))


def keyword_match(column: sa.ColumnElement[str], keywords: Sequence[str]) -> sa.ColumnElement[bool]:
    parts = [sa.func.lower(column).contains(k.lower(), autoescape=True) for k in keywords if k]
    return sa.or_(*parts) if parts else sa.false()
