"""Canonical records: the one shape every connector reads into and writes from.

Every record keeps its CRM id and its ``updated_at``; anything CRM-specific goes into ``extra``.
Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Stream(StrEnum):
    """The canonical streams; each has a store table of its own."""

    ACCOUNTS = "accounts"
    CONTACTS = "contacts"
    DEALS = "deals"
    LINE_ITEMS = "line_items"
    PRODUCTS = "products"
    OWNERS = "owners"
    ACTIVITIES = "activities"
    CONTACT_ENGAGEMENT = "contact_engagement"
    CAMPAIGN_MEMBERS = "campaign_members"


#: marketing streams a CRM may not keep (HubSpot has no campaign members; engagement may come inside
#: the contacts stream's pages rather than as a stream of its own)
OPTIONAL_STREAMS = frozenset({Stream.CONTACT_ENGAGEMENT, Stream.CAMPAIGN_MEMBERS})


class ActivityKind(StrEnum):
    CALL = "call"
    MEETING = "meeting"
    EMAIL = "email"
    NOTE = "note"
    TASK = "task"


class Record(BaseModel):
    """Base of every canonical record."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stream: ClassVar[Stream]

    id: str = Field(min_length=1, max_length=255)
    updated_at: datetime
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("updated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("updated_at must carry a timezone")
        return value


class Account(Record):
    stream = Stream.ACCOUNTS
    name: str = ""
    owner_id: str | None = None
    domain: str | None = None
    industry: str | None = None
    lifecycle_stage: str | None = None
    created_at: datetime | None = None
    # Account fields the configuration maps in (seats, usage, NPS, onboarding stage...), raw as the CRM holds them.
    fields: dict[str, str | None] = Field(default_factory=dict)
    # The values of this product's own fields as the CRM shows them now (what plan diffs against).
    product_fields: dict[str, str | None] = Field(default_factory=dict)


class Contact(Record):
    stream = Stream.CONTACTS
    account_id: str | None = None
    email: str | None = None
    name: str = ""
    lifecycle_stage: str | None = None
    created_at: datetime | None = None


class Deal(Record):
    stream = Stream.DEALS
    account_id: str | None = None
    owner_id: str | None = None
    name: str = ""
    stage: str | None = None
    is_closed: bool = False
    is_won: bool = False
    #: the amount as the CRM keeps it, in ``currency`` (ISO 4217 code)
    amount: float | None = None
    currency: str | None = None
    #: the amount in the org's home (corporate) currency; equals ``amount`` in a single-currency org
    amount_home: float | None = None
    close_date: datetime | None = None
    created_at: datetime | None = None


class LineItem(Record):
    """A product on a deal; on a won deal, something the account owns. A line of an order or invoice
    (no deal) names its account in ``account_id`` instead, and counts as owned."""

    stream = Stream.LINE_ITEMS
    deal_id: str | None = None
    #: the account a line without a deal belongs to (a sales order's or invoice's ``Account_Name``)
    account_id: str | None = None
    product_id: str | None = None
    sku: str | None = None
    name: str = ""
    quantity: float = 1.0
    unit_price: float | None = None
    amount: float | None = None
    #: ``amount`` in the org's home (corporate) currency
    amount_home: float | None = None
    billing_period: str | None = None


class Product(Record):
    stream = Stream.PRODUCTS
    sku: str | None = None
    name: str = ""
    unit_price: float | None = None


class Owner(Record):
    stream = Stream.OWNERS
    email: str | None = None
    name: str = ""
    active: bool = True


class Activity(Record):
    stream = Stream.ACTIVITIES
    kind: ActivityKind
    account_id: str | None = None
    contact_id: str | None = None
    owner_id: str | None = None
    occurred_at: datetime | None = None
    direction: Literal["inbound", "outbound"] | None = None
    outcome: str | None = None
    subject: str = ""
    #: the whole body as plain text (rich text turned into text by ``text.html_to_text``), bounded
    body: str = ""
    status: str | None = None  # tasks: "open" or "done"
    upsell_key: str | None = None  # set on the tasks this product created


class ContactEngagement(Record):
    """A contact's marketing engagement as the CRM keeps it (``id`` is the contact's id).

    Counters are lifetime totals where the CRM keeps them (HubSpot), ``None`` where it keeps none;
    ``unsubscribed`` is the contact's opt-out of marketing e-mail. Connectors that read engagement
    emit one of these beside each contact in the contacts stream's pages (see ``features.engagement``).
    """

    stream = Stream.CONTACT_ENGAGEMENT
    email_opens: float | None = None
    email_clicks: float | None = None
    email_bounces: float | None = None
    last_open_at: datetime | None = None
    last_click_at: datetime | None = None
    site_visits: float | None = None
    last_visit_at: datetime | None = None
    unsubscribed: bool | None = None


class CampaignMember(Record):
    """A contact's membership of a marketing campaign, with its status and whether it responded."""

    stream = Stream.CAMPAIGN_MEMBERS
    contact_id: str | None = None
    campaign_id: str | None = None
    campaign_name: str = ""
    status: str | None = None
    responded: bool = False
    #: when the member first responded (a date at midnight UTC where the CRM keeps only a date)
    responded_at: datetime | None = None
    created_at: datetime | None = None


RECORD_TYPES: dict[Stream, type[Record]] = {
    Stream.ACCOUNTS: Account,
    Stream.CONTACTS: Contact,
    Stream.DEALS: Deal,
    Stream.LINE_ITEMS: LineItem,
    Stream.PRODUCTS: Product,
    Stream.OWNERS: Owner,
    Stream.ACTIVITIES: Activity,
    Stream.CONTACT_ENGAGEMENT: ContactEngagement,
    Stream.CAMPAIGN_MEMBERS: CampaignMember,
}


class Page(BaseModel):
    """One page read from the CRM for one connector stream.

    ``resume`` is an opaque token the connector can continue from after a crash (a full sync's
    paging position); ``deleted_ids`` lists records the CRM reports archived or deleted.
    """

    model_config = ConfigDict(frozen=True)

    stream: str
    records: list[Record] = Field(default_factory=list)
    deleted_ids: list[str] = Field(default_factory=list)
    resume: str | None = None
    # The newest modification stamp this page proves has been read completely (for the cursor).
    watermark: datetime | None = None
    #: how many records the whole read returns, where the CRM says so (HubSpot search ``total``,
    #: Salesforce ``totalSize``); for progress and estimates only, never for correctness.
    total: int | None = None
    # Reconcile by ids: when set, these are *all* the ids the CRM still has among this stream's records
    # whose id starts with ``present_prefix``; stored ones of the stream's kind with that prefix that
    # are not listed were deleted (for when the CRM's delete log cannot say what was deleted).
    present_ids: list[str] | None = None
    present_prefix: str = ""


# ---- write side -------------------------------------------------------------------------------


class FieldSpec(BaseModel):
    """A field this product writes on accounts (or tasks), created by ``setup``."""

    model_config = ConfigDict(frozen=True)

    name: str
    label: str
    type: Literal["number", "string", "text", "datetime", "enumeration"]
    description: str = ""
    object: Literal["account", "task"] = "account"
    #: for ``enumeration``: the values written (ids) and, parallel to them, the labels the CRM shows.
    options: tuple[str, ...] = ()
    #: display labels, parallel to ``options`` (what reps see in a picklist)
    option_labels: tuple[str, ...] = ()


class FieldUpdate(BaseModel):
    """Set product fields on one account; values are already rendered as the CRM stores them."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    values: dict[str, str]


class TaskDraft(BaseModel):
    """A follow-up task for the account owner; ``key`` makes it recognisable and idempotent."""

    model_config = ConfigDict(frozen=True)

    key: str
    account_id: str
    owner_id: str | None
    subject: str
    body: str
    due: date
    priority: Literal["high", "medium", "low"] = "medium"


class WriteResult(BaseModel):
    """The outcome of one record in a batch write."""

    model_config = ConfigDict(frozen=True)

    ref: str  # account id for updates, task key for creations
    ok: bool
    crm_id: str | None = None
    error: str | None = None
    retriable: bool = True
    #: the target no longer exists in the CRM (not found, merged away, deleted): apply removes the
    #: record from the store and does not count the write as a failure
    gone: bool = False


class CheckResult(BaseModel):
    """What ``check`` found: one line per item, ok or not."""

    model_config = ConfigDict(frozen=True)

    item: str
    ok: bool
    detail: str = ""
