"""The one HTTP client every connector uses: rate limiting, retries, error mapping, call counts.

Retries (tenacity) cover 429, 5xx and transport failures, honour ``Retry-After`` and add jitter.
A write that is not idempotent is retried only where the request surely never reached the CRM
(a 429, or a connection that could not be opened); anything else is left to the outbox to settle.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from crm_upsell_connector.connector import CallStats
from crm_upsell_connector.errors import (
    APIError,
    AuthError,
    ConnectorError,
    FatalAPIError,
    RateLimitError,
    RequestInfo,
    ResponseInfo,
    RetriableAPIError,
)
from crm_upsell_connector.http.ratelimit import LimitHint, RateLimiter
from crm_upsell_connector.http.redact import redact_url, scrub
from crm_upsell_connector.http.settings import HttpSettings

log = logging.getLogger(__name__)

ErrorMapper = Callable[[httpx.Response, RequestInfo], ConnectorError | None]
HintParser = Callable[[httpx.Response], LimitHint]
_BODY_SNIPPET = 300


#: the longest wait a ``Retry-After`` can ask for before it is taken as this long (seconds)
RETRY_AFTER_CEILING_S = 900.0


def retry_after_seconds(
    response: httpx.Response, *, now: datetime | None = None, ceiling: float = RETRY_AFTER_CEILING_S
) -> float | None:
    """The wait a response's ``Retry-After`` asks for, in seconds (0 to ``ceiling``), else ``None``.

    RFC 9110 section 10.2.3 allows delay-seconds (``120``) or an HTTP-date (``Fri, 31 Dec 1999
    23:59:59 GMT``, in any of the three formats of section 5.6.7). A date is measured from the
    response's own ``Date`` header when it has a valid one (so a client clock that is off does not
    matter), else from ``now`` (default: this machine's clock). A date in the past means "now";
    anything unreadable is ignored (``None``), and a wait beyond ``ceiling`` is cut to it.
    """
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), ceiling)
    try:
        seconds = float(text)  # not RFC 9110, but some servers send "1.5"
    except ValueError:
        pass
    else:
        return min(max(0.0, seconds), ceiling) if math.isfinite(seconds) else None
    at = _http_date(text)
    if at is None:
        return None
    base = _http_date(response.headers.get("Date")) or now or datetime.now(UTC)
    return min(max(0.0, (at - base).total_seconds()), ceiling)


def _http_date(raw: str | None) -> datetime | None:
    """An HTTP-date (IMF-fixdate, RFC 850 or asctime) as an aware UTC datetime, else ``None``."""
    if not raw:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    # HTTP-dates are always GMT (RFC 9110 section 5.6.7); a naive result means "-0000" was given.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def default_error(response: httpx.Response, request: RequestInfo) -> ConnectorError:
    """The error for a failed response when the connector has nothing more specific to say."""
    body = scrub(response.text[:_BODY_SNIPPET])
    info = ResponseInfo(status_code=response.status_code, body=body)
    where = f"{request.method} {request.url}"
    status = response.status_code
    if status == 429:
        return RateLimitError(
            f"rate limited on {where}",
            retry_after=retry_after_seconds(response),
            request=request,
            response=info,
        )
    if status >= 500:
        return RetriableAPIError(
            f"the CRM failed with HTTP {status} on {where}", request=request, response=info
        )
    if status in (401, 403):
        return AuthError(
            f"the CRM refused access (HTTP {status}) on {where}: {body}",
            hint="check the credentials and the scopes granted to the app",
        )
    return FatalAPIError(
        f"the CRM rejected {where} with HTTP {status}: {body}", request=request, response=info
    )


class _WaitRetryAfter(wait_base):
    """Wait what the CRM asked for when it said; otherwise exponential backoff with jitter."""

    def __init__(self, fallback: wait_base, ceiling: float = RETRY_AFTER_CEILING_S) -> None:
        self.fallback = fallback
        self.ceiling = ceiling

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RetriableAPIError) and exc.retry_after is not None:
            return min(exc.retry_after, self.ceiling)
        return float(self.fallback(retry_state))


class ApiClient:
    """An ``httpx.AsyncClient`` with the product's limits, retries and error mapping around it."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None,
        limiter: RateLimiter,
        settings: HttpSettings | None = None,
        error_mapper: ErrorMapper | None = None,
        hint_parser: HintParser | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings or HttpSettings()
        self.limiter = limiter
        self.stats = CallStats()
        self._error_mapper = error_mapper
        self._hint_parser = hint_parser
        self.http = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            timeout=self.settings.timeout_s,
            headers={"User-Agent": "crm-upsell-connector", **(headers or {})},
            transport=transport,
            limits=httpx.Limits(max_connections=self.settings.max_in_flight * 2),
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        endpoint: str | None = None,
        limiter: RateLimiter | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send with retries; returns a 2xx response (or one in ``ok_statuses``), else raises."""
        safe = idempotent if idempotent is not None else method.upper() in ("GET", "HEAD", "PUT", "DELETE")
        label = endpoint or f"{method.upper()} {url.split('?')[0]}"
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=_WaitRetryAfter(
                wait_exponential_jitter(
                    multiplier=self.settings.backoff_initial_s,
                    max=self.settings.backoff_max_s,
                    jitter=self.settings.backoff_initial_s,
                ),
                ceiling=self.settings.retry_after_max_s,
            ),
            retry=retry_if_exception(lambda e: self._worth_retry(e, safe)),
            reraise=True,
            before_sleep=self._before_sleep,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send_once(
                    method, url, params, json, data, headers, label, limiter or self.limiter, ok_statuses
                )
        raise AssertionError("unreachable: tenacity reraises the last error")

    @staticmethod
    def _worth_retry(exc: BaseException, idempotent: bool) -> bool:
        if isinstance(exc, RateLimitError):
            return True
        if not isinstance(exc, RetriableAPIError):
            return False
        return idempotent or exc.not_sent

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.info(
            "retrying after %s (attempt %d)",
            exc.one_line() if isinstance(exc, APIError) else exc,
            state.attempt_number,
        )

    async def _send_once(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        label: str,
        limiter: RateLimiter,
        ok_statuses: tuple[int, ...],
    ) -> httpx.Response:
        request_info = RequestInfo(method.upper(), redact_url(str(self.http.base_url.join(url))))
        async with limiter.slot():
            self.stats.calls += 1
            self.stats.by_endpoint[label] = self.stats.by_endpoint.get(label, 0) + 1
            try:
                response = await self.http.request(
                    method, url, params=params, json=json, data=data, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                err = RetriableAPIError(
                    f"could not connect for {request_info.method} {request_info.url}: {type(exc).__name__}",
                    request=request_info,
                )
                err.not_sent = True
                raise err from None
            except httpx.TransportError as exc:
                raise RetriableAPIError(
                    f"the connection failed during {request_info.method} {request_info.url}: {type(exc).__name__}",
                    request=request_info,
                ) from None
        hint = self._hint_parser(response) if self._hint_parser else LimitHint()
        if response.status_code == 429 and hint.retry_after_s is None:
            hint = LimitHint(hint.max_requests, 0, hint.interval_s, retry_after_seconds(response))
        if hint.retry_after_s is not None and hint.retry_after_s > self.settings.retry_after_max_s:
            hint = dataclasses.replace(hint, retry_after_s=self.settings.retry_after_max_s)
        limiter.observe(hint)
        log.debug("%s %s -> %d", request_info.method, request_info.url, response.status_code)
        if response.is_success or response.status_code in ok_statuses:
            return response
        await response.aread()
        error = self._error_mapper(response, request_info) if self._error_mapper else None
        if error is None:
            error = default_error(response, request_info)
        if isinstance(error, RetriableAPIError) and error.retry_after is None:
            # RFC 9110 section 10.2.3: a 429 or 503 may say when to come back, in seconds or as a date.
            error.retry_after = retry_after_seconds(response)
        if isinstance(error, RateLimitError):
            self.stats.rate_limited += 1
        raise error
