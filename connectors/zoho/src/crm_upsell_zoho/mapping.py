"""Zoho CRM records to canonical records and back (field updates and task drafts to record bodies).

Reading is forgiving: a record without an id or a readable ``Modified_Time``, or of the wrong shape, is
skipped with a warning naming the module and the id; numbers and dates are parsed leniently; text
(Japanese included) is kept as Zoho holds it. Lookups are ``{name, id}`` objects; activities point at
their account through ``What_Id`` (notes: ``Parent_Id``) with ``$se_module`` = ``Accounts``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

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
from crm_upsell_connector.text import html_to_text
from crm_upsell_connector.values import first_line, parse_number
from crm_upsell_zoho.bodies import PRIORITIES, account_update_body, chunks, task_body, write_value

# field_body: the body of one POST /settings/fields entry, kept importable from here.
from crm_upsell_zoho.fields_setup import field_body
from crm_upsell_zoho.line_items import DEAL_PRODUCTS, ORDER_STREAMS, map_line_items, map_order_lines
from crm_upsell_zoho.parsing import (
    SkipRecord,
    get_ci,
    home_amount,
    lookup_id,
    modified_at,
    parse_datetime,
    record_id,
    text,
    zoho_datetime,
)
from crm_upsell_zoho.parsing import updated_stamp as _updated

__all__ = [
    "ACTIVITY_KINDS",
    "DEAL_PRODUCTS",
    "MODULES",
    "PRIORITIES",
    "MappingOptions",
    "SkipRecord",
    "account_update_body",
    "chunks",
    "deal_state",
    "field_body",
    "fields_for",
    "get_ci",
    "home_amount",
    "lookup_id",
    "map_account",
    "map_activity",
    "map_contact",
    "map_deal",
    "map_line_items",
    "map_product",
    "map_record",
    "map_records",
    "map_user",
    "modified_at",
    "parse_datetime",
    "record_id",
    "task_body",
    "text",
    "write_value",
    "zoho_datetime",
]

log = logging.getLogger(__name__)

#: connector stream -> Zoho module api_name (line items are the product subform of Deals).
MODULES: dict[str, str] = {
    "products": "Products",
    "accounts": "Accounts",
    "contacts": "Contacts",
    "deals": "Deals",
    "line_items": "Deals",
    "sales_order_items": "Sales_Orders",
    "invoice_items": "Invoices",
    "tasks": "Tasks",
    "calls": "Calls",
    "events": "Events",
    "notes": "Notes",
}
ACTIVITY_KINDS: dict[str, ActivityKind] = {
    "tasks": ActivityKind.TASK,
    "calls": ActivityKind.CALL,
    "events": ActivityKind.MEETING,
    "notes": ActivityKind.NOTE,
}
PRODUCT_EXTRA = {"Product_Category": "family"}
DONE_STATUSES = frozenset({"completed", "closed", "done"})


@dataclass(frozen=True)
class MappingOptions:
    """What a mapping needs: the product's field api_names and the account fields asked for."""

    #: canonical product field name (``segment``) -> Zoho api_name (``Upsell_segment``).
    product_fields: Mapping[str, str] = field(default_factory=dict)
    #: api_name of the task key field on Tasks.
    task_key_field: str = "Upsell_task_key"
    #: the account field names the configuration asks for, as it spells them (``seats_purchased``).
    account_fields: tuple[str, ...] = ()
    #: requested name -> the api_name Zoho spells it with (``Seats_Purchased``), where known.
    account_field_names: Mapping[str, str] = field(default_factory=dict)
    #: custom product subforms on Deals to read line items from (``owned_products``).
    deal_subforms: tuple[str, ...] = ()
    #: product field -> (picklist display value -> the value written): a picklist read back as its
    #: display value (the segment "At risk") is the value the product wrote ("at_risk").
    product_value_aliases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def account_api_name(self, name: str) -> str:
        return self.account_field_names.get(name) or self.account_field_names.get(name.lower()) or name


