"""Salesforce OAuth 2.0: the JWT bearer flow, the refresh-token flow and the client-credentials flow.

Every flow posts to ``<login_url>/services/oauth2/token`` and gets an access token plus the org's
``instance_url``, which is where every API call then goes. Salesforce does not say how long a
session lives, so tokens are renewed after ``session_ttl_s`` and, whatever that is, on a 401
``INVALID_SESSION_ID``, replaying the request once (the core's ``RefreshingTokenAuth``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt

from crm_upsell_connector.credentials import CredentialCache
from crm_upsell_connector.errors import AuthError, ConfigError
from crm_upsell_connector.http.auth import AccessToken, RefreshingTokenAuth, fetch_oauth_token
from crm_upsell_connector.http.redact import register_secret
from crm_upsell_connector.http.urls import is_loopback
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_salesforce.rotation import RefreshTokenKeeper
from crm_upsell_salesforce.settings import SalesforceSettings

log = logging.getLogger(__name__)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_S = 180  # Salesforce accepts assertions that expire within three minutes
REFRESH_MARGIN_S = 120.0
_USER_ID = re.compile(r"005[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?")


def load_private_key(settings: SalesforceSettings, secrets: SecretResolver) -> str:
    """The PEM text of the JWT signing key, from a secret reference or a file."""
    if settings.private_key:
        pem = secrets.resolve(settings.private_key, what="Salesforce JWT private key")
        if "\n" not in pem and "\\n" in pem:  # a PEM squeezed onto one line in an env variable
            pem = pem.replace("\\n", "\n")
    elif settings.private_key_path:
        path = Path(settings.private_key_path).expanduser()
        try:
            pem = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"private_key_path: cannot read {path} ({type(exc).__name__})",
                hint="give the path of the PEM file whose certificate is uploaded to the connected app",
            ) from None
    else:
        raise ConfigError("auth = 'jwt' needs private_key or private_key_path")
    register_secret(pem.strip())
    if "PRIVATE KEY" not in pem:
        raise AuthError(
            "the Salesforce JWT private key is not a PEM private key",
            hint="it starts with '-----BEGIN PRIVATE KEY-----' (or 'BEGIN RSA PRIVATE KEY')",
        )
    return pem


def checked_instance_url(value: object) -> str:
    """The ``instance_url`` of a token answer: https (plain http only on loopback), host only."""
    text = str(value or "").strip().rstrip("/")
    parts = urlsplit(text)
    host = parts.hostname or ""
    if (
        not host
        or parts.scheme not in ("http", "https")
        or (parts.scheme == "http" and not is_loopback(host))
    ):
        raise AuthError(
            "the Salesforce token answer has no usable instance_url",
            hint="check login_url: it must be login.salesforce.com, test.salesforce.com or your My Domain",
        )
    return f"{parts.scheme}://{parts.netloc}"


class SalesforceAuth(RefreshingTokenAuth):
    """Access tokens from one of the three flows; ``instance_url`` rides in the token's ``extra``."""

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        private_key: str | None = None,
        client_secret: str | None = None,
        refresh_token: RefreshTokenKeeper | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        on_fetch: Callable[[], None] | None = None,
        margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        super().__init__(self._fetch_token, margin_s=margin_s, is_expired=lambda r: r.status_code == 401)
        for secret in (private_key, client_secret):
            register_secret(secret)
        self._settings = settings
        self._private_key = private_key
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._on_fetch = on_fetch
        # A client of its own: the token call must not go through this very auth flow.
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    def _form(self) -> dict[str, str]:
        s = self._settings
        assert s.client_id is not None
        if s.auth == "jwt":
            assert self._private_key is not None and s.username is not None
            now = int(time.time())
            claims = {"iss": s.client_id, "sub": s.username, "aud": s.audience, "exp": now + JWT_LIFETIME_S}
            try:
                assertion = jwt.encode(claims, self._private_key, algorithm="RS256")
            except (ValueError, TypeError, jwt.PyJWTError) as exc:
                raise AuthError(
                    f"the Salesforce JWT private key cannot sign ({type(exc).__name__})",
                    hint="it must be the RSA key whose certificate is uploaded to the connected app",
                ) from None
            return {"grant_type": JWT_GRANT, "assertion": assertion}
        if s.auth == "refresh_token":
            raise AssertionError("the refresh-token flow builds its form under the rotation lock")
        assert self._client_secret is not None
        return {
            "grant_type": "client_credentials",
            "client_id": s.client_id,
            "client_secret": self._client_secret,
        }

    async def _post(self, form: dict[str, str]) -> tuple[AccessToken, dict[str, object]]:
        if self._on_fetch is not None:
            self._on_fetch()
        return await fetch_oauth_token(
            self._http, self._settings.token_url, form, default_ttl_s=self._settings.session_ttl_s
        )

    async def _refresh(self) -> tuple[AccessToken, dict[str, object]]:
        """The refresh-token flow under the rotation lock: spend the newest kept token, keep the new one."""
        keeper = self._refresh_token
        assert keeper is not None and self._settings.client_id is not None
        async with keeper.locked():
            spend, source = keeper.current()
            form = {
                "grant_type": "refresh_token",
                "client_id": self._settings.client_id,
                "refresh_token": spend,
            }
            if self._client_secret:
                form["client_secret"] = self._client_secret
            try:
                token, body = await self._post(form)
            except AuthError as exc:
                raise AuthError(
                    f"Salesforce refused the refresh token: it was revoked, expired, or already spent "
                    f"({exc.one_line()})",
                    hint="get a new refresh token through the connected app's OAuth flow and store it "
                    f"where {keeper.ref} points ('crm-upsell auth set'); it replaces the token kept in "
                    f"{keeper.where()}. Workers on several hosts need the same CRM_UPSELL_CREDENTIAL_KEY",
                ) from None
            new = body.get("refresh_token")
            if isinstance(new, str) and new and new != spend:
                keeper.rotated(new, source)
                log.info("Salesforce rotated the refresh token; the new one is kept in %s", keeper.where())
        return token, body

    async def _fetch_token(self) -> AccessToken:
        if self._settings.auth == "refresh_token":
            token, body = await self._refresh()
        else:
            token, body = await self._post(self._form())
        instance = checked_instance_url(body.get("instance_url"))
        ttl = token.expires_at - time.time()
        expires = token.expires_at
        if ttl < 2 * self._margin_s:
            # A session shorter than twice the margin would be renewed before every request.
            expires = time.time() + ttl / 2 + self._margin_s
        extra = {**token.extra, "instance_url": instance}
        # The identity URL ends with the user's id: https://login.../id/<org id>/<user id>
        # (OAuth "Identity URLs", https://help.salesforce.com/s/articleView?id=sf.remoteaccess_using_openid.htm).
        identity = str(body.get("id") or "").rstrip("/").rsplit("/", 1)[-1]
        if _USER_ID.fullmatch(identity):
            extra["user_id"] = identity
        return AccessToken(token.value, expires, extra)

    async def instance_url(self) -> str:
        token = await self.current()
        return token.extra["instance_url"]

    async def user_id(self) -> str:
        """The id of the user the session acts as (from the token answer's identity URL)."""
        token = await self.current()
        user = token.extra.get("user_id")
        if not user:
            raise AuthError(
                "the Salesforce token answer does not say which user the connection acts as",
                hint="the connected app must return the identity URL ('id'); check its OAuth scopes",
            )
        return user

    async def aclose(self) -> None:
        await self._http.aclose()


def build_auth(
    settings: SalesforceSettings,
    secrets: SecretResolver,
    *,
    timeout_s: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    on_token_fetch: Callable[[], None] | None = None,
    credentials: CredentialCache | None = None,
) -> SalesforceAuth:
    """The auth flow for ``settings``; secrets are resolved now so that a missing one fails early."""
    private_key = client_secret = refresh_token = None
    if settings.auth == "jwt":
        private_key = load_private_key(settings, secrets)
    if settings.client_secret:
        client_secret = secrets.resolve(settings.client_secret, what="Salesforce consumer secret")
    if settings.auth == "refresh_token":
        assert settings.refresh_token is not None
        refresh_token = RefreshTokenKeeper(settings.refresh_token, secrets, credentials)
        refresh_token.current()  # a missing secret fails now, not at the first call
    return SalesforceAuth(
        settings,
        private_key=private_key,
        client_secret=client_secret,
        refresh_token=refresh_token,
        timeout_s=timeout_s,
        transport=transport,
        on_fetch=on_token_fetch,
    )
