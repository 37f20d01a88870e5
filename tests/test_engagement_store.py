"""Engagement beside contacts in a page: stored apart, counter snapshots kept on change and pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from crm_upsell_connector.models import Contact, ContactEngagement, Stream
from crm_upsell_connector.store import schema
from crm_upsell_connector.store.engagement import prune_snapshots
from crm_upsell_connector.store.repo import upsert_records

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    schema.metadata.create_all(engine)
    return engine


def _page(opens: float, at: datetime) -> list[Contact | ContactEngagement]:
    return [
        ContactEngagement(id="c1", updated_at=at, email_opens=opens, email_clicks=1.0, unsubscribed=False),
        Contact(id="c1", updated_at=at, account_id="a1"),
    ]


def _snapshots(engine: sa.Engine) -> list[tuple[datetime, float]]:
    s = schema.engagement_snapshots
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.c.taken_at, s.c.email_opens).order_by(s.c.taken_at)).all()
    return [(t.replace(tzinfo=UTC), o) for t, o in rows]


def test_engagement_is_stored_apart_and_snapshots_follow_changes_only() -> None:
    engine = _engine()
    first, second = NOW - timedelta(days=40), NOW - timedelta(days=2)
    with engine.begin() as conn:
        assert upsert_records(conn, "m", Stream.CONTACTS, _page(5.0, first)) == 1  # contacts counted
        upsert_records(conn, "m", Stream.CONTACTS, _page(5.0, first))  # the boundary read again
        upsert_records(conn, "m", Stream.CONTACTS, _page(9.0, second))
        upsert_records(conn, "m", Stream.CONTACTS, _page(9.0, second + timedelta(hours=1)))  # no change
    assert _snapshots(engine) == [(first, 5.0), (second, 9.0)]
    with engine.connect() as conn:
        stored = conn.execute(sa.select(schema.contact_engagement.c.email_opens)).scalars().all()
        contacts = conn.execute(sa.select(sa.func.count()).select_from(schema.contacts)).scalar_one()
    assert stored == [9.0] and contacts == 1


def test_snapshots_older_than_the_longest_window_keep_only_its_baseline() -> None:
    engine = _engine()
    s = schema.engagement_snapshots
    stamps = [NOW - timedelta(days=d) for d in (800, 500, 400, 10)]
    with engine.begin() as conn:
        conn.execute(
            s.insert(),
            [
                {"connection": "m", "contact_id": "c1", "taken_at": t, "email_opens": float(i)}
                for i, t in enumerate(stamps)
            ],
        )
        assert prune_snapshots(conn, "m", ["c1"], now=NOW) == 2
    assert [t for t, _ in _snapshots(engine)] == stamps[2:]
