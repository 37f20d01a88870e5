"""Deal and line-item features: wins, losses, revenue and open amounts, and what the account owns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm_upsell_connector.features.spec import CatalogueItem, FeaturesConfig
from crm_upsell_connector.features.values import (
    DEAL_NUMBERS,
    Interner,
    aware,
    count_if,
    days_since,
    keyword_match,
    max_if,
    sum_if,
)
from crm_upsell_connector.store import schema


def home_amount(home_currency: str | None) -> sa.ColumnElement[float]:
    """A deal's amount in the org's home currency, 0.0 where it cannot be known.

    The CRM's own home-currency amount (``amount_home``) when it gave one; else ``amount`` if the
    deal is in the home currency or states no currency; a deal in another currency without a home
    amount counts as nothing rather than as a wrong number (2,000,000 JPY is not 2,000,000 USD).
    With no known home currency, only deals without a stated currency fall back to ``amount``.
    """
    d = schema.deals
    same: sa.ColumnElement[bool] = d.c.currency.is_(None)
    if home_currency:
        same = sa.or_(same, sa.func.upper(d.c.currency) == home_currency.upper())
    fallback = sa.case((same, d.c.amount), else_=sa.null())
    return sa.func.coalesce(d.c.amount_home, fallback, 0.0)


def deal_aggregates(
    conn: sa.Connection,
    connection: str,
    now: datetime,
    config: FeaturesConfig,
    intern: Interner,
    home_currency: str | None = None,
) -> dict[str, tuple[Any, ...]]:
    """Per account: the ``DEAL_NUMBERS`` then days since the last and the first won deal.

    Amounts are in ``home_currency`` (see :func:`home_amount`).
    """
    d = schema.deals
    won = d.c.is_won == sa.true()
    closed_at = sa.func.coalesce(d.c.close_date, d.c.updated_at)
    cut = now - timedelta(days=365)
    amount = home_amount(home_currency)
    is_open = d.c.is_closed == sa.false()
    query = (
        sa.select(
            d.c.account_id,
            count_if(won).label("deals_won"),
            count_if(sa.and_(won, closed_at >= cut)).label("deals_won_365d"),
            count_if(sa.and_(d.c.is_closed == sa.true(), ~won, closed_at >= cut)).label("deals_lost_365d"),
            count_if(sa.and_(won, keyword_match(d.c.name, config.renewal_keywords))).label("renewals_won"),
            sum_if(sa.and_(won, closed_at >= cut), amount).label("revenue_won_365d"),
            sum_if(won, amount).label("revenue_won_total"),
            max_if(won, closed_at).label("last_won"),
            sa.func.min(sa.case((won, closed_at), else_=sa.null())).label("first_won"),
            count_if(is_open).label("open_deals"),
            sum_if(is_open, amount).label("open_deal_amount"),
        )
        .where(d.c.connection == connection, d.c.account_id.is_not(None))
        .group_by(d.c.account_id)
    )
    num = intern.number
    return {
        row.account_id: (
            *(num(getattr(row, name)) for name in DEAL_NUMBERS),
            days_since(now, row.last_won),
            days_since(now, row.first_won),
        )
        for row in conn.execute(query)
    }


@dataclass(slots=True)
class _Holdings:
    owned: dict[str, tuple[datetime, int, str, float]] = field(default_factory=dict)  # family -> ...
    owned_skus: set[str] = field(default_factory=set)
    open_skus: set[str] | None = None  # most accounts have no open deal: no set for them
    open_families: set[str] | None = None


def line_item_holdings(
    conn: sa.Connection, connection: str, catalogue: Mapping[str, CatalogueItem], intern: Interner
) -> dict[str, tuple[Any, ...]]:
    """Per account: owned SKUs, families, family -> SKU / tier / quantity, count, open SKUs, families."""
    li, d, p = schema.line_items, schema.deals, schema.products
    sku = sa.func.coalesce(li.c.sku, p.c.sku).label("sku")
    # A line of an order or invoice has no deal: it names its account and counts as owned, dated by
    # its own stamp. A product bought through a deal and an order is one owned SKU (a set, below).
    owner_account = sa.func.coalesce(d.c.account_id, li.c.account_id)
    is_won = sa.func.coalesce(d.c.is_won, sa.true())
    is_closed = sa.func.coalesce(d.c.is_closed, sa.true())
    deal_date = sa.func.coalesce(d.c.close_date, d.c.updated_at, li.c.updated_at).label("deal_date")
    query = (
        sa.select(
            owner_account.label("account_id"),
            sku,
            is_won.label("is_won"),
            deal_date,
            sa.func.sum(li.c.quantity).label("quantity"),
        )
        .select_from(
            li.outerjoin(d, sa.and_(d.c.connection == li.c.connection, d.c.id == li.c.deal_id)).outerjoin(
                p, sa.and_(p.c.connection == li.c.connection, p.c.id == li.c.product_id)
            )
        )
        .where(
            li.c.connection == connection,
            owner_account.is_not(None),
            # a line whose deal is not (yet) in the store counts only where it names its account
            sa.or_(d.c.id.is_not(None), li.c.deal_id.is_(None)),
            sa.or_(is_won == sa.true(), is_closed == sa.false()),
        )
        .group_by(owner_account, sku, is_won, is_closed, deal_date)
        .order_by(owner_account)
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
    candidate = (aware(row.deal_date) or _EPOCH, item.tier, row.sku, float(row.quantity or 0.0))
    current = h.owned.get(item.family)
    if current is None or candidate[:2] > current[:2]:
        h.owned[item.family] = candidate
    elif candidate[:3] == current[:3]:
        h.owned[item.family] = (*current[:3], current[3] + candidate[3])


def _finish(h: _Holdings, intern: Interner) -> tuple[Any, ...]:
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
