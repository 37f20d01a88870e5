"""Canonical records to Zoho record bodies: account field updates and follow-up tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crm_upsell_connector.fields import ACCOUNT_FIELDS, TASK_KEY_FIELD
from crm_upsell_connector.models import (
    FieldUpdate,
    TaskDraft,
)
from crm_upsell_connector.values import parse_number
from crm_upsell_zoho.parsing import parse_datetime, zoho_datetime

PRIORITIES = {"high": "High", "medium": "Normal", "low": "Low"}


_SPEC_TYPES: dict[str, str] = {spec.name: spec.type for spec in (*ACCOUNT_FIELDS, TASK_KEY_FIELD)}


def write_value(name: str, value: str) -> Any:
    """A rendered product value as Zoho takes it: numbers as numbers, datetimes with an offset, blank
    as null. A value that does not parse is sent as it is, for Zoho to reject that record alone."""
    kind = _SPEC_TYPES.get(name, "string")
    if value is None or value.strip() == "":
        return None
    if kind == "number":
        number = parse_number(value)
        return value if number is None else number
    if kind == "datetime":
        stamp = parse_datetime(value)
        return value if stamp is None else zoho_datetime(stamp)
    return value


def account_update_body(update: FieldUpdate, product_fields: Mapping[str, str]) -> dict[str, Any]:
    """One record of ``PUT /Accounts``: the id and our fields by api_name."""
    body: dict[str, Any] = {"id": update.account_id}
    for name, value in update.values.items():
        api = product_fields.get(name)
        if api is not None:
            body[api] = write_value(name, value)
    return body


def task_body(draft: TaskDraft, key_field: str) -> dict[str, Any]:
    """One record of ``POST /Tasks``: linked to the account, owned by the account owner."""
    body: dict[str, Any] = {
        "Subject": draft.subject[:255],
        "Description": draft.body,
        "Due_Date": draft.due.isoformat(),
        "Priority": PRIORITIES[draft.priority],
        "Status": "Not Started",
        "What_Id": {"id": draft.account_id},
        "$se_module": "Accounts",
        key_field: draft.key,
    }
    if draft.owner_id:
        body["Owner"] = {"id": draft.owner_id}
    return body


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
