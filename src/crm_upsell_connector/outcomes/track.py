"""Tracking: for each recorded proposal, what the synced CRM data says happened to it.

- task created: the outbox confirmed the task (or the CRM shows a task with its key);
- task done: the CRM shows that task completed; its time is the task's last modification as the
  CRM reports it, the nearest to a completion time that every connector reads;
- deal opened: the account's first deal created within the attribution window after the proposal
  (``proposed_at`` <= created < ``window_ends_at``) whose line items hold the proposed product or
  another product of its family; a deal counts for one proposal only (the earliest);
- won / lost: the deal closed won or lost (still open: neither);
- revenue: a won deal's amount in the home currency (``Deal.amount_home``, else ``amount`` where
  the deal's currency is the home currency or not given).

Held-out and not-sent proposals are followed the same way (deals only), so the control group's
conversion is measured exactly like the treated group's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from crm_upsell_connector.store.schema import activities, deals, line_items, outbox, products, proposals


@dataclass(frozen=True, slots=True)
class Outcome:
    """One proposal and what happened to it (times in UTC; ``revenue_home`` only when won)."""

    id: str
    account_id: str
    proposed_at: datetime
    window_ends_at: datetime
    rule: str | None
    kind: str | None
    product_sku: str | None
    product_family: str | None
    segment: str | None
    owner_id: str | None
    score: float | None
    uplift: float | None
    status: str  # task, not_sent, held_out
    not_sent_reason: str | None
    task_key: str | None
    task_created_at: datetime | None = None
    task_done_at: datetime | None = None
    deal_id: str | None = None
    deal_opened_at: datetime | None = None
    deal_closed_at: datetime | None = None
    deal_won: bool | None = None
    revenue_home: float | None = None

    @property
    def treated(self) -> bool:
        return self.status != "held_out"


_BASE = (
    "id",
    "account_id",
    "proposed_at",
    "window_ends_at",
    "rule",
    "kind",
    "product_sku",
    "product_family",
    "segment",
    "owner_id",
    "score",
    "uplift",
    "status",
    "not_sent_reason",
    "task_key",
)
_RESULT = (
    "task_created_at",
    "task_done_at",
    "deal_id",
    "deal_opened_at",
    "deal_closed_at",
    "deal_won",
    "revenue_home",
)


@dataclass(slots=True)
class _Deal:
    id: str
    opened: datetime
    closed: datetime | None
    is_closed: bool
    is_won: bool
    revenue: float | None
    skus: set[str]
    families: set[str]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def load_outcomes(
    conn: Connection,
    connection: str,
    families: Mapping[str, str],
    *,
    home_currency: str | None = None,
    since: datetime | None = None,
) -> list[Outcome]:
    """Every proposal (made at or after ``since``) with its outcome computed from the store now.

    ``families`` maps catalogue SKUs to their family (a deal's product outside the catalogue
    matches only by SKU). Reads only; ``refresh_outcomes`` also stores the result.
    """
    query = sa.select(*(proposals.c[name] for name in _BASE)).where(proposals.c.connection == connection)
    if since is not None:
        query = query.where(proposals.c.proposed_at >= since)
    base = [Outcome(**row._mapping) for row in conn.execute(query.order_by(proposals.c.proposed_at))]
    if not base:
        return []
    created, done = _tasks(conn, connection)
    first = min(o.proposed_at for o in base)
    wanted = {o.account_id for o in base if o.product_sku is not None or o.product_family is not None}
    by_account = _deals(conn, connection, first, wanted, families, (home_currency or "").upper())
    claimed: set[str] = set()
    result: list[Outcome] = []
    for o in base:
        changes: dict[str, Any] = {}
        if o.task_key is not None:
            changes["task_created_at"] = created.get(o.task_key)
            changes["task_done_at"] = done.get(o.task_key)
        deal = _match(o, by_account.get(o.account_id, ()), claimed)
        if deal is not None:
            claimed.add(deal.id)
            changes.update(
                deal_id=deal.id,
                deal_opened_at=deal.opened,
                deal_closed_at=deal.closed if deal.is_closed else None,
                deal_won=deal.is_won if deal.is_closed else None,
                revenue_home=deal.revenue if deal.is_closed and deal.is_won else None,
            )
        result.append(replace(o, **changes) if changes else o)
    return result


def refresh_outcomes(
    conn: Connection,
    connection: str,
    families: Mapping[str, str],
    now: datetime,
    *,
    home_currency: str | None = None,
) -> int:
    """Compute every proposal's outcome and store it on its row; returns the rows updated."""
    outcomes = load_outcomes(conn, connection, families, home_currency=home_currency)
    current = {
        row.id: tuple(row[1:])
        for row in conn.execute(
            sa.select(proposals.c.id, *(proposals.c[name] for name in _RESULT)).where(
                proposals.c.connection == connection
            )
        )
    }
    changed = []
    for o in outcomes:
        values = asdict(o)
        fresh = tuple(values[name] for name in _RESULT)
        if tuple(_aware(v) if isinstance(v, datetime) else v for v in current.get(o.id, ())) != fresh:
            changed.append({"b_id": o.id, **{name: values[name] for name in _RESULT}, "checked_at": now})
    if changed:
        statement = (
            sa.update(proposals)
            .where(proposals.c.connection == connection, proposals.c.id == sa.bindparam("b_id"))
            .values({name: sa.bindparam(name) for name in (*_RESULT, "checked_at")})
        )
        conn.execute(statement, changed)
    return len(changed)


