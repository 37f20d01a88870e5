"""Tracking on both stores: task created and done, the deal for the product or its family inside the
window (one deal per proposal), won revenue in the home currency, and the stored outcome columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from crm_upsell_connector.outcomes import load_outcomes, refresh_outcomes
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.schema import activities, deals, line_items, outbox, proposals

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FAMILIES = {"CRM-PRO": "crm", "CRM-ENT": "crm", "MKT-PRO": "marketing"}


def proposal(pid: str, account: str, sku: str, status: str = "task", at: datetime = T0) -> dict[str, object]:
    return {
        "connection": "main",
        "id": pid,
        "account_id": account,
        "proposed_at": at,
        "window_ends_at": at + timedelta(days=90),
        "rule": "crm_seat_pressure",
        "kind": "upgrade",
        "product_sku": sku,
        "product_family": FAMILIES[sku],
        "segment": "champion",
        "owner_id": "o1",
        "score": 88.0,
        "uplift": 7200.0,
        "status": status,
        "task_key": f"key-{pid}" if status == "task" else None,
    }


def deal(did: str, account: str, sku: str, opened: datetime, *, won: bool | None, amount: float,
         home: float | None = None, currency: str = "USD") -> tuple[dict[str, object], dict[str, object]]:  # fmt: skip
    row = {
        "connection": "main",
        "id": did,
        "account_id": account,
        "name": did,
        "is_closed": won is not None,
        "is_won": bool(won),
        "amount": amount,
        "currency": currency,
        "amount_home": home,
        "close_date": opened + timedelta(days=10),
        "created_at": opened,
        "updated_at": opened,
        "extra": {},
    }
    item = {"connection": "main", "id": f"li-{did}", "deal_id": did, "sku": sku, "name": sku, "quantity": 1.0,
            "updated_at": opened, "extra": {}}  # fmt: skip
    return row, item


def fill(engine: Engine) -> None:
    rows = [
        proposal("p1", "a1", "CRM-ENT"),
        proposal("p2", "a2", "MKT-PRO", status="held_out"),
        proposal("p3", "a3", "CRM-PRO", status="not_sent"),
        proposal("p4", "a1", "CRM-ENT", at=T0 + timedelta(days=5)),
    ]
    made = [
        # a1: a family deal (CRM-PRO for a CRM-ENT proposal) won in JPY with its home amount; p4 gets
        # the second a1 deal, never the one p1 already has.
        deal("d1", "a1", "CRM-PRO", T0 + timedelta(days=3), won=True, amount=1_000_000, home=6600.0, currency="JPY"),
        deal("d2", "a1", "CRM-ENT", T0 + timedelta(days=8), won=False, amount=9000),
        # a2 (held out) buys on its own; a3: a deal before the proposal and one after its window.
        deal("d3", "a2", "MKT-PRO", T0 + timedelta(days=30), won=True, amount=4800),
        deal("d4", "a3", "CRM-PRO", T0 - timedelta(days=1), won=True, amount=100),
        deal("d5", "a3", "CRM-PRO", T0 + timedelta(days=91), won=True, amount=100),
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(proposals.insert(), rows)
        conn.execute(deals.insert(), [d for d, _ in made])
        conn.execute(line_items.insert(), [i for _, i in made])
        conn.execute(
            outbox.insert(),
            [{"connection": "main", "kind": "task", "ref": "key-p1", "account_id": "a1", "payload": {},
              "status": "done", "attempts": 1, "created_at": T0, "updated_at": T0 + timedelta(minutes=1)}],
        )  # fmt: skip
        conn.execute(
            activities.insert(),
            [
                {"connection": "main", "id": "t1", "kind": "task", "account_id": "a1", "occurred_at": T0,
                 "subject": "s", "body": "", "status": "done", "upsell_key": "key-p1",
                 "updated_at": T0 + timedelta(days=2), "extra": {}},
                {"connection": "main", "id": "t4", "kind": "task", "account_id": "a1",
                 "occurred_at": T0 + timedelta(days=12), "subject": "s", "body": "", "status": "open",
                 "upsell_key": "key-p4", "updated_at": T0 + timedelta(days=5), "extra": {}},
            ],
        )  # fmt: skip


def test_outcomes_are_tracked_and_stored(store_url: str) -> None:
    engine = open_store(store_url)
    fill(engine)
    with engine.connect() as conn:
        found = {o.id: o for o in load_outcomes(conn, "main", FAMILIES, home_currency="USD")}
    p1, p2, p3, p4 = found["p1"], found["p2"], found["p3"], found["p4"]
    assert p1.task_created_at == T0 + timedelta(minutes=1)
    assert p1.task_done_at == T0 + timedelta(days=2)
    assert (p1.deal_id, p1.deal_won, p1.revenue_home) == ("d1", True, 6600.0)
    assert p4.task_created_at == T0 + timedelta(days=5) and p4.task_done_at is None
    assert (p4.deal_id, p4.deal_won, p4.revenue_home) == ("d2", False, None)
    assert (p2.deal_id, p2.deal_won, p2.revenue_home) == ("d3", True, 4800.0)
    assert p3.deal_id is None and p3.task_created_at is None

    with engine.begin() as conn:
        assert (
            refresh_outcomes(conn, "main", FAMILIES, T0 + timedelta(days=40), home_currency="USD") == 3
        )  # p3: nothing happened
    with engine.begin() as conn:
        assert refresh_outcomes(conn, "main", FAMILIES, T0 + timedelta(days=41), home_currency="USD") == 0
        stored = conn.execute(
            select(proposals.c.deal_id, proposals.c.revenue_home, proposals.c.task_done_at).where(
                proposals.c.id == "p1"
            )
        ).one()
    assert tuple(stored) == ("d1", 6600.0, T0 + timedelta(days=2))
    with engine.connect() as conn:
        later = load_outcomes(conn, "main", FAMILIES, since=T0 + timedelta(days=1))
    assert [o.id for o in later] == ["p4"]
    engine.dispose()
