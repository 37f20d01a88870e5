"""The local store on SQLite and PostgreSQL: a private file, migrations, idempotent upserts, sync state."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import StatementError

from crm_upsell_connector.errors import StoreError
from crm_upsell_connector.jobs.schema import is_engine_object
from crm_upsell_connector.models import Account, Activity, ActivityKind, Deal, Stream
from crm_upsell_connector.store import schema
from crm_upsell_connector.store.engine import migrate, open_store
from crm_upsell_connector.store.repo import (
    SyncState,
    all_sync_states,
    delete_records,
    load_sync_state,
    save_sync_state,
    upsert_records,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = open_store(store_url)
    try:
        yield engine
    finally:
        engine.dispose()


def count(engine: Engine, table_name: str, connection: str | None = None) -> int:
    table = schema.metadata.tables[table_name]
    query = select(func.count()).select_from(table)
    if connection is not None:
        query = query.where(table.c.connection == connection)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def account(id: str, updated_at: datetime = T0, **values: object) -> Account:
    return Account.model_validate({"id": id, "updated_at": updated_at, "name": f"Company {id}", **values})


def accounts_by_id(engine: Engine, connection: str = "main") -> dict[str, dict[str, object]]:
    table = schema.accounts
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.connection == connection)).mappings().all()
    return {row["id"]: dict(row) for row in rows}


# --- the SQLite file -----------------------------------------------------------------------------


def test_sqlite_store_is_a_private_file_in_new_directories(tmp_path: Path) -> None:
    path = tmp_path / "data" / "crm-upsell" / "store.sqlite3"
    old_umask = os.umask(0o000)  # even a permissive umask must not make the file readable by others
    try:
        engine = open_store(f"sqlite:///{path}")
    finally:
        os.umask(old_umask)
    try:
        with engine.begin() as conn:
            upsert_records(conn, "main", Stream.ACCOUNTS, [account("a1")])
    finally:
        engine.dispose()

    assert path.is_file()
    for file in path.parent.iterdir():  # the database and its WAL/shared-memory files
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name


def test_existing_sqlite_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)

    open_store(f"sqlite:///{path}").dispose()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sqlite_store_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    with pytest.raises(StoreError, match="cannot create the store file"):
        open_store(f"sqlite:///{blocker / 'store.sqlite3'}")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlite_store_needs_a_file(url: str) -> None:
    with pytest.raises(StoreError, match="needs a file path"):
        open_store(url)


# --- migrations ----------------------------------------------------------------------------------


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        # procrastinate's own tables (PostgreSQL) are defined by procrastinate, not by our models.
        opts = {"compare_type": True, "include_name": lambda name, *_: not is_engine_object(name)}
        context = MigrationContext.configure(conn, opts=opts)
        differences = compare_metadata(context, schema.metadata)

    assert differences == []


def test_migrating_twice_is_a_no_op(engine: Engine, store_url: str) -> None:
    with engine.begin() as conn:
        upsert_records(conn, "main", Stream.ACCOUNTS, [account("a1"), account("a2")])
    tables_before = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        version_before = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()

    migrate(engine)
    reopened = open_store(store_url)  # what every later command does
    reopened.dispose()

    assert set(inspect(engine).get_table_names()) == tables_before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == version_before
    assert len(version_before) == 1
    assert count(engine, "accounts") == 2


def test_every_table_exists_after_opening(engine: Engine) -> None:
    assert set(schema.metadata.tables) <= set(inspect(engine).get_table_names())


# --- records -------------------------------------------------------------------------------------


def test_upserting_the_same_records_twice_keeps_one_row_each(engine: Engine) -> None:
    records = [account(f"a{i}") for i in range(5)]

    for _ in range(2):
        with engine.begin() as conn:
            assert upsert_records(conn, "main", Stream.ACCOUNTS, records) == 5

    assert count(engine, "accounts") == 5


def test_upsert_updates_changed_records(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert_records(
            conn, "main", Stream.ACCOUNTS, [account("a1", name="Old name", fields={"seats": "10"})]
        )
    with engine.begin() as conn:
        upsert_records(
            conn,
            "main",
            Stream.ACCOUNTS,
            [account("a1", T0 + timedelta(days=1), name="New name", fields={"seats": "12"})],
        )

    row = accounts_by_id(engine)["a1"]
    assert row["name"] == "New name"
    assert row["fields"] == {"seats": "12"}
    assert row["updated_at"] == T0 + timedelta(days=1)
    assert count(engine, "accounts") == 1


def test_a_page_with_the_same_id_twice_keeps_the_newest_version(engine: Engine) -> None:
    page = [
        account("a1", T0 + timedelta(hours=1), name="middle"),
        account("a1", T0 + timedelta(hours=2), name="newest"),
        account("a1", T0, name="oldest"),
        account("a2", T0, name="other"),
    ]

    with engine.begin() as conn:
        stored = upsert_records(conn, "main", Stream.ACCOUNTS, page)

    assert stored == 2
    rows = accounts_by_id(engine)
    assert rows["a1"]["name"] == "newest"
    assert rows["a1"]["updated_at"] == T0 + timedelta(hours=2)


def test_records_round_trip_with_json_and_aware_timestamps(engine: Engine) -> None:
    tokyo = timezone(timedelta(hours=9))
    activity = Activity(
        id="act-1",
        updated_at=datetime(2024, 5, 2, 9, 30, 15, 250_000, tzinfo=tokyo),
        kind=ActivityKind.CALL,
        account_id="a1",
        occurred_at=datetime(2024, 5, 2, 9, 0, tzinfo=tokyo),
        direction="inbound",
        outcome="complaint",
        subject="解約の相談",
        extra={"hs_call_duration": 125, "tags": ["x", "y"]},
    )

    with engine.begin() as conn:
        upsert_records(conn, "main", Stream.ACTIVITIES, [activity])
    with engine.connect() as conn:
        row = conn.execute(select(schema.activities)).mappings().one()

    assert row["kind"] == "call"
    assert row["subject"] == "解約の相談"
    assert row["extra"] == {"hs_call_duration": 125, "tags": ["x", "y"]}
    assert row["updated_at"] == activity.updated_at
    assert row["updated_at"].tzinfo is not None
    assert row["updated_at"].utcoffset() == timedelta(0)
    assert row["occurred_at"] == datetime(2024, 5, 2, 0, 0, tzinfo=UTC)


def test_connections_live_apart(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert_records(conn, "eu", Stream.DEALS, [Deal(id="d1", updated_at=T0, name="EU deal", amount=10.0)])
        upsert_records(conn, "us", Stream.DEALS, [Deal(id="d1", updated_at=T0, name="US deal", amount=20.0)])
        delete_records(conn, "eu", Stream.DEALS, ["d1"])

    assert count(engine, "deals", "eu") == 0
    assert count(engine, "deals", "us") == 1


def test_large_pages_are_stored_in_full(engine: Engine) -> None:
    records = [account(f"a{i:05d}") for i in range(1_234)]

    with engine.begin() as conn:
        assert upsert_records(conn, "main", Stream.ACCOUNTS, records) == 1_234
    with engine.begin() as conn:
        removed = delete_records(conn, "main", Stream.ACCOUNTS, [r.id for r in records[:1_100]])

    assert removed == 1_100
    assert count(engine, "accounts") == 134


def test_delete_records(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert_records(conn, "main", Stream.ACCOUNTS, [account("a1"), account("a2"), account("a3")])

    with engine.begin() as conn:
        removed = delete_records(conn, "main", Stream.ACCOUNTS, ["a1", "a3", "never-stored"])

    assert removed == 2
    assert set(accounts_by_id(engine)) == {"a2"}
    with engine.begin() as conn:
        assert delete_records(conn, "main", Stream.ACCOUNTS, []) == 0
        assert delete_records(conn, "main", Stream.ACCOUNTS, ["a1"]) == 0


def test_a_failed_transaction_stores_nothing(engine: Engine) -> None:
    def crash_mid_page() -> None:
        with engine.begin() as conn:
            upsert_records(conn, "main", Stream.ACCOUNTS, [account("a1")])
            raise RuntimeError("crash mid-page")

    with pytest.raises(RuntimeError, match="crash mid-page"):
        crash_mid_page()

    assert count(engine, "accounts") == 0


# --- sync state ----------------------------------------------------------------------------------


def test_sync_state_round_trips(engine: Engine) -> None:
    berlin_summer = timezone(timedelta(hours=2))
    state = SyncState(
        connection="main",
        stream="companies",
        cursor=datetime(2024, 5, 1, 14, 0, 0, 123_456, tzinfo=berlin_summer),
        resume="after=12345",
        boundary_ids=["101", "102", "103"],
        full_started_at=datetime(2024, 4, 30, 23, 0, tzinfo=UTC),
        deleted_checked_at=datetime(2024, 5, 1, 6, 0, tzinfo=UTC),
        records=4_200_000_000,  # more than fits in 32 bits
    )

    with engine.begin() as conn:
        save_sync_state(conn, state, now=T0)
    with engine.connect() as conn:
        loaded = load_sync_state(conn, "main", "companies")

    assert loaded == state
    assert loaded.cursor == datetime(2024, 5, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    for value in (loaded.cursor, loaded.full_started_at, loaded.deleted_checked_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)


def test_sync_state_is_updated_in_place(engine: Engine) -> None:
    with engine.begin() as conn:
        save_sync_state(conn, SyncState("main", "deals", cursor=T0, boundary_ids=["1"]), now=T0)
        save_sync_state(
            conn,
            SyncState("main", "deals", cursor=T0 + timedelta(hours=1), boundary_ids=[], records=7),
            now=T0,
        )
        save_sync_state(conn, SyncState("other", "deals", cursor=T0), now=T0)
    with engine.connect() as conn:
        loaded = load_sync_state(conn, "main", "deals")
        states = all_sync_states(conn, "main")

    assert count(engine, "sync_state") == 2
    assert loaded.cursor == T0 + timedelta(hours=1)
    assert loaded.boundary_ids == []
    assert loaded.records == 7
    assert [s.stream for s in states] == ["deals"]


def test_unknown_sync_state_is_a_fresh_start(engine: Engine) -> None:
    with engine.connect() as conn:
        assert load_sync_state(conn, "main", "contacts") == SyncState("main", "contacts")


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetimes are not stored"), engine.begin() as conn:
        save_sync_state(conn, SyncState("main", "deals", cursor=datetime(2024, 5, 1, 12, 0)), now=T0)


# --- PostgreSQL that cannot be reached -----------------------------------------------------------


def test_unreachable_postgresql_is_one_clear_line_without_the_password() -> None:
    password = "Sup3r-S3cret-Pw"
    url = f"postgresql+psycopg://crm:{password}@127.0.0.1:1/crm"

    with pytest.raises(StoreError) as info:
        open_store(url)

    message = info.value.one_line()
    assert password not in message
    assert password not in str(info.value) + info.value.hint
    assert "\n" not in str(info.value)
    assert "cannot open the store postgresql+psycopg://crm:***@127.0.0.1:1/crm" in message
    assert "check [store].url" in message
    assert info.value.exit_code == 4
    assert info.value.__cause__ is None


@pytest.mark.postgres
def test_missing_postgresql_database_is_a_store_error(pg_database: str) -> None:
    url = pg_database.rsplit("/", 1)[0] + "/crm_upsell_no_such_database"

    with pytest.raises(StoreError) as info:
        open_store(url)

    assert "crm_upsell_no_such_database" in info.value.one_line()
    assert "\n" not in str(info.value)
