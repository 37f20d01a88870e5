"""A seeded, CRM-neutral scenario of companies, people, deals, products and activities for every sandbox.

The same ``seed``, sizes and ``now`` always give identical data. Accounts are planted with personas
(upgrade candidates, at-risk accounts, dormant ones...) whose data a sensible rule set can recognise;
``Scenario.planted`` says which account got which persona. Timestamps carry millisecond precision.
"""

from __future__ import annotations

import gc
import math
import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = [
    "COMPLAINT_PREFIX",
    "DEFAULT_NOW",
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

DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)
COMPLAINT_PREFIX = "Complaint:"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_HOUR = 3_600_000
_DAY = 86_400_000
_YEAR = 365 * _DAY

# persona -> share of accounts; "average" takes what is left.
PERSONA_MIX: dict[str, float] = {
    "upgrade_candidate": 0.12,
    "cross_sell_candidate": 0.10,
    "at_risk": 0.10,
    "dormant": 0.10,
    "new_customer": 0.08,
    "covered": 0.05,
    "do_not_contact": 0.02,
}
PERSONAS: tuple[str, ...] = (*PERSONA_MIX, "average")

_UPGRADE_LIKE = frozenset({"upgrade_candidate", "covered", "do_not_contact"})
OPEN_STAGES: tuple[str, ...] = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
)


