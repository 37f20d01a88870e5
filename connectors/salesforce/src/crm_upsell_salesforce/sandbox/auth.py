"""OAuth 2.0 token endpoint (JWT bearer, refresh token, client credentials) and session checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.common import (
    error_response,
)
from crm_upsell_salesforce.sandbox.keys import sandbox_keypair


class AuthApi(OrgBase):
    """``/services/oauth2/token`` and the ``Authorization`` header of every API call."""

    def expire_tokens(self) -> int:
        with self.lock:
            now = self.now_ms()
            for token in self.tokens:
                self.tokens[token] = min(self.tokens[token], now)
            return len(self.tokens)

    # -- auth

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() in ("bearer", "oauth") and token:
            if secrets.compare_digest(token, self.options.token):
                return None
            expiry = self.tokens.get(token)
            if expiry is not None and self.now_ms() < expiry:
                return None
        response = error_response(401, "INVALID_SESSION_ID", "Session expired or invalid")
        response.headers["WWW-Authenticate"] = "Token"
        return response

    def issue_token(self, form: dict[str, str], instance_url: str) -> Response:
        def oauth_error(error: str, description: str, status: int = 400) -> Response:
            return JSONResponse({"error": error, "error_description": description}, status_code=status)

        grant = form.get("grant_type", "")
        rotated: str | None = None
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assertion = form.get("assertion", "")
            if not assertion:
                return oauth_error("invalid_grant", "invalid assertion")
            try:
                claims = jwt.decode(
                    assertion,
                    self.jwt_public_key or sandbox_keypair().public_pem,
                    algorithms=["RS256"],
                    options={"require": ["exp", "iss", "aud", "sub"], "verify_aud": False},
                    leeway=5,
                )
            except jwt.ExpiredSignatureError:
                return oauth_error("invalid_grant", "expired assertion")
            except jwt.PyJWTError:
                return oauth_error("invalid_grant", "invalid assertion")
            if claims.get("iss") != self.options.client_id:
                return oauth_error("invalid_client_id", "client identifier invalid")
            audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
            if not any(isinstance(a, str) and a.startswith("http") for a in audiences):
                return oauth_error("invalid_grant", "audience is invalid")
            if not str(claims.get("sub") or "").strip():
                return oauth_error("invalid_grant", "user hasn't approved this consumer")
        elif grant in ("refresh_token", "client_credentials"):
            if form.get("client_id") != self.options.client_id:
                return oauth_error("invalid_client_id", "client identifier invalid")
            if not secrets.compare_digest(form.get("client_secret", ""), self.options.client_secret):
                return oauth_error("invalid_client", "invalid client credentials")
            if grant == "refresh_token":
                presented = form.get("refresh_token", "")
                with self.lock:
                    known = any(secrets.compare_digest(presented, t) for t in self.refresh_tokens)
                    if not known:
                        return oauth_error("invalid_grant", "expired access/refresh token")
                    # Refresh token rotation (Help, "OAuth 2.0 Refresh Token Flow for Renewed
                    # Sessions", remoteaccess_oauth_refresh_token_flow.htm): each use answers a new
                    # refresh token and the previous one is invalidated at once.
                    if self.rotate_refresh_tokens:
                        self.refresh_tokens.discard(presented)
                        rotated = f"5Aep{secrets.token_urlsafe(60)}"
                        self.refresh_tokens.add(rotated)
        else:
            return oauth_error("unsupported_grant_type", "grant type not supported")
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        with self.lock:
            issued = self.now_ms()
            self.tokens[token] = issued + self.options.access_token_ttl_s * 1000
        identity = f"{instance_url}/id/{self.org_id}/{self.admin_user}"
        issued_at = str(issued)
        signature = base64.b64encode(
            hmac.new(
                self.options.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        return JSONResponse(
            {
                "access_token": token,
                "scope": "api",
                "instance_url": instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": signature,
                **({"refresh_token": rotated} if rotated else {}),
            }
        )

    def revoke_refresh_tokens(self) -> None:
        """What a user or admin revoking the app's access does: every refresh token stops working."""
        with self.lock:
            self.refresh_tokens.clear()

    # -- SOQL
