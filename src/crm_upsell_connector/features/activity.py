"""Activity features: counts per window and kind, inbound, complaints and recencies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm_upsell_connector.features.spec import ACTIVITY_KINDS, WINDOWS, FeaturesConfig
from crm_upsell_connector.features.values import COUNTS, Interner, days_since, keyword_match, max_if, sum_if
from crm_upsell_connector.store import schema


def complaint_condition(words: Sequence[str]) -> sa.ColumnElement[bool]:
    """Whether an activity row is a complaint.

    An outcome of "complaint" always is. Otherwise a complaint word (case-insensitive substring)
    in the subject or the whole body of a note, call or meeting, or of an e-mail that is not our
    own outbound one (the customer's words, not ours), makes it one. Tasks are never engagement
    and are filtered out before this.
    """
    act = schema.activities
    said = sa.or_(keyword_match(act.c.subject, words), keyword_match(act.c.body, words))
    customer_words = sa.or_(act.c.kind != "email", sa.func.coalesce(act.c.direction, "") != "outbound")
    return sa.or_(
        sa.func.lower(sa.func.coalesce(act.c.outcome, "")) == "complaint",
        sa.and_(customer_words, said),
    )


def activity_aggregates(
    conn: sa.Connection, connection: str, now: datetime, config: FeaturesConfig, intern: Interner
) -> dict[str, tuple[Any, ...]]:
    """Per account: the ``COUNTS`` then days since the last complaint, activity, inbound, meeting."""
    act = schema.activities
    con = schema.contacts
    when = act.c.occurred_at
    cut = {window: now - timedelta(days=window) for window in WINDOWS}
    # Each row is classified once (window bucket, inbound, complaint); the outer query only sums
    # small integers. This halves the work SQLite does per activity compared to nested CASEs.
    bucket = sa.case((when >= cut[30], 0), (when >= cut[90], 1), (when >= cut[365], 2), else_=3)
    inbound = sa.case((sa.and_(act.c.direction == "inbound", act.c.kind.in_(("call", "email"))), 1), else_=0)
    complaint = sa.case(
        (sa.and_(when >= cut[365], complaint_condition(config.complaint_terms())), 1), else_=0
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
        sums[f"activities_{window}d"] = sum_if(recent, u.c.n)
        sums[f"inbound_{window}d"] = sum_if(sa.and_(recent, u.c.inbound == 1), u.c.n)
        for kind in ACTIVITY_KINDS:
            sums[f"{kind}s_{window}d"] = sum_if(sa.and_(recent, u.c.kind == kind), u.c.n)
    sums["complaints_30d"] = sum_if(sa.and_(u.c.b == 0, u.c.complaint == 1), u.c.n)
    sums["complaints_90d"] = sum_if(sa.and_(u.c.b <= 1, u.c.complaint == 1), u.c.n)
    out: list[sa.ColumnElement[Any]] = [
        u.c.account,
        *(sums[name] for name in COUNTS),
        max_if(u.c.complaint == 1, u.c.at),
        sa.func.max(u.c.at),
        max_if(u.c.inbound == 1, u.c.at),
        max_if(u.c.kind == "meeting", u.c.at),
    ]
    query = sa.select(*out).group_by(u.c.account)
    n = len(COUNTS)
    num = intern.number
    return {
        row[0]: (*(num(x) for x in row[1 : n + 1]), *(days_since(now, t) for t in row[n + 1 :]))
        for row in conn.execute(query)
    }
