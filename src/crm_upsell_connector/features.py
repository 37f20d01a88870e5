"""Per-account features computed by SQL aggregates in the store, the inputs of the rule engine.

A handful of ``GROUP BY account`` queries (accounts, contacts, deals, line items, activities, task
keys) produce one flat dict per account whose names and types are listed in the feature schema.
The work scales with the database: no per-account query, and the same SQLAlchemy Core runs on
SQLite and PostgreSQL.

Conventions every rule can rely on:

- numbers are Python floats (CEL does not mix int and double);
- counts and sums over a synced table are real zeros when nothing matched (``meetings_90d == 0.0``);
- recencies, tenure and mapped account fields are ``None`` when the data is missing, never zero;
- activities dated after ``now`` (scheduled meetings, due dates) are ignored, so that a run "as of"
  a date is reproducible; tasks are not engagement and are left out of activity counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_upsell_connector.store import schema
from crm_upsell_connector.values import parse_bool, parse_number

FeatureType = Literal["number", "string", "bool", "list", "map"]
MappedType = Literal["number", "string", "bool", "date"]

ACTIVITY_KINDS: tuple[str, ...] = ("call", "meeting", "email", "note")
WINDOWS: tuple[int, ...] = (30, 90, 365)
DEFAULT_COMPLAINT_KEYWORDS: tuple[str, ...] = ("complaint", "cancel", "クレーム", "解約")
DEFAULT_RENEWAL_KEYWORDS: tuple[str, ...] = ("renewal", "renew", "更新")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its CEL-facing type and what it means, in a line."""

    type: FeatureType
    description: str


class MappedField(BaseModel):
    """A CRM account field mapped in as a feature (its raw string is converted to ``type``)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, description="the field's name in the canonical account's fields")
    type: MappedType = "string"
    description: str = ""


class DerivedFeature(BaseModel):
    """A feature computed by the rule engine from other features with a CEL expression."""

    model_config = ConfigDict(extra="forbid")

    expr: str = Field(min_length=1)
    type: Literal["number", "string", "bool"] = "number"
    description: str = ""


class FeaturesConfig(BaseModel):
    """The ``[features]`` section: mapped account fields, derived features and keyword lists."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, MappedField] = Field(default_factory=dict)
    derived: dict[str, DerivedFeature] = Field(default_factory=dict)
    complaint_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_COMPLAINT_KEYWORDS))
    renewal_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_RENEWAL_KEYWORDS))

    @field_validator("fields", "derived")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"feature name {name!r} must be a plain identifier (letters, digits, _)")
            if name in FEATURE_SCHEMA:
                raise ValueError(f"feature name {name!r} is already a built-in feature")
        return value

    def crm_fields(self) -> tuple[str, ...]:
        """The CRM account fields the connectors must read, each once, in config order."""
        return tuple(dict.fromkeys(m.field for m in self.fields.values()))


