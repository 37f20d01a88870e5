"""HubSpot on top of the core ``ApiClient``: rate-limit headers, error bodies, and paging helpers.

HubSpot reports its ten-second window in ``X-HubSpot-RateLimit-*`` headers and names the policy a 429
broke in the body (``TEN_SECONDLY_ROLLING``, ``SECONDLY`` for search, ``DAILY``). Error bodies look
like ``{status, message, correlationId, category, errors?}``; ``category`` becomes the error code.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
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
from crm_upsell_connector.http.budget import DailyBudget
from crm_upsell_connector.http.client import ApiClient, retry_after_seconds
from crm_upsell_connector.http.ratelimit import LimitHint, RateLimiter
from crm_upsell_connector.http.redact import scrub
from crm_upsell_connector.http.settings import HttpSettings

log = logging.getLogger(__name__)

LIST_LIMIT = 100  # the most HubSpot's list endpoints return per page
SEARCH_LIMIT = 200  # the most a search returns per page
BATCH_LIMIT = 100  # inputs per batch create / update
_BODY_SNIPPET = 300
_SEARCH_SLACK_S = 0.2
# How long to wait after a 429 when HubSpot gives no Retry-After (its window is rolling).
_POLICY_WAIT_S = {"TEN_SECONDLY_ROLLING": 2.0, "SECONDLY": 1.0}


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def is_search(response: httpx.Response) -> bool:
    try:
        return response.request.url.path.endswith("/search")
    except RuntimeError:  # a response built without a request (tests)
        return False


def parse_limit_hint(response: httpx.Response) -> LimitHint:
    """What a response says about HubSpot's limits.

    Search responses are left out of the ten-second window: search has its own limit and limiter.
    """
    retry_after: float | None = None
    if response.status_code == 429:
        policy = str(_body(response).get("policyName") or "")
        if policy != "DAILY":
            retry_after = retry_after_seconds(response)
            if retry_after is None:
                retry_after = _POLICY_WAIT_S.get(policy, 1.0)
    if is_search(response):
        return LimitHint(retry_after_s=retry_after)
    interval_ms = _int_header(response, "X-HubSpot-RateLimit-Interval-Milliseconds")
    return LimitHint(
        max_requests=_int_header(response, "X-HubSpot-RateLimit-Max"),
        remaining=_int_header(response, "X-HubSpot-RateLimit-Remaining"),
        interval_s=interval_ms / 1000.0 if interval_ms and interval_ms > 0 else None,
        retry_after_s=retry_after,
    )


def missing_scopes(body: Mapping[str, Any]) -> list[str]:
    """The scopes a ``MISSING_SCOPES`` answer names, wherever HubSpot put them."""
    scopes: list[str] = []
    for error in body.get("errors") or []:
        if not isinstance(error, dict):
            continue
        context = error.get("context")
        if not isinstance(context, dict):
            continue
        for key in ("requiredGranularScopes", "requiredScopes", "missingScopes", "scopes"):
            values = context.get(key)
            if isinstance(values, list):
                scopes.extend(str(v) for v in values if str(v) not in scopes)
    return scopes


def map_error(response: httpx.Response, request: RequestInfo) -> ConnectorError:
    """HubSpot's error bodies turned into the core error tree, never with a secret in the message."""
    body = _body(response)
    status = response.status_code
    category = str(body.get("category") or body.get("errorType") or "") or None
    message = scrub(str(body.get("message") or response.reason_phrase or "").strip())
    correlation = body.get("correlationId")
    info = ResponseInfo(status_code=status, body=scrub(response.text[:_BODY_SNIPPET]), error_code=category)
    where = f"{request.method} {request.url}"
    tail = f" [correlationId {correlation}]" if correlation else ""

    if status == 429:
        policy = str(body.get("policyName") or "") or None
        if policy == "DAILY":
            return QuotaError(
                "HubSpot's daily API limit for this account is spent; the sync stops here and resumes "
                "from its checkpoints on the next run",
                hint="the allowance resets at midnight in the account's time zone; lower the sync "
                "frequency or ask HubSpot for the API limit increase",
            )
        hint = parse_limit_hint(response)
        return RateLimitError(
            f"HubSpot rate limit reached ({policy or 'unknown policy'}) on {where}{tail}",
            retry_after=hint.retry_after_s,
            policy=policy,
            request=request,
            response=info,
        )
    if status == 401:
        return AuthError(
            f"HubSpot rejected the access token on {where}: {message or 'unauthorized'}{tail}",
            hint="check the private app token, or the OAuth client and refresh token "
            "('crm-upsell auth set'); a revoked app must be installed again",
        )
    if status == 403:
        if category == "MISSING_SCOPES":
            scopes = missing_scopes(body)
            named = ", ".join(scopes) if scopes else "see the HubSpot message"
            return AuthError(
                f"the HubSpot app lacks the scopes {named} needed for {where}{tail}",
                hint="add these scopes to the private app (Settings > Integrations > Private Apps) "
                "or re-authorise the OAuth app with them",
            )
        return AuthError(
            f"HubSpot refused {where} (HTTP 403 {category or ''}): {message}{tail}".replace("  ", " "),
            hint="the user or app behind the token may lack the permission",
        )
    if status >= 500:
        return RetriableAPIError(
            f"HubSpot failed with HTTP {status} on {where}: {message}{tail}",
            request=request,
            response=info,
        )
    return FatalAPIError(
        f"HubSpot rejected {where} with HTTP {status}"
        + (f" {category}" if category else "")
        + f": {message}{tail}",
        request=request,
        response=info,
    )


