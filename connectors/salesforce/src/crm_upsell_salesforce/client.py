"""Salesforce on top of the core ``ApiClient``: the daily API share, error bodies, SOQL paging.

Every REST answer carries ``Sforce-Limit-Info: api-usage=USED/MAX`` (the org's calls in the last
24 hours). The first one seen fixes this run's allowance: ``daily_api_share`` of what the org had
left. A call that would go past it is not sent; the run stops with a :class:`QuotaError` and the
sync resumes from its checkpoints next time. ``REQUEST_LIMIT_EXCEEDED`` (the org's whole allocation
is spent) stops the run the same way. Error bodies are ``[{message, errorCode, fields}]``; the
``errorCode`` is kept on the error.
"""

from __future__ import annotations

import logging
import re
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
from crm_upsell_salesforce.auth import SalesforceAuth

log = logging.getLogger(__name__)

QUERY_BATCH = 2000  # records per query batch (Salesforce's default and maximum for REST)
COLLECTION_LIMIT = 200  # records per sObject Collections call
_BODY_SNIPPET = 300
_USAGE = re.compile(r"(?:^|[,\s])api-usage=(\d+)/(\d+)")
_CONCURRENT_WAIT_S = 2.0


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def api_usage(response: httpx.Response) -> tuple[int, int] | None:
    """(used, max) from ``Sforce-Limit-Info``, or None."""
    header = response.headers.get("Sforce-Limit-Info")
    match = _USAGE.search(header) if header else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``[{message, errorCode, fields}]`` of an error answer (a single object is accepted too)."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return []
    if isinstance(body, dict):
        body = [body]
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def error_text(error: Mapping[str, Any]) -> str:
    """``CODE: message (fields a, b)`` for one Salesforce error entry, scrubbed."""
    code = str(error.get("errorCode") or error.get("statusCode") or "") or None
    message = scrub(str(error.get("message") or "").strip())
    fields = error.get("fields")
    tail = f" (fields {', '.join(str(f) for f in fields)})" if isinstance(fields, list) and fields else ""
    return f"{code}: {message}{tail}" if code else f"{message}{tail}"


def error_code(error: Mapping[str, Any]) -> str | None:
    value = error.get("errorCode") or error.get("statusCode")
    return str(value) if value else None


def map_error(response: httpx.Response, request: RequestInfo) -> ConnectorError:
    """Salesforce's error bodies turned into the core error tree, never with a secret in the message."""
    errors = _errors(response)
    first = errors[0] if errors else {}
    code = error_code(first)
    status = response.status_code
    text = "; ".join(error_text(e) for e in errors) or scrub(response.reason_phrase or "")
    info = ResponseInfo(status_code=status, body=scrub(response.text[:_BODY_SNIPPET]), error_code=code)
    where = f"{request.method} {request.url}"

    if code == "REQUEST_LIMIT_EXCEEDED":
        message = str(first.get("message") or "")
        if "concurrent" in message.lower():
            # Too many long-running requests at once: a wait fixes it, unlike the daily allocation.
            return RateLimitError(
                f"Salesforce refused {where}: {text}",
                retry_after=_CONCURRENT_WAIT_S,
                policy=code,
                request=request,
                response=info,
            )
        return QuotaError(
            f"the org's daily Salesforce API allocation is spent (REQUEST_LIMIT_EXCEEDED: "
            f"{scrub(message)}); the run stopped and the sync resumes from its checkpoints on the next run",
            hint="the allocation is counted over a rolling 24 hours; lower daily_api_share or the sync "
            "frequency, or ask Salesforce for more API calls",
        )
    if status == 429:
        return RateLimitError(
            f"Salesforce rate limit reached on {where}: {text}",
            retry_after=retry_after_seconds(response),
            policy=code,
            request=request,
            response=info,
        )
    if status == 401:
        return AuthError(
            f"Salesforce refused the session on {where} ({text or 'unauthorized'})",
            hint="check the connected app, its policies (pre-authorised users) and the credentials",
        )
    if status == 403:
        return AuthError(
            f"Salesforce refused {where} ({text or 'forbidden'})",
            hint="the integration user needs 'API Enabled' and the permissions listed in the "
            "connector's README (connectors/salesforce/README.md)",
        )
    if status >= 500:
        return RetriableAPIError(
            f"Salesforce failed with HTTP {status} on {where}: {text}", request=request, response=info
        )
    return FatalAPIError(
        f"Salesforce rejected {where} with HTTP {status}: {text}", request=request, response=info
    )


