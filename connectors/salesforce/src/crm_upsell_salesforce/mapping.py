"""Salesforce sObjects to canonical records and back (account updates and tasks as Collections records).

Reading is forgiving: a record without an ``Id`` or a readable ``SystemModstamp``, or of the wrong
shape, is skipped with a warning naming the object and the id; numbers, booleans and dates are
parsed leniently; text (Japanese included) is kept as Salesforce holds it. Field names are matched
case-insensitively, as SOQL treats them.

Assets (what an account owns outside an opportunity) become line items without a deal, with the
account in ``extra``: owned products are computed from line items on won deals, so an Asset never
counts twice when the won opportunity that sold it is synced too.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import ValidationError

from crm_upsell_connector.fields import ACCOUNT_FIELD_NAMES
from crm_upsell_connector.models import (
    Account,
    Activity,
    ActivityKind,
    Contact,
    Deal,
    LineItem,
    Owner,
    Product,
    Record,
)
from crm_upsell_connector.values import parse_bool, parse_number
from crm_upsell_salesforce.marketing import contact_engagement, map_campaign_member
from crm_upsell_salesforce.parsing import (
    SkipRecord,
    _domain,
    _id,
    _lower,
    _ref,
    _updated,
    modified_at,
    parse_datetime,
    text,
)
from crm_upsell_salesforce.sobjects import (
    ACCOUNT_PREFIX,
    CONTACT_PREFIX,
    MODSTAMP,
    OPEN_TASK_STATUS,
    PRIORITIES,
    SOBJECTS,
    STANDARD_ACCOUNT_FIELDS,
    MappingOptions,
    account_field_api_name,
    custom_field,
    fields_for,
)
from crm_upsell_salesforce.write_records import account_update_record, task_record

__all__ = [
    "ACCOUNT_PREFIX",
    "CONTACT_PREFIX",
    "MODSTAMP",
    "OPEN_TASK_STATUS",
    "PRIORITIES",
    "SOBJECTS",
    "STANDARD_ACCOUNT_FIELDS",
    "MappingOptions",
    "SkipRecord",
    "_id",
    "_updated",
    "account_field_api_name",
    "account_update_record",
    "custom_field",
    "fields_for",
    "map_record",
    "map_records",
    "modified_at",
    "parse_datetime",
    "task_record",
    "text",
]

log = logging.getLogger(__name__)


# ---- Salesforce -> canonical -------------------------------------------------------------------


def map_account(raw: Mapping[str, Any], options: MappingOptions) -> Account:
    return Account(
        id=_id(raw),
        updated_at=_updated(raw),
        name=text(raw.get("name")) or "",
        owner_id=text(raw.get("ownerid")),
        domain=_domain(raw.get("website")),
        industry=text(raw.get("industry")),
        lifecycle_stage=text(raw.get("type")),
        created_at=parse_datetime(raw.get("createddate")),
        fields={name: text(raw.get(api.lower())) for name, api in options.account_fields},
        product_fields={n: text(raw.get(options.product_field(n).lower())) for n in ACCOUNT_FIELD_NAMES},
    )


def map_contact(raw: Mapping[str, Any], options: MappingOptions) -> Contact:
    name = " ".join(p for p in (text(raw.get("firstname")), text(raw.get("lastname"))) if p)
    return Contact(
        id=_id(raw),
        updated_at=_updated(raw),
        account_id=text(raw.get("accountid")),
        email=text(raw.get("email")),
        name=name,
        created_at=parse_datetime(raw.get("createddate")),
    )


def map_opportunity(raw: Mapping[str, Any], options: MappingOptions) -> Deal:
    stage = text(raw.get("stagename"))
    won = bool(parse_bool(raw.get("iswon")))
    closed = bool(parse_bool(raw.get("isclosed"))) or won
    return Deal(
        id=_id(raw),
        updated_at=_updated(raw),
        account_id=text(raw.get("accountid")),
        owner_id=text(raw.get("ownerid")),
        name=text(raw.get("name")) or "",
        stage=stage,
        is_closed=closed,
        is_won=won,
        amount=parse_number(raw.get("amount")),
        currency=text(raw.get("currencyisocode")),
        close_date=parse_datetime(raw.get("closedate")),
        created_at=parse_datetime(raw.get("createddate")),
    )


def map_line_item(raw: Mapping[str, Any], options: MappingOptions) -> LineItem:
    quantity = parse_number(raw.get("quantity"))
    return LineItem(
        id=_id(raw),
        updated_at=_updated(raw),
        deal_id=text(raw.get("opportunityid")),
        product_id=text(raw.get("product2id")),
        sku=text(raw.get("productcode")),
        name=text(raw.get("name")) or "",
        quantity=1.0 if quantity is None else quantity,
        unit_price=parse_number(raw.get("unitprice")),
        amount=parse_number(raw.get("totalprice")),
    )


def map_asset(raw: Mapping[str, Any], options: MappingOptions) -> LineItem:
    quantity = parse_number(raw.get("quantity"))
    price = parse_number(raw.get("price"))
    count = 1.0 if quantity is None else quantity
    amount = price * count if price is not None else None
    if amount is not None and not math.isfinite(amount):
        amount = None  # 1e308 x 10: no amount rather than infinity
    extra: dict[str, Any] = {"object": "Asset"}
    if (account := text(raw.get("accountid"))) is not None:
        extra["account_id"] = account
    return LineItem(
        id=_id(raw),
        updated_at=_updated(raw),
        deal_id=None,
        product_id=text(raw.get("product2id")),
        sku=text(raw.get("productcode")),
        name=text(raw.get("name")) or "",
        quantity=count,
        unit_price=price,
        amount=amount,
        extra=extra,
    )


def map_product(raw: Mapping[str, Any], options: MappingOptions) -> Product:
    extra: dict[str, Any] = {}
    for key in ("Family", *options.product_extra_fields):
        if (value := text(raw.get(key.lower()))) is not None:
            extra[key.removesuffix("__c").lower()] = value
    active = parse_bool(raw.get("isactive"))
    if active is not None:
        extra["active"] = active
    return Product(
        id=_id(raw),
        updated_at=_updated(raw),
        sku=text(raw.get("productcode")),
        name=text(raw.get("name")) or "",
        extra=extra,
    )


def map_user(raw: Mapping[str, Any], options: MappingOptions) -> Owner:
    active = parse_bool(raw.get("isactive"))
    return Owner(
        id=_id(raw),
        updated_at=_updated(raw),
        email=text(raw.get("email")),
        name=text(raw.get("name")) or "",
        active=True if active is None else active,
    )


def _token(value: Any) -> str | None:
    """``No Show`` -> ``no_show``: picklist labels as the lower-case words the rules compare."""
    label = text(value)
    return re.sub(r"[\s-]+", "_", label.lower()) if label else None


Direction = Literal["inbound", "outbound"]
_DIRECTIONS: dict[str, Direction] = {"inbound": "inbound", "outbound": "outbound"}


def task_kind(raw: Mapping[str, Any], options: MappingOptions) -> ActivityKind:
    """Call and Email tasks are calls and emails; a task of type Note is a note; our own tasks and
    every other to-do are tasks."""
    subtype = (text(raw.get("tasksubtype")) or "").lower()
    if subtype == "call":
        return ActivityKind.CALL
    if subtype in ("email", "listemail"):
        return ActivityKind.EMAIL
    if (
        text(raw.get(options.task_key_field.lower())) is None
        and (text(raw.get("type")) or "").lower() == "note"
    ):
        return ActivityKind.NOTE
    return ActivityKind.TASK


def map_task(raw: Mapping[str, Any], options: MappingOptions) -> Activity:
    kind = task_kind(raw, options)
    status_text = text(raw.get("status"))
    closed = parse_bool(raw.get("isclosed"))
    if closed is None:
        closed = (status_text or "").lower() in ("completed", "closed")
    extra: dict[str, Any] = {}
    for key, name in (("priority", "priority"), ("tasksubtype", "subtype"), ("status", "status")):
        if (value := text(raw.get(key))) is not None:
            extra[name] = value
    said = raw.get("calltype") if kind is ActivityKind.CALL else None
    if said is None and options.direction_field:
        said = raw.get(options.direction_field.lower())
    direction = _DIRECTIONS.get((text(said) or "").lower())
    outcome = text(raw.get("calldisposition")) if kind is ActivityKind.CALL else None
    return Activity(
        id=_id(raw),
        updated_at=_updated(raw),
        kind=kind,
        account_id=_ref(raw.get("accountid"), ACCOUNT_PREFIX) or _ref(raw.get("whatid"), ACCOUNT_PREFIX),
        contact_id=_ref(raw.get("whoid"), CONTACT_PREFIX),
        owner_id=text(raw.get("ownerid")),
        occurred_at=parse_datetime(raw.get("activitydate")) or parse_datetime(raw.get("createddate")),
        direction=direction if kind in (ActivityKind.CALL, ActivityKind.EMAIL) else None,
        outcome=_token(outcome),
        subject=text(raw.get("subject")) or "",
        status="done" if closed else "open",
        upsell_key=text(raw.get(options.task_key_field.lower())),
        extra=extra,
    )


def map_event(raw: Mapping[str, Any], options: MappingOptions) -> Activity:
    return Activity(
        id=_id(raw),
        updated_at=_updated(raw),
        kind=ActivityKind.MEETING,
        account_id=_ref(raw.get("accountid"), ACCOUNT_PREFIX) or _ref(raw.get("whatid"), ACCOUNT_PREFIX),
        contact_id=_ref(raw.get("whoid"), CONTACT_PREFIX),
        owner_id=text(raw.get("ownerid")),
        occurred_at=parse_datetime(raw.get("startdatetime")) or parse_datetime(raw.get("activitydatetime")),
        outcome=_token(raw.get(options.outcome_field.lower())) if options.outcome_field else None,
        subject=text(raw.get("subject")) or "",
    )


_MAPPERS: dict[str, Callable[[Mapping[str, Any], MappingOptions], Record]] = {
    "users": map_user,
    "products": map_product,
    "accounts": map_account,
    "contacts": map_contact,
    "opportunities": map_opportunity,
    "line_items": map_line_item,
    "assets": map_asset,
    "tasks": map_task,
    "events": map_event,
    "campaign_members": map_campaign_member,
}


def map_record(stream: str, raw: Any, options: MappingOptions) -> Record | None:
    """One sObject as a canonical record, or None (with a warning) where it is malformed."""
    mapper = _MAPPERS[stream]
    ident = raw.get("Id", raw.get("id")) if isinstance(raw, dict) else None
    try:
        if not isinstance(raw, dict):
            raise SkipRecord(f"it is a {type(raw).__name__}, not an object")
        return mapper(_lower(raw), options)
    except (SkipRecord, ValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) and exc.errors() else str(exc)
        log.warning(
            "skipping Salesforce %s %s: %s",
            SOBJECTS[stream],
            ident if ident is not None else "(no Id)",
            reason,
        )
        return None


def map_records(stream: str, raws: Iterable[Any], options: MappingOptions) -> list[Record]:
    """The page's records; a contact brings its e-mail opt-out beside it (``marketing``)."""
    records: list[Record] = []
    for raw in raws:
        record = map_record(stream, raw, options)
        if record is None:
            continue
        # The opt-out goes first: a reader keying the page by id keeps the contact.
        if isinstance(record, Contact) and isinstance(raw, dict):
            engagement = contact_engagement(_lower(raw), record)
            if engagement is not None:
                records.append(engagement)
        records.append(record)
    return records