def _ms_to_dt(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _dt_to_ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


@dataclass(frozen=True, slots=True)
class SOwner:
    key: str
    email: str
    first_name: str
    last_name: str


@dataclass(frozen=True, slots=True)
class SProduct:
    key: str
    sku: str
    name: str
    family: str
    tier: int
    unit_price: float


@dataclass(frozen=True, slots=True)
class SCompany:
    key: str
    name: str
    domain: str
    industry: str
    lifecycle_stage: str
    owner_key: str
    created_at: datetime
    updated_at: datetime
    seats_purchased: int | None
    seats_active: int | None
    nps_score: int | None
    onboarding_stage: str | None
    do_not_contact: bool
    persona: str


@dataclass(frozen=True, slots=True)
class SContact:
    key: str
    company_key: str
    email: str
    first_name: str
    last_name: str
    lifecycle_stage: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SDeal:
    key: str
    company_key: str
    owner_key: str
    name: str
    stage: str
    amount: float
    close_date: datetime
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SLineItem:
    key: str
    deal_key: str
    product_key: str
    quantity: int
    unit_price: float
    billing_period: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SActivity:
    key: str
    kind: str
    company_key: str
    contact_key: str | None
    owner_key: str
    occurred_at: datetime
    direction: str | None
    outcome: str | None
    subject: str
    body: str
    status: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything a sandbox serves, in CRM-neutral shapes; ``planted`` maps company key -> persona."""

    now: datetime
    seed: int
    owners: list[SOwner]
    products: list[SProduct]
    companies: list[SCompany]
    contacts: list[SContact]
    deals: list[SDeal]
    line_items: list[SLineItem]
    activities: list[SActivity]
    planted: dict[str, str] = field(default_factory=dict)

    def persona_counts(self) -> dict[str, int]:
        """How many accounts carry each persona."""
        return dict(Counter(self.planted.values()))

    def product(self, key: str) -> SProduct:
        for product in self.products:
            if product.key == key:
                return product
        raise KeyError(key)


def _product(sku: str, name: str, family: str, tier: int, price: float) -> SProduct:
    return SProduct(key=f"prod-{sku}", sku=sku, name=name, family=family, tier=tier, unit_price=price)


PRODUCTS: tuple[SProduct, ...] = (
    _product("CRM-STARTER", "CRM Starter", "crm", 1, 25.0),
    _product("CRM-PRO", "CRM Professional", "crm", 2, 60.0),
    _product("CRM-ENT", "CRM Enterprise", "crm", 3, 120.0),
    _product("MKT-BASIC", "Marketing Basic", "marketing", 1, 400.0),
    _product("MKT-PRO", "Marketing Pro", "marketing", 2, 900.0),
    _product("SUP-STD", "Standard Support", "support", 1, 150.0),
    _product("SUP-PREM", "Premium Support", "support", 2, 500.0),
    _product("ANL-ADDON", "Analytics Add-on", "analytics", 1, 300.0),
)
_BY_SKU = {p.sku: p for p in PRODUCTS}
_FAMILY_SKUS: dict[str, tuple[str, ...]] = {
    "marketing": ("MKT-BASIC", "MKT-PRO"),
    "support": ("SUP-STD", "SUP-PREM"),
    "analytics": ("ANL-ADDON",),
}
UPGRADE_PATH: dict[str, str] = {"CRM-STARTER": "CRM-PRO", "CRM-PRO": "CRM-ENT"}

# ---- vocabulary ----------------------------------------------------------------------------------

_NAME_A = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Wonka",
    "Oscorp",
    "Aperture",
    "Pied Piper",
    "Dunder",
    "Nakatomi",
    "Bluth",
    "Prestige",
    "Sterling",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Adventure",
    "Blue Yonder",
    "Proseware",
    "Wingtip",
    "Alpine",
    "Coho",
    "Lucerne",
    "Margie",
    "Trey",
    "Woodgrove",
    "Fourth Coffee",
    "Humongous",
    "Graphic",
    "Datum",
    "Relecloud",
)
_NAME_B = (
    "Industries",
    "Labs",
    "Systems",
    "Holdings",
    "Logistics",
    "Analytics",
    "Foods",
    "Health",
    "Partners",
    "Group",
    "Software",
    "Retail",
    "Energy",
    "Media",
    "Robotics",
)
_CITIES = (
    "Boston",
    "Denver",
    "Austin",
    "Chicago",
    "Seattle",
    "Lyon",
    "Berlin",
    "Osaka",
    "Leeds",
    "Dublin",
    "Porto",
    "Oslo",
    "Madrid",
    "Toronto",
    "Sydney",
    "Perth",
    "Zurich",
    "Milan",
    "Kyoto",
    "Nagoya",
)
_JP_A = (
    ("サンプル", "sample"),
    ("みらい", "mirai"),
    ("さくら", "sakura"),
    ("ひかり", "hikari"),
    ("東京", "tokyo"),
    ("大阪", "osaka"),
    ("富士", "fuji"),
    ("青葉", "aoba"),
    ("ミドリ", "midori"),
    ("アサヒ", "asahi"),
    ("ヤマト", "yamato"),
    ("ツバメ", "tsubame"),
)
_JP_B = (
    ("商事", "shoji"),
    ("工業", "kogyo"),
    ("物産", "bussan"),
    ("システム", "system"),
    ("テクノロジー", "tech"),
    ("製作所", "seisakusho"),
    ("食品", "foods"),
    ("電機", "denki"),
    ("ホールディングス", "hd"),
    ("ソリューションズ", "solutions"),
)
_QUOTED_NAMES = (
    ("O'Reilly & Daughters", "oreilly-daughters"),
    ('Bob\'s "Best" Burgers', "bobs-best-burgers"),
    ("L'Atelier Créatif", "latelier-creatif"),
    ('"Quoted" Ventures LLC', "quoted-ventures"),
    ("Dave's Diner Supply", "daves-diner"),
    ("Macy O'Neil Co.", "macy-oneil"),
    ('The "Good" Company', "the-good-company"),
    ("St. John's Outfitters", "st-johns-outfitters"),
)
_INDUSTRIES = (
    "COMPUTER_SOFTWARE",
    "RETAIL",
    "HOSPITAL_HEALTH_CARE",
    "FINANCIAL_SERVICES",
    "MANUFACTURING",
    "MARKETING_AND_ADVERTISING",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "EDUCATION_MANAGEMENT",
    "CONSTRUCTION",
    "FOOD_BEVERAGES",
    "REAL_ESTATE",
    "TELECOMMUNICATIONS",
)
_FIRST = (
    "Alice",
    "Bob",
    "Carol",
    "Dan",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Ken",
    "Laura",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Walter",
    "Yuki",
    "Haruto",
    "Sakura",
    "Takumi",
    "Aoi",
    "D'Arcy",
    "Zoë",
    "José",
    "Ngozi",
)
_LAST = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Wilson",
    "Evans",
    "Thomas",
    "Roberts",
    "Walker",
    "Wright",
    "Tanaka",
    "Suzuki",
    "Sato",
    "Watanabe",
    "Ito",
    "O'Connor",
    "O'Brien",
    "Müller",
    "García",
    "Nguyen",
    "Kowalski",
    "Okafor",
    "Rossi",
    "Dubois",
)
_EN_MEETINGS = (
    "Quarterly business review",
    "Product roadmap walkthrough",
    "Adoption check-in",
    "Admin training",
    "Executive sponsor sync",
    "Renewal planning",
    "Integration workshop",
    "Success plan review",
)
_JP_MEETINGS = ("定例打ち合わせ", "導入支援ミーティング", "活用状況の確認", "契約更新のご相談")
_EN_INBOUND_EMAILS = (
    "Re: Question about reports",
    "Re: Adding more users",
    "Re: Feature request",
    "Thanks for the training",
    "Re: Invoice copy",
    "Re: API access",
    "Re: Next steps",
    "Re: Dashboard setup",
)
_JP_INBOUND_EMAILS = ("Re: 追加ユーザーについて", "Re: レポート機能のご質問", "研修ありがとうございました")
_EN_OUTBOUND_EMAILS = (
    "Your monthly usage summary",
    "Webinar invitation",
    "Following up on our call",
    "New features this month",
    "Renewal reminder",
    "Best practices guide",
)
_CALL_TITLES = ("Check-in call", "Support follow-up", "Renewal call", "Discovery call", "Billing question")
_CALL_OUTCOMES = (
    "connected",
    "connected",
    "connected",
    "no_answer",
    "left_voicemail",
    "busy",
    "wrong_number",
)
_NOTE_SUBJECTS = ("Account note", "Call summary", "Stakeholder map updated", "Usage observation")
_TASK_SUBJECTS = (
    "Follow up on renewal",
    "Send onboarding checklist",
    "Schedule QBR",
    "Share case study",
    "Confirm billing contact",
    "Review open tickets",
)
_COMPLAINTS = (
    "Service outage last week",
    "Wrong invoice amount",
    "Slow support response",
    "Data export broken",
    "Too many unexpected price changes",
    "請求書の誤り",
)
_BODIES = (
    "Discussed current usage and goals for next quarter.",
    "Customer asked for guidance on reporting and dashboards.",
    "Walked through new features; positive reception.",
    "Reviewed seat usage and upcoming renewal timeline.",
    "Logged automatically from the inbox.",
    "お客様と今後の活用方法について話し合いました。",
)
_COMPLAINT_BODY = "The customer is unhappy and expects a fix; escalate to support lead."


# ---- generation ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """Per-account decisions made before records are emitted."""

    persona: str
    created_ms: int
    crm_sku: str
    seats: int
    addons: list[str]
    owner_key: str
    japanese: bool


class _Builder:
    def __init__(
        self,
        accounts: int,
        seed: int,
        now: datetime,
        contacts_per_account: float,
        deals_per_account: float,
        activities_per_account: float,
        line_items_per_account: float,
    ) -> None:
        self.rng = random.Random(seed)
        self.accounts = accounts
        self.seed = seed
        self.now_dt = now
        self.now = _dt_to_ms(now)
        self.contacts_per_account = contacts_per_account
        self.deals_per_account = deals_per_account
        self.activities_per_account = activities_per_account
        self.line_items_per_account = line_items_per_account
        # Shared instants (imports, workflows, bulk edits) that make many records collide to the millisecond.
        self.pool = sorted(self.now - self.rng.randrange(1, 4 * _YEAR) for _ in range(400))
        self.owners: list[SOwner] = []
        self.companies: list[SCompany] = []
        self.contacts: list[SContact] = []
        self.deals: list[SDeal] = []
        self.line_items: list[SLineItem] = []
        self.activities: list[SActivity] = []
        self.planted: dict[str, str] = {}
        self._n_contacts = 0
        self._n_deals = 0
        self._n_items = 0
        self._n_acts = 0

    # -- helpers

    def snap(self, t: int, probability: float) -> int:
        """Sometimes move ``t`` forward onto a shared instant so records collide to the millisecond."""
        if self.rng.random() >= probability:
            return t
        j = bisect_left(self.pool, t)
        if j < len(self.pool) and self.pool[j] - t < 45 * _DAY and self.pool[j] <= self.now:
            return self.pool[j]
        return t

    def count(self, mean: float, minimum: int = 0) -> int:
        """A count around ``mean`` (uniform 0.5x-1.5x), at least ``minimum``."""
        if mean <= 0:
            return minimum
        return max(minimum, round(mean * self.rng.uniform(0.5, 1.5)))

    def person(self) -> tuple[str, str]:
        return self.rng.choice(_FIRST), self.rng.choice(_LAST)

    # -- owners

    def build_owners(self) -> None:
        n = max(3, self.accounts // 40 + 2)
        for i in range(n):
            first, last = self.person()
            slug = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
            self.owners.append(
                SOwner(
                    key=f"owner-{i + 1:04d}",
                    email=f"{slug}{i + 1}@sandbox-sales.example.com",
                    first_name=first,
                    last_name=last,
                )
            )

    # -- companies

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
            (a, ra), (b, rb) = self.rng.choice(_JP_A), self.rng.choice(_JP_B)
            name = f"株式会社{a}{b}" if self.rng.random() < 0.6 else f"{a}{b}株式会社"
            return name, f"{ra}-{rb}-{i}.example.jp", True
        if r < 0.10:
            name, slug = self.rng.choice(_QUOTED_NAMES)
            return name, f"{slug}-{i}.example.com", False
        a, b = self.rng.choice(_NAME_A), self.rng.choice(_NAME_B)
        name = f"{a} {b}"
        if self.rng.random() < 0.5:
            name = f"{name} {self.rng.choice(_CITIES)}"
        slug = "".join(ch for ch in f"{a}{b}".lower() if ch.isalnum())
        return name, f"{slug}-{i}.example.com", False

    def plan(self, persona: str) -> _Plan:
        rng = self.rng
        if persona in _UPGRADE_LIKE:
            tenure = rng.uniform(2.2, 6.0) * _YEAR
        elif persona == "new_customer":
            tenure = rng.uniform(5, 85) * _DAY
        elif persona == "cross_sell_candidate":
            tenure = rng.uniform(1.1, 5.0) * _YEAR
        elif persona == "dormant":
            tenure = rng.uniform(1.0, 5.0) * _YEAR
        elif persona == "at_risk":
            tenure = rng.uniform(0.6, 4.0) * _YEAR
        else:
            tenure = rng.uniform(0.4, 4.0) * _YEAR
        created = self.now - int(tenure)
        if persona in _UPGRADE_LIKE:
            crm = rng.choice(("CRM-STARTER", "CRM-PRO"))
        else:
            crm = rng.choices(("CRM-STARTER", "CRM-PRO", "CRM-ENT"), weights=(4, 4, 2))[0]
        seats = rng.choice((5, 10, 10, 15, 20, 20, 25, 30, 40, 50, 75, 100, 150, 200))
        addons: list[str] = []
        if persona == "cross_sell_candidate":
            lacking = rng.choice((("marketing",), ("support",), ("marketing", "support")))
            for family in ("marketing", "support"):
                if family not in lacking and rng.random() < 0.6:
                    addons.append(rng.choice(_FAMILY_SKUS[family]))
            if rng.random() < 0.3:
                addons.append("ANL-ADDON")
        else:
            for family in ("marketing", "support", "analytics"):
                if rng.random() < 0.2:
                    addons.append(rng.choice(_FAMILY_SKUS[family]))
        owner = rng.choice(self.owners).key
        return _Plan(persona, created, crm, seats, addons, owner, japanese=False)

    def build_companies(self) -> None:
        labels = self.personas()
        for i, persona in enumerate(labels):
            key = f"co-{i + 1:06d}"
            name, domain, japanese = self.company_name(i + 1)
            plan = self.plan(persona)
            plan.japanese = japanese
            self.planted[key] = persona
            self.emit_company(key, name, domain, plan)
            contact_keys = self.emit_contacts(key, domain, plan)
            self.emit_deals(key, name, plan)
            self.emit_activities(key, contact_keys, plan)

    def emit_company(self, key: str, name: str, domain: str, plan: _Plan) -> None:
        rng, persona = self.rng, plan.persona
        ratio: float | None
        nps: int | None
        onboarding: str | None = "live"
        if persona in _UPGRADE_LIKE:
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
            low = math.ceil(0.9 * plan.seats) if persona in _UPGRADE_LIKE else 0
            seats_active = min(plan.seats, max(low, round(plan.seats * ratio)))
        updated = self.snap(rng.randint(plan.created_ms, self.now - _HOUR), 0.15)
        lifecycle = "evangelist" if persona in _UPGRADE_LIKE and rng.random() < 0.3 else "customer"
        self.companies.append(
            SCompany(
                key=key,
                name=name,
                domain=domain,
                industry=rng.choice(_INDUSTRIES),
                lifecycle_stage=lifecycle,
                owner_key=plan.owner_key,
                created_at=_ms_to_dt(plan.created_ms),
                updated_at=_ms_to_dt(updated),
                seats_purchased=seats_purchased,
                seats_active=seats_active,
                nps_score=nps,
                onboarding_stage=onboarding,
                do_not_contact=persona == "do_not_contact",
                persona=persona,
            )
        )

    def emit_contacts(self, company_key: str, domain: str, plan: _Plan) -> list[str]:
        rng = self.rng
        keys: list[str] = []
        for _ in range(self.count(self.contacts_per_account, minimum=1)):
            self._n_contacts += 1
            key = f"ct-{self._n_contacts:07d}"
            first, last = self.person()
            created = max(0, plan.created_ms - rng.randint(0, 60) * _DAY + rng.randint(0, _DAY))
            created = min(created, self.now - _HOUR)
            updated = self.snap(rng.randint(created, self.now - _HOUR), 0.1)
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
                    created_at=_ms_to_dt(created),
                    updated_at=_ms_to_dt(updated),
                )
            )
            keys.append(key)
        return keys

    # -- deals and line items

    def emit_deal(
        self,
        company_key: str,
        plan: _Plan,
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
            updated = self.now - rng.randint(_HOUR, 10 * _DAY)
        else:
            updated = min(self.now - _HOUR, close + rng.randint(0, 5 * _DAY))
        updated = self.snap(max(updated, created), 0.1)
        amount = 0.0
        for sku, qty, period in items:
            product = _BY_SKU[sku]
            months = 12 if period == "P12M" else 1
            amount += product.unit_price * qty * months
            self._n_items += 1
            self.line_items.append(
                SLineItem(
                    key=f"li-{self._n_items:07d}",
                    deal_key=key,
                    product_key=product.key,
                    quantity=qty,
                    unit_price=product.unit_price,
                    billing_period=period,
                    updated_at=_ms_to_dt(updated),
                )
            )
        self.deals.append(
            SDeal(
                key=key,
                company_key=company_key,
                owner_key=owner,
                name=name,
                stage=stage,
                amount=round(amount, 2),
                close_date=_ms_to_dt(close),
                created_at=_ms_to_dt(created),
                updated_at=_ms_to_dt(updated),
            )
        )

    def subscription(self, plan: _Plan) -> list[tuple[str, int, str]]:
        items = [(plan.crm_sku, plan.seats, "P12M")]
        items += [(sku, 1, self.rng.choice(("P12M", "P1M"))) for sku in plan.addons]
        # Bigger line-item budgets add extra add-on seats/licences on the same subscription.
        extra = self.line_items_per_account / max(self.deals_per_account, 0.5) - 1.5
        while extra > 0 and self.rng.random() < min(extra, 0.9):
            items.append((self.rng.choice(("ANL-ADDON", "SUP-STD")), self.rng.randint(1, 3), "P1M"))
            extra -= 1
        return items

    def emit_deals(self, company_key: str, company_name: str, plan: _Plan) -> None:
        rng, persona = self.rng, plan.persona
        crm_name = _BY_SKU[plan.crm_sku].name
        close = min(self.now - _DAY, plan.created_ms + rng.randint(7, 45) * _DAY)
        created = plan.created_ms
        items = self.subscription(plan)
        self.emit_deal(company_key, plan, f"{company_name} - {crm_name}", "closedwon", close, created, items)
        years = (self.now - close) // _YEAR
        # Contracts run one to three years; upgrade-like accounts have at least two renewals on record.
        term = 1 if persona in _UPGRADE_LIKE else rng.choice((1, 2, 3))
        renewals = min(years // term, 3)
        for k in range(1, renewals + 1):
            r_close = close + k * term * _YEAR
            year = _ms_to_dt(r_close).year
            self.emit_deal(
                company_key,
                plan,
                f"{company_name} - Renewal {year}",
                "closedwon",
                r_close,
                r_close - rng.randint(20, 60) * _DAY,
                items,
            )
        base = 1 + renewals
        if persona == "covered":
            upgrade = UPGRADE_PATH[plan.crm_sku]
            o_created = self.now - rng.randint(5, 40) * _DAY
            self.emit_deal(
                company_key,
                plan,
                f"{company_name} - Upgrade to {_BY_SKU[upgrade].name}",
                rng.choice(OPEN_STAGES),
                self.now + rng.randint(10, 60) * _DAY,
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

    def emit_extra_deal(self, company_key: str, company_name: str, plan: _Plan) -> None:
        rng, persona = self.rng, plan.persona
        owned_families = {_BY_SKU[s].family for s in plan.addons}
        others = [
            s
            for s in ("MKT-BASIC", "MKT-PRO", "SUP-STD", "SUP-PREM", "ANL-ADDON")
            if _BY_SKU[s].family not in owned_families
        ]
        if persona in ("average", "at_risk") and rng.random() < 0.4 and others:
            sku = rng.choice(others)
            stage = rng.choice(OPEN_STAGES)
            created = self.now - rng.randint(3, 60) * _DAY
            self.emit_deal(
                company_key,
                plan,
                f"{company_name} - {_BY_SKU[sku].name}",
                stage,
                self.now + rng.randint(5, 90) * _DAY,
                created,
                [(sku, 1, "P12M")],
            )
            return
        # A proposal that was lost long ago: history, not a live opportunity.
        pool = [s for s in plan.addons] or ["ANL-ADDON"]
        sku = rng.choice(pool) if persona != "cross_sell_candidate" else "ANL-ADDON"
        latest = self.now - (400 if persona != "dormant" else 200) * _DAY
        earliest = min(plan.created_ms, latest - _DAY)
        close = rng.randint(earliest, latest)
        self.emit_deal(
            company_key,
            plan,
            f"{company_name} - {_BY_SKU[sku].name} (lost)",
            "closedlost",
            close,
            close - rng.randint(10, 60) * _DAY,
            [(sku, 1, "P12M")],
        )

    # -- activities

    def emit_activity(
        self,
        company_key: str,
        contacts: list[str],
        plan: _Plan,
        kind: str,
        occurred: int,
        *,
        direction: str | None = None,
        outcome: str | None = None,
        subject: str | None = None,
        body: str | None = None,
    ) -> None:
        rng = self.rng
        self._n_acts += 1
        jp = plan.japanese and rng.random() < 0.5
        status: str | None = None
        if kind == "call":
            direction = direction or rng.choice(("inbound", "outbound", "outbound"))
            outcome = outcome or rng.choice(_CALL_OUTCOMES)
            subject = subject or rng.choice(_CALL_TITLES)
        elif kind == "meeting":
            if outcome is None:
                outcome = (
                    "scheduled"
                    if occurred > self.now
                    else rng.choice(
                        ("completed", "completed", "completed", "completed", "no_show", "canceled")
                    )
                )
            subject = subject or rng.choice(_JP_MEETINGS if jp else _EN_MEETINGS)
        elif kind == "email":
            direction = direction or rng.choice(("inbound", "outbound", "outbound"))
            if subject is None:
                if direction == "inbound":
                    subject = rng.choice(_JP_INBOUND_EMAILS if jp else _EN_INBOUND_EMAILS)
                else:
                    subject = rng.choice(_EN_OUTBOUND_EMAILS)
        elif kind == "note":
            subject = subject or rng.choice(_NOTE_SUBJECTS)
        else:
            subject = subject or rng.choice(_TASK_SUBJECTS)
            status = "COMPLETED" if occurred < self.now - 7 * _DAY or rng.random() < 0.3 else "NOT_STARTED"
        if occurred > self.now:
            updated = self.now - rng.randint(_HOUR, 5 * _DAY)
        else:
            updated = min(self.now, occurred + rng.randint(0, 2 * _HOUR))
            updated = self.snap(updated, 0.03)
        contact = rng.choice(contacts) if contacts and kind != "note" else None
        owner = plan.owner_key if rng.random() < 0.9 else rng.choice(self.owners).key
        self.activities.append(
            SActivity(
                key=f"act-{self._n_acts:07d}",
                kind=kind,
                company_key=company_key,
                contact_key=contact,
                owner_key=owner,
                occurred_at=_ms_to_dt(occurred),
                direction=direction,
                outcome=outcome,
                subject=subject,
                body=body or rng.choice(_BODIES),
                status=status,
                updated_at=_ms_to_dt(updated),
            )
        )

    def emit_activities(self, company_key: str, contacts: list[str], plan: _Plan) -> None:
        rng, persona, now = self.rng, plan.persona, self.now
        emitted = 0

        def recent(days: int) -> int:
            low = max(plan.created_ms, now - days * _DAY)
            return rng.randint(low, now - _HOUR)

        if persona in _UPGRADE_LIKE or persona == "cross_sell_candidate":
            lo = 4 if persona in _UPGRADE_LIKE else 3
            for _ in range(rng.randint(lo, lo + 3)):
                self.emit_activity(company_key, contacts, plan, "meeting", recent(88), outcome="completed")
                emitted += 1
            for _ in range(rng.randint(lo, lo + 4)):
                self.emit_activity(company_key, contacts, plan, "email", recent(88), direction="inbound")
                emitted += 1
        elif persona == "at_risk":
            for _ in range(rng.randint(1, 2)):
                kind = rng.choice(("call", "email"))
                topic = rng.choice(_COMPLAINTS)
                self.emit_activity(
                    company_key,
                    contacts,
                    plan,
                    kind,
                    recent(28),
                    direction="inbound",
                    outcome="complaint",
                    subject=f"{COMPLAINT_PREFIX} {topic}",
                    body=_COMPLAINT_BODY,
                )
                emitted += 1
            for _ in range(rng.randint(0, 4)):
                self.emit_activity(company_key, contacts, plan, "meeting", recent(88), outcome="completed")
                emitted += 1
        elif persona == "new_customer":
            for _ in range(rng.randint(2, 4)):
                self.emit_activity(
                    company_key,
                    contacts,
                    plan,
                    "meeting",
                    recent(90),
                    outcome="completed",
                    subject="Onboarding kickoff" if emitted == 0 else None,
                )
                emitted += 1
            for _ in range(rng.randint(2, 5)):
                self.emit_activity(company_key, contacts, plan, "email", recent(90), direction="inbound")
                emitted += 1

        total = self.count(self.activities_per_account, minimum=emitted + 1)
        if persona == "new_customer":
            total = min(total, emitted + max(1, round(self.activities_per_account * 0.4)))
        upper = now - 181 * _DAY if persona == "dormant" else now - _HOUR
        lower = max(plan.created_ms, now - 3 * _YEAR)
        lower = min(lower, upper - _DAY)
        kinds = (
            "email",
            "email",
            "email",
            "email",
            "call",
            "call",
            "call",
            "note",
            "note",
            "meeting",
            "meeting",
            "task",
            "task",
            "task",
        )
        for _ in range(total - emitted):
            kind = rng.choice(kinds)
            occurred = rng.randint(lower, upper)
            if kind == "meeting" and persona not in ("dormant", "at_risk") and rng.random() < 0.05:
                occurred = now + rng.randint(_DAY, 14 * _DAY)  # an upcoming meeting
            if kind == "task" and persona != "dormant" and rng.random() < 0.1:
                occurred = now + rng.randint(_DAY, 21 * _DAY)  # a task due soon
            self.emit_activity(company_key, contacts, plan, kind, occurred)

    def build(self) -> Scenario:
        self.build_owners()
        self.build_companies()
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
