"""HubSpot objects to canonical records and back (field updates and task drafts to batch inputs).

Reading is forgiving: a record without an id or a usable modification stamp, or with a body of the
wrong shape, is skipped with a warning naming the object type and id; numbers and dates are parsed
leniently; text (Japanese included) is kept as HubSpot holds it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from pydantic import ValidationError

from crm_upsell_connector.fields import ACCOUNT_FIELD_NAMES, TASK_KEY_FIELD
from crm_upsell_connector.models import (
    Account,
    Activity,
    ActivityKind,
    Contact,
    Deal,
    FieldUpdate,
    LineItem,
    Owner,
    Product,
    Record,
    TaskDraft,
)
from crm_upsell_connector.richtext import plain_to_html
from crm_upsell_connector.text import html_to_text
from crm_upsell_connector.values import first_line, parse_bool, parse_number
from crm_upsell_hubspot.properties import (
    EMAIL_BODY_PROPERTIES,
    MERGED_IDS,
    PRODUCT_EXTRA,
    MappingOptions,
    modified_property,
)

log = logging.getLogger(__name__)

ACTIVITY_KINDS: dict[str, ActivityKind] = {
    "calls": ActivityKind.CALL,
    "meetings": ActivityKind.MEETING,
    "emails": ActivityKind.EMAIL,
    "notes": ActivityKind.NOTE,
    "tasks": ActivityKind.TASK,
}
# HubSpot's default call dispositions are GUIDs; the labels are what a report can show.
CALL_DISPOSITIONS: dict[str, str] = {
    "f240bbac-87c9-4f6e-bf70-924b57d47db7": "connected",
    "73a0d17f-1163-4015-bdd5-ec830791da20": "no_answer",
    "b2cf5968-551e-4856-9783-52b3da59a7d0": "left_voicemail",
    "a4c4c377-d246-4b32-a13b-75a56a4cd0ff": "left_live_message",
    "9d9162e7-6cf3-4944-bf63-4dff82258764": "busy",
    "17b47fee-58de-441e-a44c-c6300d46f273": "wrong_number",
}
TASK_ASSOCIATION_TO_COMPANY = 192  # HUBSPOT_DEFINED task -> company


# ---- lenient parsing ---------------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 (with ``Z``), a date, or epoch milliseconds; None where it cannot be read."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return _from_epoch_ms(float(value))
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return _from_epoch_ms(float(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    try:  # in UTC, as the store keeps it
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00: before datetime.min once in UTC
        return None


def _from_epoch_ms(ms: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def currency_code(value: Any) -> str | None:
    """An ISO 4217 code in upper case, None for missing or blank."""
    code = text(value)
    return code.upper() if code else None


def text(value: Any) -> str | None:
    """A property value as text, None for missing or blank."""
    if value is None:
        return None
    out = str(value).strip()
    return out or None


# ---- HubSpot -> canonical ----------------------------------------------------------------------


class SkipRecord(ValueError):
    """A record that cannot be mapped; it is logged and left out."""


def _props(raw: Mapping[str, Any]) -> dict[str, Any]:
    props = raw.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise SkipRecord("'properties' is not an object")
    return props


def _id(raw: Mapping[str, Any]) -> str:
    value = raw.get("id")
    if value is None or isinstance(value, bool | dict | list) or not str(value).strip():
        raise SkipRecord("it has no id")
    return str(value).strip()


def modified_at(object_type: str, raw: Mapping[str, Any]) -> datetime | None:
    """The record's modification stamp: the property searches filter on, else ``updatedAt``."""
    props = raw.get("properties")
    stamp = parse_datetime(props.get(modified_property(object_type))) if isinstance(props, dict) else None
    return stamp or parse_datetime(raw.get("updatedAt"))


def _updated(object_type: str, raw: Mapping[str, Any]) -> datetime:
    stamp = modified_at(object_type, raw)
    if stamp is None:
        raise SkipRecord(f"its modification time {raw.get('updatedAt')!r} cannot be read")
    return stamp


