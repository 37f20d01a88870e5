"""procrastinate's tables, functions and types in a PostgreSQL store: installed by our migrations.

procrastinate ships its full schema (``procrastinate.schema.SchemaManager.get_schema``) and, per
release, SQL migration files, and leaves applying them to the application's migration tool. Ours is
Alembic: migration ``i19_procrastinate`` installs the schema of the procrastinate version this
product pins (``procrastinate==3.10.0`` in pyproject.toml), on every start that finds it missing
(``open_store`` migrates). Upgrading procrastinate means a new Alembic migration that runs the
release's files from ``SchemaManager.get_migrations_path()`` (deploy/README.md, "Upgrading").
SQLite stores have none of this.
"""

from __future__ import annotations

from procrastinate.schema import SchemaManager
from sqlalchemy import Connection, text

#: The version whose schema ``install`` creates; the pin in pyproject.toml must stay equal.
SCHEMA_VERSION = "3.10.0"
PREFIX = "procrastinate_"


def is_engine_object(name: str | None) -> bool:
    """True for procrastinate's tables, indexes and sequences (kept out of Alembic's comparisons)."""
    return bool(name) and str(name).startswith(PREFIX)


def install(conn: Connection) -> None:
    """Create procrastinate's schema in the connection's database, in its current transaction."""
    # Several statements in one go, no parameters: psycopg sends them as one simple query.
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute(SchemaManager.get_schema())


def uninstall(conn: Connection) -> None:
    """Drop every procrastinate table, function and type from the current schema."""
    conn.execute(
        text(
            "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
            "procrastinate_jobs, procrastinate_workers CASCADE"
        )
    )
    functions = conn.execute(
        text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'"
        )
    ).scalars()
    for signature in list(functions):
        conn.execute(text(f"DROP FUNCTION IF EXISTS {signature} CASCADE"))
    types = conn.execute(
        text(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%' "
            "AND t.typtype IN ('e', 'c') AND t.typelem = 0"
        )
    ).scalars()
    for name in list(types):
        conn.execute(text(f'DROP TYPE IF EXISTS "{name}" CASCADE'))
