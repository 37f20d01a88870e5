"""Zoho CRM on top of the core ``ApiClient``: the API host from the token, error bodies, credits.

Zoho meters **API credits** per rolling 24 hours and caps **concurrent** calls per app (Free 5,
Standard 10, Professional 15, Enterprise 20, Ultimate 25); over either it answers 429 (or a
``LIMIT_EXCEEDED`` body). Each call's credits are counted here (:data:`CREDITS`); a run stops with
:class:`~crm_upsell_connector.errors.QuotaError` before a call would take it past the configured
``credits_per_run``. Error bodies look like ``{code, details, message, status}``; ``code`` is kept as
the error code.

Credits per call, from Zoho's API-limits table (v8):

=====================================================  =========================================
call                                                   credits
=====================================================  =========================================
``GET /{module}`` (records, up to 200 a page)          1
``GET /{module}/deleted``                              1
``GET /{module}/actions/count``                        1 (counted like a records call)
``GET /users``                                         1
``GET`` / ``POST /settings/fields``                    1
``POST`` / ``PUT /{module}`` (up to 100 records)       1
``POST /coql``                                         1 (LIMIT 1-200), 2 (201-1000), 3 (1001-2000)
``POST /oauth/v2/token`` (accounts server)             0: not a CRM API call
=====================================================  =========================================
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from crm_upsell_connector.connector import CallStats
from crm_upsell_connector.errors import (
    AuthError,
    ConnectorError,
    FatalAPIError,
    QuotaError,
    RateLimitError,
    RequestInfo,
    ResponseInfo,
    RetriableAPIError,
)
from crm_upsell_connector.http.client import ApiClient, retry_after_seconds
from crm_upsell_connector.http.ratelimit import LimitHint, RateLimiter
from crm_upsell_connector.http.redact import scrub
from crm_upsell_connector.http.settings import HttpSettings
from crm_upsell_zoho.auth import ZohoOAuth

log = logging.getLogger(__name__)

PAGE_LIMIT = 200  # records per GET page (Zoho's maximum)
WRITE_LIMIT = 100  # records per insert / update call
PAGE_PARAM_MAX_RECORDS = 2000  # past this many records a read must page by page_token
_BODY_SNIPPET = 300
RATE_LIMIT_CODES = frozenset({"LIMIT_EXCEEDED", "TOO_MANY_REQUESTS", "API_LIMIT_EXCEEDED"})
# A 429 with this code: the org's API credits are spent (concurrency limits answer TOO_MANY_REQUESTS).
CREDITS_EXHAUSTED = "LIMIT_EXCEEDED"
#: Credits per kind of call (see the module docstring); COQL is priced by its LIMIT.
CREDITS: dict[str, int] = {
    "records": 1,
    "deleted": 1,
    "users": 1,
    "fields": 1,
    "write": 1,
    "coql": 1,
}


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def zoho_error_fields(body: Mapping[str, Any]) -> tuple[str | None, str, Any]:
    """(code, message, details) of a Zoho error body, or of its first ``data`` entry."""
    source: Mapping[str, Any] = body
    if "code" not in body and isinstance(body.get("data"), list) and body["data"]:
        first = body["data"][0]
        if isinstance(first, dict):
            source = first
    code = source.get("code")
    message = scrub(str(source.get("message") or "").strip())
    return (str(code) if code else None), message, source.get("details")


class UnknownFieldError(FatalAPIError):
    """Zoho refused a request because it names a field the organisation does not have."""

    def __init__(self, message: str, *, api_name: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.api_name = api_name


class PermissionDenied(AuthError):
    """403 ``NO_PERMISSION``: the API user's profile may not do this (for example list all notes)."""

    def __init__(self, message: str, *, code: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.code = code


def _rate_limited(response: httpx.Response) -> bool:
    """A 429, or a ``LIMIT_EXCEEDED`` / ``TOO_MANY_REQUESTS`` body outside a 4xx validation error
    (a 400 ``LIMIT_EXCEEDED`` means too many fields or records in one request, not a rate limit)."""
    if response.status_code == 429:
        return True
    if response.status_code < 500:
        return False
    return zoho_error_fields(_body(response))[0] in RATE_LIMIT_CODES


def parse_limit_hint(response: httpx.Response) -> LimitHint:
    """A 429 (or ``LIMIT_EXCEEDED``) pauses everyone for ``Retry-After`` (or a second)."""
    if _rate_limited(response):
        wait = retry_after_seconds(response)
        return LimitHint(retry_after_s=1.0 if wait is None else wait)
    return LimitHint()


def map_error(response: httpx.Response, request: RequestInfo) -> ConnectorError:
    """Zoho's error bodies turned into the core error tree, never with a secret in the message."""
    body = _body(response)
    status = response.status_code
    code, message, details = zoho_error_fields(body)
    info = ResponseInfo(status_code=status, body=scrub(response.text[:_BODY_SNIPPET]), error_code=code)
    where = f"{request.method} {request.url}"
    said = f"{code}: {message}" if code and message else (code or message or response.reason_phrase)
    if _rate_limited(response):
        wait = retry_after_seconds(response)
        return RateLimitError(
            f"Zoho limit reached ({said}) on {where}",
            retry_after=wait,
            policy=code,
            request=request,
            response=info,
        )
    if status == 401:
        if code == "OAUTH_SCOPE_MISMATCH":
            return AuthError(
                f"the Zoho client lacks a scope needed for {where}",
                hint="re-create the refresh token with the scopes listed in the connector's README",
            )
        return AuthError(
            f"Zoho rejected the access token on {where}: {said}",
            hint="check the client id, client secret and refresh token ('crm-upsell auth set') and "
            "the data_centre",
        )
    if status == 403 and code == "NO_PERMISSION":
        return PermissionDenied(
            f"Zoho refused {where}: the integration user's profile lacks a permission ({said})",
            code=code,
            hint="give the integration user's profile the permission named in the connector's README",
        )
    if status == 403:
        return AuthError(
            f"Zoho refused {where} (HTTP 403 {said})",
            hint="the user behind the refresh token may lack the permission (profile) for this module",
        )
    if status >= 500:
        return RetriableAPIError(
            f"Zoho failed with HTTP {status} on {where}: {said}", request=request, response=info
        )
    extra = ""
    if isinstance(details, dict) and details.get("api_name"):
        api_name = scrub(str(details["api_name"]))
        extra = f" (field {api_name})"
        if code == "INVALID_DATA" and details.get("param_name") == "fields":
            return UnknownFieldError(
                f"Zoho rejected {where} with HTTP {status}: {said}{extra}",
                api_name=api_name,
                request=request,
                response=info,
            )
    return FatalAPIError(
        f"Zoho rejected {where} with HTTP {status}: {said}{extra}", request=request, response=info
    )


@dataclass
class CreditMeter:
    """API credits spent by one connector (one run), against an optional cap."""

    cap: int | None = None
    used: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def reserve(self, kind: str, credits: int) -> None:
        """Refuse a call that would take the run past the cap."""
        if self.cap is not None and self.used + credits > self.cap:
            raise QuotaError(
                f"this run has used {self.used} of its {self.cap} Zoho API credits; the next call "
                f"({kind}, {credits} credit{'s' if credits != 1 else ''}) would exceed the cap. The sync "
                "stops here and resumes from its checkpoints on the next run",
                hint="raise credits_per_run in the connection settings, or run again later",
            )
        # Counted now, not when the answer comes: calls in flight at once must not all pass the check.
        self.used += credits

    def spend(self, kind: str, credits: int) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + credits


class ZohoClient:
    """One ``ApiClient`` aimed at the ``api_domain`` of the token, with a credit meter."""

    def __init__(
        self,
        auth: ZohoOAuth,
        *,
        api_version: str,
        max_concurrency: int,
        rate_limit_max: int,
        rate_limit_interval_s: float,
        credits_per_run: int | None,
        http: HttpSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        settings = http or HttpSettings()
        self.auth = auth
        self.api_version = api_version
        self.credits = CreditMeter(cap=credits_per_run)
        self.limiter = RateLimiter(
            rate_limit_max,
            rate_limit_interval_s,
            max_in_flight=max(1, min(max_concurrency, settings.max_in_flight)),
        )
        # The host is only known once a token names it: requests use absolute URLs.
        self.api = ApiClient(
            "https://zoho.invalid",
            auth=auth,
            limiter=self.limiter,
            settings=settings,
            error_mapper=map_error,
            hint_parser=parse_limit_hint,
            headers={"Accept": "application/json"},
            transport=transport,
        )

    @property
    def stats(self) -> CallStats:
        return self.api.stats

    def count_call(self, endpoint: str) -> None:
        """Count a call made outside the ``ApiClient`` (the OAuth token endpoint)."""
        self.api.stats.calls += 1
        self.api.stats.by_endpoint[endpoint] = self.api.stats.by_endpoint.get(endpoint, 0) + 1

    async def close(self) -> None:
        await self.api.close()
        await self.auth.aclose()

    def path(self, rest: str) -> str:
        """``/crm/v8/<rest>``."""
        return f"/crm/{self.api_version}/{rest.lstrip('/')}"

    async def request(
        self,
        method: str,
        rest: str,
        *,
        kind: str,
        credits: int | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        endpoint: str | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) of one call; 204 and 304 give an empty body."""
        cost = CREDITS[kind] if credits is None else credits
        self.credits.reserve(kind, cost)
        base = await self.auth.base_url()
        path = self.path(rest)
        try:
            response = await self.api.request(
                method,
                base + path,
                params=params,
                json=json_body,
                headers=headers,
                idempotent=idempotent,
                endpoint=endpoint or f"{method.upper()} {path.split('?')[0]}",
                ok_statuses=(304, *ok_statuses),
            )
        except RateLimitError as exc:
            if exc.status_code == 429 and exc.policy == CREDITS_EXHAUSTED:
                # Still refused after every retry: the org's credits are spent, and retrying for
                # hours would only add to the pressure. Stop like a quota stop; the next run resumes.
                raise QuotaError(
                    "Zoho refuses further API calls: the org's API credits for the rolling 24 hours "
                    f"are used up ({CREDITS_EXHAUSTED} on {method.upper()} {path.split('?')[0]}); the sync "
                    "stops here and resumes from its checkpoints on the next run",
                    hint="lower credits_per_run so that other integrations keep room, or add API credits "
                    "to the Zoho org",
                ) from None
            raise
        self.credits.spend(kind, cost)
        return response.status_code, self._json(response, method, path)

    @staticmethod
    def _json(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
        if response.status_code in (204, 304) or not response.content:
            return {}
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            raise FatalAPIError(
                f"Zoho answered {method} {path} with a body that is not JSON",
                response=ResponseInfo(response.status_code, scrub(response.text[:_BODY_SNIPPET])),
            ) from None
        if not isinstance(body, dict):
            raise FatalAPIError(f"Zoho answered {method} {path} with an unexpected body")
        return body


def data_of(body: Mapping[str, Any], key: str = "data") -> list[dict[str, Any]]:
    items = body.get(key)
    return [r for r in items if isinstance(r, dict)] if isinstance(items, list) else []


def info_of(body: Mapping[str, Any]) -> dict[str, Any]:
    info = body.get("info")
    return info if isinstance(info, dict) else {}
