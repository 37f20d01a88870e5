"""Reads as a real org answers them: archived activities, deletes purged from the Recycle Bin, queries
that time out unbounded, query locators that die mid-read, and the minimum calls of a full read."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.features import FeaturesConfig, compute_features
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.models import Page
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.schema import contacts
from crm_upsell_connector.sync import Syncer

from .conftest import Org, run_org

SETTINGS = SyncSettings(delete_check_hours=0, clock_skew_s=0)


@pytest.fixture(scope="module")
def big() -> Iterator[Org]:
    """More than 2,000 tasks through queryAll: several batches (read only)."""
    yield from run_org(140)


def _store(tmp_path: Path, name: str = "store") -> Engine:
    return open_store(f"sqlite:///{tmp_path / name}.sqlite3")


async def _sync(org: Org, engine: Engine, *, full: bool = False) -> int:
    c = org.connector()
    try:
        await Syncer(engine, c, "sbx", SETTINGS).run(full=full)
    finally:
        await c.close()
    return c.stats.calls


async def test_archived_activities_count_in_the_features(tmp_path: Path) -> None:
    """Two copies of one org, one with some recent activities archived: the features are the same."""
    scored: list[dict[str, object]] = []
    for archived in (False, True):
        for org in run_org(8):
            state = org.state
            if archived:
                recent = [
                    i
                    for i in state.tables["Task"].ids
                    if state.value("Task", state.tables["Task"].recs[i], "Status") == "Completed"
                ][:25]
                assert len(state.archive("Task", recent)) == 25
                query_sees = len(state.tables["Task"].ids) - len(state.tables["Task"].archived)
                assert query_sees < len(state.tables["Task"].ids)
            engine = _store(tmp_path, f"archived-{archived}")
            await _sync(org, engine)
            with engine.connect() as conn:
                rows = list(compute_features(conn, "sbx", org.state.scenario.now, FeaturesConfig(), []))
            engine.dispose()
            scored.append({str(r["account_id"]): r for r in rows})
    assert scored[0] == scored[1]
    assert any(r["activities_365d"] for r in scored[1].values())  # type: ignore[index]


async def test_a_delete_purged_from_the_recycle_bin_still_reaches_the_store(org: Org, tmp_path: Path) -> None:
    engine = _store(tmp_path)
    await _sync(org, engine)
    gone = org.state.delete("Contact", count=1)
    kept = org.state.delete("Contact", ids=[org.live("Contact")[-1]])
    assert (
        org.state.purge_deleted("Contact") == sorted(gone + kept)
        or len(org.state.purge_deleted("Contact")) == 0
    )
    await _sync(org, engine)
    with engine.connect() as conn:
        stored = {row.id for row in conn.execute(select(contacts.c.id))}
    engine.dispose()
    assert not stored & set(gone + kept)
    assert stored == set(org.live("Contact"))


async def test_a_full_read_costs_one_call_per_2000_rows_and_no_delete_query(big: Org, tmp_path: Path) -> None:
    """The minimum: the token, then ceil(rows / 2000) per stream (queryAll rows: archived too), and
    the org's currencies once (CurrencyType, DatedConversionRate) for home amounts."""
    engine = _store(tmp_path)
    setup = big.connector()
    try:
        await setup.ensure_fields(ALL_FIELDS)  # else each object lacking our fields costs a call to find out
    finally:
        await setup.close()
    state = big.state
    expected = 3 + sum(
        max(1, math.ceil(len(state.tables[obj].ids) / 2000))
        for obj in (
            "User",
            "Product2",
            "Account",
            "Contact",
            "Opportunity",
            "OpportunityLineItem",
            "Asset",
            "Task",
            "Event",
            "CampaignMember",
        )
    )
    assert await _sync(big, engine, full=True) == expected
    engine.dispose()


async def _read(org: Org, stream: str, since: datetime | None = None) -> list[Page]:
    c = org.connector()
    try:
        return [page async for page in c.read(stream, since)]
    finally:
        await c.close()


async def test_a_huge_object_that_times_out_unbounded_is_read_in_narrower_windows(
    big: Org, caplog: pytest.LogCaptureFixture
) -> None:
    everything = len(big.state.tables["Task"].ids)
    big.state.query_timeout_rows = 700
    try:
        pages = await _read(big, "tasks")
        changed = await _read(big, "tasks", datetime(2000, 1, 1, tzinfo=UTC))
    finally:
        big.state.query_timeout_rows = None
    ids = [r.id for p in pages for r in p.records]
    assert len(ids) == len(set(ids)) == everything
    assert pages[-1].present_ids is not None and len(pages[-1].present_ids) == everything
    assert len({r.id for p in changed for r in p.records}) == everything
    assert "reading Ids up to" in caplog.text


async def test_a_read_whose_locator_dies_every_batch_completes_without_rereading(big: Org) -> None:
    everything = len(big.state.tables["Task"].ids)
    assert everything > 2000
    big.state.locator_batches = 1  # every queryMore answers INVALID_QUERY_LOCATOR
    c = big.connector()
    try:
        pages = [page async for page in c.read("tasks", None)]
        since = datetime.now(UTC) - timedelta(days=3650)
        changed = [page async for page in c.read("tasks", since)]
    finally:
        big.state.locator_batches = None
        await c.close()
    ids = [r.id for p in pages for r in p.records]
    assert len(ids) == len(set(ids)) == everything  # committed rows are never read twice
    assert [p.resume for p in pages[:-1]] == [f"id:{p.records[-1].id}" for p in pages[:-1]]
    assert len({r.id for p in changed for r in p.records}) == everything
    assert sum(len(p.records) for p in changed) == everything
