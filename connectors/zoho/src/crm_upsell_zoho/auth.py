"""Zoho OAuth: access tokens from a refresh token (self client or server-based client).

``POST {accounts server}/oauth/v2/token`` with ``grant_type=refresh_token`` returns a one-hour access
token and the ``api_domain`` of the organisation's data centre, which every API call then goes to.
Requests carry ``Authorization: Zoho-oauthtoken <token>``. The token is refreshed two minutes before
it expires, and when Zoho answers 401 ``INVALID_TOKEN`` (revoked or expired early): the request is
then replayed once with the new token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

import httpx

from crm_upsell_connector.errors import AuthError
from crm_upsell_connector.http.auth import AccessToken, RefreshingTokenAuth, fetch_oauth_token
from crm_upsell_connector.http.redact import register_secret
from crm_upsell_connector.http.urls import check_url
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_zoho.settings import ZohoSettings

ACCESS_TOKEN_TTL_S = 3600.0  # Zoho's access tokens: one hour
REFRESH_MARGIN_S = 120.0
SCHEME = "Zoho-oauthtoken"
#: 401 codes that mean "this access token is no good": worth one refresh and a replay.
EXPIRED_CODES = frozenset({"INVALID_TOKEN", "AUTHENTICATION_FAILURE"})


def error_code(response: httpx.Response) -> str | None:
    """The ``code`` of a Zoho error body (``{code, details, message, status}``), if any."""
    try:
        body = json.loads(response.content or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict):
        code = body.get("code")
        if code is None and isinstance(body.get("data"), list) and body["data"]:
            first = body["data"][0]
            code = first.get("code") if isinstance(first, dict) else None
        return str(code) if code else None
    return None


def token_ttl_s(body: Mapping[str, object]) -> float:
    """Seconds an access token lives, from Zoho's token response ("OAuth: Refresh access tokens",
    https://www.zoho.com/crm/developer/docs/api/v8/refresh.html): current responses give
    ``expires_in`` in seconds; older ones give ``expires_in`` in milliseconds beside ``expires_in_sec``
    in seconds, which then wins. Missing or unreadable: one hour."""
    for key in ("expires_in_sec", "expires_in"):
        raw = body.get(key)
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        if value > 0:
            return value
    return ACCESS_TOKEN_TTL_S


def token_expired(response: httpx.Response) -> bool:
    """Whether a response says the access token is expired or invalid (so refresh and replay)."""
    if response.status_code != 401:
        return False
    code = error_code(response)
    return code is None or code in EXPIRED_CODES


class ZohoOAuth(RefreshingTokenAuth):
    """The refresh-token flow against ``{accounts server}/oauth/v2/token``."""

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
        api_domain_override: str | None = None,
    ) -> None:
        super().__init__(self._fetch_token, scheme=SCHEME, margin_s=margin_s, is_expired=token_expired)
        register_secret(client_secret)
        register_secret(refresh_token)
        self._margin = margin_s
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._on_fetch = on_fetch
        self._override = api_domain_override
        self.api_domain: str | None = api_domain_override
        # A client of its own: the token call must not go through this very auth flow.
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def _fetch_token(self) -> AccessToken:
        if self._on_fetch is not None:
            self._on_fetch()
        try:
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
        except AuthError as exc:
            # Zoho answers a client or token from another data centre like a wrong one.
            raise AuthError(
                exc.message,
                hint="check the client id, client secret and refresh token ('crm-upsell auth set') "
                f"and that data_centre matches where the organisation lives (asked {self._token_url})",
            ) from None
        if self._override is None:
            domain = body.get("api_domain")
            if not isinstance(domain, str) or not domain:
                raise AuthError(
                    "Zoho's token response names no api_domain",
                    hint="check the data_centre setting (accounts server) and the client's type",
                )
            try:
                self.api_domain = check_url(
                    domain, what="the api_domain Zoho returned", example="https://www.zohoapis.eu"
                )
            except ValueError as exc:
                raise AuthError(str(exc)) from None
        ttl = token_ttl_s(body)
        token = AccessToken(token.value, time.time() + ttl, token.extra)
        if ttl < 2 * self._margin:
            # A token shorter-lived than twice the margin would be refreshed before every request:
            # refresh it at half its life instead.
            return AccessToken(token.value, time.time() + ttl / 2 + self._margin, token.extra)
        return token

    async def base_url(self) -> str:
        """The API host to call: known once a token has been fetched."""
        if self.api_domain is None:
            await self.current()
        assert self.api_domain is not None  # set by the fetch or the override
        return self.api_domain

    async def aclose(self) -> None:
        await self._http.aclose()


def build_auth(
    settings: ZohoSettings,
    secrets: SecretResolver,
    *,
    timeout_s: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    on_token_fetch: Callable[[], None] | None = None,
) -> ZohoOAuth:
    """The auth flow for ``settings``; secrets are resolved now so that a missing one fails early."""
    return ZohoOAuth(
        token_url=settings.token_url,
        client_id=settings.client_id,
        client_secret=secrets.resolve(settings.client_secret, what="Zoho OAuth client secret"),
        refresh_token=secrets.resolve(settings.refresh_token, what="Zoho OAuth refresh token"),
        timeout_s=timeout_s,
        transport=transport,
        on_fetch=on_token_fetch,
        api_domain_override=settings.api_domain,
    )
