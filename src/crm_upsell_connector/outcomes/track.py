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

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import asdict, dataclass
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
    skus: tuple[str, ...]
    families: tuple[str, ...]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _raw(column: Any, dialect: str) -> Any:
    """A timestamp column read without the per-value TypeDecorator on SQLite (see ``_when``): the
    bulk reads here touch a million stamps for a large base."""
    return sa.type_coerce(column, sa.String) if dialect == "sqlite" else column


def _when(value: Any) -> datetime | None:
    """A stamp from ``_raw``: SQLite's stored text (always UTC) or a driver's datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    return _aware(value)


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
    dialect = conn.dialect.name
    where = [proposals.c.connection == connection]
    if since is not None:
        where.append(proposals.c.proposed_at >= since)
    first = conn.execute(sa.select(sa.func.min(proposals.c.proposed_at)).where(*where)).scalar()
    if first is None:
        return []
    wanted = set(
        conn.execute(
            sa.select(proposals.c.account_id)
            .where(
                *where, sa.or_(proposals.c.product_sku.is_not(None), proposals.c.product_family.is_not(None))
            )
            .distinct()
        ).scalars()
    )
    created, done = _tasks(conn, connection)
    by_account = _deals(
        conn, connection, first.replace(microsecond=0), wanted, families, (home_currency or "").upper()
    )
    del wanted
    stamps = ("proposed_at", "window_ends_at")
    query = (
        sa.select(
            *(_raw(proposals.c[name], dialect) if name in stamps else proposals.c[name] for name in _BASE)
        )
        .where(*where)
        .order_by(proposals.c.proposed_at, proposals.c.id)
    )
    claimed: set[str] = set()
    result: list[Outcome] = []
    no_deal = (None, None, None, None, None)
    # Rule, kind, product, segment, owner and status repeat across proposals: one copy each.
    seen: dict[Any, Any] = {}
    one = seen.setdefault
    for raw in conn.execute(query):
        row: tuple[Any, ...] = (raw[0], raw[1], _when(raw[2]), _when(raw[3]), one(raw[4], raw[4]), one(raw[5], raw[5]),
               one(raw[6], raw[6]), one(raw[7], raw[7]), one(raw[8], raw[8]), one(raw[9], raw[9]), raw[10],
               raw[11], one(raw[12], raw[12]), one(raw[13], raw[13]), raw[14])  # fmt: skip
        key = row[14]
        tasks = (created.get(key), done.get(key)) if key is not None else (None, None)
        deal = _match(row, by_account.get(row[1]), claimed)
        if deal is None:
            result.append(Outcome(*row, *tasks, *no_deal))  # type: ignore[call-arg]  # row is _BASE in order
            continue
        claimed.add(deal.id)
        closed = deal.is_closed
        won = closed and deal.is_won
        result.append(
            Outcome(  # type: ignore[call-arg]  # row is _BASE in order
                *row,
                *tasks,
                deal.id,
                deal.opened,
                deal.closed if closed else None,
                deal.is_won if closed else None,
                deal.revenue if won else None,
            )
        )
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
    dialect = conn.dialect.name
    created: dict[str, datetime] = {}
    done: dict[str, datetime] = {}
    for ref, stamp in conn.execute(
        sa.select(outbox.c.ref, _raw(outbox.c.updated_at, dialect)).where(
            outbox.c.connection == connection, outbox.c.kind == "task", outbox.c.status == "done"
        )
    ):
        when = _when(stamp)
        if when is not None:
            created[ref] = when
    act = activities
    query = sa.select(
        act.c.upsell_key, act.c.status, _raw(act.c.occurred_at, dialect), _raw(act.c.updated_at, dialect)
    ).where(act.c.connection == connection, act.c.upsell_key > "", act.c.kind == "task")
    for key, status, occurred, updated in conn.execute(query):
        if key not in created:
            stamps = [t for t in (_when(occurred), _when(updated)) if t is not None]
            if stamps:
                created[key] = min(stamps)
        if status == "done" and updated is not None:
            done[key] = _when(updated)  # type: ignore[assignment]
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
    dialect = conn.dialect.name
    opened = sa.func.coalesce(deals.c.created_at, deals.c.updated_at)
    sku = sa.func.coalesce(line_items.c.sku, products.c.sku)
    query = (
        sa.select(
            deals.c.id,
            deals.c.account_id,
            _raw(opened, dialect).label("opened"),
            _raw(sa.func.coalesce(deals.c.close_date, deals.c.updated_at), dialect).label("closed"),
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
        .where(
            deals.c.connection == connection,
            deals.c.account_id.is_not(None),
            opened >= since,
            sku.is_not(None),
        )
    )
    found: dict[str, _Deal] = {}
    by_account: dict[str, list[_Deal]] = {}
    for (
        deal_id,
        account_id,
        opened_at,
        closed_at,
        is_closed,
        is_won,
        amount,
        amount_home,
        currency,
        code,
    ) in conn.execute(query):
        if account_id not in accounts:
            continue
        family = families.get(code)
        deal = found.get(deal_id)
        if deal is None:
            revenue = amount_home
            if revenue is None and (not currency or not home or currency.upper() == home):
                revenue = amount
            deal = found[deal_id] = _Deal(
                deal_id,
                _when(opened_at) or since,
                _when(closed_at),
                bool(is_closed),
                bool(is_won),
                revenue,
                (code,),
                (family,) if family is not None else (),
            )
            by_account.setdefault(account_id, []).append(deal)
            continue
        if code not in deal.skus:
            deal.skus = (*deal.skus, code)
        if family is not None and family not in deal.families:
            deal.families = (*deal.families, family)
    for listed in by_account.values():
        listed.sort(key=lambda d: (d.opened, d.id))
    return by_account


def _match(row: tuple[Any, ...], candidates: list[_Deal] | None, claimed: set[str]) -> _Deal | None:
    """The first unclaimed deal of the account opened in the proposal's window for its product or
    family (``row`` in ``_BASE`` order, ``candidates`` sorted by opening time)."""
    sku, family = row[6], row[7]
    if not candidates or (sku is None and family is None):
        return None
    # Zoho and Salesforce report creation times to the second: a deal opened in the same second
    # as the proposal may read as a little earlier.
    proposed, ends = row[2].replace(microsecond=0), row[3]
    start = bisect_left(candidates, proposed, key=lambda d: d.opened)
    for deal in candidates[start:]:
        if deal.opened >= ends:
            return None
        if deal.id in claimed:
            continue
        if (sku is not None and sku in deal.skus) or (family is not None and family in deal.families):
            return deal
    return None
