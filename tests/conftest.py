"""Shared fixtures: a store per backend (SQLite file, and the PostgreSQL server on this machine)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from crm_upsell_connector.jobs.schema import uninstall as uninstall_engine_schema
from crm_upsell_connector.store import schema
from crm_upsell_connector.store.engine import open_store

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"


# --- fixtures ------------------------------------------------------------------------------------


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    """The server's admin connection; the test is skipped (failed under CI) when it is unreachable."""
    try:
        return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL on {PG_HOST}:{PG_PORT} is not reachable: {str(exc).strip().splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set: the PostgreSQL tests must run)")
        pytest.skip(reason)


@contextmanager
def _temporary_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards (connections still open are ended)."""
    admin = _pg_admin()
    name = f"crm_upsell_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own for one test (several processes may share it)."""
    with _temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A temporary PostgreSQL database for this test session, dropped at the end."""
    with _temporary_database() as url:
        yield url


def _empty_postgres(url: str) -> None:
    engine = open_store(url)
    try:
        with engine.begin() as conn:
            schema.metadata.drop_all(conn)
            uninstall_engine_schema(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return
    url: str = request.getfixturevalue("pg_database")
    # Empty before and after: other tests of this worker may use the session database directly.
    _empty_postgres(url)
    yield url
    _empty_postgres(url)