def associated_ids(raw: Mapping[str, Any], to_type: str) -> list[str]:
    """Associated ids of ``to_type``, labelled (primary) associations first."""
    assoc = raw.get("associations")
    if not isinstance(assoc, dict):
        return []
    group = assoc.get(to_type)
    if not isinstance(group, dict):
        return []
    results = group.get("results")
    if not isinstance(results, list):
        return []
    primary: list[str] = []
    other: list[str] = []
    for item in results:
        if not isinstance(item, dict) or item.get("id") in (None, ""):
            continue
        kind = str(item.get("type") or "").lower()
        target = other if kind.endswith("unlabeled") else primary
        ident = str(item["id"])
        if ident not in primary and ident not in other:
            target.append(ident)
    return primary + other


def _first(raw: Mapping[str, Any], to_type: str) -> str | None:
    ids = associated_ids(raw, to_type)
    return ids[0] if ids else None


def map_company(raw: Mapping[str, Any], options: MappingOptions) -> Account:
    props = _props(raw)
    return Account(
        id=_id(raw),
        updated_at=_updated("companies", raw),
        name=text(props.get("name")) or "",
        owner_id=text(props.get("hubspot_owner_id")),
        domain=text(props.get("domain")),
        industry=text(props.get("industry")),
        lifecycle_stage=text(props.get("lifecyclestage")),
        created_at=parse_datetime(props.get("createdate")) or parse_datetime(raw.get("createdAt")),
        fields={name: text(props.get(name)) for name in options.account_fields},
        product_fields={name: text(props.get(options.prefix + name)) for name in ACCOUNT_FIELD_NAMES},
        extra=merged_extra(raw, props),
    )


def map_contact(raw: Mapping[str, Any], options: MappingOptions) -> Contact:
    props = _props(raw)
    name = " ".join(p for p in (text(props.get("firstname")), text(props.get("lastname"))) if p)
    return Contact(
        id=_id(raw),
        updated_at=_updated("contacts", raw),
        account_id=_first(raw, "companies"),
        email=text(props.get("email")),
        name=name,
        lifecycle_stage=text(props.get("lifecyclestage")),
        created_at=parse_datetime(props.get("createdate")) or parse_datetime(raw.get("createdAt")),
        extra=merged_extra(raw, props),
    )


def merged_ids(raw: Mapping[str, Any]) -> list[str]:
    """The ids merged into this company or contact (``hs_merged_object_ids``, ``;``-separated),
    without the record's own id; they no longer exist on their own."""
    props = raw.get("properties")
    value = text(props.get(MERGED_IDS)) if isinstance(props, dict) else None
    own = str(raw.get("id") or "").strip()
    ids = [part.strip() for part in (value or "").split(";")]
    return list(dict.fromkeys(i for i in ids if i and i != own))


def merged_away(records: Iterable[Record]) -> list[str]:
    """The ids the page's records say were merged into them: gone from HubSpot as records of their
    own (they leave the list endpoints without being archived), so the store drops them."""
    return list(dict.fromkeys(str(i) for r in records for i in r.extra.get("merged_ids") or ()))


