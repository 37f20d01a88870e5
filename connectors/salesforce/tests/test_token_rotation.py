"""Refresh-token rotation as Salesforce does it: each refresh answers a new token and revokes the one
spent. The newest must be kept (0600 cache, or encrypted in the shared store) and reach every
process; the operator's new token wins; a revoked one stops the run with exit 3 and the fix."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import keyring
import pytest
from crm_upsell_salesforce.connector import SalesforceConnector
from cryptography.fernet import Fernet
from keyring.backend import KeyringBackend
from sqlalchemy import select

from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.credentials import KEY_ENV, CredentialCache, FileCredentialCache, credential_cache
from crm_upsell_connector.errors import AuthError
from crm_upsell_connector.secrets import SERVICE, SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.schema import credentials

from .conftest import PLUGIN, Org


def _rotating(org: Org) -> None:
    """The connected app's "Enable Refresh Token Rotation" (through the sandbox's control route)."""
    answer = httpx.post(f"{org.base_url}/__sandbox/refresh-tokens", json={"rotate": True})
    assert answer.status_code == 200


def _connector(org: Org, cache: CredentialCache | None, environ: dict[str, str]) -> SalesforceConnector:
    settings = org.settings(auth="refresh_token", refresh_token="env:SBX_REFRESH")
    env = {**PLUGIN.sandbox_secrets(org.options), **environ}
    return SalesforceConnector(settings, SecretResolver(env), ConnectorContext("sbx", (), credentials=cache))


async def _run(org: Org, cache: CredentialCache | None, environ: dict[str, str]) -> int:
    """One run: a fresh connector (as a new process would have) reads the users."""
    c = _connector(org, cache, environ)
    try:
        users = [r async for page in c.read("users", None) for r in page.records]
    finally:
        await c.close()
    return len(users)


async def test_three_runs_with_rotation_on_succeed_and_the_newest_token_is_kept_0600(
    org: Org, tmp_path: Path
) -> None:
    org.state.rotate_refresh_tokens = True
    cache = FileCredentialCache(tmp_path / "credentials" / "sbx.json")
    environ = {"SBX_REFRESH": org.options.refresh_token}
    for _ in range(3):
        assert await _run(org, cache, environ) > 0
    assert len(org.state.refresh_tokens) == 1  # each run spent the newest and got another
    kept = cache.load("salesforce-refresh-token")
    assert kept is not None and kept.value in org.state.refresh_tokens
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert org.options.refresh_token not in cache.path.read_text()

    # Without a place to keep it, the rotated token is lost and the next run fails (the bug fixed here).
    with pytest.raises(AuthError):
        await _run(org, None, environ)

    # The operator puts in a new token: it wins over the kept one.
    org.state.refresh_tokens.add("operator-new-token")
    assert await _run(org, cache, {"SBX_REFRESH": "operator-new-token"}) > 0
    assert "operator-new-token" not in org.state.refresh_tokens


async def test_revoked_refresh_token_stops_with_exit_3_and_the_fix(org: Org, tmp_path: Path) -> None:
    org.state.rotate_refresh_tokens = True
    cache = FileCredentialCache(tmp_path / "sbx.json")
    environ = {"SBX_REFRESH": org.options.refresh_token}
    await _run(org, cache, environ)
    org.state.revoke_refresh_tokens()  # the user or an admin revoked the app's access
    with pytest.raises(AuthError) as caught:
        await _run(org, cache, environ)
    assert caught.value.exit_code == 3
    assert "revoked" in str(caught.value) and "crm-upsell auth set" in (caught.value.hint or "")
    assert org.options.refresh_token not in caught.value.one_line()


_WORKER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from crm_upsell_salesforce.connector import SalesforceConnector
    from crm_upsell_salesforce.settings import SalesforceSettings
    from crm_upsell_connector.connector import ConnectorContext
    from crm_upsell_connector.credentials import credential_cache
    from crm_upsell_connector.secrets import SERVICE, SecretResolver
    from crm_upsell_connector.store.engine import open_store

    settings = SalesforceSettings.model_validate(json.loads(sys.argv[1]))
    engine = open_store(sys.argv[2])

    async def run():
        cache = credential_cache(engine, "sbx", os.environ)
        c = SalesforceConnector(settings, SecretResolver(os.environ), ConnectorContext("sbx", (), credentials=cache))
        try:
            return len([r async for page in c.read("users", None) for r in page.records])
        finally:
            await c.close()

    for _ in range(3):
        assert asyncio.run(run()) > 0
    print("ok")
    """
)


def test_two_worker_processes_share_the_rotated_token_through_the_store(org: Org, tmp_path: Path) -> None:
    _rotating(org)
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = open_store(url)
    key = Fernet.generate_key().decode()
    settings = org.settings(auth="refresh_token", refresh_token="env:SBX_REFRESH").model_dump(mode="json")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CRM_UPSELL_")},
        **PLUGIN.sandbox_secrets(org.options),
        "SBX_REFRESH": org.options.refresh_token,
        KEY_ENV: key,
        "CRM_UPSELL_STATE_DIR": str(tmp_path / "state"),
    }
    workers = [
        subprocess.Popen(  # two workers, as on two hosts: they share only the store
            [sys.executable, "-c", _WORKER, json.dumps(settings), url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0 and "ok" in out, err[-2000:]
    assert len(org.state.refresh_tokens) == 1
    newest = next(iter(org.state.refresh_tokens))
    with engine.connect() as conn:
        (row,) = conn.execute(select(credentials)).all()
    assert newest.encode() not in bytes(row.ciphertext)  # encrypted at rest
    cache = credential_cache(engine, "sbx", {KEY_ENV: key})
    kept = cache.load("salesforce-refresh-token")
    assert kept is not None and kept.value == newest
    engine.dispose()


class _MemoryKeyring(KeyringBackend):
    """A writable keyring of this process only (the system keyring is never touched by tests)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.values.pop((service, username), None)


async def test_with_a_writable_keyring_the_newest_token_goes_where_the_reference_points(
    org: Org, tmp_path: Path
) -> None:
    org.state.rotate_refresh_tokens = True
    memory = _MemoryKeyring()
    memory.set_password(SERVICE, "sf-refresh", org.options.refresh_token)
    previous = keyring.get_keyring()
    keyring.set_keyring(memory)
    cache = FileCredentialCache(tmp_path / "sbx.json")
    try:
        for _ in range(3):
            c = SalesforceConnector(
                org.settings(auth="refresh_token", refresh_token="keyring:sf-refresh"),
                SecretResolver(dict(PLUGIN.sandbox_secrets(org.options))),
                ConnectorContext("sbx", (), credentials=cache),
            )
            try:
                assert [r async for page in c.read("users", None) for r in page.records]
            finally:
                await c.close()
    finally:
        keyring.set_keyring(previous)
    newest = memory.values[(SERVICE, "sf-refresh")]
    assert newest != org.options.refresh_token and org.state.refresh_tokens == {newest}
    assert cache.load("salesforce-refresh-token") is None  # nothing kept beside the keyring
