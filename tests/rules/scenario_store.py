"""Load a sandbox scenario straight into a SQLite store (rows, no connector), for rule tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crm_upsell_connector.sandbox.scenario import Scenario
from crm_upsell_connector.store import schema

from .marketing_rows import add_marketing_rows

CONNECTION = "sandbox"


def scenario_rows(scenario: Scenario) -> dict[str, list[dict[str, Any]]]:
    now = scenario.now
    products = {p.key: p for p in scenario.products}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in schema.STREAM_TABLES}
    base = {"connection": CONNECTION, "extra": {}}

    def text(value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    for c in scenario.companies:
        rows["accounts"].append(
            {
                **base,
                "id": c.key,
                "name": c.name,
                "owner_id": c.owner_key,
                "domain": c.domain,
                "industry": c.industry,
                "lifecycle_stage": c.lifecycle_stage,
                "created_at": c.created_at,
                "updated_at": c.updated_at,
                "fields": {
                    "seats_purchased": text(c.seats_purchased),
                    "seats_active": text(c.seats_active),
                    "nps_score": text(c.nps_score),
                    "onboarding_stage": c.onboarding_stage,
                    "do_not_contact": text(c.do_not_contact),
                },
                "product_fields": {},
            }
        )
    for ct in scenario.contacts:
        rows["contacts"].append(
            {
                **base,
                "id": ct.key,
                "account_id": ct.company_key,
                "email": ct.email,
                "name": f"{ct.first_name} {ct.last_name}",
                "lifecycle_stage": ct.lifecycle_stage,
                "created_at": ct.created_at,
                "updated_at": ct.updated_at,
            }
        )
    for d in scenario.deals:
        rows["deals"].append(
            {
                **base,
                "id": d.key,
                "account_id": d.company_key,
                "owner_id": d.owner_key,
                "name": d.name,
                "stage": d.stage,
                "is_closed": d.stage in ("closedwon", "closedlost"),
                "is_won": d.stage == "closedwon",
                "amount": d.amount,
                "currency": d.currency,
                "amount_home": d.amount_home,
                "close_date": d.close_date,
                "created_at": d.created_at,
                "updated_at": d.updated_at,
            }
        )
    for i, li in enumerate(scenario.line_items):
        product = products[li.product_key]
        rows["line_items"].append(
            {
                **base,
                "id": li.key,
                "deal_id": li.deal_key,
                "product_id": li.product_key,
                # Half the line items carry no SKU: features must find it through the product.
                "sku": product.sku if i % 2 else None,
                "name": product.name,
                "quantity": float(li.quantity),
                "unit_price": li.unit_price,
                "amount": li.unit_price * li.quantity,
                "amount_home": li.unit_price_home * li.quantity,
                "billing_period": li.billing_period,
                "updated_at": li.updated_at,
            }
        )
    for p in scenario.products:
        rows["products"].append(
            {**base, "id": p.key, "sku": p.sku, "name": p.name, "unit_price": p.unit_price, "updated_at": now}
        )
    for o in scenario.owners:
        rows["owners"].append(
            {
                **base,
                "id": o.key,
                "email": o.email,
                "name": f"{o.first_name} {o.last_name}",
                "active": True,
                "updated_at": now,
            }
        )
    for a in scenario.activities:
        status = None
        if a.kind == "task":
            status = "done" if a.status == "COMPLETED" else "open"
        rows["activities"].append(
            {
                **base,
                "id": a.key,
                "kind": a.kind,
                "account_id": a.company_key,
                "contact_id": a.contact_key,
                "owner_id": a.owner_key,
                "occurred_at": a.occurred_at,
                "direction": a.direction,
                "outcome": a.outcome,
                "subject": a.subject,
                "body": a.body,
                "status": status,
                "upsell_key": None,
                "updated_at": a.updated_at,
            }
        )
    add_marketing_rows(rows, scenario)
    return rows


def load_scenario(engine: sa.Engine, scenario: Scenario) -> datetime:
    """Create the schema and insert the scenario; returns the scenario's ``now``."""
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        for name, table_rows in scenario_rows(scenario).items():
            if table_rows:
                conn.execute(schema.metadata.tables[name].insert(), table_rows)
    return scenario.now
