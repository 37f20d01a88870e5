"""Canonical to Salesforce: account updates and tasks as ``/composite/sobjects`` records."""

from __future__ import annotations

from typing import Any

from crm_upsell_connector.fields import ACCOUNT_FIELDS
from crm_upsell_connector.models import FieldUpdate, TaskDraft
from crm_upsell_connector.values import parse_number
from crm_upsell_salesforce.sobjects import OPEN_TASK_STATUS, PRIORITIES, MappingOptions

_FIELD_TYPES = {f.name: f.type for f in ACCOUNT_FIELDS}


def _field_value(canonical: str, value: str) -> Any:
    """A rendered value as Salesforce's JSON wants it: numbers as numbers, blanks as null."""
    if not value.strip():
        return None
    if _FIELD_TYPES.get(canonical) == "number":
        number = parse_number(value)
        if number is None:
            raise ValueError(f"{canonical} must be a number, not {value!r}")
        return number
    return value


def account_update_record(update: FieldUpdate, options: MappingOptions) -> dict[str, Any]:
    """One record of ``PATCH /composite/sobjects`` setting the product's fields on an account."""
    record: dict[str, Any] = {"attributes": {"type": "Account"}, "id": update.account_id}
    for canonical, value in update.values.items():
        record[options.product_field(canonical)] = _field_value(canonical, value)
    return record


def task_record(draft: TaskDraft, options: MappingOptions) -> dict[str, Any]:
    """One record of ``POST /composite/sobjects``: a to-do on the account, for its owner, with our key."""
    record: dict[str, Any] = {
        "attributes": {"type": "Task"},
        "WhatId": draft.account_id,
        "ActivityDate": f"{draft.due:%Y-%m-%d}",
        "Subject": draft.subject[:255],
        "Description": draft.body[:32000],
        "Priority": PRIORITIES[draft.priority],
        "Status": OPEN_TASK_STATUS,
        "TaskSubtype": "Task",
        options.task_key_field: draft.key,
    }
    if draft.owner_id:
        record["OwnerId"] = draft.owner_id
    return record
