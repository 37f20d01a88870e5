"""The HubSpot sandbox's part in playing outcomes (see ``crm_upsell_connector.sandbox.outcomes``).

Tasks the product created carry its task-key property; the product proposed is the one the company's
``next_product`` property names. Completing a task sets ``hs_task_status`` to ``COMPLETED`` (the
task properties: https://developers.hubspot.com/docs/api-reference/latest/crm/activities/tasks/guide).
A deal is created in the default pipeline with ``closedwon`` / ``closedlost`` or an open stage and one line item of the
product, associated deal -> company and line item -> deal, as the deals and line items APIs do
(https://developers.hubspot.com/docs/api/crm/deals, https://developers.hubspot.com/docs/api/crm/line-items).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.routing import Route

from crm_upsell_connector.sandbox.outcomes import OpenTask, ProductInfo, outcome_route
from crm_upsell_connector.sandbox.server import iso_ms

if TYPE_CHECKING:
    from crm_upsell_hubspot.sandbox import HubSpotSandbox

PREFIX = "crm_upsell_"
_STAGES = {"won": "closedwon", "lost": "closedlost", "open": "qualifiedtobuy"}


class HubSpotOutcomes:
    def __init__(self, sb: HubSpotSandbox, prefix: str = PREFIX) -> None:
        self.sb = sb
        self.prefix = prefix

    def products(self) -> Mapping[str, ProductInfo]:
        return {p.sku: ProductInfo(p.sku, p.name, p.unit_price * 12) for p in self.sb.scenario.products}

    def open_product_tasks(self) -> list[OpenTask]:
        from crm_upsell_hubspot.sandbox.store import Rec

        sb = self.sb
        by_name = {p.name: p.sku for p in sb.scenario.products}
        key_prop = self.prefix + "key"
        tasks = sb.tables["tasks"]
        found: list[OpenTask] = []
        for task_id in tasks.active:
            rec: Rec | None = tasks.get(task_id)
            if rec is None or rec.props is None or not rec.props.get(key_prop):
                continue
            if (sb.value("tasks", rec, "hs_task_status") or "") == "COMPLETED":
                continue
            companies = sb.assoc[("tasks", "companies")].get(task_id) or []
            if not companies:
                continue
            company = sb.tables["companies"].get(companies[0])
            proposed = sb.value("companies", company, self.prefix + "next_product") if company else None
            found.append(OpenTask(str(task_id), str(companies[0]), by_name.get(proposed or "")))
        return found

    def complete_task(self, task_id: str) -> None:
        rec = self.sb.tables["tasks"].get(int(task_id))
        if rec is not None:
            self.sb._apply("tasks", rec, {"hs_task_status": "COMPLETED"}, self.sb.now_ms())

    def open_deal(self, company_id: str, product: ProductInfo, stage: str) -> str:
        from crm_upsell_hubspot.sandbox.store import Rec

        sb = self.sb
        now = sb.now_ms()
        company = sb.tables["companies"].get(int(company_id))
        owner = sb.value("companies", company, "hubspot_owner_id") if company else None
        hs_stage = _STAGES[stage]
        closed = stage in ("won", "lost")
        props: dict[str, str | None] = {
            "dealname": f"{product.name} ({stage})",
            "dealstage": hs_stage,
            "pipeline": "default",
            "amount": f"{product.annual_price:g}",
            "closedate": iso_ms(now),
            "deal_currency_code": "USD",
            "hs_is_closed": "true" if closed else "false",
            "hs_is_closed_won": "true" if stage == "won" else "false",
            "hubspot_owner_id": owner,
        }
        if "amount_in_home_currency" in sb.properties["deals"]:
            props["amount_in_home_currency"] = props["amount"]
        deal = Rec(sb._new_id("deals"), None, now, now)
        deal.props = props
        sb.tables["deals"].add(deal)
        sb._link("deals", deal.id, "companies", int(company_id))
        product_id = sb.ids.get(next(p.key for p in sb.scenario.products if p.sku == product.sku))
        item = Rec(sb._new_id("line_items"), None, now, now)
        item.props = {
            "name": product.name,
            "hs_product_id": str(product_id) if product_id is not None else None,
            "hs_sku": product.sku,
            "quantity": "1",
            "price": f"{product.annual_price:g}",
            "amount": f"{product.annual_price:g}",
            "recurringbillingfrequency": "annually",
            "hs_recurring_billing_period": "P12M",
        }
        sb.tables["line_items"].add(item)
        sb._link("line_items", item.id, "deals", deal.id)
        return str(deal.id)


def outcome_routes(sb: HubSpotSandbox) -> list[Route]:
    """The route that plays outcomes on this portal (mounted by ``create_app``)."""
    return [outcome_route(lambda: HubSpotOutcomes(sb), sb.lock)]
