"""Authentication as ``httpx.Auth`` flows: a static bearer token, and OAuth access tokens that
refresh before they expire and on a 401, replaying the request once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass

import httpx

from crm_upsell_connector.errors import AuthError
from crm_upsell_connector.http.redact import register_secret, scrub


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # time.time() seconds; inf for tokens that do not expire
    extra: dict[str, str]


TokenFetcher = Callable[[], Awaitable[AccessToken]]


class StaticTokenAuth(httpx.Auth):
    """A long-lived token (HubSpot private app, for example)."""

    def __init__(self, token: str, scheme: str = "Bearer") -> None:
        register_secret(token)
        self._header = f"{scheme} {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class RefreshingTokenAuth(httpx.Auth):
    """Short-lived access tokens from ``fetch``: refreshed ``margin_s`` before expiry and on 401.

    ``is_expired`` lets a connector recognise its CRM's own "token expired" answers (Zoho's
    ``INVALID_TOKEN``, Salesforce's ``INVALID_SESSION_ID``) besides a plain 401.
    """

    def __init__(
        self,
        fetch: TokenFetcher,
        *,
        scheme: str = "Bearer",
        margin_s: float = 120.0,
        is_expired: Callable[[httpx.Response], bool] | None = None,
    ) -> None:
        self._fetch = fetch
        self._scheme = scheme
        self._margin_s = margin_s
        self._is_expired = is_expired or (lambda r: r.status_code == 401)
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @property
    def token(self) -> AccessToken | None:
        return self._token

    async def current(self, *, force: bool = False, stale: str | None = None) -> AccessToken:
        async with self._lock:
            token = self._token
            fresh = token is not None and token.expires_at - self._margin_s > time.time()
            # Another request may already have refreshed the token this one failed with.
            if token is not None and fresh and not (force and token.value == stale):
                return token
            token = await self._fetch()
            register_secret(token.value)
            self._token = token
            self.refreshes += 1
            return token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.current()
        request.headers["Authorization"] = f"{self._scheme} {token.value}"
        response = yield request
        if response.is_error:
            # ``is_expired`` may look at the body (Zoho's INVALID_TOKEN); error bodies are small.
            await response.aread()
        if self._is_expired(response):
            token = await self.current(force=True, stale=token.value)
            request.headers["Authorization"] = f"{self._scheme} {token.value}"
            yield request


async def fetch_oauth_token(
    client: httpx.AsyncClient,
    token_url: str,
    form: dict[str, str],
    *,
    default_ttl_s: float = 1800.0,
) -> tuple[AccessToken, dict[str, object]]:
    """POST an OAuth token request (refresh-token, client-credentials, JWT bearer...).

    Returns the access token and the whole response body (the caller may need ``instance_url``,
    ``api_domain`` or a rotated ``refresh_token``). Failures raise :class:`AuthError` without secrets.
    """
    for key in ("client_secret", "refresh_token", "assertion", "client_assertion"):
        register_secret(form.get(key))
    try:
        response = await client.post(token_url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise AuthError(
            f"could not reach the token endpoint {scrub(token_url)}: {type(exc).__name__}",
            hint="check the network and the configured auth host",
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        reason = ""
        if isinstance(body, dict):
            reason = str(body.get("error_description") or body.get("message") or body.get("error") or "")
        raise AuthError(
            f"the token endpoint refused the credentials (HTTP {response.status_code}"
            + (f": {scrub(reason)}" if reason else "")
            + ")",
            hint="check the client id, client secret and refresh token ('crm-upsell auth set')",
        )
    value = str(body["access_token"])
    register_secret(value)
    if isinstance(body.get("refresh_token"), str):
        register_secret(str(body["refresh_token"]))
    try:
        ttl = float(body.get("expires_in", default_ttl_s))
    except (TypeError, ValueError):
        ttl = default_ttl_s
    extra = {k: str(v) for k, v in body.items() if k in ("instance_url", "api_domain", "token_type", "scope")}
    return AccessToken(value=value, expires_at=time.time() + ttl, extra=extra), body
