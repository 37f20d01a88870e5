"""Sync semantics: per-page checkpoints, resume after a crash, inclusive cursors, deletes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.repo import load_sync_state
from crm_upsell_connector.store.schema import accounts
from crm_upsell_connector.sync import Syncer
from tests.fake_connector import T0, Crash, FakeConnector, FakeCRM

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    yield engine
    engine.dispose()


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(accounts)).scalar_one())


def syncer(engine: Engine, connector: FakeConnector, now: datetime = NOW) -> Syncer:
    return Syncer(
        engine, connector, "t", SyncSettings(delete_check_hours=24, clock_skew_s=60), clock=lambda: now
    )


async def test_full_sync_stores_everything_and_takes_the_cursor_from_the_data(engine: Engine) -> None:
    crm = FakeCRM(accounts=25)
    report = await syncer(engine, FakeConnector(crm)).run(streams=["accounts"])
    assert report.streams["accounts"].records == 25
    assert count(engine) == 25
    with engine.connect() as conn:
        state = load_sync_state(conn, "t", "accounts")
    newest = max(a.updated_at for a in crm.accounts.values())
    # The newest instant is long past (older than the start minus the skew): it is complete.
    assert state.cursor == newest + timedelta(milliseconds=1)
    assert state.boundary_ids == []
    assert state.resume is None and state.full_started_at is None


async def test_a_crash_mid_read_keeps_committed_pages_and_resumes_without_duplicates(engine: Engine) -> None:
    crm = FakeCRM(accounts=25)
    crashing = FakeConnector(crm)
    crashing.fail_at_call = 3  # the third page never arrives
    with pytest.raises(Crash):
        await syncer(engine, crashing).run(streams=["accounts"])
    assert count(engine) == 10  # two pages of five were committed with their checkpoint
    with engine.connect() as conn:
        state = load_sync_state(conn, "t", "accounts")
    assert state.resume == "10" and state.full_started_at == NOW

    resumed = FakeConnector(crm)
    report = await syncer(engine, resumed).run(streams=["accounts"])
    assert report.streams["accounts"].mode == "resumed"
    assert (
        resumed.stats.calls == 3 + 1
    )  # pages 3..5, then a delete pass (stored records may be archived since)
    assert count(engine) == 25


async def test_incremental_reads_only_changes_and_costs_one_call_when_nothing_changed(engine: Engine) -> None:
    crm = FakeCRM(accounts=25)
    await syncer(engine, FakeConnector(crm)).run(streams=["accounts"])
    quiet = FakeConnector(crm)
    report = await syncer(engine, quiet).run(streams=["accounts"])
    assert report.streams["accounts"].mode == "incremental"
    assert quiet.stats.calls == 1

    crm.touch("3", NOW - timedelta(hours=1))
    crm.touch("7", NOW - timedelta(hours=1))
    changed = FakeConnector(crm)
    report = await syncer(engine, changed).run(streams=["accounts"])
    assert report.streams["accounts"].records == 2


async def test_a_record_modified_at_the_cursor_instant_is_not_missed(engine: Engine) -> None:
    crm = FakeCRM(accounts=10)
    await syncer(engine, FakeConnector(crm)).run(streams=["accounts"])
    with engine.connect() as conn:
        cursor = load_sync_state(conn, "t", "accounts").cursor
    assert cursor is not None
    crm.touch("1", cursor)  # same instant as the cursor, but a record not seen there before
    report = await syncer(engine, FakeConnector(crm)).run(streams=["accounts"])
    assert report.streams["accounts"].records == 1


async def test_the_cursor_never_moves_past_the_start_of_the_read(engine: Engine) -> None:
    crm = FakeCRM(accounts=10)
    started = T0 + timedelta(minutes=1)  # the CRM holds records newer than this (changed during the sync)
    await syncer(engine, FakeConnector(crm), now=started).run(streams=["accounts"])
    with engine.connect() as conn:
        state = load_sync_state(conn, "t", "accounts")
    assert state.cursor == started - timedelta(seconds=60)
    assert state.boundary_ids == []


async def test_archived_records_are_removed_from_the_store(engine: Engine) -> None:
    crm = FakeCRM(accounts=10)
    await syncer(engine, FakeConnector(crm)).run(streams=["accounts"])
    crm.archived["4"] = NOW
    del crm.accounts["4"]
    later = NOW + timedelta(days=2)  # the delete pass is due again
    report = await syncer(engine, FakeConnector(crm), now=later).run(streams=["accounts"])
    assert report.streams["accounts"].deleted == 1
    assert count(engine) == 9


async def test_full_resync_upserts_instead_of_duplicating(engine: Engine) -> None:
    crm = FakeCRM(accounts=12)
    await syncer(engine, FakeConnector(crm)).run(streams=["accounts"])
    await syncer(engine, FakeConnector(crm)).run(full=True, streams=["accounts"])
    assert count(engine) == 12


async def test_a_crash_mid_incremental_read_skips_the_boundary_it_already_stored(engine: Engine) -> None:
    crm = FakeCRM(accounts=20)
    await syncer(engine, FakeConnector(crm)).run(streams=["accounts"])
    instant = NOW - timedelta(hours=2)
    for account_id in ("2", "4", "6", "8", "10", "12", "14"):
        crm.touch(account_id, instant)  # seven records at one instant: more than a page of five
    dying = FakeConnector(crm)
    dying.fail_at_call = 2
    with pytest.raises(Crash):
        await syncer(engine, dying).run(streams=["accounts"])
    with engine.connect() as conn:
        state = load_sync_state(conn, "t", "accounts")
    assert state.cursor == instant and len(state.boundary_ids) == 5
    again = FakeConnector(crm)
    report = await syncer(engine, again).run(streams=["accounts"])
    assert again.last_skip == frozenset(state.boundary_ids)
    assert report.streams["accounts"].records == 2  # only the two not stored before the crash


async def test_a_stream_that_keeps_failing_does_not_stop_the_others(engine: Engine) -> None:
    from crm_upsell_connector.errors import RetriableAPIError

    class TasksDown(FakeConnector):
        async def read(self, stream, since, resume=None, skip_ids=frozenset()):  # type: ignore[no-untyped-def]
            if stream == "tasks":
                raise RetriableAPIError("the CRM failed with HTTP 503 on GET /tasks")
            async for page in super().read(stream, since, resume, skip_ids):
                yield page

    report = await syncer(engine, TasksDown(FakeCRM(accounts=12))).run()
    assert report.streams["accounts"].records == 12
    assert report.failed == {"tasks": "the CRM failed with HTTP 503 on GET /tasks"}
    assert count(engine) == 12
