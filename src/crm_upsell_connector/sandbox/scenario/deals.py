"""Deals (first purchase, renewals, upgrades, cross-sells, lost proposals) and their line items.

Deals are in the account's billing currency; each keeps its amount in the home currency too, at
the scenario's fixed exchange rates (``model.EXCHANGE_RATES``).
"""

from __future__ import annotations

from collections.abc import Sequence

from crm_upsell_connector.sandbox.scenario.base import BuilderBase, Plan
from crm_upsell_connector.sandbox.scenario.model import (
    BY_SKU,
    DAY,
    EXCHANGE_RATES,
    HOUR,
    OPEN_STAGES,
    UPGRADE_LIKE,
    UPGRADE_PATH,
    YEAR,
    SDeal,
    SLineItem,
    ms_to_dt,
)

#: currencies without minor units (ISO 4217 exponent 0)
_WHOLE_UNITS = frozenset({"JPY", "KRW"})


def in_currency(home_amount: float, currency: str) -> float:
    """``home_amount`` converted to ``currency`` at the scenario's rate, rounded to its minor unit."""
    value = home_amount * EXCHANGE_RATES[currency]
    return float(round(value)) if currency in _WHOLE_UNITS else round(value, 2)


class DealBuilder(BuilderBase):
    """Deals and line items for one account at a time."""

    def emit_deal(
        self,
        company_key: str,
        plan: Plan,
        name: str,
        stage: str,
        close: int,
        created: int,
        items: Sequence[tuple[str, int, str]],
    ) -> None:
        rng = self.rng
        self._n_deals += 1
        key = f"deal-{self._n_deals:07d}"
        owner = plan.owner_key if rng.random() < 0.85 else rng.choice(self.owners).key
        if stage in OPEN_STAGES:
            updated = self.now - rng.randint(HOUR, 10 * DAY)
        else:
            updated = min(self.now - HOUR, close + rng.randint(0, 5 * DAY))
        updated = self.snap(max(updated, created), 0.1)
        amount = 0.0
        rate = EXCHANGE_RATES[plan.currency]
        for sku, qty, period in items:
            product = BY_SKU[sku]
            months = 12 if period == "P12M" else 1
            amount += product.unit_price * qty * months
            self._n_items += 1
            self.line_items.append(
                SLineItem(
                    key=f"li-{self._n_items:07d}",
                    deal_key=key,
                    product_key=product.key,
                    quantity=qty,
                    unit_price=in_currency(product.unit_price, plan.currency),
                    billing_period=period,
                    updated_at=ms_to_dt(updated),
                    currency=plan.currency,
                    unit_price_home=product.unit_price,
                )
            )
        self.deals.append(
            SDeal(
                key=key,
                company_key=company_key,
                owner_key=owner,
                name=name,
                stage=stage,
                amount=in_currency(amount, plan.currency),
                close_date=ms_to_dt(close),
                created_at=ms_to_dt(created),
                updated_at=ms_to_dt(updated),
                currency=plan.currency,
                amount_home=round(amount, 2),
                exchange_rate=rate,
            )
        )

    def subscription(self, plan: Plan) -> list[tuple[str, int, str]]:
        items = [(plan.crm_sku, plan.seats, "P12M")]
        items += [(sku, 1, self.rng.choice(("P12M", "P1M"))) for sku in plan.addons]
        # Bigger line-item budgets add extra add-on seats/licences on the same subscription.
        extra = self.line_items_per_account / max(self.deals_per_account, 0.5) - 1.5
        while extra > 0 and self.rng.random() < min(extra, 0.9):
            items.append((self.rng.choice(("ANL-ADDON", "SUP-STD")), self.rng.randint(1, 3), "P1M"))
            extra -= 1
        return items

    def emit_deals(self, company_key: str, company_name: str, plan: Plan) -> None:
        rng, persona = self.rng, plan.persona
        crm_name = BY_SKU[plan.crm_sku].name
        close = min(self.now - DAY, plan.created_ms + rng.randint(7, 45) * DAY)
        created = plan.created_ms
        items = self.subscription(plan)
        self.emit_deal(company_key, plan, f"{company_name} - {crm_name}", "closedwon", close, created, items)
        years = (self.now - close) // YEAR
        # Contracts run one to three years; upgrade-like accounts have at least two renewals on record.
        term = 1 if persona in UPGRADE_LIKE else rng.choice((1, 2, 3))
        renewals = min(years // term, 3)
        for k in range(1, renewals + 1):
            r_close = close + k * term * YEAR
            year = ms_to_dt(r_close).year
            self.emit_deal(
                company_key,
                plan,
                f"{company_name} - Renewal {year}",
                "closedwon",
                r_close,
                r_close - rng.randint(20, 60) * DAY,
                items,
            )
        base = 1 + renewals
        if persona == "covered":
            upgrade = UPGRADE_PATH[plan.crm_sku]
            o_created = self.now - rng.randint(5, 40) * DAY
            self.emit_deal(
                company_key,
                plan,
                f"{company_name} - Upgrade to {BY_SKU[upgrade].name}",
                rng.choice(OPEN_STAGES),
                self.now + rng.randint(10, 60) * DAY,
                o_created,
                [(upgrade, plan.seats, "P12M")],
            )
            base += 1
        extra_mean = max(0.0, self.deals_per_account - base) * 0.8 + 0.2
        if persona == "new_customer":
            return
        n_extra = sum(1 for _ in range(round(extra_mean * 2)) if rng.random() < 0.5)
        for _ in range(n_extra):
            self.emit_extra_deal(company_key, company_name, plan)

    def emit_extra_deal(self, company_key: str, company_name: str, plan: Plan) -> None:
        rng, persona = self.rng, plan.persona
        owned_families = {BY_SKU[s].family for s in plan.addons}
        others = [
            s
            for s in ("MKT-BASIC", "MKT-PRO", "SUP-STD", "SUP-PREM", "ANL-ADDON")
            if BY_SKU[s].family not in owned_families
        ]
        if persona in ("average", "at_risk") and rng.random() < 0.4 and others:
            sku = rng.choice(others)
            stage = rng.choice(OPEN_STAGES)
            created = self.now - rng.randint(3, 60) * DAY
            self.emit_deal(
                company_key,
                plan,
                f"{company_name} - {BY_SKU[sku].name}",
                stage,
                self.now + rng.randint(5, 90) * DAY,
                created,
                [(sku, 1, "P12M")],
            )
            return
        # A proposal that was lost long ago: history, not a live opportunity.
        pool = [s for s in plan.addons] or ["ANL-ADDON"]
        sku = rng.choice(pool) if persona != "cross_sell_candidate" else "ANL-ADDON"
        latest = self.now - (400 if persona != "dormant" else 200) * DAY
        earliest = min(plan.created_ms, latest - DAY)
        close = rng.randint(earliest, latest)
        self.emit_deal(
            company_key,
            plan,
            f"{company_name} - {BY_SKU[sku].name} (lost)",
            "closedlost",
            close,
            close - rng.randint(10, 60) * DAY,
            [(sku, 1, "P12M")],
        )