class CatalogueItem(Protocol):
    """What features need from a catalogue product (``rules.config.ProductConfig`` fits)."""

    @property
    def sku(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def tier(self) -> int: ...


def _build_base_schema() -> dict[str, FeatureSpec]:
    s: dict[str, FeatureSpec] = {
        "account_id": FeatureSpec("string", "the account's CRM id"),
        "account_name": FeatureSpec("string", "the account's name"),
        "owner_id": FeatureSpec("string", "the account owner's CRM id"),
        "lifecycle_stage": FeatureSpec("string", "the account's lifecycle stage in the CRM"),
        "industry": FeatureSpec("string", "the account's industry"),
        "tenure_days": FeatureSpec("number", "days since the account was created"),
        "contacts": FeatureSpec("number", "number of contacts on the account"),
        "days_since_last_activity": FeatureSpec("number", "days since the last call, meeting, email or note"),
        "days_since_last_inbound": FeatureSpec("number", "days since the customer last called or wrote"),
        "days_since_last_meeting": FeatureSpec("number", "days since the last meeting"),
    }
    for window in WINDOWS:
        s[f"activities_{window}d"] = FeatureSpec(
            "number", f"calls, meetings, emails and notes in the last {window} days"
        )
        s[f"inbound_{window}d"] = FeatureSpec("number", f"inbound calls and emails in the last {window} days")
        for kind in ACTIVITY_KINDS:
            s[f"{kind}s_{window}d"] = FeatureSpec("number", f"{kind}s in the last {window} days")
    s.update(
        {
            "complaints_30d": FeatureSpec("number", "complaints in the last 30 days"),
            "complaints_90d": FeatureSpec("number", "complaints in the last 90 days"),
            "days_since_last_complaint": FeatureSpec(
                "number", "days since the last complaint, within a year"
            ),
            "deals_won": FeatureSpec("number", "deals won, ever"),
            "deals_won_365d": FeatureSpec("number", "deals won in the last 365 days"),
            "deals_lost_365d": FeatureSpec("number", "deals lost in the last 365 days"),
            "renewals_won": FeatureSpec("number", "won deals whose name says renewal"),
            "revenue_won_365d": FeatureSpec("number", "revenue of deals won in the last 365 days"),
            "revenue_won_total": FeatureSpec("number", "revenue of all deals won"),
            "days_since_last_purchase": FeatureSpec("number", "days since the last deal was won"),
            "days_since_first_purchase": FeatureSpec("number", "days since the first deal was won"),
            "open_deals": FeatureSpec("number", "open deals"),
            "open_deal_amount": FeatureSpec("number", "total amount of open deals"),
            "open_deal_skus": FeatureSpec("list", "SKUs on open deals"),
            "open_deal_families": FeatureSpec("list", "catalogue families on open deals"),
            "owned_skus": FeatureSpec("list", "SKUs the account owns (on its latest won deals)"),
            "owned_families": FeatureSpec("list", "catalogue families the account owns"),
            "owned_products": FeatureSpec("map", "family -> the SKU owned in that family"),
            "owned_tiers": FeatureSpec("map", "family -> the tier owned in that family"),
            "owned_quantity": FeatureSpec("map", "family -> quantity (seats, units) owned"),
            "products_owned": FeatureSpec("number", "number of distinct catalogue products owned"),
            "open_upsell_tasks": FeatureSpec("number", "open tasks this product created"),
            "days_since_last_proposal": FeatureSpec("number", "days since this product last proposed"),
        }
    )
    return s


# The built-in features; ``feature_schema(config)`` adds the mapped and derived ones.
FEATURE_SCHEMA: dict[str, FeatureSpec] = _build_base_schema()


def feature_schema(config: FeaturesConfig) -> dict[str, FeatureSpec]:
    """Every feature name a rule can use: built-in, mapped account fields, then derived ones."""
    result = dict(FEATURE_SCHEMA)
    for name, mapped in config.fields.items():
        kind: FeatureType = "number" if mapped.type == "date" else mapped.type
        what = mapped.description or (
            f"days since the CRM field {mapped.field!r}"
            if mapped.type == "date"
            else f"the CRM field {mapped.field!r}"
        )
        result[name] = FeatureSpec(kind, what)
    for name, derived in config.derived.items():
        result[name] = FeatureSpec(derived.type, derived.description or f"computed: {derived.expr}")
    return result


# ---- conversions ------------------------------------------------------------------------------


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # SQLite hands back naive datetimes; the store writes UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _days(now: datetime, then: datetime | None) -> float | None:
    then = _aware(then)
    if then is None:
        return None
    # Whole days: the facts quoted in reasons (and written to the CRM) stay the same all day long.
    return float(math.floor((now - then).total_seconds() / 86400.0))


def _to_date_days(raw: Any, now: datetime) -> float | None:
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _days(now, value)


def convert_mapped(raw: Any, type_: MappedType, now: datetime) -> Any:
    """A raw CRM field value as the feature type; unparseable or empty is ``None``."""
    if type_ == "number":
        return parse_number(raw)
    if type_ == "bool":
        return parse_bool(raw)
    if type_ == "date":
        return _to_date_days(raw, now)
    if raw is None:
        return None
    text = str(raw)
    return text if text.strip() else None


_COUNTS = tuple(
    [name for window in WINDOWS for name in (f"activities_{window}d", f"inbound_{window}d")]
    + [f"{kind}s_{window}d" for window in WINDOWS for kind in ACTIVITY_KINDS]
    + ["complaints_30d", "complaints_90d"]
)
_DEAL_NUMBERS = (
    "deals_won",
    "deals_won_365d",
    "deals_lost_365d",
    "renewals_won",
    "revenue_won_365d",
    "revenue_won_total",
    "open_deals",
    "open_deal_amount",
)


class _Interner:
    """Shares equal values between accounts: 100,000 feature rows of small counts and the same few
    product maps would otherwise hold millions of identical objects."""

    def __init__(self) -> None:
        self._numbers: dict[float, float] = {}
        self._values: dict[Any, Any] = {}

    def number(self, value: Any) -> float:
        number = float(value) if value is not None else 0.0
        return (
            self._numbers.setdefault(number, number) if number.is_integer() and abs(number) < 1e6 else number
        )

    def list(self, values: list[str]) -> list[str]:
        return self._values.setdefault(("l", *values), values)  # type: ignore[no-any-return]

    def map(self, values: dict[str, Any]) -> dict[str, Any]:
        return self._values.setdefault(("m", *values.items()), values)  # type: ignore[no-any-return]

    def value(self, value: Any) -> Any:
        """A string (owner id, stage...) or number shared with its equals; ``None`` stays ``None``."""
        if isinstance(value, float):
            return self.number(value)
        if isinstance(value, str):
            return self._values.setdefault(("s", value), value)
        return value


# ---- SQL --------------------------------------------------------------------------------------


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _sum_if(condition: sa.ColumnElement[bool], value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, value), else_=0.0))