def fields_for(stream: str, options: MappingOptions) -> tuple[str, ...]:
    """Only the fields the product uses (Zoho requires ``fields`` and takes at most 50)."""
    names: tuple[str, ...]
    if stream == "accounts":
        names = (
            "Account_Name",
            "Owner",
            "Website",
            "Industry",
            "Created_Time",
            *(options.account_api_name(n) for n in options.account_fields),
            *options.product_fields.values(),
        )
    elif stream == "contacts":
        # Email_Opt_Out: the contact's marketing e-mail opt-out (see campaigns.py); optional.
        names = (
            "First_Name",
            "Last_Name",
            "Full_Name",
            "Email",
            "Account_Name",
            "Created_Time",
            "Email_Opt_Out",
        )
    elif stream in ("deals", "line_items"):
        # Both streams ask for the same fields, so that one page can serve both (see connector.py).
        names = (
            "Deal_Name",
            "Account_Name",
            "Owner",
            "Stage",
            "Amount",
            "Currency",
            "Exchange_Rate",
            "Closing_Date",
            "Created_Time",
            *options.deal_subforms,
        )
    elif stream in ORDER_STREAMS:
        _, _, subform = ORDER_STREAMS[stream]
        names = ("Subject", "Account_Name", "Status", "Currency", "Exchange_Rate", subform)
    elif stream == "products":
        names = ("Product_Name", "Product_Code", "Unit_Price", *PRODUCT_EXTRA)
    elif stream == "deal_products":  # a deal's Products related list (GET /Deals/{id}/Products)
        return ("Product_Name", "Product_Code", "Unit_Price")
    elif stream == "tasks":
        names = (
            "Subject",
            "Status",
            "Priority",
            "Due_Date",
            "What_Id",
            "$se_module",
            "Who_Id",
            "Owner",
            options.task_key_field,
        )
    elif stream == "calls":
        names = (
            "Subject",
            "Call_Type",
            "Call_Start_Time",
            "Call_Result",
            "Call_Duration",
            "What_Id",
            "$se_module",
            "Who_Id",
            "Owner",
        )
    elif stream == "events":
        names = ("Event_Title", "Start_DateTime", "End_DateTime", "What_Id", "$se_module", "Who_Id", "Owner")
    elif stream == "notes":
        # No ``$se_module`` on Notes: the parent's module is inside Parent_Id ("Get Notes").
        names = ("Note_Title", "Note_Content", "Parent_Id", "Owner", "Created_Time")
    else:
        raise ValueError(f"unknown Zoho stream {stream!r}")
    return tuple(dict.fromkeys((*names, "Modified_Time")))


# ---- Zoho -> canonical -------------------------------------------------------------------------


def _account_of(raw: Mapping[str, Any], lookup: str) -> str | None:
    """The account an activity belongs to: ``What_Id``/``Parent_Id`` when ``$se_module`` is Accounts."""
    target = raw.get(lookup)
    module = raw.get("$se_module")
    if module is None and isinstance(target, dict):
        inner = target.get("module")
        module = inner.get("api_name") if isinstance(inner, dict) else inner
    if module not in (None, "Accounts"):
        return None
    return lookup_id(target)


def map_account(raw: Mapping[str, Any], options: MappingOptions) -> Account:
    return Account(
        id=record_id(raw),
        updated_at=_updated(raw),
        name=text(raw.get("Account_Name")) or "",
        owner_id=lookup_id(raw.get("Owner")),
        domain=text(raw.get("Website")),
        industry=text(raw.get("Industry")),
        lifecycle_stage=text(raw.get("Account_Type")),  # not asked for: not in every org
        created_at=parse_datetime(raw.get("Created_Time")),
        fields={name: text(get_ci(raw, options.account_api_name(name))) for name in options.account_fields},
        product_fields={
            name: _unalias(text(raw.get(api)), options.product_value_aliases.get(name))
            for name, api in options.product_fields.items()
        },
    )


