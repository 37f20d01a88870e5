"""Sales Orders and Invoices with their product line items, for a share of the accounts.

Zoho keeps what an order or invoice sold in a line item subform: ``Ordered_Items`` on Sales_Orders,
``Invoiced_Items`` on Invoices, each row a ``Product_Name`` lookup (with the product's
``Product_Code``), ``Quantity``, ``ListPrice`` and ``Total``; the record names its ``Account_Name``
(module and field api_names from Zoho's v8 SDK record fields; "Subform API",
https://www.zoho.com/crm/developer/docs/api/v8/subforms.html, lists both modules). The records API
returns the rows when the subform is named in ``fields`` and, like every module, refuses a name the
module does not have. An edition without these modules answers ``INVALID_MODULE`` (the sandbox does
for any module it does not hold: drop them from ``org.tables`` to emulate one).

Seeding: every third company (from the first) has one sales order per won deal, carrying that deal's
products, stamped a day after the deal closed; every sixth company also has an invoice for each of
those orders, five days after, so some products are owned through a deal, an order and an invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crm_upsell_zoho.sandbox.store import DAY_MS, FieldDef, ModuleDef, Rec, Table, ms_of

if TYPE_CHECKING:
    from crm_upsell_zoho.sandbox.org import Org

__all__ = ["INVENTORY_MODULES", "LINE_ITEM_SUBFORMS", "add_inventory"]

#: module -> (singular label, its line item subform).
INVENTORY_MODULES: dict[str, tuple[str, str]] = {
    "Sales_Orders": ("Sales Order", "Ordered_Items"),
    "Invoices": ("Invoice", "Invoiced_Items"),
}
LINE_ITEM_SUBFORMS = frozenset(subform for _, subform in INVENTORY_MODULES.values())
#: The standard Status picklists of both modules.
STATUSES = ("Created", "Approved", "Delivered", "Cancelled")
SO_SHARE = 3
INVOICE_SHARE = 6


@dataclass(frozen=True)
class SOrder:
    """One order or invoice the sandbox seeds: the scenario keys it stands for and its rows."""

    key: str
    company_key: str
    owner_key: str
    subject: str
    deal_key: str | None
    currency: str
    #: units of ``currency`` per home unit: the deal's own rate
    exchange_rate: float
    rows: tuple[dict[str, Any], ...]


def _define(org: Org, name: str) -> ModuleDef:
    singular, subform = INVENTORY_MODULES[name]
    mod = ModuleDef(name, singular, org.new_id(), "Subject", None)

    def f(api: str, label: str, data_type: str, **kw: Any) -> None:
        mod.fields[api] = FieldDef(api, label, data_type, org.new_id(), length=kw.pop("length", 255), **kw)

    f("Owner", f"{singular} Owner", "ownerlookup")
    f("Subject", "Subject", "text", mandatory=True)
    f("Account_Name", "Account Name", "lookup", lookup_module="Accounts", mandatory=True)
    if name == "Sales_Orders":
        f("Deal_Name", "Deal Name", "lookup", lookup_module="Deals")
    else:
        f("Sales_Order", "Sales Order", "lookup", lookup_module="Sales_Orders")
    f("Status", "Status", "picklist", options=STATUSES)
    f("Currency", "Currency", "picklist", options=tuple(org.currencies))
    f("Exchange_Rate", "Exchange Rate", "double")
    f(subform, "Product Details", "subform")
    for api, label, dt in (
        ("Created_By", "Created By", "ownerlookup"),
        ("Modified_By", "Modified By", "ownerlookup"),
        ("Created_Time", "Created Time", "datetime"),
        ("Modified_Time", "Modified Time", "datetime"),
    ):
        f(api, label, dt, read_only=True)
    ids = org.ids
    mod.getters = {
        "Owner": lambda s: ids[s.owner_key],
        "Created_By": lambda s: ids[s.owner_key],
        "Modified_By": lambda s: ids[s.owner_key],
        "Subject": lambda s: s.subject,
        "Account_Name": lambda s: ids[s.company_key],
        "Deal_Name": lambda s: ids[s.deal_key] if s.deal_key else None,
        "Sales_Order": lambda s: ids.get(s.deal_key or ""),
        "Status": lambda s: "Delivered",
        "Currency": lambda s: s.currency,
        "Exchange_Rate": lambda s: s.exchange_rate,
        subform: lambda s: [dict(row) for row in s.rows],
    }
    org.modules[name] = mod
    org.tables[name] = Table(name)
    return mod


def add_inventory(org: Org, now: int) -> None:
    """Define Sales_Orders and Invoices and seed them from the scenario's won deals."""
    for name in INVENTORY_MODULES:
        _define(org, name)
    sc = org.scenario
    lines_of: dict[str, list[Any]] = {}
    for item in sc.line_items:
        lines_of.setdefault(item.deal_key, []).append(item)
    won = [d for d in sc.deals if d.stage == "closedwon"]
    share = {c.key: i for i, c in enumerate(sc.companies)}
    for deal in sorted(won, key=lambda d: d.key):
        index = share.get(deal.company_key)
        if index is None or index % SO_SHARE or not lines_of.get(deal.key):
            continue
        # Lines are in their deal's currency at the deal's rate: the scenario's unit price already is.
        rows = tuple(
            {
                "id": org.new_id(),
                "Product_Name": org.ids[item.product_key],
                "Quantity": item.quantity,
                "ListPrice": item.unit_price,
                "Total": round(item.unit_price * item.quantity, 2),
            }
            for item in lines_of[deal.key]
        )
        order = SOrder(
            f"so-{deal.key}",
            deal.company_key,
            deal.owner_key,
            f"Order: {deal.name}",
            deal.key,
            deal.currency,
            deal.exchange_rate,
            rows,
        )
        stamp = min(ms_of(deal.close_date) + DAY_MS, now - 60_000)
        so_id = org.new_id()
        org.ids[order.key] = so_id
        org.tables["Sales_Orders"].recs[so_id] = Rec(so_id, order, stamp, stamp)
        if index % INVOICE_SHARE:
            continue
        invoice_rows = tuple({**row, "id": org.new_id()} for row in rows)
        invoice = SOrder(
            f"inv-{deal.key}",
            deal.company_key,
            deal.owner_key,
            f"Invoice: {deal.name}",
            order.key,
            deal.currency,
            deal.exchange_rate,
            invoice_rows,
        )
        inv_stamp = min(stamp + 4 * DAY_MS, now - 30_000)
        inv_id = org.new_id()
        org.ids[invoice.key] = inv_id
        org.tables["Invoices"].recs[inv_id] = Rec(inv_id, invoice, inv_stamp, inv_stamp)
    for name in INVENTORY_MODULES:
        org.tables[name].finish_load()
