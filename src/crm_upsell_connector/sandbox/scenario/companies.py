"""Companies (with their planted persona, seats, NPS and billing currency) and their contacts."""

from __future__ import annotations

import math

from crm_upsell_connector.sandbox.scenario.base import BuilderBase, Plan
from crm_upsell_connector.sandbox.scenario.model import (
    DAY,
    FAMILY_SKUS,
    HOME_CURRENCY,
    HOUR,
    PERSONA_MIX,
    UPGRADE_LIKE,
    YEAR,
    SCompany,
    SContact,
    ms_to_dt,
)
from crm_upsell_connector.sandbox.scenario.vocabulary import (
    CITIES,
    INDUSTRIES,
    JP_A,
    JP_B,
    NAME_A,
    NAME_B,
    QUOTED_NAMES,
)

#: share of the non-Japanese accounts billed in euros (Japanese-named accounts are billed in yen)
EURO_SHARE = 0.04


class CompanyBuilder(BuilderBase):
    """Companies and contacts; a company's plan (tenure, products, seats, currency) drives the rest."""

    def currency(self, japanese: bool) -> str:
        """The account's billing currency: yen for Japanese accounts, euros for a few, else home."""
        if japanese:
            return "JPY"
        return "EUR" if self.aux.random() < EURO_SHARE else HOME_CURRENCY

    def personas(self) -> list[str]:
        counts = {p: round(share * self.accounts) for p, share in PERSONA_MIX.items()}
        while sum(counts.values()) > self.accounts:  # tiny scenarios: drop from the largest shares
            biggest = max(counts, key=lambda p: counts[p])
            counts[biggest] -= 1
        labels = [p for p, c in counts.items() for _ in range(c)]
        labels += ["average"] * (self.accounts - len(labels))
        self.rng.shuffle(labels)
        return labels

    def company_name(self, i: int) -> tuple[str, str, bool]:
        r = self.rng.random()
        if r < 0.08:
            (a, ra), (b, rb) = self.rng.choice(JP_A), self.rng.choice(JP_B)
            name = f"株式会社{a}{b}" if self.rng.random() < 0.6 else f"{a}{b}株式会社"
            return name, f"{ra}-{rb}-{i}.example.jp", True
        if r < 0.10:
            name, slug = self.rng.choice(QUOTED_NAMES)
            return name, f"{slug}-{i}.example.com", False
        a, b = self.rng.choice(NAME_A), self.rng.choice(NAME_B)
        name = f"{a} {b}"
        if self.rng.random() < 0.5:
            name = f"{name} {self.rng.choice(CITIES)}"
        slug = "".join(ch for ch in f"{a}{b}".lower() if ch.isalnum())
        return name, f"{slug}-{i}.example.com", False

    def plan(self, persona: str) -> Plan:
        rng = self.rng
        if persona in UPGRADE_LIKE:
            tenure = rng.uniform(2.2, 6.0) * YEAR
        elif persona == "new_customer":
            tenure = rng.uniform(5, 85) * DAY
        elif persona == "cross_sell_candidate":
            tenure = rng.uniform(1.1, 5.0) * YEAR
        elif persona == "dormant":
            tenure = rng.uniform(1.0, 5.0) * YEAR
        elif persona == "at_risk":
            tenure = rng.uniform(0.6, 4.0) * YEAR
        else:
            tenure = rng.uniform(0.4, 4.0) * YEAR
        created = self.now - int(tenure)
        if persona in UPGRADE_LIKE:
            crm = rng.choice(("CRM-STARTER", "CRM-PRO"))
        else:
            crm = rng.choices(("CRM-STARTER", "CRM-PRO", "CRM-ENT"), weights=(4, 4, 2))[0]
        seats = rng.choice((5, 10, 10, 15, 20, 20, 25, 30, 40, 50, 75, 100, 150, 200))
        addons: list[str] = []
        if persona == "cross_sell_candidate":
            lacking = rng.choice((("marketing",), ("support",), ("marketing", "support")))
            for family in ("marketing", "support"):
                if family not in lacking and rng.random() < 0.6:
                    addons.append(rng.choice(FAMILY_SKUS[family]))
            if rng.random() < 0.3:
                addons.append("ANL-ADDON")
        else:
            for family in ("marketing", "support", "analytics"):
                if rng.random() < 0.2:
                    addons.append(rng.choice(FAMILY_SKUS[family]))
        owner = rng.choice(self.owners).key
        return Plan(persona, created, crm, seats, addons, owner, japanese=False)

    def emit_company(self, key: str, name: str, domain: str, plan: Plan) -> None:
        rng, persona = self.rng, plan.persona
        ratio: float | None
        nps: int | None
        onboarding: str | None = "live"
        if persona in UPGRADE_LIKE:
            ratio, nps = rng.uniform(0.9, 1.0), rng.randint(9, 10)
        elif persona == "cross_sell_candidate":
            ratio, nps = rng.uniform(0.6, 0.85), rng.randint(8, 10)
        elif persona == "at_risk":
            ratio, nps = rng.uniform(0.15, 0.45), rng.randint(0, 5)
        elif persona == "dormant":
            ratio, nps = rng.uniform(0.05, 0.4), (rng.randint(3, 7) if rng.random() < 0.5 else None)
        elif persona == "new_customer":
            ratio = rng.uniform(0.2, 0.6)
            nps = rng.randint(8, 10) if rng.random() < 0.6 else None
            onboarding = rng.choice(("kickoff", "implementation"))
        else:
            ratio, nps = rng.uniform(0.4, 0.85), rng.randint(5, 8)
            if rng.random() < 0.15:
                nps = None
            if rng.random() < 0.05:
                onboarding = None
            if rng.random() < 0.08:
                ratio = None
        seats_purchased: int | None = plan.seats if ratio is not None else None
        seats_active: int | None = None
        if ratio is not None:
            low = math.ceil(0.9 * plan.seats) if persona in UPGRADE_LIKE else 0
            seats_active = min(plan.seats, max(low, round(plan.seats * ratio)))
        updated = self.snap(rng.randint(plan.created_ms, self.now - HOUR), 0.15)
        lifecycle = "evangelist" if persona in UPGRADE_LIKE and rng.random() < 0.3 else "customer"
        self.companies.append(
            SCompany(
                key=key,
                name=name,
                domain=domain,
                industry=rng.choice(INDUSTRIES),
                lifecycle_stage=lifecycle,
                owner_key=plan.owner_key,
                created_at=ms_to_dt(plan.created_ms),
                updated_at=ms_to_dt(updated),
                seats_purchased=seats_purchased,
                seats_active=seats_active,
                nps_score=nps,
                onboarding_stage=onboarding,
                do_not_contact=persona == "do_not_contact",
                persona=persona,
                currency=plan.currency,
            )
        )

    def emit_contacts(self, company_key: str, domain: str, plan: Plan) -> list[str]:
        rng = self.rng
        keys: list[str] = []
        for _ in range(self.count(self.contacts_per_account, minimum=1)):
            self._n_contacts += 1
            key = f"ct-{self._n_contacts:07d}"
            first, last = self.person()
            created = max(0, plan.created_ms - rng.randint(0, 60) * DAY + rng.randint(0, DAY))
            created = min(created, self.now - HOUR)
            updated = self.snap(rng.randint(created, self.now - HOUR), 0.1)
            local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
            stage = rng.choice(("customer", "customer", "customer", "opportunity", "salesqualifiedlead"))
            self.contacts.append(
                SContact(
                    key=key,
                    company_key=company_key,
                    email=f"{local}{self._n_contacts}@{domain}",
                    first_name=first,
                    last_name=last,
                    lifecycle_stage=stage,
                    created_at=ms_to_dt(created),
                    updated_at=ms_to_dt(updated),
                )
            )
            keys.append(key)
        return keys
