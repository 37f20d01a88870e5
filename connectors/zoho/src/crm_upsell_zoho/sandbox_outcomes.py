"""The Zoho CRM sandbox's part in playing outcomes (see ``crm_upsell_connector.sandbox.outcomes``).

Tasks the product created carry its task-key custom field (found by its label, as ``ensure_fields``
named it); the product proposed is the one the account's next-product field names. Completing a task
sets ``Status`` to ``Completed`` (a value of the Tasks Status picklist). A deal is created for the
account (``Account_Name`` lookup) with ``Stage`` ``Closed Won`` / ``Closed Lost`` or an open stage,
``Closing_Date`` today and one ``Deal_Products`` subform row for the product, through the sandbox's
own insert (mandatory fields checked), as the Records API would:
https://www.zoho.com/crm/developer/docs/api/v8/insert-records.html
https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from starlette.routing import Route

from crm_upsell_connector.fields import ACCOUNT_FIELDS, TASK_KEY_FIELD
from crm_upsell_connector.sandbox.outcomes import OpenTask, ProductInfo, outcome_route
from crm_upsell_zoho.sandbox.writes import _insert, _update

if TYPE_CHECKING:
    from crm_upsell_zoho.sandbox import ZohoSandbox

_STAGES = {"won": "Closed Won", "lost": "Closed Lost", "open": "Qualification"}
_NEXT_PRODUCT = next(f.label for f in ACCOUNT_FIELDS if f.name == "next_product")


class ZohoOutcomes:
    def __init__(self, sb: ZohoSandbox) -> None:
        self.sb = sb
        org = sb.org
        self.key_field = _api_name(sb, "Tasks", TASK_KEY_FIELD.label)
        self.product_field = _api_name(sb, "Accounts", _NEXT_PRODUCT)
        self.product_ids = {p.sku: org.ids[p.key] for p in sb.scenario.products}

    def products(self) -> Mapping[str, ProductInfo]:
        return {p.sku: ProductInfo(p.sku, p.name, p.unit_price * 12) for p in self.sb.scenario.products}

    def open_product_tasks(self) -> list[OpenTask]:
        org = self.sb.org
        if self.key_field is None:
            return []
        by_name = {p.name: p.sku for p in self.sb.scenario.products}
        table = org.tables["Tasks"]
        found: list[OpenTask] = []
        for task_id in table.by_id:
            rec = table.recs[task_id]
            if not org.stored("Tasks", rec, self.key_field):
                continue
            if org.stored("Tasks", rec, "Status") == "Completed":
                continue
            account_id = org.stored("Tasks", rec, "What_Id")
            account = org.find("Accounts", account_id) if isinstance(account_id, int) else None
            if account is None:
                continue
            proposed = org.stored("Accounts", account, self.product_field) if self.product_field else None
            found.append(OpenTask(str(task_id), str(account.id), by_name.get(str(proposed or ""))))
        return found

    def complete_task(self, task_id: str) -> None:
        rec = self.sb.org.find("Tasks", int(task_id))
        if rec is not None:
            _update(self.sb, "Tasks", rec, {"Status": "Completed"})

    def open_deal(self, company_id: str, product: ProductInfo, stage: str) -> str:
        sb = self.sb
        org = sb.org
        local = timezone(timedelta(minutes=org.utc_offset_min))
        today = datetime.fromtimestamp(sb.now_ms() / 1000, UTC).astimezone(local).strftime("%Y-%m-%d")
        rec = _insert(
            sb,
            "Deals",
            {
                "Deal_Name": f"{product.name} ({stage})",
                "Stage": _STAGES[stage],
                "Amount": product.annual_price,
                "Closing_Date": today,
                "Account_Name": int(company_id),
            },
            0,
        )
        # The product goes on the deal's Products related list, where a standard org keeps it
        # ("Related Records": GET /Deals/{id}/Products).
        org.deal_products.setdefault(rec.id, []).append(self.product_ids[product.sku])
        return str(rec.id)


def _api_name(sb: ZohoSandbox, module: str, label: str) -> str | None:
    """The api_name of the field labelled ``label`` (Zoho derives api_names from labels)."""
    for fd in sb.org.modules[module].fields.values():
        if fd.label == label:
            return fd.api_name
    return None


def outcome_routes(sb: ZohoSandbox) -> list[Route]:
    """The route that plays outcomes in this org (mounted by ``create_app``)."""
    return [outcome_route(lambda: ZohoOutcomes(sb), sb.lock)]
