"""Request plumbing a CRM sandbox's routes share: the guard every API call passes, a concurrency gate,
error responses raised from deep inside a handler, and small request helpers.

A connector's sandbox package builds its routes as plain handlers ``(request, payload) -> Response``
and wraps each with :meth:`ApiGuard.api`, which authenticates, injects faults, applies the rolling
rate limit and the daily budget, parses the JSON body, holds the store lock and records stats. What
the CRM answers in each case (its own error bodies) comes from a :class:`GuardAnswers`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_upsell_connector.sandbox.server import DroppedResponse, SandboxRuntime

__all__ = [
    "ApiGuard",
    "ConcurrencyGate",
    "ConcurrencyMiddleware",
    "GuardAnswers",
    "HTTPError",
    "Handler",
    "json_object",
    "route_key",
]

Handler = Callable[[Request, Any], Response]
Endpoint = Callable[[Request], Awaitable[Response]]
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


class HTTPError(Exception):
    """Raised inside a handler to answer with ``response`` at once (a refused request)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def route_key(request: Request) -> str:
    """``GET /crm/v8/Deals/{id}/Products``: the method and path with numeric ids folded, for stats."""
    return f"{request.method} {_ID_SEGMENT.sub('/{id}', request.url.path)}"


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty or not an object); for control routes."""
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    return data if isinstance(data, dict) else {}


class GuardAnswers(Protocol):
    """The CRM's own answers for what :class:`ApiGuard` refuses."""

    def authenticate(self, request: Request) -> Response | None:
        """None when the request's credentials are good, else the CRM's 401."""

    def too_many(self) -> Response:
        """The CRM's 429 for a rate-limit or a storm."""

    def server_error(self, status: int) -> Response:
        """The CRM's 502 / 503."""

    def budget_spent(self) -> Response:
        """The CRM's answer once the daily budget is used up."""

    def invalid_json(self) -> Response:
        """The CRM's answer to a body that is not JSON."""


class ApiGuard:
    """Wraps API handlers with auth, fault injection, rate limits, the daily budget, stats and a lock."""

    def __init__(self, runtime: SandboxRuntime, lock: threading.RLock, answers: GuardAnswers) -> None:
        self.runtime = runtime
        self.lock = lock
        self.answers = answers

    def api(
        self, handler: Handler, *, body: bool = False, cost: Callable[[Any], int] | None = None
    ) -> Endpoint:
        """An endpoint running ``handler(request, payload)``; ``cost(payload)`` = budget units (1)."""

        async def endpoint(request: Request) -> Response:
            response = await self._run(request, handler, body, cost)
            self.runtime.stats.record(route_key(request), response.status_code)
            return response

        return endpoint

    async def _run(
        self, request: Request, handler: Handler, body: bool, cost: Callable[[Any], int] | None
    ) -> Response:
        runtime, answers = self.runtime, self.answers
        with self.lock:
            denied = answers.authenticate(request)
        if denied is not None:
            return denied
        fault = runtime.faults.decide()
        if fault != "none":
            runtime.stats.fault(fault)
            if fault == "storm":
                return answers.too_many()
            if fault == "error_502":
                return answers.server_error(502)
            if fault == "error_503":
                return answers.server_error(503)
            return DroppedResponse()
        if not runtime.limiter.acquire().allowed:
            return answers.too_many()
        payload: Any = None
        if body:
            raw = await request.body()
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                return answers.invalid_json()
        units = cost(payload) if cost is not None else 1
        with self.lock:
            daily = runtime.daily
            if daily.used + units > daily.limit:
                return answers.budget_spent()
            for _ in range(units):
                daily.acquire()
        try:
            with self.lock:
                return handler(request, payload)
        except HTTPError as exc:
            return exc.response


class ConcurrencyGate:
    """How many API calls are in flight, against a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0


class ConcurrencyMiddleware:
    """Answers ``refuse()`` when more than ``gate.limit`` requests under ``prefix`` are in flight."""

    def __init__(
        self,
        app: ASGIApp,
        gate: ConcurrencyGate,
        refuse: Callable[[], Response],
        runtime: SandboxRuntime,
        prefix: str = "/",
    ) -> None:
        self.app = app
        self.gate = gate
        self.refuse = refuse
        self.runtime = runtime
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        gate = self.gate
        if gate.in_flight >= gate.limit:
            self.runtime.stats.record("CONCURRENCY", 429)
            await self.refuse()(scope, receive, send)
            return
        gate.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gate.in_flight -= 1
