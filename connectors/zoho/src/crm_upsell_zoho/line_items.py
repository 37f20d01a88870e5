"""Line items from a custom product subform on Deals (``owned_products = ["subform:<api_name>"]``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from crm_upsell_connector.models import LineItem
from crm_upsell_connector.values import parse_number
from crm_upsell_zoho.parsing import SkipRecord, home_amount, lookup_id, record_id, text
from crm_upsell_zoho.parsing import updated_stamp as _updated

# The mapping logger: row warnings come from the same logger as every other mapping warning.
log = logging.getLogger("crm_upsell_zoho.mapping")

DEAL_PRODUCTS = "Deal_Products"  # a custom subform on Deals some orgs keep what a deal sells in


def map_line_items(raw: Mapping[str, Any], subform: str = DEAL_PRODUCTS) -> list[LineItem]:
    """One canonical line item per row of a custom product subform on a deal (the deal's stamp as
    theirs); for orgs that keep what a deal sells in a subform (``owned_products = ["subform:..."]``)."""
    DEAL_PRODUCTS = subform
    deal_id = record_id(raw)
    updated = _updated(raw)
    rows = raw.get(DEAL_PRODUCTS)
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise SkipRecord(f"its {DEAL_PRODUCTS} is not a list")
    items: list[LineItem] = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            log.warning("skipping Zoho Deals %s %s row %d: not an object", deal_id, DEAL_PRODUCTS, n)
            continue
        product = row.get("Product_Name") or row.get("Product")
        quantity = parse_number(row.get("Quantity"))
        price = parse_number(row.get("List_Price") or row.get("Unit_Price"))
        amount = parse_number(row.get("Total") or row.get("Amount"))
        if amount is None and price is not None:
            amount = price * (1.0 if quantity is None else quantity)
            if not math.isfinite(amount):
                amount = None  # 1e308 x 10: no amount rather than infinity
        try:
            items.append(
                LineItem(
                    id=text(row.get("id")) or f"{deal_id}:{n}",
                    updated_at=updated,
                    deal_id=deal_id,
                    product_id=lookup_id(product),
                    sku=text(row.get("Product_Code")),
                    name=(text(product.get("name")) if isinstance(product, dict) else None) or "",
                    quantity=1.0 if quantity is None else quantity,
                    unit_price=price,
                    amount=amount,
                    amount_home=home_amount(amount, raw.get("Exchange_Rate")),  # the deal's rate
                    billing_period=_billing_period(row.get("Billing_Frequency")),
                )
            )
        except ValidationError as exc:
            log.warning(
                "skipping Zoho Deals %s %s row %d: %s", deal_id, DEAL_PRODUCTS, n, exc.errors()[0]["msg"]
            )
    return items


_PERIODS = {"annually": "annually", "yearly": "annually", "monthly": "monthly", "quarterly": "quarterly"}


def _billing_period(value: Any) -> str | None:
    raw = text(value)
    return None if raw is None else _PERIODS.get(raw.lower(), raw.lower())


# ---- lines of Sales Orders and Invoices -------------------------------------------------------

#: connector stream -> (``owned_products`` source, module, its product line items subform). The
#: inventory modules keep what was sold in a line item subform: ``Ordered_Items`` on Sales_Orders,
#: ``Invoiced_Items`` on Invoices, rows with ``Product_Name`` (a lookup carrying ``Product_Code``),
#: ``Quantity``, ``ListPrice``, ``Total`` (Zoho's v8 SDK record fields and its "Insert Records"
#: sample, https://www.zoho.com/crm/developer/docs/api/v8/insert-records.html; "Subform API",
#: https://www.zoho.com/crm/developer/docs/api/v8/subforms.html, lists both modules).
ORDER_STREAMS: dict[str, tuple[str, str, str]] = {
    "sales_order_items": ("sales_orders", "Sales_Orders", "Ordered_Items"),
    "invoice_items": ("invoices", "Invoices", "Invoiced_Items"),
}
#: A cancelled order or invoice owns nothing (the standard Status picklist value).
CANCELLED = "cancelled"


def order_line_id(order_id: str, row: Mapping[str, Any], n: int) -> str:
    """``<order or invoice id>:<row id>`` (the row's position where it has no id): the order's lines
    share its id as a prefix, so a deleted order's lines can be removed by it."""
    return f"{order_id}:{text(row.get('id')) or f'#{n}'}"


def order_line_ids(raw: Mapping[str, Any], subform: str) -> list[str]:
    """The line item ids of an order's rows (as :func:`map_order_lines` names them)."""
    order_id = record_id(raw)
    rows = raw.get(subform)
    if not isinstance(rows, list):
        return []
    return [order_line_id(order_id, row, n) for n, row in enumerate(rows) if isinstance(row, dict)]


def is_cancelled(raw: Mapping[str, Any]) -> bool:
    return (text(raw.get("Status")) or "").lower() == CANCELLED


def map_order_lines(raw: Mapping[str, Any], module: str, subform: str) -> list[LineItem]:
    """One line item per product row of a sales order or invoice, owned by its ``Account_Name``
    (no deal); none for a cancelled one. The order's stamp is the lines' stamp."""
    order_id = record_id(raw)
    updated = _updated(raw)
    if is_cancelled(raw):
        return []
    account_id = lookup_id(raw.get("Account_Name"))
    if account_id is None:
        raise SkipRecord("it has no Account_Name: its products belong to no account")
    rows = raw.get(subform)
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise SkipRecord(f"its {subform} is not a list")
    items: list[LineItem] = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            log.warning("skipping Zoho %s %s %s row %d: not an object", module, order_id, subform, n)
            continue
        product = row.get("Product_Name")
        quantity = parse_number(row.get("Quantity"))
        price = parse_number(
            row.get("ListPrice") if row.get("ListPrice") is not None else row.get("List_Price")
        )
        amount = parse_number(row.get("Total"))
        if amount is None and price is not None:
            amount = price * (1.0 if quantity is None else quantity)
            if not math.isfinite(amount):
                amount = None
        try:
            items.append(
                LineItem(
                    id=order_line_id(order_id, row, n),
                    updated_at=updated,
                    account_id=account_id,
                    product_id=lookup_id(product),
                    sku=text(product.get("Product_Code")) if isinstance(product, dict) else None,
                    name=(text(product.get("name")) if isinstance(product, dict) else None) or "",
                    quantity=1.0 if quantity is None else quantity,
                    unit_price=price,
                    amount=amount,
                    amount_home=home_amount(amount, raw.get("Exchange_Rate")),
                    extra={"module": module, "record_id": order_id},
                )
            )
        except ValidationError as exc:
            log.warning(
                "skipping Zoho %s %s %s row %d: %s", module, order_id, subform, n, exc.errors()[0]["msg"]
            )
    return items