def _unalias(value: str | None, aliases: Mapping[str, str] | None) -> str | None:
    return aliases.get(value, value) if value is not None and aliases else value


def map_contact(raw: Mapping[str, Any], options: MappingOptions) -> Contact:
    name = " ".join(p for p in (text(raw.get("First_Name")), text(raw.get("Last_Name"))) if p)
    return Contact(
        id=record_id(raw),
        updated_at=_updated(raw),
        account_id=lookup_id(raw.get("Account_Name")),
        email=text(raw.get("Email")),
        name=name or text(raw.get("Full_Name")) or "",
        lifecycle_stage=text(raw.get("Lead_Source")),
        created_at=parse_datetime(raw.get("Created_Time")),
    )


def deal_state(stage: str | None) -> tuple[bool, bool]:
    """(closed, won) from a Zoho stage name (``Closed Won``, ``Closed Lost``, ``Closed-Lost to Competition``)."""
    lowered = (stage or "").lower()
    closed = lowered.startswith("closed")
    return closed, closed and "won" in lowered


def map_deal(raw: Mapping[str, Any], options: MappingOptions) -> Deal:
    stage = text(raw.get("Stage"))
    closed, won = deal_state(stage)
    pipeline = text(raw.get("Pipeline"))
    close = raw.get("Closing_Date")
    amount = parse_number(raw.get("Amount"))
    return Deal(
        id=record_id(raw),
        updated_at=_updated(raw),
        account_id=lookup_id(raw.get("Account_Name")),
        owner_id=lookup_id(raw.get("Owner")),
        name=text(raw.get("Deal_Name")) or "",
        stage=stage,
        is_closed=closed,
        is_won=won,
        amount=amount,
        currency=text(raw.get("Currency")),
        amount_home=home_amount(amount, raw.get("Exchange_Rate")),
        close_date=parse_datetime(close),
        created_at=parse_datetime(raw.get("Created_Time")),
        extra={"pipeline": pipeline} if pipeline else {},
    )


def map_product(raw: Mapping[str, Any], options: MappingOptions) -> Product:
    extra = {key: value for api, key in PRODUCT_EXTRA.items() if (value := text(raw.get(api))) is not None}
    return Product(
        id=record_id(raw),
        updated_at=_updated(raw),
        sku=text(raw.get("Product_Code")),
        name=text(raw.get("Product_Name")) or "",
        unit_price=parse_number(raw.get("Unit_Price")),
        extra=extra,
    )


def map_user(raw: Mapping[str, Any]) -> Owner:
    updated = parse_datetime(raw.get("Modified_Time")) or parse_datetime(raw.get("created_time"))
    if updated is None:
        raise SkipRecord(f"its Modified_Time {raw.get('Modified_Time')!r} cannot be read")
    name = text(raw.get("full_name")) or " ".join(
        p for p in (text(raw.get("first_name")), text(raw.get("last_name"))) if p
    )
    status = (text(raw.get("status")) or "active").lower()
    extra: dict[str, Any] = {}
    for key in ("role", "profile"):
        value = raw.get(key)
        if isinstance(value, dict) and value.get("name"):
            extra[key] = str(value["name"])
    return Owner(
        id=record_id(raw),
        updated_at=updated,
        email=text(raw.get("email")),
        name=name,
        active=status == "active",
        extra=extra,
    )


Direction = Literal["inbound", "outbound"]
_CALL_DIRECTIONS: dict[str, Direction] = {"inbound": "inbound", "outbound": "outbound", "missed": "inbound"}


