"""The per-account feature rows: accounts, contacts and task keys joined with the activity and deal aggregates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from crm_upsell_connector.currency import resolve_home_currency
from crm_upsell_connector.features.activity import activity_aggregates
from crm_upsell_connector.features.deals import deal_aggregates, line_item_holdings
from crm_upsell_connector.features.engagement import ENGAGEMENT_NAMES, engagement_aggregates
from crm_upsell_connector.features.product_tasks import QUEUED_TASK_STATUSES, crm_task_created_at
from crm_upsell_connector.features.spec import CatalogueItem, FeaturesConfig
from crm_upsell_connector.features.values import (
    COUNTS,
    DEAL_NUMBERS,
    Interner,
    aware,
    convert_mapped,
    days_since,
)
from crm_upsell_connector.store import schema


def _account_rows(
    conn: sa.Connection, connection: str, now: datetime, config: FeaturesConfig, intern: Interner
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
            days_since(now, row[5]),
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


def _upsell_tasks(conn: sa.Connection, connection: str) -> dict[str, tuple[int, datetime | None]]:
    """Per account: open upsell tasks and when the last one was made (``upsell_key > ''`` uses the index).

    Open are the product's tasks the CRM shows not done and those this store queued in the outbox
    (pending, sent or failed) that the CRM does not show yet, each task once (by its key): a fresh
    store sees the tasks another store made, and a task on its way counts before the next sync.
    The creation time is ``crm_task_created_at`` (the earlier of the due date and the last change).
    """
    act = schema.activities
    query = sa.select(
        act.c.account_id, act.c.kind, act.c.status, act.c.upsell_key, act.c.occurred_at, act.c.updated_at
    ).where(act.c.connection == connection, act.c.upsell_key > "", act.c.account_id.is_not(None))
    open_keys: dict[str, set[str]] = {}
    shown: set[str] = set()
    last: dict[str, datetime] = {}
    for account_id, kind, status, key, occurred, updated in conn.execute(query):
        shown.add(key)
        if kind == "task" and (status or "open") != "done":
            open_keys.setdefault(account_id, set()).add(key)
        when = crm_task_created_at(occurred, updated)
        if when is not None and (account_id not in last or when > last[account_id]):
            last[account_id] = when
    out = schema.outbox
    queued = sa.select(out.c.account_id, out.c.ref).where(
        out.c.connection == connection, out.c.kind == "task", out.c.status.in_(QUEUED_TASK_STATUSES)
    )
    for account_id, key in conn.execute(queued):
        if key not in shown:
            open_keys.setdefault(account_id, set()).add(key)
    return {a: (len(open_keys.get(a, ())), last.get(a)) for a in open_keys.keys() | last.keys()}


def _last_task_keys(conn: sa.Connection, connection: str) -> dict[str, datetime]:
    t = schema.task_keys
    query = (
        sa.select(t.c.account_id, sa.func.max(t.c.created_at))
        .where(t.c.connection == connection)
        .group_by(t.c.account_id)
    )
    return {row[0]: row[1] for row in conn.execute(query) if row[1] is not None}


def compute_features(
    conn: sa.Connection,
    connection: str,
    now: datetime,
    config: FeaturesConfig,
    catalogue: Iterable[CatalogueItem],
    home_currency: str | None = None,
) -> Iterator[dict[str, Any]]:
    """One feature dict per account of ``connection``, in account id order, as of ``now``.

    Amounts are in the org's home currency: ``home_currency`` if given (the ``[tasks] currency``
    override), else the one the CRM reported at the last sync (``currency.home_currency``).

    The SQL runs before this returns (the connection may be closed afterwards); the dicts are then
    built one at a time, so a large base never sits in memory as dicts. The keys are exactly
    ``feature_schema(config)`` minus the derived features, which the rule engine adds. Equal
    lists, maps and whole numbers are shared between rows: treat the rows as read-only.
    """
    if now.tzinfo is None:
        raise ValueError("now must carry a timezone")
    now = now.astimezone(UTC)
    by_sku = {item.sku: item for item in catalogue}
    intern = Interner()
    accounts = _account_rows(conn, connection, now, config, intern)
    contacts = _contact_counts(conn, connection)
    activities = activity_aggregates(conn, connection, now, config, intern)
    tasks = _upsell_tasks(conn, connection)
    home = resolve_home_currency(conn, connection, home_currency)
    deals = deal_aggregates(conn, connection, now, config, intern, home)
    holdings = line_item_holdings(conn, connection, by_sku, intern)
    task_keys = _last_task_keys(conn, connection)
    marketing = engagement_aggregates(conn, connection, now, intern)
    return _rows(
        now, config, intern, accounts, contacts, activities, tasks, deals, holdings, task_keys, marketing
    )


_NO_ACTIVITY: tuple[Any, ...] = (*(0.0 for _ in COUNTS), None, None, None, None)
_NO_DEALS: tuple[Any, ...] = (*(0.0 for _ in DEAL_NUMBERS), None, None)
_NO_HOLDINGS: tuple[Any, ...] = ([], [], {}, {}, {}, 0.0, [], [])
_ACTIVITY_NAMES = (
    *COUNTS,
    "days_since_last_complaint",
    "days_since_last_activity",
    "days_since_last_inbound",
    "days_since_last_meeting",
)
_DEAL_NAMES = (*DEAL_NUMBERS, "days_since_last_purchase", "days_since_first_purchase")
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
    intern: Interner,
    accounts: list[tuple[Any, ...]],
    contacts: dict[str, int],
    activities: dict[str, tuple[Any, ...]],
    tasks: dict[str, tuple[int, datetime | None]],
    deals: dict[str, tuple[Any, ...]],
    holdings: dict[str, tuple[Any, ...]],
    task_keys: dict[str, datetime],
    marketing: tuple[dict[str, tuple[Any, ...]], tuple[Any, ...]],
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
        proposals = [t for t in (last_task, aware(task_keys.get(account_id))) if t is not None]
        f["days_since_last_proposal"] = days_since(now, max(proposals)) if proposals else None
        f.update(zip(_DEAL_NAMES, deals.pop(account_id, _NO_DEALS), strict=True))
        f.update(zip(_HOLDING_NAMES, holdings.pop(account_id, _NO_HOLDINGS), strict=True))
        f.update(zip(ENGAGEMENT_NAMES, marketing[0].pop(account_id, marketing[1]), strict=True))
        f.update(zip(mapped, row[6:], strict=True))
        yield f
