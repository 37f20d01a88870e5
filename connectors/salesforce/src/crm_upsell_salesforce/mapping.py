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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from crm_upsell_connector.fields import ACCOUNT_FIELD_NAMES, ACCOUNT_FIELDS, TASK_KEY_FIELD
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
from crm_upsell_connector.values import parse_bool, parse_number
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.marketing import (
    CAMPAIGN_MEMBER_FIELDS,
    OPT_OUT,
    contact_engagement,
    map_campaign_member,
)

log = logging.getLogger(__name__)

#: connector stream -> the sObject it reads.
SOBJECTS: dict[str, str] = {
    "users": "User",
    "products": "Product2",
    "accounts": "Account",
    "contacts": "Contact",
    "opportunities": "Opportunity",
    "line_items": "OpportunityLineItem",
    "assets": "Asset",
    "tasks": "Task",
    "events": "Event",
    "campaign_members": "CampaignMember",
}
MODSTAMP = "SystemModstamp"
# Standard Account fields a configuration may map in under their own names (anything else is custom).
STANDARD_ACCOUNT_FIELDS = frozenset(
    f.lower()
    for f in (
        "AccountNumber",
        "AccountSource",
        "AnnualRevenue",
        "BillingCity",
        "BillingCountry",
        "BillingPostalCode",
        "BillingState",
        "CreatedDate",
        "Description",
        "Industry",
        "LastActivityDate",
        "Name",
        "NumberOfEmployees",
        "Ownership",
        "ParentId",
        "Phone",
        "Rating",
        "ShippingCity",
        "ShippingCountry",
        "ShippingState",
        "Sic",
        "Site",
        "TickerSymbol",
        "Type",
        "Website",
        "YearStarted",
    )
)
_SF_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
ACCOUNT_PREFIX = "001"
CONTACT_PREFIX = "003"
PRIORITIES = {"high": "High", "medium": "Normal", "low": "Low"}
OPEN_TASK_STATUS = "Not Started"


def custom_field(prefix: str, canonical: str) -> str:
    """``Crm_Upsell_Loyalty_Score__c`` for ``loyalty_score``."""
    return prefix + "_".join(part.capitalize() for part in canonical.split("_")) + "__c"


def account_field_api_name(configured: str) -> str:
    """The Account field behind a configured name: itself when standard or already custom
    (``Seats__c``, ``ns__Seats__c``), else ``<name>__c`` (``seats_purchased`` -> ``seats_purchased__c``)."""
    soql.name(configured)
    if "__" in configured or configured.lower() in STANDARD_ACCOUNT_FIELDS:
        return configured
    return configured + "__c"


@dataclass(frozen=True)
class MappingOptions:
    """What a mapping needs from the connection's configuration."""

    prefix: str = "Crm_Upsell_"
    #: configured account field name -> Salesforce field API name
    account_fields: tuple[tuple[str, str], ...] = ()
    product_extra_fields: tuple[str, ...] = ()
    #: a Task field saying Inbound/Outbound for non-call activities (calls use CallType)
    direction_field: str | None = None
    #: an Event field holding the meeting's outcome (Completed, No Show...)
    outcome_field: str | None = None

    @classmethod
    def build(
        cls,
        prefix: str,
        account_fields: Iterable[str],
        product_extra_fields: Iterable[str] = (),
        *,
        direction_field: str | None = None,
        outcome_field: str | None = None,
    ) -> MappingOptions:
        pairs = tuple((n, account_field_api_name(n)) for n in dict.fromkeys(account_fields))
        for extra in (*product_extra_fields, direction_field, outcome_field):
            if extra is not None:
                soql.name(extra)
        return cls(prefix, pairs, tuple(product_extra_fields), direction_field, outcome_field)

    @property
    def task_key_field(self) -> str:
        return custom_field(self.prefix, TASK_KEY_FIELD.name)

    def product_field(self, canonical: str) -> str:
        return custom_field(self.prefix, canonical)


def fields_for(stream: str, options: MappingOptions) -> tuple[str, ...]:
    """Only the fields the product uses (SOQL has no ``SELECT *``, and fewer fields read faster)."""
    own = tuple(options.product_field(n) for n in ACCOUNT_FIELD_NAMES)
    fields: tuple[str, ...] = {
        "users": ("Name", "Email", "IsActive"),
        "products": ("Name", "ProductCode", "Family", "IsActive", *options.product_extra_fields),
        "accounts": (
            "Name",
            "Website",
            "Industry",
            "Type",
            "OwnerId",
            "CreatedDate",
            *(api for _, api in options.account_fields),
            *own,
        ),
        "contacts": ("AccountId", "Email", "FirstName", "LastName", "CreatedDate", OPT_OUT),
        "campaign_members": CAMPAIGN_MEMBER_FIELDS,
        "opportunities": (
            "AccountId",
            "OwnerId",
            "Name",
            "StageName",
            "IsClosed",
            "IsWon",
            "Amount",
            "CloseDate",
            "CreatedDate",
        ),
        "line_items": (
            "OpportunityId",
            "Product2Id",
            "ProductCode",
            "Name",
            "Quantity",
            "UnitPrice",
            "TotalPrice",
        ),
        "assets": ("AccountId", "Product2Id", "Name", "Quantity", "Price"),
        "tasks": (
            "AccountId",
            "WhatId",
            "WhoId",
            "OwnerId",
            "Subject",
            "ActivityDate",
            "Status",
            "Priority",
            "TaskSubtype",
            "Type",
            "CallType",
            "CallDisposition",
            "IsClosed",
            "CreatedDate",
            options.task_key_field,
            *((options.direction_field,) if options.direction_field else ()),
        ),
        "events": (
            "AccountId",
            "WhatId",
            "WhoId",
            "OwnerId",
            "Subject",
            "StartDateTime",
            "ActivityDateTime",
            *((options.outcome_field,) if options.outcome_field else ()),
        ),
    }[stream]
    return tuple(dict.fromkeys(("Id", *fields, MODSTAMP)))


# ---- lenient parsing ---------------------------------------------------------------------------


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


# ---- canonical -> Salesforce -------------------------------------------------------------------

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
