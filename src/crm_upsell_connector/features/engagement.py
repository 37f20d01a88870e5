"""Marketing engagement features per account, rolled up from the account's contacts by SQL.

Inputs (see ``store.engagement``): ``contact_engagement`` (one row per contact: HubSpot's lifetime
e-mail counters and last open/click/visit dates, every CRM's e-mail opt-out), ``engagement_snapshots``
(the lifetime counters each time a sync saw them change) and ``campaign_members`` (Salesforce
``CampaignMember``, Zoho campaign members).

How each figure is derived (``explain`` shows these descriptions beside the values):

- ``email_opens_total`` / ``email_clicks_total``: the sum of the contacts' lifetime counters.
- ``email_opens_{30,90,365}d`` (and clicks): CRMs that keep only lifetime counts (HubSpot) give no
  per-window figure, so per contact: 0 when its last open is older than the window; else the rise of
  its lifetime count since the newest snapshot taken at or before the window's start, or, where the
  store's history does not reach back that far, since its first snapshot; and at least 1 (the last
  open itself). Until the history spans the window the figure is a lower bound
  (``engagement_history_days`` says how far back it reaches). No extra CRM call is ever made.
- ``engaged_contacts_share_90d``: contacts that opened, clicked, visited the site or responded to a
  campaign in the last 90 days, over all the account's contacts.
- ``days_since_last_engagement``: since the newest open, click, visit or campaign response.
- ``unsubscribed_share``: contacts opted out of marketing e-mail over the contacts whose opt-out the
  CRM states.
- ``campaign_responses_90d``: campaign memberships of the account's contacts that responded in the
  last 90 days.

A figure the org's CRM does not keep at all is missing (``None``) for every account, never zero:
an org with no campaign members has no ``campaign_responses_90d``, one without e-mail counters no
opens or clicks. Where the org keeps it, an account without any is a real zero.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm_upsell_connector.features.spec import WINDOWS
from crm_upsell_connector.features.values import Interner, count_if, days_since
from crm_upsell_connector.store import schema

ENGAGEMENT_NAMES: tuple[str, ...] = (
    "email_opens_total",
    "email_clicks_total",
    *(f"email_opens_{w}d" for w in WINDOWS),
    *(f"email_clicks_{w}d" for w in WINDOWS),
    "site_visits_total",
    "engaged_contacts_share_90d",
    "days_since_last_engagement",
    "unsubscribed_share",
    "campaign_responses_90d",
    "engagement_history_days",
)


def _snapshot_at(connection: str, cut: datetime | None, name: str) -> sa.Subquery:
    """Per contact, the newest snapshot at or before ``cut`` (or, with no cut, the first one)."""
    s = schema.engagement_snapshots
    pick = sa.func.max(s.c.taken_at) if cut is not None else sa.func.min(s.c.taken_at)
    where = [s.c.connection == connection] + ([s.c.taken_at <= cut] if cut is not None else [])
    at = sa.select(s.c.contact_id, pick.label("at")).where(*where).group_by(s.c.contact_id).subquery()
    return (
        sa.select(s.c.contact_id, s.c.taken_at, s.c.email_opens, s.c.email_clicks)
        .join(at, sa.and_(s.c.contact_id == at.c.contact_id, s.c.taken_at == at.c.at))
        .where(s.c.connection == connection)
        .subquery(name)
    )


def _availability(conn: sa.Connection, connection: str) -> tuple[bool, bool, bool, bool]:
    """Whether the org keeps e-mail counters, site visits, campaign members, any engagement at all."""
    e = schema.contact_engagement
    cm = schema.campaign_members
    counters, visits, rows = conn.execute(
        sa.select(
            sa.func.count(e.c.email_opens), sa.func.count(e.c.site_visits), sa.func.count(e.c.id)
        ).where(e.c.connection == connection)
    ).one()
    members = conn.execute(
        sa.select(sa.func.count()).select_from(
            sa.select(cm.c.id).where(cm.c.connection == connection).limit(1).subquery()
        )
    ).scalar_one()
    return bool(counters), bool(visits), bool(members), bool(rows) or bool(members)


def engagement_aggregates(
    conn: sa.Connection, connection: str, now: datetime, intern: Interner
) -> tuple[dict[str, tuple[Any, ...]], tuple[Any, ...]]:
    """Per account id the values of ``ENGAGEMENT_NAMES``, and the values for an account without any."""
    c = schema.contacts
    e = schema.contact_engagement
    cm = schema.campaign_members
    cut = {w: now - timedelta(days=w) for w in WINDOWS}
    has_counters, has_visits, has_members, has_any = _availability(conn, connection)

    def recent(column: sa.ColumnElement[Any], window: int) -> sa.ColumnElement[bool]:
        return sa.and_(column >= cut[window], column <= now)

    responses = (
        sa.select(
            cm.c.contact_id,
            count_if(sa.and_(cm.c.responded.is_(True), recent(cm.c.responded_at, 90))).label("r90"),
            sa.func.max(sa.case((cm.c.responded.is_(True), cm.c.responded_at), else_=sa.null())).label(
                "last"
            ),
        )
        .where(cm.c.connection == connection, cm.c.contact_id.is_not(None))
        .group_by(cm.c.contact_id)
        .subquery("responses")
    )
    first = _snapshot_at(connection, None, "first")
    bases = {w: _snapshot_at(connection, cut[w], f"base{w}") for w in WINDOWS}

    def windowed(counter: str, last: sa.ColumnElement[Any], window: int) -> sa.ColumnElement[Any]:
        current = e.c[counter]
        base = sa.func.coalesce(bases[window].c[counter], first.c[counter], current)
        rise = current - base
        return sa.func.sum(sa.case((recent(last, window), sa.case((rise > 1, rise), else_=1.0)), else_=0.0))

    engaged = sa.or_(
        recent(e.c.last_open_at, 90),
        recent(e.c.last_click_at, 90),
        recent(e.c.last_visit_at, 90),
        responses.c.r90 > 0,
    )
    query = (
        sa.select(
            c.c.account_id,
            sa.func.count(c.c.id),
            sa.func.sum(e.c.email_opens),
            sa.func.sum(e.c.email_clicks),
            *(windowed("email_opens", e.c.last_open_at, w) for w in WINDOWS),
            *(windowed("email_clicks", e.c.last_click_at, w) for w in WINDOWS),
            sa.func.sum(e.c.site_visits),
            count_if(engaged),
            count_if(e.c.unsubscribed.is_(True)),
            sa.func.count(e.c.unsubscribed),
            sa.func.max(e.c.last_open_at),
            sa.func.max(e.c.last_click_at),
            sa.func.max(e.c.last_visit_at),
            sa.func.max(responses.c.last),
            sa.func.sum(responses.c.r90),
            sa.func.min(first.c.taken_at),
        )
        .select_from(
            c.outerjoin(e, sa.and_(e.c.connection == c.c.connection, e.c.id == c.c.id))
            .outerjoin(responses, responses.c.contact_id == c.c.id)
            .outerjoin(first, first.c.contact_id == c.c.id)
            .outerjoin(bases[30], bases[30].c.contact_id == c.c.id)
            .outerjoin(bases[90], bases[90].c.contact_id == c.c.id)
            .outerjoin(bases[365], bases[365].c.contact_id == c.c.id)
        )
        .where(c.c.connection == connection, c.c.account_id.is_not(None))
        .group_by(c.c.account_id)
    )
    num = intern.number
    zero_counts = 0.0 if has_counters else None
    empty: tuple[Any, ...] = (
        *(zero_counts for _ in range(2 + 2 * len(WINDOWS))),
        0.0 if has_visits else None,
        None,
        None,
        None,
        0.0 if has_members else None,
        None,
    )
    result: dict[str, tuple[Any, ...]] = {}
    for row in conn.execute(query):
        account, contacts, opens, clicks = row[0], row[1], row[2], row[3]
        n = len(WINDOWS)
        windows = row[4 : 4 + 2 * n]
        visits, engaged_n, unsub, unsub_known = row[4 + 2 * n : 8 + 2 * n]
        last_dates = [t for t in row[8 + 2 * n : 12 + 2 * n] if t is not None]
        responded_90, first_snapshot = row[12 + 2 * n :]
        counts: tuple[Any, ...] = (
            (num(opens), num(clicks), *(num(x) for x in windows)) if has_counters else empty[: 2 + 2 * n]
        )
        result[account] = (
            *counts,
            num(visits) if has_visits else None,
            num(engaged_n) / contacts if contacts and has_any else None,
            days_since(now, max(last_dates)) if last_dates else None,
            num(unsub) / unsub_known if unsub_known else None,
            num(responded_90) if has_members else None,
            days_since(now, first_snapshot) if first_snapshot is not None else None,
        )
    return result, empty