def map_activity(stream: str, raw: Mapping[str, Any], options: MappingOptions) -> Activity:
    kind = ACTIVITY_KINDS[stream]
    body = ""
    direction: Direction | None = None
    outcome: str | None = None
    status: str | None = None
    upsell_key: str | None = None
    extra: dict[str, Any] = {}
    account_id = _account_of(raw, "What_Id")
    if kind is ActivityKind.CALL:
        subject = text(raw.get("Subject")) or ""
        call_type = (text(raw.get("Call_Type")) or "").lower()
        direction = _CALL_DIRECTIONS.get(call_type)
        outcome = text(raw.get("Call_Result")) or ("missed" if call_type == "missed" else None)
        occurred = parse_datetime(raw.get("Call_Start_Time"))
    elif kind is ActivityKind.MEETING:
        subject = text(raw.get("Event_Title")) or ""
        occurred = parse_datetime(raw.get("Start_DateTime"))
    elif kind is ActivityKind.NOTE:
        content = raw.get("Note_Content")
        body = html_to_text(content) if isinstance(content, str) else ""
        subject = text(raw.get("Note_Title")) or first_line(body)
        occurred = parse_datetime(raw.get("Created_Time"))
        account_id = _account_of(raw, "Parent_Id")
    else:
        subject = text(raw.get("Subject")) or ""
        status = "done" if (text(raw.get("Status")) or "").lower() in DONE_STATUSES else "open"
        upsell_key = text(raw.get(options.task_key_field))
        due = parse_datetime(raw.get("Due_Date"))
        occurred = due
        if (priority := text(raw.get("Priority"))) is not None:
            extra["priority"] = priority
    return Activity(
        id=record_id(raw),
        updated_at=_updated(raw),
        kind=kind,
        account_id=account_id,
        contact_id=lookup_id(raw.get("Who_Id")),
        owner_id=lookup_id(raw.get("Owner")),
        occurred_at=occurred,
        direction=direction,
        outcome=outcome,
        subject=subject,
        status=status,
        upsell_key=upsell_key,
        body=body,
        extra=extra,
    )


_MAPPERS: dict[str, Callable[[Mapping[str, Any], MappingOptions], Record | list[LineItem]]] = {
    "accounts": map_account,
    "contacts": map_contact,
    "deals": map_deal,
    "line_items": lambda raw, options: [
        item for subform in options.deal_subforms for item in map_line_items(raw, subform)
    ],
    "sales_order_items": lambda raw, _options: map_order_lines(raw, *ORDER_STREAMS["sales_order_items"][1:]),
    "invoice_items": lambda raw, _options: map_order_lines(raw, *ORDER_STREAMS["invoice_items"][1:]),
    "products": map_product,
    "users": lambda raw, _options: map_user(raw),
    "tasks": lambda raw, options: map_activity("tasks", raw, options),
    "calls": lambda raw, options: map_activity("calls", raw, options),
    "events": lambda raw, options: map_activity("events", raw, options),
    "notes": lambda raw, options: map_activity("notes", raw, options),
}


def map_record(stream: str, raw: Any, options: MappingOptions) -> list[Record]:
    """One Zoho record as canonical records (line items: one per subform row); [] with a warning
    where it is malformed."""
    mapper = _MAPPERS[stream]
    ident = raw.get("id") if isinstance(raw, dict) else None
    module = MODULES.get(stream, "users")
    try:
        if not isinstance(raw, dict):
            raise SkipRecord(f"it is a {type(raw).__name__}, not an object")
        mapped = mapper(raw, options)
    except (SkipRecord, ValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) and exc.errors() else str(exc)
        log.warning("skipping Zoho %s %s: %s", module, ident if ident is not None else "(no id)", reason)
        return []
    return list(mapped) if isinstance(mapped, list) else [mapped]


def map_records(stream: str, raws: Iterable[Any], options: MappingOptions) -> list[Record]:
    """The page's records; a contact brings its e-mail opt-out first (``campaigns``)."""
    from crm_upsell_zoho.campaigns import contact_engagement

    out: list[Record] = []
    for raw in raws:
        mapped = map_record(stream, raw, options)
        for record in mapped:
            if isinstance(record, Contact) and isinstance(raw, dict):
                engagement = contact_engagement(raw, record)
                if engagement is not None:
                    out.append(engagement)
        out.extend(mapped)
    return out
