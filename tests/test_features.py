"""Features computed by SQL over a temporary SQLite store: counts, recencies, holdings, missing data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crm_upsell_connector.features import (
    FEATURE_SCHEMA,
    FeaturesConfig,
    MappedField,
    compute_features,
    feature_schema,
)
from crm_upsell_connector.rules.config import ProductConfig
from crm_upsell_connector.store import schema

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CATALOGUE = [
    ProductConfig(sku="CRM-STARTER", name="Starter", family="crm", tier=1, unit_price=25),
    ProductConfig(sku="CRM-PRO", name="Pro", family="crm", tier=2, unit_price=60),
    ProductConfig(sku="MKT-BASIC", name="Marketing", family="marketing", tier=1, unit_price=400),
]
CONFIG = FeaturesConfig(
    fields={
        "seats_purchased": MappedField(field="seats_purchased", type="number"),
        "seats_active": MappedField(field="seats_active", type="number"),
        "nps_score": MappedField(field="nps", type="number"),
        "onboarding_stage": MappedField(field="onboarding_stage"),
        "do_not_contact": MappedField(field="dnc", type="bool"),
        "contract_end": MappedField(field="contract_end", type="date"),
    }
)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    defaults = {"connection": "c1", "extra": {}, "updated_at": NOW}
    for row in rows:
        conn.execute(table.insert(), {**defaults, **row})


@pytest.fixture
def store(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine("sqlite:///" + str(tmp_path / "store.db"))
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        _insert(conn, schema.accounts, [
            {"id": "a1", "name": "Acme", "owner_id": "o1", "lifecycle_stage": "customer", "created_at": ago(400),
             "fields": {"seats_purchased": "50", "seats_active": "46", "nps": "9", "onboarding_stage": "live",
                        "dnc": "false", "contract_end": "2026-10-02T00:00:00Z"},
             "product_fields": {}},
            {"id": "a2", "name": "Empty", "owner_id": None, "created_at": None,
             "fields": {"seats_purchased": "", "nps": "n/a"}, "product_fields": {}},
            {"id": "other-connection", "name": "x", "fields": {}, "product_fields": {}, "connection": "c2"},
        ])  # fmt: skip
        _insert(conn, schema.contacts, [
            {"id": "c1", "account_id": "a1", "name": "Ann"},
            {"id": "c2", "account_id": "a1", "name": "Bo"},
        ])  # fmt: skip
        _insert(conn, schema.products, [
            {"id": "p-starter", "sku": "CRM-STARTER", "name": "Starter"},
            {"id": "p-pro", "sku": "CRM-PRO", "name": "Pro"},
        ])  # fmt: skip
        _insert(conn, schema.deals, [
            {"id": "d1", "account_id": "a1", "name": "Acme - CRM", "is_won": True, "is_closed": True,
             "amount": 15000.0, "close_date": ago(700)},
            {"id": "d2", "account_id": "a1", "name": "Acme - Renewal 2026", "is_won": True, "is_closed": True,
             "amount": 15000.0, "close_date": ago(100)},
            {"id": "d3", "account_id": "a1", "name": "Acme - Upgrade", "is_won": True, "is_closed": True,
             "amount": 8640.0, "close_date": ago(50)},
            {"id": "d4", "account_id": "a1", "name": "Acme - Marketing", "is_won": False, "is_closed": False,
             "amount": 4800.0, "close_date": NOW + timedelta(days=20)},
            {"id": "d5", "account_id": "a1", "name": "Acme - lost", "is_won": False, "is_closed": True,
             "amount": 100.0, "close_date": ago(30)},
        ])  # fmt: skip
        _insert(conn, schema.line_items, [
            {"id": "l1", "deal_id": "d1", "product_id": "p-starter", "quantity": 10.0},
            {"id": "l2", "deal_id": "d2", "sku": "CRM-STARTER", "quantity": 10.0},
            {"id": "l3", "deal_id": "d3", "product_id": "p-pro", "quantity": 12.0},
            {"id": "l4", "deal_id": "d4", "sku": "MKT-BASIC", "quantity": 1.0},
            {"id": "l5", "deal_id": "d1", "sku": "UNKNOWN", "quantity": 1.0},
        ])  # fmt: skip
        _insert(conn, schema.activities, [
            {"id": "x1", "kind": "meeting", "account_id": "a1", "occurred_at": ago(10)},
            {"id": "x2", "kind": "email", "account_id": "a1", "direction": "inbound", "occurred_at": ago(20),
             "subject": "Re: more seats"},
            {"id": "x3", "kind": "call", "account_id": "a1", "direction": "outbound", "occurred_at": ago(100),
             "subject": "Cancelled meeting follow-up"},
            {"id": "x4", "kind": "email", "account_id": "a1", "direction": "inbound", "occurred_at": ago(5),
             "subject": "クレーム: 請求書"},
            {"id": "x5", "kind": "call", "account_id": None, "contact_id": "c1", "direction": "inbound",
             "occurred_at": ago(2), "outcome": "complaint"},
            {"id": "x6", "kind": "meeting", "account_id": "a1", "occurred_at": NOW + timedelta(days=3)},
            {"id": "x7", "kind": "task", "account_id": "a1", "occurred_at": ago(1), "status": "open",
             "upsell_key": "k1"},
            {"id": "x8", "kind": "task", "account_id": "a1", "occurred_at": ago(40), "status": "done",
             "upsell_key": "k0"},
            {"id": "x9", "kind": "note", "account_id": "a1", "occurred_at": ago(300)},
        ])  # fmt: skip
    return engine


def compute(store: sa.Engine) -> dict[str, dict[str, Any]]:
    with store.connect() as conn:
        rows = list(compute_features(conn, "c1", NOW, CONFIG, CATALOGUE))
    assert [r["account_id"] for r in rows] == ["a1", "a2"]
    return {r["account_id"]: r for r in rows}


def test_every_schema_name_is_present(store: sa.Engine) -> None:
    rows = compute(store)
    expected = set(feature_schema(CONFIG))
    for row in rows.values():
        assert set(row) == expected


def test_activity_counts_and_recency(store: sa.Engine) -> None:
    f = compute(store)["a1"]
    assert f["meetings_90d"] == 1.0  # the meeting next week does not count yet
    assert f["emails_30d"] == 2.0
    assert f["calls_365d"] == 2.0  # one via a contact only
    assert f["notes_365d"] == 1.0
    assert f["activities_30d"] == 4.0  # tasks are not engagement
    assert f["activities_365d"] == 6.0
    assert f["inbound_30d"] == 3.0
    assert f["days_since_last_activity"] == 2.0
    assert f["days_since_last_inbound"] == 2.0
    assert f["days_since_last_meeting"] == 10.0
    assert f["complaints_30d"] == 2.0  # outcome, or keyword on a non-outbound activity
    assert f["complaints_90d"] == 2.0
    assert f["days_since_last_complaint"] == 2.0
    assert f["contacts"] == 2.0
    assert f["tenure_days"] == 400.0


def test_deals_and_holdings(store: sa.Engine) -> None:
    f = compute(store)["a1"]
    assert f["deals_won"] == 3.0
    assert f["deals_won_365d"] == 2.0
    assert f["deals_lost_365d"] == 1.0
    assert f["renewals_won"] == 1.0
    assert f["revenue_won_365d"] == 23640.0
    assert f["revenue_won_total"] == 38640.0
    assert f["days_since_last_purchase"] == 50.0
    assert f["days_since_first_purchase"] == 700.0
    assert f["open_deals"] == 1.0
    assert f["open_deal_families"] == ["marketing"]
    assert f["open_deal_skus"] == ["MKT-BASIC"]
    # The latest won deal is the current subscription: Pro x 12, found through the product table.
    assert f["owned_products"] == {"crm": "CRM-PRO"}
    assert f["owned_tiers"] == {"crm": 2.0}
    assert f["owned_quantity"] == {"crm": 12.0}
    assert f["owned_families"] == ["crm"]
    assert f["owned_skus"] == ["CRM-PRO", "CRM-STARTER", "UNKNOWN"]
    assert f["products_owned"] == 1.0


def test_upsell_tasks(store: sa.Engine) -> None:
    f = compute(store)["a1"]
    assert f["open_upsell_tasks"] == 1.0
    assert f["days_since_last_proposal"] == 1.0


def test_mapped_fields_are_converted(store: sa.Engine) -> None:
    f = compute(store)["a1"]
    assert f["seats_purchased"] == 50.0
    assert f["seats_active"] == 46.0
    assert f["nps_score"] == 9.0
    assert f["onboarding_stage"] == "live"
    assert f["do_not_contact"] is False
    assert f["contract_end"] == 30.0


def test_missing_data_is_none_not_zero(store: sa.Engine) -> None:
    f = compute(store)["a2"]
    for name in ("tenure_days", "days_since_last_activity", "days_since_last_purchase",
                 "days_since_last_proposal", "seats_purchased", "seats_active", "nps_score",
                 "onboarding_stage", "do_not_contact", "contract_end", "owner_id"):  # fmt: skip
        assert f[name] is None, name
    assert f["meetings_90d"] == 0.0
    assert f["deals_won"] == 0.0
    assert f["contacts"] == 0.0
    assert f["owned_tiers"] == {}
    assert f["owned_families"] == []


def test_numbers_are_floats(store: sa.Engine) -> None:
    f = compute(store)["a1"]
    for name, spec in FEATURE_SCHEMA.items():
        if spec.type == "number" and f[name] is not None:
            assert type(f[name]) is float, name


def test_naive_now_is_refused(store: sa.Engine) -> None:
    with store.connect() as conn, pytest.raises(ValueError, match="timezone"):
        compute_features(conn, "c1", datetime(2026, 1, 1), CONFIG, CATALOGUE)


def test_rows_can_be_read_after_the_connection_closes(store: sa.Engine) -> None:
    with store.connect() as conn:
        rows = compute_features(conn, "c1", NOW, CONFIG, CATALOGUE)
    assert [r["account_id"] for r in rows] == ["a1", "a2"]


def test_crm_fields_lists_each_mapped_field_once() -> None:
    assert CONFIG.crm_fields() == (
        "seats_purchased",
        "seats_active",
        "nps",
        "onboarding_stage",
        "dnc",
        "contract_end",
    )