def _max_if(condition: sa.ColumnElement[bool], value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.max(sa.case((condition, value), else_=sa.null()))


def _keyword_match(column: sa.ColumnElement[str], keywords: Sequence[str]) -> sa.ColumnElement[bool]:
    parts = [sa.func.lower(column).contains(k.lower(), autoescape=True) for k in keywords if k]
    return sa.or_(*parts) if parts else sa.false()


def _account_rows(
    conn: sa.Connection, connection: str, now: datetime, config: FeaturesConfig, intern: _Interner
) -> list[tuple[Any, ...]]:
    """(id, name, owner, stage, industry, tenure days, *mapped values) per account, by id."""
    a = schema.accounts
    mapped = [a.c.fields[m.field].as_string().label(f"f_{i}") for i, m in enumerate(config.fields.values())]
    query = (
        sa.select(a.c.id, a.c.name, a.c.owner_id, a.c.lifecycle_stage, a.c.industry, a.c.created_at, *mapped)
        .where(a.c.connection == connection)
        .order_by(a.c.id)
    )
    types = [m.type for m in config.fields.values()]
    v = intern.value
    return [
        (
            row[0],
            row[1] or "",
            v(row[2]),
            v(row[3]),
            v(row[4]),
            _days(now, row[5]),
            *(v(convert_mapped(raw, t, now)) for raw, t in zip(row[6:], types, strict=True)),
        )
        for row in conn.execute(query)
    ]


def _contact_counts(conn: sa.Connection, connection: str) -> dict[str, int]:
    c = schema.contacts
    query = (
        sa.select(c.c.account_id, sa.func.count())
        .where(c.c.connection == connection, c.c.account_id.is_not(None))
        .group_by(c.c.account_id)
    )
    return {row[0]: int(row[1]) for row in conn.execute(query)}


def _activity_aggregates(
    conn: sa.Connection, connection: str, now: datetime, config: FeaturesConfig, intern: _Interner
) -> dict[str, tuple[Any, ...]]:
    """Per account: the ``_COUNTS`` then days since the last complaint, activity, inbound, meeting."""
    act = schema.activities
    con = schema.contacts
    when = act.c.occurred_at
    cut = {window: now - timedelta(days=window) for window in WINDOWS}
    # Each row is classified once (window bucket, inbound, complaint); the outer query only sums
    # small integers. This halves the work SQLite does per activity compared to nested CASEs.
    bucket = sa.case((when >= cut[30], 0), (when >= cut[90], 1), (when >= cut[365], 2), else_=3)
    inbound = sa.case((sa.and_(act.c.direction == "inbound", act.c.kind.in_(("call", "email"))), 1), else_=0)
    complaint = sa.case(
        (
            sa.and_(
                when >= cut[365],
                sa.or_(
                    sa.func.lower(sa.func.coalesce(act.c.outcome, "")) == "complaint",
                    sa.and_(
                        sa.func.coalesce(act.c.direction, "") != "outbound",
                        _keyword_match(act.c.subject, config.complaint_keywords),
                    ),
                ),
            ),
            1,
        ),
        else_=0,
    )
    engagement = sa.and_(act.c.connection == connection, act.c.kind != "task", when.is_not(None), when <= now)
    columns = (
        act.c.kind,
        inbound.label("inbound"),
        complaint.label("complaint"),
        bucket.label("b"),
        when.label("at"),
    )
    on_account = sa.select(act.c.account_id.label("account"), *columns).where(
        engagement, act.c.account_id.is_not(None)
    )
    # An activity logged on a contact only still belongs to the contact's account.
    on_contact = (
        sa.select(con.c.account_id.label("account"), *columns)
        .select_from(
            act.join(con, sa.and_(con.c.connection == act.c.connection, con.c.id == act.c.contact_id))
        )
        .where(engagement, act.c.account_id.is_(None), con.c.account_id.is_not(None))
    )
    rows = sa.union_all(on_account, on_contact).subquery()
    # Grouping first (about a dozen groups per account) leaves the pivot below far fewer rows.
    u = (
        sa.select(
            rows.c.account,
            rows.c.kind,
            rows.c.inbound,
            rows.c.complaint,
            rows.c.b,
            sa.func.count().label("n"),
            sa.func.max(rows.c.at).label("at"),
        )
        .group_by(rows.c.account, rows.c.kind, rows.c.inbound, rows.c.complaint, rows.c.b)
        .subquery()
    )
    sums: dict[str, sa.ColumnElement[Any]] = {}
    for index, window in enumerate(WINDOWS):
        recent = u.c.b <= index
        sums[f"activities_{window}d"] = _sum_if(recent, u.c.n)
        sums[f"inbound_{window}d"] = _sum_if(sa.and_(recent, u.c.inbound == 1), u.c.n)
        for kind in ACTIVITY_KINDS:
            sums[f"{kind}s_{window}d"] = _sum_if(sa.and_(recent, u.c.kind == kind), u.c.n)
    sums["complaints_30d"] = _sum_if(sa.and_(u.c.b == 0, u.c.complaint == 1), u.c.n)
    sums["complaints_90d"] = _sum_if(sa.and_(u.c.b <= 1, u.c.complaint == 1), u.c.n)
    out: list[sa.ColumnElement[Any]] = [
        u.c.account,
        *(sums[name] for name in _COUNTS),
        _max_if(u.c.complaint == 1, u.c.at),
        sa.func.max(u.c.at),
        _max_if(u.c.inbound == 1, u.c.at),
        _max_if(u.c.kind == "meeting", u.c.at),
    ]
    query = sa.select(*out).group_by(u.c.account)
    n = len(_COUNTS)
    num = intern.number
    return {
        row[0]: (*(num(x) for x in row[1 : n + 1]), *(_days(now, t) for t in row[n + 1 :]))
        for row in conn.execute(query)
    }


def _upsell_tasks(conn: sa.Connection, connection: str) -> dict[str, tuple[int, datetime | None]]:
    """Per account: open upsell tasks and when the last one was made (``upsell_key > ''`` uses the index).

    A task's own stamp is its due date (HubSpot ``hs_timestamp``, Salesforce ``ActivityDate``), which
    lies after its creation; the earlier of it and the last modification is the best creation time
    the CRM gives back for every connector.
    """
    act = schema.activities
    query = sa.select(act.c.account_id, act.c.kind, act.c.status, act.c.occurred_at, act.c.updated_at).where(
        act.c.connection == connection, act.c.upsell_key > "", act.c.account_id.is_not(None)
    )
    result: dict[str, tuple[int, datetime | None]] = {}
    for account_id, kind, status, occurred, updated in conn.execute(query):
        count, last = result.get(account_id, (0, None))
        if kind == "task" and (status or "open") != "done":
            count += 1
        stamps = [t for t in (_aware(occurred), _aware(updated)) if t is not None]
        when = min(stamps) if stamps else None
        if when is not None and (last is None or when > last):
            last = when
        result[account_id] = (count, last)
    return result


def _last_task_keys(conn: sa.Connection, connection: str) -> dict[str, datetime]:
    t = schema.task_keys
    query = (
        sa.select(t.c.account_id, sa.func.max(t.c.created_at))
        .where(t.c.connection == connection)
        .group_by(t.c.account_id)
    )
    return {row[0]: row[1] for row in conn.execute(query) if row[1] is not None}


def _deal_aggregates(
    conn: sa.Connection, connection: str, now: datetime, config: FeaturesConfig, intern: _Interner
) -> dict[str, tuple[Any, ...]]:
    """Per account: the ``_DEAL_NUMBERS`` then days since the last and the first won deal."""
    d = schema.deals
    won = d.c.is_won == sa.true()
    closed_at = sa.func.coalesce(d.c.close_date, d.c.updated_at)
    cut = now - timedelta(days=365)
    amount = sa.func.coalesce(d.c.amount, 0.0)
    is_open = d.c.is_closed == sa.false()
    query = (
        sa.select(
            d.c.account_id,
            _count_if(won).label("deals_won"),
            _count_if(sa.and_(won, closed_at >= cut)).label("deals_won_365d"),
            _count_if(sa.and_(d.c.is_closed == sa.true(), ~won, closed_at >= cut)).label("deals_lost_365d"),
            _count_if(sa.and_(won, _keyword_match(d.c.name, config.renewal_keywords))).label("renewals_won"),
            _sum_if(sa.and_(won, closed_at >= cut), amount).label("revenue_won_365d"),
            _sum_if(won, amount).label("revenue_won_total"),
            _max_if(won, closed_at).label("last_won"),
            sa.func.min(sa.case((won, closed_at), else_=sa.null())).label("first_won"),
            _count_if(is_open).label("open_deals"),
            _sum_if(is_open, amount).label("open_deal_amount"),
        )
        .where(d.c.connection == connection, d.c.account_id.is_not(None))
        .group_by(d.c.account_id)
    )
    num = intern.number
    return {
        row.account_id: (
            *(num(getattr(row, name)) for name in _DEAL_NUMBERS),
            _days(now, row.last_won),
            _days(now, row.first_won),
        )
        for row in conn.execute(query)
    }


@dataclass(slots=True)
class _Holdings:
    owned: dict[str, tuple[datetime, int, str, float]] = field(default_factory=dict)  # family -> ...
    owned_skus: set[str] = field(default_factory=set)
    open_skus: set[str] | None = None  # most accounts have no open deal: no set for them
    open_families: set[str] | None = None


def _line_item_holdings(
    conn: sa.Connection, connection: str, catalogue: Mapping[str, CatalogueItem], intern: _Interner
) -> dict[str, tuple[Any, ...]]:
    """Per account: owned SKUs, families, family -> SKU / tier / quantity, count, open SKUs, families."""
    li, d, p = schema.line_items, schema.deals, schema.products
    sku = sa.func.coalesce(li.c.sku, p.c.sku).label("sku")
    deal_date = sa.func.coalesce(d.c.close_date, d.c.updated_at).label("deal_date")
    query = (
        sa.select(d.c.account_id, sku, d.c.is_won, deal_date, sa.func.sum(li.c.quantity).label("quantity"))
        .select_from(
            li.join(d, sa.and_(d.c.connection == li.c.connection, d.c.id == li.c.deal_id)).outerjoin(
                p, sa.and_(p.c.connection == li.c.connection, p.c.id == li.c.product_id)
            )
        )
        .where(
            li.c.connection == connection,
            d.c.account_id.is_not(None),
            sa.or_(d.c.is_won == sa.true(), d.c.is_closed == sa.false()),
        )
        .group_by(d.c.account_id, sku, d.c.is_won, d.c.is_closed, deal_date)
        .order_by(d.c.account_id)
    )
    holdings: dict[str, tuple[Any, ...]] = {}
    account: str | None = None
    h = _Holdings()
    for row in conn.execute(query):
        if row.account_id != account:
            if account is not None:
                holdings[account] = _finish(h, intern)
            account, h = row.account_id, _Holdings()
        if row.sku is not None:
            _add(h, row, catalogue.get(row.sku))
    if account is not None:
        holdings[account] = _finish(h, intern)
    return holdings


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _add(h: _Holdings, row: Any, item: CatalogueItem | None) -> None:
    if not row.is_won:
        h.open_skus = (h.open_skus or set()) | {row.sku}
        if item is not None:
            h.open_families = (h.open_families or set()) | {item.family}
        return
    h.owned_skus.add(row.sku)
    if item is None:
        return
    # The latest won deal in a family is the current subscription; on the same day, the top tier.
    candidate = (_aware(row.deal_date) or _EPOCH, item.tier, row.sku, float(row.quantity or 0.0))
    current = h.owned.get(item.family)
    if current is None or candidate[:2] > current[:2]:
        h.owned[item.family] = candidate
    elif candidate[:3] == current[:3]:
        h.owned[item.family] = (*current[:3], current[3] + candidate[3])


def _finish(h: _Holdings, intern: _Interner) -> tuple[Any, ...]:
    owned = sorted(h.owned.items())
    num = intern.number
    return (
        intern.list(sorted(h.owned_skus)),
        intern.list([fam for fam, _ in owned]),
        intern.map({fam: v[2] for fam, v in owned}),
        intern.map({fam: num(v[1]) for fam, v in owned}),
        intern.map({fam: num(v[3]) for fam, v in owned}),
        num(len(owned)),
        intern.list(sorted(h.open_skus or ())),
        intern.list(sorted(h.open_families or ())),
    )


def compute_features(
    conn: sa.Connection,
    connection: str,
    now: datetime,
    config: FeaturesConfig,
    catalogue: Iterable[CatalogueItem],
) -> Iterator[dict[str, Any]]:
    """One feature dict per account of ``connection``, in account id order, as of ``now``.

    The SQL runs before this returns (the connection may be closed afterwards); the dicts are then
    built one at a time, so a large base never sits in memory as dicts. The keys are exactly
    ``feature_schema(config)`` minus the derived features, which the rule engine adds. Equal
    lists, maps and whole numbers are shared between rows: treat the rows as read-only.
    """
    if now.tzinfo is None:
        raise ValueError("now must carry a timezone")
    now = now.astimezone(UTC)
    by_sku = {item.sku: item for item in catalogue}
    intern = _Interner()
    accounts = _account_rows(conn, connection, now, config, intern)
    contacts = _contact_counts(conn, connection)
    activities = _activity_aggregates(conn, connection, now, config, intern)
    tasks = _upsell_tasks(conn, connection)
    deals = _deal_aggregates(conn, connection, now, config, intern)
    holdings = _line_item_holdings(conn, connection, by_sku, intern)
    task_keys = _last_task_keys(conn, connection)
    return _rows(now, config, intern, accounts, contacts, activities, tasks, deals, holdings, task_keys)


_NO_ACTIVITY: tuple[Any, ...] = (*(0.0 for _ in _COUNTS), None, None, None, None)
_NO_DEALS: tuple[Any, ...] = (*(0.0 for _ in _DEAL_NUMBERS), None, None)
_NO_HOLDINGS: tuple[Any, ...] = ([], [], {}, {}, {}, 0.0, [], [])
_ACTIVITY_NAMES = (
    *_COUNTS,
    "days_since_last_complaint",
    "days_since_last_activity",
    "days_since_last_inbound",
    "days_since_last_meeting",
)
_DEAL_NAMES = (*_DEAL_NUMBERS, "days_since_last_purchase", "days_since_first_purchase")
_HOLDING_NAMES = (
    "owned_skus",
    "owned_families",
    "owned_products",
    "owned_tiers",
    "owned_quantity",
    "products_owned",
    "open_deal_skus",
    "open_deal_families",
)


def _rows(
    now: datetime,
    config: FeaturesConfig,
    intern: _Interner,
    accounts: list[tuple[Any, ...]],
    contacts: dict[str, int],
    activities: dict[str, tuple[Any, ...]],
    tasks: dict[str, tuple[int, datetime | None]],
    deals: dict[str, tuple[Any, ...]],
    holdings: dict[str, tuple[Any, ...]],
    task_keys: dict[str, datetime],
) -> Iterator[dict[str, Any]]:
    num = intern.number
    mapped = tuple(config.fields)
    accounts.reverse()  # popped from the end: each account's data is freed as soon as it is used
    while accounts:
        row = accounts.pop()
        account_id: str = row[0]
        f: dict[str, Any] = {
            "account_id": account_id,
            "account_name": row[1],
            "owner_id": row[2],
            "lifecycle_stage": row[3],
            "industry": row[4],
            "tenure_days": row[5],
            "contacts": num(contacts.pop(account_id, 0)),
        }
        f.update(zip(_ACTIVITY_NAMES, activities.pop(account_id, _NO_ACTIVITY), strict=True))
        open_tasks, last_task = tasks.pop(account_id, (0, None))
        f["open_upsell_tasks"] = num(open_tasks)
        proposals = [t for t in (last_task, _aware(task_keys.get(account_id))) if t is not None]
        f["days_since_last_proposal"] = _days(now, max(proposals)) if proposals else None
        f.update(zip(_DEAL_NAMES, deals.pop(account_id, _NO_DEALS), strict=True))
        f.update(zip(_HOLDING_NAMES, holdings.pop(account_id, _NO_HOLDINGS), strict=True))
        f.update(zip(mapped, row[6:], strict=True))
        yield f
