"""HubSpot authentication: a private app's static token, or OAuth access tokens from a refresh token.

HubSpot OAuth access tokens live 30 minutes; :class:`HubSpotOAuth` refreshes them two minutes before
they expire and on a 401 (replaying the request once), through the core's ``RefreshingTokenAuth``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.http.auth import (
    AccessToken,
    RefreshingTokenAuth,
    StaticTokenAuth,
    fetch_oauth_token,
)
from crm_upsell_connector.http.redact import register_secret
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_hubspot.settings import HubSpotSettings

ACCESS_TOKEN_TTL_S = 1800.0  # HubSpot's access tokens: 30 minutes
REFRESH_MARGIN_S = 120.0


class HubSpotOAuth(RefreshingTokenAuth):
    """OAuth refresh-token flow against HubSpot's ``/oauth/v1/token``."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        on_fetch: Callable[[], None] | None = None,
        margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        super().__init__(self._fetch_token, margin_s=margin_s)
        self._margin = margin_s
        register_secret(client_secret)
        register_secret(refresh_token)
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._on_fetch = on_fetch
        # A client of its own: the token call must not go through this very auth flow.
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def _fetch_token(self) -> AccessToken:
        if self._on_fetch is not None:
            self._on_fetch()
        token, body = await fetch_oauth_token(
            self._http,
            self._token_url,
            {
                "grant_type": "refresh_token",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "refresh_token": self._refresh_token,
            },
            default_ttl_s=ACCESS_TOKEN_TTL_S,
        )
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = rotated
        ttl = token.expires_at - time.time()
        if ttl < 2 * self._margin:
            # A token shorter-lived than twice the margin would be refreshed before every request:
            # refresh it at half its life instead.
            return AccessToken(token.value, time.time() + ttl / 2 + self._margin, token.extra)
        return token

    async def aclose(self) -> None:
        await self._http.aclose()


def build_auth(
    settings: HubSpotSettings,
    secrets: SecretResolver,
    *,
    timeout_s: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    on_token_fetch: Callable[[], None] | None = None,
) -> httpx.Auth:
    """The auth flow for ``settings``; secrets are resolved now so that a missing one fails early."""
    if settings.auth == "private_app":
        if not settings.token:
            raise ConfigError("auth = 'private_app' needs token = 'keyring:NAME'")
        return StaticTokenAuth(secrets.resolve(settings.token, what="HubSpot private app token"))
    if not (settings.client_id and settings.client_secret and settings.refresh_token):
        raise ConfigError("auth = 'oauth' needs client_id, client_secret and refresh_token")
    return HubSpotOAuth(
        token_url=settings.oauth_token_url,
        client_id=settings.client_id,
        client_secret=secrets.resolve(settings.client_secret, what="HubSpot OAuth client secret"),
        refresh_token=secrets.resolve(settings.refresh_token, what="HubSpot OAuth refresh token"),
        timeout_s=timeout_s,
        transport=transport,
        on_fetch=on_token_fetch,
    )
