"""A seeded, CRM-neutral scenario of companies, people, deals, products and activities for every sandbox.

The same ``seed``, sizes and ``now`` always give identical data. Accounts are planted with personas
(upgrade candidates, at-risk accounts, dormant ones...) whose data a sensible rule set can recognise;
``Scenario.planted`` says which account got which persona. Timestamps carry millisecond precision.

A few accounts are billed in another currency than the home one (yen, euros), with each deal's
home amount beside its own; bodies come as plain text and HTML with several paragraphs; a few
companies were entered twice (``Scenario.merges``) for the sandboxes' merge operations.

The generator is split by job: ``model`` (shapes, catalogue, currencies), ``vocabulary``,
``companies``, ``deals`` and ``activities``; this module puts them together.
"""

from __future__ import annotations

import dataclasses
import gc
from datetime import UTC, datetime

from crm_upsell_connector.sandbox.scenario.activities import ActivityBuilder
from crm_upsell_connector.sandbox.scenario.companies import CompanyBuilder
from crm_upsell_connector.sandbox.scenario.deals import DealBuilder
from crm_upsell_connector.sandbox.scenario.model import (
    COMPLAINT_PREFIX,
    DEFAULT_NOW,
    EXCHANGE_RATES,
    HOME_CURRENCY,
    OPEN_STAGES,
    PERSONA_MIX,
    PERSONAS,
    PRODUCTS,
    UPGRADE_PATH,
    SActivity,
    Scenario,
    SCompany,
    SContact,
    SDeal,
    SLineItem,
    SOwner,
    SProduct,
)

__all__ = [
    "COMPLAINT_PREFIX",
    "DEFAULT_NOW",
    "EXCHANGE_RATES",
    "HOME_CURRENCY",
    "OPEN_STAGES",
    "PERSONAS",
    "PERSONA_MIX",
    "PRODUCTS",
    "UPGRADE_PATH",
    "SActivity",
    "SCompany",
    "SContact",
    "SDeal",
    "SLineItem",
    "SOwner",
    "SProduct",
    "Scenario",
    "build_scenario",
]


class _Builder(CompanyBuilder, DealBuilder, ActivityBuilder):
    def build_companies(self) -> None:
        labels = self.personas()
        for i, persona in enumerate(labels):
            key = f"co-{i + 1:06d}"
            name, domain, japanese = self.company_name(i + 1)
            plan = self.plan(persona)
            plan.japanese = japanese
            plan.currency = self.currency(japanese)
            self.planted[key] = persona
            self.emit_company(key, name, domain, plan)
            contact_keys = self.emit_contacts(key, domain, plan)
            self.emit_deals(key, name, plan)
            self.emit_activities(key, contact_keys, plan)

    def plant_duplicates(self) -> list[tuple[str, str]]:
        """Make a few "average" home-currency companies duplicates of another one (same name, a
        domain of its own, each with its own contacts, deals and activities); (survivor, duplicate)."""
        pool = [
            i for i, c in enumerate(self.companies) if c.persona == "average" and c.currency == HOME_CURRENCY
        ]
        pairs = min(len(pool) // 2, max(1, self.accounts // 250)) if self.accounts >= 20 else 0
        chosen = self.aux.sample(pool, 2 * pairs)
        merges: list[tuple[str, str]] = []
        for survivor_at, duplicate_at in zip(chosen[::2], chosen[1::2], strict=True):
            survivor = self.companies[survivor_at]
            duplicate = self.companies[duplicate_at]
            self.companies[duplicate_at] = dataclasses.replace(duplicate, name=survivor.name)
            merges.append((survivor.key, duplicate.key))
        return merges

    def build(self) -> Scenario:
        self.build_owners()
        self.build_companies()
        merges = self.plant_duplicates()
        return Scenario(
            now=self.now_dt,
            seed=self.seed,
            owners=self.owners,
            products=list(PRODUCTS),
            companies=self.companies,
            contacts=self.contacts,
            deals=self.deals,
            line_items=self.line_items,
            activities=self.activities,
            planted=self.planted,
            merges=merges,
            home_currency=HOME_CURRENCY,
            exchange_rates=dict(EXCHANGE_RATES),
        )


def build_scenario(
    accounts: int = 1000,
    seed: int = 7,
    now: datetime | None = None,
    *,
    contacts_per_account: float = 3,
    deals_per_account: float = 2,
    activities_per_account: float = 20,
    line_items_per_account: float = 3,
) -> Scenario:
    """Generate the scenario; identical for the same seed, sizes and ``now`` (default 2026-11-01Z)."""
    if accounts < 0:
        raise ValueError("accounts must be >= 0")
    at = now or DEFAULT_NOW
    if at.tzinfo is None:
        raise ValueError("now must carry a timezone")
    at = at.astimezone(UTC).replace(microsecond=(at.microsecond // 1000) * 1000)
    builder = _Builder(
        accounts,
        seed,
        at,
        contacts_per_account,
        deals_per_account,
        activities_per_account,
        line_items_per_account,
    )
    # Hundreds of thousands of small objects: the cyclic GC would rescan them over and over.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return builder.build()
    finally:
        if gc_was_enabled:
            gc.enable()
