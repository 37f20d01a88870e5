"""One writer per connection: a run holds this lock for as long as it writes the store.

SQLite stores use an OS file lock beside the database; PostgreSQL stores use a session advisory
lock on a connection held open for the run. Both are released by the operating system or the
server when the process dies, even by SIGKILL, so a crashed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from crm_upsell_connector.errors import BusyError, StoreError

_POLL_S = 0.2


def _advisory_key(connection: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from the connection's name."""
    digest = hashlib.sha256(f"crm-upsell-connector:{connection}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RunLock:
    """``with RunLock(engine, "main", wait_s=30):`` waits up to ``wait_s`` s, then raises BusyError."""

    def __init__(self, engine: Engine, connection: str, *, wait_s: float = 0.0) -> None:
        self.engine = engine
        self.connection = connection
        self.wait_s = wait_s
        self._file: IO[str] | None = None
        self._pg: Connection | None = None

    def __enter__(self) -> RunLock:
        deadline = time.monotonic() + self.wait_s
        while not self._try():
            if time.monotonic() >= deadline:
                raise BusyError(
                    f"another run for connection '{self.connection}' is writing the store right now"
                    + self._holder(),
                    hint="wait for it to finish, or pass --wait SECONDS to queue behind it",
                )
            time.sleep(_POLL_S)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _try(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            return self._try_postgres()
        return self._try_file()

    # ---- SQLite: a lock file beside the database ------------------------------------------------

    def _lock_path(self) -> Path:
        database = self.engine.url.database or "store"
        return Path(f"{database}.{self.connection}.lock")

    def _try_file(self) -> bool:
        path = self._lock_path()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        handle = os.fdopen(fd, "r+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat()}
        handle.write(json.dumps(owner))
        handle.flush()
        self._file = handle
        return True

    def _holder(self) -> str:
        if self.engine.dialect.name == "postgresql":
            return ""
        try:
            owner = json.loads(self._lock_path().read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return ""
        if not isinstance(owner, dict) or "pid" not in owner:
            return ""
        return f" (pid {owner['pid']} on {owner.get('host', '?')}, since {owner.get('since', '?')})"

    # ---- PostgreSQL: a session advisory lock ------------------------------------------------------

    def _try_postgres(self) -> bool:
        conn = self.engine.connect()
        got = bool(
            conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": _advisory_key(self.connection)}
            ).scalar()
        )
        conn.commit()
        if not got:
            conn.close()
            return False
        self._pg = conn
        return True

    def ensure_held(self) -> None:
        """Raise StoreError if the lock may have been lost; called before each commit of a run.

        A PostgreSQL advisory lock lives as long as the session holding it. Should the server end
        that session (``idle_session_timeout``, a network cut, an administrator), another worker may
        take the connection over: the run must then stop writing. A file lock cannot be lost.
        """
        if self._pg is None:
            return
        try:
            self._pg.execute(text("SELECT 1"))
            self._pg.commit()
        except SQLAlchemyError:
            raise StoreError(
                f"the database session holding the run lock of connection '{self.connection}' was lost; "
                "stopping before writing more",
                hint="the next run resumes from the last checkpoint; check idle_session_timeout and the "
                "network to the database",
            ) from None

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._pg is not None:
            try:
                self._pg.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _advisory_key(self.connection)})
                self._pg.commit()
            except SQLAlchemyError:
                pass  # the session is gone, and the lock with it
            finally:
                self._pg.close()
                self._pg = None
