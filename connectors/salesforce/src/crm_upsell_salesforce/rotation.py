"""Refresh-token rotation: which refresh token to spend, and where the rotated one is kept.

With "Enable Refresh Token Rotation" on in the connected app, every refresh answers a new refresh
token and invalidates the one spent (Salesforce Help, "OAuth 2.0 Refresh Token Flow for Renewed
Sessions", https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm).
The newest is kept:

1. where the configured secret reference points, when that is a keyring entry the product can
   write (``keyring:NAME`` with no ``CRM_UPSELL_NAME`` override);
2. otherwise in the connection's credential cache (:mod:`crm_upsell_connector.credentials`): a 0600
   file of the product's own, or, with ``CRM_UPSELL_CREDENTIAL_KEY`` set, the shared store,
   encrypted, so that workers on several hosts all get it.

A kept token wins over the configured one unless the configured one changed since it was kept (the
operator put in a new token). Every refresh happens under the cache's lock, after reading the
newest kept token, so two processes (workers, ``check``, ``status``) never spend the same token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext

from crm_upsell_connector.credentials import CredentialCache, fingerprint
from crm_upsell_connector.errors import AuthError
from crm_upsell_connector.secrets import SecretResolver

log = logging.getLogger(__name__)

#: The name of the kept refresh token in a connection's credential cache.
KEPT_NAME = "salesforce-refresh-token"


class RefreshTokenKeeper:
    """The refresh token to spend for one connection, and what to do with a rotated one."""

    def __init__(self, ref: str, secrets: SecretResolver, cache: CredentialCache | None) -> None:
        self.ref = ref
        self._secrets = secrets
        self._cache = cache
        self._keyring = secrets.keyring_name(ref)
        self._warned = False

    def current(self) -> tuple[str, str]:
        """(the refresh token to spend now, the fingerprint of the configured one)."""
        configured = self._secrets.resolve(self.ref, what="Salesforce refresh token")
        source = fingerprint(configured)
        kept = self._cache.load(KEPT_NAME) if self._cache is not None else None
        if kept is not None and kept.source == source:
            return kept.value, source
        return configured, source

    def rotated(self, new: str, source: str) -> None:
        """Keep ``new``, the refresh token Salesforce answered in place of the one spent."""
        if self._keyring is not None:
            try:
                self._secrets.store(self._keyring, new)
            except AuthError as exc:
                log.warning(
                    "the keyring refused the rotated refresh token (%s); keeping it in the cache", exc
                )
            else:
                if self._cache is not None:
                    self._cache.forget(KEPT_NAME)  # the keyring holds the newest now
                return
        if self._cache is not None:
            self._cache.save(KEPT_NAME, new, source)
        elif not self._warned:
            self._warned = True
            log.warning(
                "Salesforce rotated the refresh token but this process has nowhere to keep it; the next "
                "run will fail with invalid_grant (run through 'crm-upsell', which keeps it)"
            )

    def where(self) -> str:
        if self._keyring is not None:
            return f"the keyring entry '{self._keyring}'"
        return self._cache.where if self._cache is not None else "nowhere"

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Held across read, refresh and save; other processes wait (in a thread: the loop runs on)."""
        lock: AbstractContextManager[None] = (
            self._cache.lock(KEPT_NAME) if self._cache is not None else nullcontext()
        )
        await asyncio.to_thread(lock.__enter__)
        try:
            yield
        finally:
            lock.__exit__(None, None, None)
