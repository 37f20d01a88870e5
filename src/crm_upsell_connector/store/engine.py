"""Opens the store: SQLite (a 0600 file; it holds personal data) or PostgreSQL, migrated to head."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from crm_upsell_connector.errors import StoreError
from crm_upsell_connector.http.redact import scrub

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger(__name__)
# The advisory lock key that serialises migrations on PostgreSQL (any fixed 64-bit number).
_MIGRATION_LOCK = 0x637275705F6D6967


def _db_message(exc: SQLAlchemyError) -> str:
    """The database's own first line about a failure, without SQLAlchemy's SQL echo."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _prepare_sqlite_file(database: str) -> None:
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Create the file 0600 before SQLite does, so it is never readable by others, even briefly.
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_store_engine(url: str, *, pool_size: int | None = None) -> Engine:
    """An engine for ``url``; SQLite files are created 0600 with WAL journaling.

    ``pool_size`` sizes a PostgreSQL pool for a process running several connections at once (each
    run holds one connection for its lock and uses another to write).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StoreError("the SQLite store needs a file path: sqlite:///PATH")
        try:
            _prepare_sqlite_file(parsed.database)
        except OSError as exc:
            raise StoreError(f"cannot create the store file {parsed.database}: {exc.strerror}") from None
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if pool_size is not None:
        return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # Workers starting together on one PostgreSQL store migrate one after another.
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            cfg.attributes["connection"] = connection
            # "heads": parallel branches each add a migration on the same parent until they are
            # chained; every one of them applies.
            command.upgrade(cfg, "heads")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the store: {scrub(_db_message(exc))}".splitlines()[0]) from None


def open_store(url: str, *, pool_size: int | None = None) -> Engine:
    """Create, connect and migrate the store at ``url``; a clear StoreError when that fails."""
    engine = create_store_engine(url, pool_size=pool_size)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        safe = make_url(url).render_as_string(hide_password=True)
        raise StoreError(
            f"cannot open the store {safe}: {scrub(_db_message(exc)).splitlines()[0]}",
            hint="check [store].url and that the database server is running",
        ) from None
    migrate(engine)
    return engine