def merged_extra(raw: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    ids = merged_ids(raw)
    return {"merged_ids": ids} if ids else {}


def map_deal(raw: Mapping[str, Any], options: MappingOptions) -> Deal:
    props = _props(raw)
    stage = text(props.get("dealstage"))
    closed = parse_bool(props.get("hs_is_closed"))
    won = parse_bool(props.get("hs_is_closed_won"))
    if closed is None:
        closed = stage in ("closedwon", "closedlost")
    if won is None:
        won = stage == "closedwon"
    pipeline = text(props.get("pipeline"))
    return Deal(
        id=_id(raw),
        updated_at=_updated("deals", raw),
        account_id=_first(raw, "companies"),
        owner_id=text(props.get("hubspot_owner_id")),
        name=text(props.get("dealname")) or "",
        stage=stage,
        is_closed=closed or won,
        is_won=won,
        amount=parse_number(props.get("amount")),
        currency=currency_code(props.get("deal_currency_code")),
        # HubSpot's own conversion at the account's exchange rates (see ``properties``)
        amount_home=parse_number(props.get("amount_in_home_currency")),
        close_date=parse_datetime(props.get("closedate")),
        created_at=parse_datetime(props.get("createdate")) or parse_datetime(raw.get("createdAt")),
        extra={"pipeline": pipeline} if pipeline else {},
    )


def map_line_item(raw: Mapping[str, Any], options: MappingOptions) -> LineItem:
    props = _props(raw)
    quantity = parse_number(props.get("quantity"))
    amount = parse_number(props.get("amount"))
    currency = currency_code(props.get("hs_line_item_currency_code"))
    # HubSpot documents no line-item amount in the company currency: the amount is one where the
    # line item is in that currency (or states none: the company currency is the default).
    at_home = currency is None or (options.home_currency is not None and currency == options.home_currency)
    return LineItem(
        id=_id(raw),
        updated_at=_updated("line_items", raw),
        deal_id=_first(raw, "deals"),
        product_id=text(props.get("hs_product_id")),
        sku=text(props.get("hs_sku")),
        name=text(props.get("name")) or "",
        quantity=1.0 if quantity is None else quantity,
        unit_price=parse_number(props.get("price")),
        amount=amount,
        amount_home=amount if at_home else None,
        extra={"currency": currency} if currency else {},
        billing_period=text(props.get("recurringbillingfrequency"))
        or text(props.get("hs_recurring_billing_period")),
    )


def map_product(raw: Mapping[str, Any], options: MappingOptions) -> Product:
    props = _props(raw)
    extra = {key: value for key in PRODUCT_EXTRA if (value := text(props.get(key))) is not None}
    return Product(
        id=_id(raw),
        updated_at=_updated("products", raw),
        sku=text(props.get("hs_sku")),
        name=text(props.get("name")) or "",
        unit_price=parse_number(props.get("price")),
        extra=extra,
    )


def map_owner(raw: Mapping[str, Any]) -> Owner:
    updated = parse_datetime(raw.get("updatedAt")) or parse_datetime(raw.get("createdAt"))
    if updated is None:
        raise SkipRecord(f"its modification time {raw.get('updatedAt')!r} cannot be read")
    name = " ".join(p for p in (text(raw.get("firstName")), text(raw.get("lastName"))) if p)
    archived = parse_bool(raw.get("archived"))
    extra: dict[str, Any] = {}
    if raw.get("userId") is not None:
        extra["user_id"] = str(raw["userId"])
    return Owner(
        id=_id(raw),
        updated_at=updated,
        email=text(raw.get("email")),
        name=name,
        active=not archived,
        extra=extra,
    )


Direction = Literal["inbound", "outbound"]
_CALL_DIRECTIONS: dict[str, Direction] = {"INBOUND": "inbound", "OUTBOUND": "outbound"}
_EMAIL_DIRECTIONS: dict[str, Direction] = {
    "INCOMING_EMAIL": "inbound",
    "EMAIL": "outbound",
    "FORWARDED_EMAIL": "outbound",
}


def map_activity(object_type: str, raw: Mapping[str, Any], options: MappingOptions) -> Activity:
    props = _props(raw)
    kind = ACTIVITY_KINDS[object_type]
    direction: Direction | None = None
    outcome: str | None = None
    status: str | None = None
    upsell_key: str | None = None
    extra: dict[str, Any] = {}
    body = ""
    if kind is ActivityKind.CALL:
        subject = text(props.get("hs_call_title")) or ""
        body = html_to_text(text(props.get("hs_call_body")))
        direction = _CALL_DIRECTIONS.get((text(props.get("hs_call_direction")) or "").upper())
        disposition = text(props.get("hs_call_disposition"))
        outcome = CALL_DISPOSITIONS.get(disposition, disposition) if disposition else None
    elif kind is ActivityKind.MEETING:
        subject = text(props.get("hs_meeting_title")) or ""
        body = html_to_text(text(props.get("hs_meeting_body")))
        meeting_outcome = text(props.get("hs_meeting_outcome"))
        outcome = meeting_outcome.lower() if meeting_outcome else None
    elif kind is ActivityKind.EMAIL:
        subject = text(props.get("hs_email_subject")) or ""
        body = html_to_text(next((v for p in EMAIL_BODY_PROPERTIES if (v := text(props.get(p)))), None))
        direction = _EMAIL_DIRECTIONS.get((text(props.get("hs_email_direction")) or "").upper())
    elif kind is ActivityKind.NOTE:
        subject = first_line(props.get("hs_note_body"))
        body = html_to_text(text(props.get("hs_note_body")))
    else:
        subject = text(props.get("hs_task_subject")) or ""
        status = "done" if (text(props.get("hs_task_status")) or "").upper() == "COMPLETED" else "open"
        upsell_key = text(props.get(options.task_key_property))
        for key, name in (("hs_task_priority", "priority"), ("hs_task_type", "type")):
            if (value := text(props.get(key))) is not None:
                extra[name] = value
    return Activity(
        id=_id(raw),
        updated_at=_updated(object_type, raw),
        kind=kind,
        account_id=_first(raw, "companies"),
        owner_id=text(props.get("hubspot_owner_id")),
        occurred_at=parse_datetime(props.get("hs_timestamp")),
        direction=direction,
        outcome=outcome,
        subject=subject,
        body=body,
        status=status,
        upsell_key=upsell_key,
        extra=extra,
    )


_MAPPERS: dict[str, Callable[[Mapping[str, Any], MappingOptions], Record]] = {
    "companies": map_company,
    "contacts": map_contact,
    "deals": map_deal,
    "line_items": map_line_item,
    "products": map_product,
    "owners": lambda raw, _options: map_owner(raw),
    **{
        name: (lambda raw, options, _t=name: map_activity(_t, raw, options))  # type: ignore[misc]
        for name in ACTIVITY_KINDS
    },
}


def map_object(object_type: str, raw: Any, options: MappingOptions) -> Record | None:
    """One HubSpot object as a canonical record, or None (with a warning) where it is malformed."""
    mapper = _MAPPERS[object_type]
    ident = raw.get("id") if isinstance(raw, dict) else None
    try:
        if not isinstance(raw, dict):
            raise SkipRecord(f"it is a {type(raw).__name__}, not an object")
        return mapper(raw, options)
    except (SkipRecord, ValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) and exc.errors() else str(exc)
        log.warning(
            "skipping HubSpot %s %s: %s", object_type, ident if ident is not None else "(no id)", reason
        )
        return None


def map_objects(object_type: str, raws: Iterable[Any], options: MappingOptions) -> list[Record]:
    """The page's records; a contact brings its marketing engagement beside it (``engagement``)."""
    from crm_upsell_hubspot.engagement import map_engagement

    records: list[Record] = []
    for raw in raws:
        record = map_object(object_type, raw, options)
        if record is None:
            continue
        # The engagement goes first: a reader keying the page by id keeps the contact.
        if isinstance(record, Contact) and (engagement := map_engagement(raw, record)) is not None:
            records.append(engagement)
        records.append(record)
    return records


# ---- canonical -> HubSpot ----------------------------------------------------------------------


def company_update_input(update: FieldUpdate, prefix: str) -> dict[str, Any]:
    """One input of ``POST /crm/v3/objects/companies/batch/update``."""
    return {
        "id": update.account_id,
        "properties": {prefix + k: v for k, v in update.values.items()},
        # Echoed on the result: a write to a merged-away id comes back under the merged record's id.
        "objectWriteTraceId": update.account_id,
    }


def due_timestamp(due: date) -> str:
    """The task's due time: 09:00 UTC on the due date, as ISO 8601."""
    return datetime.combine(due, time(9, 0), tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def task_create_input(draft: TaskDraft, prefix: str) -> dict[str, Any]:
    """One input of ``POST /crm/v3/objects/tasks/batch/create``, associated with its company."""
    properties: dict[str, str] = {
        "hs_timestamp": due_timestamp(draft.due),
        "hs_task_subject": draft.subject,
        # The task's notes display as rich text in HubSpot, where plain-text lines run together
        # (Tasks API, hs_task_body: https://developers.hubspot.com/docs/api-reference/latest/crm/activities/tasks/guide):
        # sent as HTML with every value escaped.
        "hs_task_body": plain_to_html(draft.body),
        "hs_task_priority": draft.priority.upper(),
        "hs_task_status": "NOT_STARTED",
        "hs_task_type": "TODO",
        prefix + TASK_KEY_FIELD.name: draft.key,
    }
    if draft.owner_id:
        properties["hubspot_owner_id"] = draft.owner_id
    return {
        "properties": properties,
        "objectWriteTraceId": draft.key,
        "associations": [
            {
                "to": {"id": draft.account_id},
                "types": [
                    {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": TASK_ASSOCIATION_TO_COMPANY,
                    }
                ],
            }
        ],
    }
