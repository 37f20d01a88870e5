"""What an account owns, read from where a standard Zoho CRM org keeps it.

A standard org (Standard, Professional, Enterprise) has no product subform on Deals: the products a
deal sells are on the deal's **Products related list** ("Related Records",
https://www.zoho.com/crm/developer/docs/api/v8/get-related-records.html, ``GET
/Deals/{id}/Products``). Zoho offers no cheaper way to read that list for many deals at once: COQL
selects from one module and does not join a related list, and the bulk read API exports modules, not
related lists. So the connector asks only for deals that can matter (won or still open: a lost deal
owns nothing) and only when they changed (the deals read is incremental), one call per deal, all
run concurrently within the connection's concurrency limit.

``owned_products`` (connection setting) chooses the sources:

- ``deal_products`` (default): the Products related list of won and open deals. Works on a new org.
- ``subform:<api_name>``: a custom product subform on Deals (rows with ``Product_Name``, ``Quantity``,
  ``List_Price``...), for orgs that built one.

A product that two sources report for the same deal is one line item (ids are ``<deal>:<product>``
for the related list), so it counts once. Family and tier come from the configured catalogue by SKU
(the product's ``Product_Code``); Zoho's Products have no tier field.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_connector.models import LineItem, Record
from crm_upsell_connector.values import parse_number
from crm_upsell_zoho.client import PAGE_LIMIT, data_of, info_of
from crm_upsell_zoho.mapping import MappingOptions, deal_state, fields_for, modified_at, text

if TYPE_CHECKING:
    from crm_upsell_zoho.client import ZohoClient

__all__ = ["DEAL_PRODUCTS_SOURCE", "SUBFORM_PREFIX", "deal_product_lines", "owned_by_deal"]

log = logging.getLogger(__name__)

DEAL_PRODUCTS_SOURCE = "deal_products"
SUBFORM_PREFIX = "subform:"
_PRODUCT_FIELDS = ",".join(fields_for("deal_products", MappingOptions()))


def owned_by_deal(raw: Mapping[str, Any]) -> bool:
    """Whether a deal's products can count: it is won, or still open."""
    closed, won = deal_state(text(raw.get("Stage")))
    return won or not closed


def product_line(deal_id: str, updated: datetime, product: Mapping[str, Any]) -> LineItem | None:
    """One product of a deal's Products related list as a line item (quantity 1: the related list
    carries no quantity)."""
    product_id = text(product.get("id"))
    if product_id is None:
        return None
    price = parse_number(product.get("Unit_Price"))
    try:
        return LineItem(
            id=f"{deal_id}:{product_id}",
            updated_at=updated,
            deal_id=deal_id,
            product_id=product_id,
            sku=text(product.get("Product_Code")),
            name=text(product.get("Product_Name")) or "",
            quantity=1.0,
            unit_price=price,
            amount=price,
            # A product's Unit_Price is kept in the org's home currency (multi-currency orgs price
            # in other currencies through price books, which the related list does not carry).
            amount_home=price,
        )
    except ValidationError as exc:
        log.warning("skipping Zoho Deals %s product %s: %s", deal_id, product_id, exc.errors()[0]["msg"])
        return None


async def _products_of(client: ZohoClient, raw: Mapping[str, Any]) -> list[LineItem]:
    deal_id = text(raw.get("id"))
    updated = modified_at(raw)
    if deal_id is None or updated is None:
        return []
    lines: list[LineItem] = []
    page = 1
    while True:
        try:
            _, body = await client.request(
                "GET",
                f"Deals/{deal_id}/Products",
                kind="records",
                params={"fields": _PRODUCT_FIELDS, "page": page, "per_page": PAGE_LIMIT},
                endpoint="GET Deals/{id}/Products",
            )
        except FatalAPIError as exc:
            if exc.error_code == "INVALID_DATA":  # the deal was deleted or merged meanwhile
                log.info("Zoho Deals %s is gone; its products are not read (%s)", deal_id, exc.one_line())
                return lines
            raise
        rows = data_of(body)
        lines.extend(line for row in rows if (line := product_line(deal_id, updated, row)) is not None)
        if not (info_of(body).get("more_records") and rows):
            return lines
        page += 1


async def deal_product_lines(client: ZohoClient, deals: Sequence[Mapping[str, Any]]) -> list[Record]:
    """The Products related list of every won or open deal in ``deals``, read concurrently."""
    wanted = [raw for raw in deals if owned_by_deal(raw)]
    results = await asyncio.gather(*(_products_of(client, raw) for raw in wanted))
    return [line for lines in results for line in lines]
