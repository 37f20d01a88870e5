"""The Salesforce sandbox's part in playing outcomes (see ``crm_upsell_connector.sandbox.outcomes``).

Tasks the product created carry its task-key custom field; the product proposed is the one the
account's next-product custom field names. Completing a task sets ``Status`` to ``Completed`` (the
Task object's Status picklist; ``IsClosed`` follows it:
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm).
An opportunity is created for the account with ``StageName`` ``Closed Won`` / ``Closed Lost`` or an
open stage, and one ``OpportunityLineItem`` on the product's standard price book entry, through the
sandbox's own create checks (required fields, references), as the REST API would:
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_opportunity.htm
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_opportunitylineitem.htm
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from crm_upsell_connector.fields import TASK_KEY_FIELD
from crm_upsell_connector.sandbox.outcomes import OpenTask, ProductInfo, outcome_route
from crm_upsell_salesforce.mapping import custom_field
from crm_upsell_salesforce.sandbox.data import pbe_key

if TYPE_CHECKING:
    from crm_upsell_salesforce.sandbox import SalesforceSandbox

PREFIX = "Crm_Upsell_"
_STAGES = {"won": "Closed Won", "lost": "Closed Lost", "open": "Qualification"}


class SalesforceOutcomes:
    def __init__(self, sb: SalesforceSandbox, prefix: str = PREFIX) -> None:
        self.sb = sb
        self.key_field = custom_field(prefix, TASK_KEY_FIELD.name)
        self.product_field = custom_field(prefix, "next_product")

    def products(self) -> Mapping[str, ProductInfo]:
        return {p.sku: ProductInfo(p.sku, p.name, p.unit_price * 12) for p in self.sb.scenario.products}

    def open_product_tasks(self) -> list[OpenTask]:
        sb = self.sb
        by_name = {p.name: p.sku for p in sb.scenario.products}
        table = sb.tables["Task"]
        found: list[OpenTask] = []
        for task_id in table.ids:
            rec = table.live(task_id)
            if rec is None or rec.over is None or not rec.over.get(self.key_field):
                continue
            if sb.value("Task", rec, "Status") == "Completed":
                continue
            account_id = sb.value("Task", rec, "WhatId")
            account = sb.tables["Account"].live(account_id) if isinstance(account_id, str) else None
            if account is None:
                continue
            proposed = sb.value("Account", account, self.product_field)
            found.append(OpenTask(task_id, account.id, by_name.get(str(proposed or ""))))
        return found

    def complete_task(self, task_id: str) -> None:
        sb = self.sb
        rec = sb.tables["Task"].live(task_id)
        if rec is not None:
            now = sb.now_ms()
            rec.over = {**(rec.over or {}), "Status": "Completed", "CompletedDateTime": now}
            sb.tables["Task"].touch(rec, now)

    def _create(self, otype: str, values: dict[str, Any]) -> str:
        from crm_upsell_salesforce.sandbox.store import Rec

        sb = self.sb
        clean, problem = sb._validate_values(sb.schema[otype], values, create=True)
        if problem is not None:
            raise ValueError(f"{otype}: {problem}")
        now = sb.now_ms()
        table = sb.tables[otype]
        rec = Rec(sb._new_id(table), None, now, now)
        rec.over = {**sb._defaults(otype, clean, now), **clean}
        table.add(rec)
        return str(rec.id)

    def open_deal(self, company_id: str, product: ProductInfo, stage: str) -> str:
        sb = self.sb
        key = next(p.key for p in sb.scenario.products if p.sku == product.sku)
        today = datetime.fromtimestamp(sb.now_ms() / 1000, UTC).date().isoformat()
        deal_id = self._create(
            "Opportunity",
            {
                "Name": f"{product.name} ({stage})",
                "AccountId": company_id,
                "StageName": _STAGES[stage],
                "CloseDate": today,
                "Amount": product.annual_price,
            },
        )
        self._create(
            "OpportunityLineItem",
            {
                "OpportunityId": deal_id,
                "PricebookEntryId": sb.ids[pbe_key(key, sb.scenario.home_currency)],
                "Quantity": 1,
                "UnitPrice": product.annual_price,
            },
        )
        return deal_id


def outcome_routes(sb: SalesforceSandbox) -> list[Route]:
    """The route that plays outcomes on this org (mounted by ``create_app``)."""
    return [outcome_route(lambda: SalesforceOutcomes(sb), sb.lock)]