class HubSpotClient:
    """One ``ApiClient`` with two limiters: the account's ten-second window, and search's own."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None,
        rate_limit_max: int,
        rate_limit_interval_s: float,
        search_rate_per_s: int,
        daily_share: float = 1.0,
        http: HttpSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        settings = http or HttpSettings()
        # Private apps have a daily allowance (headers X-HubSpot-RateLimit-Daily[-Remaining]); OAuth
        # apps have none, and then the budget never learns an allowance and never stops a run.
        self.budget = DailyBudget("HubSpot", daily_share)
        self.limiter = RateLimiter(
            rate_limit_max, rate_limit_interval_s, max_in_flight=settings.max_in_flight, daily=self.budget
        )
        # HubSpot counts arrivals, we count sends: a little slack keeps latency jitter from a 429.
        self.search_limiter = RateLimiter(
            search_rate_per_s, 1.0 + _SEARCH_SLACK_S, max_in_flight=settings.max_in_flight, daily=self.budget
        )
        self.api = ApiClient(
            base_url,
            auth=auth,
            limiter=self.limiter,
            settings=settings,
            error_mapper=map_error,
            hint_parser=self._hint,
            headers={"Accept": "application/json"},
            transport=transport,
        )
        self.auth = auth

    def _hint(self, response: httpx.Response) -> LimitHint:
        daily = _int_header(response, "X-HubSpot-RateLimit-Daily")
        remaining = _int_header(response, "X-HubSpot-RateLimit-Daily-Remaining")
        if daily is not None and remaining is not None and daily > 0:
            self.budget.observe(max(0, daily - remaining), daily)
        return parse_limit_hint(response)

    @property
    def stats(self) -> CallStats:
        return self.api.stats

    def count_call(self, endpoint: str) -> None:
        """Count a call made outside the ``ApiClient`` (the OAuth token endpoint)."""
        self.api.stats.calls += 1
        self.api.stats.by_endpoint[endpoint] = self.api.stats.by_endpoint.get(endpoint, 0) + 1

    async def close(self) -> None:
        await self.api.close()
        aclose = getattr(self.auth, "aclose", None)
        if aclose is not None:
            await aclose()

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            raise FatalAPIError(
                f"HubSpot answered {response.request.method} {response.request.url.path} with a body "
                "that is not JSON",
                response=ResponseInfo(response.status_code, scrub(response.text[:_BODY_SNIPPET])),
            ) from None
        if not isinstance(body, dict):
            raise FatalAPIError(f"HubSpot answered {response.request.url.path} with an unexpected body")
        return body

    async def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, endpoint: str | None = None
    ) -> dict[str, Any]:
        response = await self.api.request("GET", path, params=params, endpoint=endpoint)
        return self._json(response)

    async def post(
        self,
        path: str,
        body: Any,
        *,
        idempotent: bool,
        endpoint: str | None = None,
        search: bool = False,
    ) -> dict[str, Any]:
        response = await self.api.request(
            "POST",
            path,
            json=body,
            idempotent=idempotent,
            endpoint=endpoint,
            limiter=self.search_limiter if search else None,
        )
        return self._json(response)

    async def patch(self, path: str, body: Any, *, endpoint: str | None = None) -> dict[str, Any]:
        """A partial update (idempotent: the same fields get the same values again)."""
        response = await self.api.request("PATCH", path, json=body, idempotent=True, endpoint=endpoint)
        return self._json(response)

    async def search(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of ``POST /crm/v3/objects/{type}/search`` (a read: safe to retry)."""
        return await self.post(
            f"/crm/v3/objects/{object_type}/search",
            dict(body),
            idempotent=True,
            endpoint=f"POST /crm/v3/objects/{object_type}/search",
            search=True,
        )

    async def list_pages(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        after: str | None = None,
        endpoint: str | None = None,
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str | None]]:
        """Pages of a list endpoint: (results, the ``after`` token of the next page or None)."""
        while True:
            query = dict(params)
            if after:
                query["after"] = after
            data = await self.get(path, query, endpoint=endpoint or f"GET {path}")
            after = next_after(data)
            yield results_of(data), after
            if not after:
                return

    async def search_pages(
        self, object_type: str, body: Mapping[str, Any]
    ) -> AsyncIterator[tuple[list[dict[str, Any]], int]]:
        """Pages of one search by ``after`` offset: (results, total). For small result sets only:
        a search cannot page past its cap (10,000); ``read`` pages by modification stamp instead."""
        after: str | None = None
        while True:
            query = dict(body)
            if after:
                query["after"] = after
            data = await self.search(object_type, query)
            results = results_of(data)
            total = data.get("total")
            yield results, total if isinstance(total, int) else len(results)
            after = next_after(data)
            if not after or not results:
                return


def results_of(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    results = data.get("results")
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def next_after(data: Mapping[str, Any]) -> str | None:
    paging = data.get("paging")
    if not isinstance(paging, dict):
        return None
    nxt = paging.get("next")
    if not isinstance(nxt, dict):
        return None
    after = nxt.get("after")
    return str(after) if after not in (None, "") else None


def error_messages(errors: Any) -> list[tuple[dict[str, Any], str]]:
    """(error, one-line message) for each entry of a batch answer's ``errors``."""
    out: list[tuple[dict[str, Any], str]] = []
    for error in errors or []:
        if not isinstance(error, dict):
            continue
        message = scrub(str(error.get("message") or error.get("category") or "failed"))
        category = error.get("category")
        out.append((error, f"{category}: {message}" if category else message))
    return out


def context_values(error: Mapping[str, Any], *keys: str) -> list[str]:
    context = error.get("context")
    if not isinstance(context, dict):
        return []
    values: list[str] = []
    for key in keys:
        found = context.get(key)
        if isinstance(found, list):
            values.extend(str(v) for v in found)
        elif isinstance(found, str | int):
            values.append(str(found))
    return values
