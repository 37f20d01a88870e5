"""Small helpers every route shares: time and number formats, HubSpot error bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from crm_upsell_connector.sandbox.server import iso_ms
from crm_upsell_hubspot.sandbox.catalog import _ALIASES, _EPOCH, _MS


def _iso(value: datetime) -> str:
    return iso_ms((value - _EPOCH) // _MS)


def _ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def _num(value: float | int) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _parse_time(raw: str) -> int | None:
    """Epoch milliseconds from a HubSpot filter/property value (epoch ms, ISO-8601 or a date)."""
    text = raw.strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def _error(status: int, message: str, category: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status)


class _HTTPError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(getattr(response, "status_code", 400))
        self.response = response


def _bad(message: str, category: str = "VALIDATION_ERROR", status: int = 400, **extra: Any) -> _HTTPError:
    return _HTTPError(_error(status, message, category, **extra))


def _std_error(
    category: str, message: str, context: dict[str, list[str]], sub_category: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }
    if sub_category:
        item["subCategory"] = sub_category
    return item


def _normalize_type(raw: str) -> str:
    otype = _ALIASES.get(raw)
    if otype is None:
        raise KeyError(f"unknown object type {raw!r}")
    return otype


def _int_param(raw: str | None, default: int, name: str) -> int:
    if raw in (None, ""):
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise _bad(f"Invalid value for {name}: {raw}") from None
