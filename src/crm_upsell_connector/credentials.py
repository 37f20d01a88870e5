"""Credentials a CRM hands back and the product must keep: today, rotated OAuth refresh tokens.

With refresh-token rotation on, every refresh answers a new refresh token and revokes the old one,
so the newest must be kept, and must reach every process that refreshes for the same connection.
A :class:`CredentialCache` keeps one value per (connection, name), with the fingerprint of the
*configured* secret it descends from (so a secret the operator replaces wins over the kept one),
and a lock under which a process re-reads, refreshes and saves, so that two processes never spend
the same refresh token.

Two kinds, chosen by :func:`credential_cache`:

* :class:`StoreCredentialCache` when ``CRM_UPSELL_CREDENTIAL_KEY`` is set: rows in the shared store,
  encrypted with that key (Fernet, from ``cryptography``), for several workers on several hosts.
  The lock is a PostgreSQL advisory lock (a file lock beside a SQLite store).
* :class:`FileCredentialCache` otherwise: a JSON file of the product's own, mode 0600, under the
  user's state directory, with a file lock beside it.

Values are never logged, never in reports, and only ever in the store encrypted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import platformdirs
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, delete, select, text

from crm_upsell_connector.errors import AuthError, BusyError, ConfigError, StoreError
from crm_upsell_connector.http.redact import register_secret

__all__ = [
    "KEY_ENV",
    "CredentialCache",
    "FileCredentialCache",
    "Kept",
    "StoreCredentialCache",
    "credential_cache",
    "fingerprint",
]

APP_NAME = "crm-upsell-connector"
#: The operator's key for credentials kept in the shared store (a Fernet key:
#: ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``).
KEY_ENV = "CRM_UPSELL_CREDENTIAL_KEY"
_LOCK_WAIT_S = 60.0
_POLL_S = 0.05


def fingerprint(secret: str) -> str:
    """A short one-way fingerprint of a configured secret (tells "changed" from "same")."""
    return hashlib.sha256(f"crm-upsell-credential:{secret}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Kept:
    """A kept value and the fingerprint of the configured secret it was derived from."""

    value: str
    source: str


class CredentialCache(ABC):
    """Kept credentials of one connection."""

    #: where the values live, for messages (never the values themselves).
    where: str

    @abstractmethod
    def load(self, name: str) -> Kept | None:
        """The kept value of ``name``, or None."""

    @abstractmethod
    def save(self, name: str, value: str, source: str) -> None:
        """Keep ``value`` (derived from the configured secret whose fingerprint is ``source``)."""

    @abstractmethod
    def forget(self, name: str) -> None:
        """Drop the kept value of ``name``."""

    @abstractmethod
    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Held while a process reads, spends and replaces ``name``; waits for other holders."""
        yield


@contextmanager
def _file_lock(path: Path, wait_s: float = _LOCK_WAIT_S) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"another process has held the credential lock {path} for {wait_s:.0f} s",
                        hint="a token refresh is stuck elsewhere; retry in a minute",
                    ) from None
                time.sleep(_POLL_S)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class FileCredentialCache(CredentialCache):
    """One JSON file per connection, mode 0600, written atomically; a lock file beside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"the credential cache {path}"

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"the credential cache {self.path} cannot be read ({type(exc).__name__})",
                hint="delete it; the configured secret is then used again",
            ) from None
        return data if isinstance(data, dict) else {}

    def load(self, name: str) -> Kept | None:
        entry = self._read().get(name)
        if not isinstance(entry, dict) or not entry.get("value"):
            return None
        register_secret(str(entry["value"]))
        return Kept(str(entry["value"]), str(entry.get("source", "")))

    def _write(self, data: Mapping[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def save(self, name: str, value: str, source: str) -> None:
        register_secret(value)
        data = self._read()
        data[name] = {"value": value, "source": source, "saved_at": datetime.now(UTC).isoformat()}
        self._write(data)

    def forget(self, name: str) -> None:
        data = self._read()
        if data.pop(name, None) is not None:
            self._write(data)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with _file_lock(self.path.with_suffix(".lock")):
            yield


class StoreCredentialCache(CredentialCache):
    """Encrypted rows of the shared store's ``credentials`` table (several workers, several hosts)."""

    def __init__(self, engine: Engine, connection: str, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise ConfigError(
                f"{KEY_ENV} is not a valid key (32 url-safe base64-encoded bytes)",
                hint='make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())" and give every worker the same',
            ) from None
        register_secret(key)
        self.engine = engine
        self.connection = connection
        self.where = "the shared store (encrypted)"

    def load(self, name: str) -> Kept | None:
        from crm_upsell_connector.store.schema import credentials

        with self.engine.connect() as conn:
            row = conn.execute(
                select(credentials.c.ciphertext, credentials.c.source).where(
                    credentials.c.connection == self.connection, credentials.c.name == name
                )
            ).first()
        if row is None:
            return None
        try:
            value = self._fernet.decrypt(bytes(row.ciphertext)).decode()
        except InvalidToken:
            raise AuthError(
                f"the credential kept in the store for connection '{self.connection}' cannot be decrypted "
                f"with {KEY_ENV}",
                hint=f"give every worker the same {KEY_ENV}; or run 'crm-upsell auth set' with a new "
                "secret, which replaces the kept one",
            ) from None
        register_secret(value)
        return Kept(value, str(row.source))

    def save(self, name: str, value: str, source: str) -> None:
        from crm_upsell_connector.store.schema import credentials

        register_secret(value)
        ciphertext = self._fernet.encrypt(value.encode())
        with self.engine.begin() as conn:
            conn.execute(
                delete(credentials).where(
                    credentials.c.connection == self.connection, credentials.c.name == name
                )
            )
            conn.execute(
                credentials.insert().values(
                    connection=self.connection,
                    name=name,
                    ciphertext=ciphertext,
                    source=source,
                    updated_at=datetime.now(UTC),
                )
            )

    def forget(self, name: str) -> None:
        from crm_upsell_connector.store.schema import credentials

        with self.engine.begin() as conn:
            conn.execute(
                delete(credentials).where(
                    credentials.c.connection == self.connection, credentials.c.name == name
                )
            )

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        if self.engine.dialect.name != "postgresql":
            database = self.engine.url.database or "store"
            with _file_lock(Path(f"{database}.credentials.lock")):
                yield
            return
        digest = hashlib.sha256(f"crm-upsell-credential:{self.connection}:{name}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        try:
            conn = self.engine.connect()
        except Exception as exc:
            raise StoreError(
                f"the store is unreachable for the credential lock ({type(exc).__name__})"
            ) from None
        try:
            deadline = time.monotonic() + _LOCK_WAIT_S
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                conn.rollback()
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"another worker has held the credential lock of '{self.connection}' for "
                        f"{_LOCK_WAIT_S:.0f} s",
                        hint="a token refresh is stuck elsewhere; retry in a minute",
                    )
                time.sleep(_POLL_S)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        finally:
            conn.close()


def credential_cache(
    engine: Engine | None, connection: str, environ: Mapping[str, str] | None = None
) -> CredentialCache:
    """The shared store (encrypted) when ``CRM_UPSELL_CREDENTIAL_KEY`` is set and a store is given,
    else the 0600 file ``<user state dir>/credentials/<connection>.json``."""
    env = os.environ if environ is None else environ
    key = env.get(KEY_ENV)
    if key and engine is not None:
        return StoreCredentialCache(engine, connection, key)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in connection)
    base = Path(env.get("CRM_UPSELL_STATE_DIR") or platformdirs.user_state_dir(APP_NAME))
    return FileCredentialCache(base / "credentials" / f"{safe}.json")
