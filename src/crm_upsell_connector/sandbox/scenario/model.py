"""The scenario's CRM-neutral record shapes, its product catalogue, currencies and time helpers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)
COMPLAINT_PREFIX = "Complaint:"

#: the org's home (corporate) currency in every sandbox; amounts in it are what features add up
HOME_CURRENCY = "USD"
#: units of each currency per one unit of the home currency (how Salesforce ``CurrencyType`` and
#: Zoho's ``exchange_rate`` express a rate); 2,000,000 JPY is 13,400 USD at this rate
EXCHANGE_RATES: dict[str, float] = {"USD": 1.0, "JPY": 2_000_000 / 13_400, "EUR": 0.92}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
HOUR = 3_600_000
DAY = 86_400_000
YEAR = 365 * DAY

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

UPGRADE_LIKE = frozenset({"upgrade_candidate", "covered", "do_not_contact"})
OPEN_STAGES: tuple[str, ...] = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
)


def ms_to_dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def dt_to_ms(value: datetime) -> int:
    return (value - EPOCH) // _MS


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
    #: the currency this account is billed in (ISO 4217); most are billed in ``HOME_CURRENCY``
    currency: str


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
    """A deal; ``amount`` is in ``currency``, ``amount_home`` the same in the home currency."""

    key: str
    company_key: str
    owner_key: str
    name: str
    stage: str
    amount: float
    close_date: datetime
    created_at: datetime
    updated_at: datetime
    currency: str
    amount_home: float
    #: ``exchange_rate`` units of ``currency`` per home unit, as the CRM records it on the deal
    exchange_rate: float


@dataclass(frozen=True, slots=True)
class SLineItem:
    """A product on a deal; ``unit_price`` is in ``currency`` (the deal's), ``unit_price_home`` at home."""

    key: str
    deal_key: str
    product_key: str
    quantity: int
    unit_price: float
    billing_period: str
    updated_at: datetime
    currency: str
    unit_price_home: float


@dataclass(frozen=True, slots=True)
class SActivity:
    """A call, meeting, e-mail, note or task.

    ``body`` is the whole plain text (paragraphs separated by a blank line, line breaks kept);
    ``body_html`` is the same text as the rich-text HTML a CRM keeps for notes and e-mails
    (``<p>`` paragraphs, ``<br>`` line breaks, entities escaped).
    """

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
    body_html: str


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything a sandbox serves, in CRM-neutral shapes; ``planted`` maps company key -> persona.

    ``merges`` lists (survivor key, duplicate key) pairs: the same company entered twice, each with
    history of its own, for a sandbox's merge operation. ``home_currency`` and ``exchange_rates``
    (units per home unit) are the org's currency settings.
    """

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
    merges: list[tuple[str, str]] = field(default_factory=list)
    home_currency: str = HOME_CURRENCY
    exchange_rates: dict[str, float] = field(default_factory=lambda: dict(EXCHANGE_RATES))

    def persona_counts(self) -> dict[str, int]:
        """How many accounts carry each persona."""
        return dict(Counter(self.planted.values()))

    def product(self, key: str) -> SProduct:
        for product in self.products:
            if product.key == key:
                return product
        raise KeyError(key)

    def currencies(self) -> list[str]:
        """The currencies deals use, home currency first."""
        used = {d.currency for d in self.deals} - {self.home_currency}
        return [self.home_currency, *sorted(used)]


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
BY_SKU = {p.sku: p for p in PRODUCTS}
FAMILY_SKUS: dict[str, tuple[str, ...]] = {
    "marketing": ("MKT-BASIC", "MKT-PRO"),
    "support": ("SUP-STD", "SUP-PREM"),
    "analytics": ("ANL-ADDON",),
}
UPGRADE_PATH: dict[str, str] = {"CRM-STARTER": "CRM-PRO", "CRM-PRO": "CRM-ENT"}