def _tasks(conn: Connection, connection: str) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """Per task key: when the task was created, and when it was done (if it was)."""
    created: dict[str, datetime] = {}
    done: dict[str, datetime] = {}
    for ref, stamp in conn.execute(
        sa.select(outbox.c.ref, outbox.c.updated_at).where(
            outbox.c.connection == connection, outbox.c.kind == "task", outbox.c.status == "done"
        )
    ):
        created[ref] = stamp
    act = activities
    for key, status, occurred, updated in conn.execute(
        sa.select(act.c.upsell_key, act.c.status, act.c.occurred_at, act.c.updated_at).where(
            act.c.connection == connection, act.c.upsell_key > "", act.c.kind == "task"
        )
    ):
        stamps = [t for t in (occurred, updated) if t is not None]
        if key not in created and stamps:
            created[key] = min(stamps)
        if status == "done" and updated is not None:
            done[key] = updated
    return created, done


def _deals(
    conn: Connection,
    connection: str,
    since: datetime,
    accounts: set[str],
    families: Mapping[str, str],
    home: str,
) -> dict[str, list[_Deal]]:
    """Deals opened since ``since`` on ``accounts``, with the SKUs and families on their line items."""
    opened = sa.func.coalesce(deals.c.created_at, deals.c.updated_at)
    sku = sa.func.coalesce(line_items.c.sku, products.c.sku)
    query = (
        sa.select(
            deals.c.id,
            deals.c.account_id,
            opened.label("opened"),
            sa.func.coalesce(deals.c.close_date, deals.c.updated_at).label("closed"),
            deals.c.is_closed,
            deals.c.is_won,
            deals.c.amount,
            deals.c.amount_home,
            deals.c.currency,
            sku.label("sku"),
        )
        .select_from(
            deals.outerjoin(
                line_items,
                sa.and_(line_items.c.connection == deals.c.connection, line_items.c.deal_id == deals.c.id),
            ).outerjoin(
                products,
                sa.and_(
                    products.c.connection == line_items.c.connection, products.c.id == line_items.c.product_id
                ),
            )
        )
        .where(deals.c.connection == connection, deals.c.account_id.is_not(None), opened >= since)
    )
    found: dict[str, _Deal] = {}
    by_account: dict[str, list[_Deal]] = {}
    for row in _stream(conn, query):
        if row.account_id not in accounts:
            continue
        deal = found.get(row.id)
        if deal is None:
            revenue = row.amount_home
            if revenue is None and (not row.currency or not home or row.currency.upper() == home):
                revenue = row.amount
            deal = found[row.id] = _Deal(
                row.id,
                _aware(row.opened) or since,
                _aware(row.closed),
                bool(row.is_closed),
                bool(row.is_won),
                revenue,
                set(),
                set(),
            )
            by_account.setdefault(row.account_id, []).append(deal)
        if row.sku is not None:
            deal.skus.add(row.sku)
            family = families.get(row.sku)
            if family is not None:
                deal.families.add(family)
    for listed in by_account.values():
        listed.sort(key=lambda d: (d.opened, d.id))
    return by_account


def _stream(conn: Connection, query: sa.Select[Any]) -> Iterator[Any]:
    result = conn.execution_options(stream_results=True, yield_per=5000).execute(query)
    yield from result


def _match(o: Outcome, candidates: Iterable[_Deal], claimed: set[str]) -> _Deal | None:
    if o.product_sku is None and o.product_family is None:
        return None
    for deal in candidates:
        if deal.opened < o.proposed_at:
            continue
        if deal.opened >= o.window_ends_at:
            return None
        if deal.id in claimed:
            continue
        if (o.product_sku is not None and o.product_sku in deal.skus) or (
            o.product_family is not None and o.product_family in deal.families
        ):
            return deal
    return None