class SalesforceClient:
    """One ``ApiClient`` on the org's ``instance_url``, with the daily share and SOQL helpers."""

    def __init__(
        self,
        *,
        auth: SalesforceAuth,
        api_version: str,
        daily_share: float,
        rate_limit_max: int = 100,
        rate_limit_interval_s: float = 1.0,
        http: HttpSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        settings = http or HttpSettings()
        self.budget = DailyBudget("Salesforce", daily_share)
        self.limiter = RateLimiter(
            rate_limit_max, rate_limit_interval_s, daily=self.budget, max_in_flight=settings.max_in_flight
        )
        self.auth = auth
        self.version = api_version
        # The base is a placeholder: every call goes to the absolute instance URL of the session.
        self.api = ApiClient(
            "http://salesforce.invalid",
            auth=auth,
            limiter=self.limiter,
            settings=settings,
            error_mapper=map_error,
            hint_parser=self._hint,
            headers={"Accept": "application/json"},
            transport=transport,
        )

    def _hint(self, response: httpx.Response) -> LimitHint:
        usage = api_usage(response)
        if usage is not None:
            self.budget.observe(*usage)
        if response.status_code == 429:
            return LimitHint(retry_after_s=retry_after_seconds(response))
        return LimitHint()

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

    async def url(self, path: str) -> str:
        """``path`` on the session's instance; ``path`` is relative to ``/services/data/vNN.0``
        unless it already starts with ``/services/`` (a ``nextRecordsUrl``)."""
        base = await self.auth.instance_url()
        if path.startswith("/services/"):
            return base + path
        return f"{base}/services/data/v{self.version}/{path.lstrip('/')}"

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except (ValueError, UnicodeDecodeError):
            raise FatalAPIError(
                f"Salesforce answered {response.request.method} {response.request.url.path} with a body "
                "that is not JSON",
                response=ResponseInfo(response.status_code, scrub(response.text[:_BODY_SNIPPET])),
            ) from None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        endpoint: str,
    ) -> Any:
        response = await self.api.request(
            method, await self.url(path), params=params, json=json, idempotent=idempotent, endpoint=endpoint
        )
        return self._json(response)

    async def get(self, path: str, params: Mapping[str, Any] | None = None, *, endpoint: str) -> Any:
        return await self.request("GET", path, params=params, endpoint=endpoint)

    async def query_pages(
        self,
        soql: str,
        *,
        resource: str = "query",
        resume: str | None = None,
        endpoint: str,
        totals: list[int] | None = None,
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str | None]]:
        """Batches of a SOQL query: (records, the ``nextRecordsUrl`` of the next batch or None).

        ``resource`` is ``query``, ``queryAll`` or ``tooling/query``; ``resume`` starts at a saved
        ``nextRecordsUrl`` instead of running the query. ``totals``, where given, receives the
        query's ``totalSize`` (the number of rows it returns in all, for progress: Query resource,
        https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm).
        """
        if resume:
            data = await self.get(resume, endpoint=f"{endpoint} next")
        else:
            data = await self.get(resource, {"q": soql}, endpoint=endpoint)
        while True:
            if not isinstance(data, dict):
                raise FatalAPIError(f"Salesforce answered the {endpoint} with an unexpected body")
            records = data.get("records")
            batch = [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []
            size = data.get("totalSize")
            if totals is not None and not totals and not resume and isinstance(size, int):
                totals.append(size)
            nxt = data.get("nextRecordsUrl")
            more = isinstance(nxt, str) and nxt.startswith("/services/") and not data.get("done", False)
            yield batch, nxt if more and isinstance(nxt, str) else None
            if not more or not isinstance(nxt, str):
                return
            data = await self.get(nxt, endpoint=f"{endpoint} next")
