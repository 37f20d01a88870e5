"""Wraps each route with authentication, fault injection, rate limits, limit headers and stats."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_connector.sandbox.server import DroppedResponse, LimitDecision
from crm_upsell_hubspot.sandbox.common import _error, _HTTPError
from crm_upsell_hubspot.sandbox.portal import HubSpotSandbox
from crm_upsell_hubspot.sandbox.store import Handler

_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


def _rate_limited(policy: str, message: str, decision: LimitDecision | None) -> JSONResponse:
    body = {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }
    response = JSONResponse(body, status_code=429)
    if decision is not None:
        response.headers["X-HubSpot-RateLimit-Max"] = str(decision.limit)
        response.headers["X-HubSpot-RateLimit-Remaining"] = "0"
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(decision.interval_ms)
    return response


class _Wiring:
    """Wraps CRM handlers with auth, fault injection, rate limits, headers, stats and the store lock."""

    def __init__(self, sb: HubSpotSandbox) -> None:
        self.sb = sb

    def crm(
        self, handler: Handler, *, search: bool = False, body: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        runtime = self.sb.runtime

        async def endpoint(request: Request) -> Response:
            route = f"{request.method} {_ID_SEGMENT.sub('/{id}', request.url.path)}"
            response = await self._run(request, handler, search=search, body=body)
            runtime.stats.record(route, response.status_code)
            return response

        return endpoint

    async def _run(self, request: Request, handler: Handler, *, search: bool, body: bool) -> Response:
        sb, runtime = self.sb, self.sb.runtime
        with sb.lock:
            denied, private_app = sb.authenticate(request)
        if denied is not None:
            return denied
        fault = runtime.faults.decide()
        if fault != "none":
            runtime.stats.fault(fault)
            if fault == "storm":
                storm = LimitDecision(False, runtime.limiter.limit, 0, runtime.limiter.interval_ms)
                return _rate_limited(
                    "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", storm
                )
            if fault == "error_502":
                return Response(
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                    status_code=502,
                    media_type="text/html",
                )
            if fault == "error_503":
                return _error(
                    503, "The service is temporarily unavailable. Please retry.", "SERVICE_UNAVAILABLE"
                )
            return DroppedResponse()
        decision: LimitDecision | None = None
        daily: LimitDecision | None = None
        if search:
            if not runtime.search_limiter.acquire().allowed:
                return _rate_limited("SECONDLY", "You have reached your secondly limit.", None)
        else:
            decision = runtime.limiter.acquire()
            if not decision.allowed:
                return _rate_limited(
                    "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", decision
                )
        if private_app:
            daily = runtime.daily.acquire()
            if not daily.allowed:
                exhausted = _rate_limited("DAILY", "You have reached your daily limit.", decision)
                exhausted.headers["X-HubSpot-RateLimit-Daily"] = str(daily.limit)
                exhausted.headers["X-HubSpot-RateLimit-Daily-Remaining"] = "0"
                return exhausted
        payload: Any = None
        if body:
            raw = await request.body()
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = None
            if payload is None:
                invalid = _error(
                    400, "Invalid input JSON on line 1: the body is not valid JSON.", "VALIDATION_ERROR"
                )
                return self._headers(invalid, decision, daily)
        response: Response
        try:
            with sb.lock:
                response = handler(request, payload)
        except _HTTPError as exc:
            response = exc.response
        return self._headers(response, decision, daily)

    @staticmethod
    def _headers(response: Response, decision: LimitDecision | None, daily: LimitDecision | None) -> Response:
        if decision is not None:
            response.headers["X-HubSpot-RateLimit-Max"] = str(decision.limit)
            response.headers["X-HubSpot-RateLimit-Remaining"] = str(decision.remaining)
            response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(decision.interval_ms)
        if daily is not None and decision is not None:
            response.headers["X-HubSpot-RateLimit-Daily"] = str(daily.limit)
            response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(daily.remaining)
        return response
