"""OAuth as Zoho's accounts server and API answer it: ``POST /oauth/v2/token`` (refresh-token grant) and
the ``Authorization: Zoho-oauthtoken <token>`` check on every API call ("OAuth: Refresh access tokens",
https://www.zoho.com/crm/developer/docs/api/v8/refresh.html)."""

from __future__ import annotations

import secrets
import urllib.parse

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.state import ZohoSandbox, err

__all__ = ["authenticate", "issue_token", "routes"]


def authenticate(sb: ZohoSandbox, request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "zoho-oauthtoken" or not token.strip():
        return err("AUTHENTICATION_FAILURE", "Authentication failed", 401)
    token = token.strip()
    if secrets.compare_digest(token, sb.options.token):
        return None
    expiry = sb.tokens.get(token)
    if expiry is None or sb.now_ms() >= expiry:
        return err("INVALID_TOKEN", "invalid oauth token", 401)
    return None


def issue_token(sb: ZohoSandbox, params: dict[str, str], api_domain: str) -> Response:
    # Zoho's accounts server answers bad credentials with HTTP 200 and an ``error`` field.
    if params.get("grant_type") != "refresh_token":
        return JSONResponse({"error": "unsupported_grant_type"})
    if params.get("client_id") != sb.options.client_id:
        return JSONResponse({"error": "invalid_client"})
    if params.get("client_secret") != sb.options.client_secret:
        return JSONResponse({"error": "invalid_client"})
    if params.get("refresh_token") != sb.options.refresh_token:
        return JSONResponse({"error": "invalid_code"})
    token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
    with sb.lock:
        sb.tokens[token] = sb.now_ms() + sb.token_ttl_s * 1000
    return JSONResponse(
        {
            "access_token": token,
            "scope": "ZohoCRM.modules.ALL ZohoCRM.settings.fields.ALL ZohoCRM.users.READ ZohoCRM.coql.READ",
            "api_domain": api_domain,
            "token_type": "Bearer",
            "expires_in": sb.token_ttl_s,
        }
    )


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    """The accounts server's token endpoint (not guarded: it spends no API credits)."""

    async def token(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        params = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        for k, v in request.query_params.items():
            params.setdefault(k, v)
        response = issue_token(sb, params, f"{request.url.scheme}://{request.url.netloc}")
        sb.runtime.stats.record("POST /oauth/v2/token", response.status_code)
        return response

    return [Route("/oauth/v2/token", token, methods=["POST"])]
