"""Private-app tokens and OAuth access tokens (refresh-token grant)."""

from __future__ import annotations

import secrets
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_connector.sandbox.server import iso_ms
from crm_upsell_hubspot.sandbox.common import _error
from crm_upsell_hubspot.sandbox.state import PortalState


class AuthMixin(PortalState):
    """Bearer-token checks and the OAuth token endpoint."""

    def authenticate(self, request: Request) -> tuple[Response | None, bool]:
        """(error response or None, whether the caller is a private app with a daily limit)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            ), False
        if secrets.compare_digest(token, self.options.token):
            return None, True
        expiry = self.tokens.get(token)
        if expiry is None:
            return _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            ), False
        now = self.now_ms()
        if now >= expiry:
            ago = max(1, (now - expiry) // 1000)
            return _error(
                401,
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
                "EXPIRED_AUTHENTICATION",
                context={"expiredAt": [iso_ms(expiry)]},
            ), False
        return None, False

    def issue_token(self, form: dict[str, str]) -> Response:
        def oauth_error(status: str, message: str) -> Response:
            return JSONResponse(
                {"status": status, "message": message, "correlationId": str(uuid.uuid4())}, status_code=400
            )

        grant = form.get("grant_type")
        if grant != "refresh_token":
            return oauth_error("BAD_GRANT_TYPE", "grant_type must be refresh_token in this sandbox")
        if form.get("client_id") != self.options.client_id:
            return oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.options.client_secret:
            return oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if form.get("refresh_token") != self.options.refresh_token:
            return oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
        token = f"sbx-{secrets.token_hex(24)}"
        with self.lock:
            self.tokens[token] = self.now_ms() + self.options.access_token_ttl_s * 1000
        return JSONResponse(
            {
                "token_type": "bearer",
                "refresh_token": self.options.refresh_token,
                "access_token": token,
                "expires_in": self.options.access_token_ttl_s,
                "token_use": "access_token",
                "hub_id": 4_000_001,
                "scopes": [
                    "oauth",
                    "crm.objects.companies.read",
                    "crm.objects.companies.write",
                    "crm.objects.contacts.read",
                    "crm.objects.deals.read",
                    "crm.objects.line_items.read",
                    "crm.schemas.companies.write",
                    "crm.objects.owners.read",
                ],
            }
        )

    def expire_tokens(self) -> int:
        with self.lock:
            now = self.now_ms()
            for token in self.tokens:
                self.tokens[token] = min(self.tokens[token], now)
            return len(self.tokens)
