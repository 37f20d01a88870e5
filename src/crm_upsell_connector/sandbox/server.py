"""Server plumbing every CRM sandbox shares: options, clock, rate limits, latency, faults, stats, and a runner.

A connector's ``sandbox.py`` builds the CRM-specific routes on top of :class:`SandboxRuntime` and adds
:func:`control_routes` (``/__sandbox/*``) so tests can inspect and steer the server; :class:`SandboxServer`
runs any ASGI app on loopback in a background thread.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DropConnection",
    "DroppedResponse",
    "FaultInjector",
    "FaultOptions",
    "LatencyMiddleware",
    "LimitDecision",
    "RequestStats",
    "RollingWindowLimiter",
    "SandboxClock",
    "SandboxOptions",
    "SandboxRuntime",
    "SandboxServer",
    "control_routes",
    "find_free_port",
    "iso_ms",
    "retry_after_value",
    "serve_forever",
]

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FaultOptions(BaseModel):
    """Injected failures; every rate is a probability per request (or per batch input), 0 = never."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    storm_probability: float = Field(0.0, ge=0, le=1)  # chance a request starts a burst of 429s
    storm_length: int = Field(5, ge=1)  # consecutive 429s in one burst
    error_rate: float = Field(0.0, ge=0, le=1)  # 502 / 503 responses
    drop_rate: float = Field(0.0, ge=0, le=1)  # connection dropped mid-response
    partial_batch_rate: float = Field(0.0, ge=0, le=1)  # per batch input: fails inside a 207
    storm_next: int = Field(0, ge=0)  # the next N requests (from now or from a reconfiguration) are a storm
    # A ``Retry-After`` header on every 429 and 503 that has none: "seconds" (delay-seconds) or
    # "date" (an HTTP-date ``retry_after_s`` ahead), the two forms RFC 9110 section 10.2.3 allows.
    retry_after: Literal["none", "seconds", "date"] = "none"
    retry_after_s: float = Field(1.0, ge=0, le=3600)


class SandboxOptions(BaseModel):
    """How a sandbox behaves: size of the scenario, limits, latency, faults and credentials."""

    model_config = ConfigDict(extra="forbid")

    accounts: int = Field(1000, ge=0)
    seed: int = 7
    latency_ms: float = Field(0.0, ge=0)
    rate_limit_max: int = Field(190, ge=1)
    rate_limit_interval_ms: int = Field(10_000, ge=1)
    daily_limit: int = Field(1_000_000, ge=1)
    # CRM search endpoints often have their own, stricter limit (HubSpot: a few requests per second).
    search_rate_limit_max: int = Field(5, ge=1)
    search_rate_limit_interval_ms: int = Field(1_000, ge=1)
    faults: FaultOptions = Field(default_factory=FaultOptions)
    token: str = "sandbox-token"  # noqa: S105 - a well-known sandbox credential
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"  # noqa: S105
    refresh_token: str = "sandbox-refresh-token"  # noqa: S105
    access_token_ttl_s: int = Field(1800, ge=1)
    search_cap: int = Field(10_000, ge=1)


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 with milliseconds and ``Z``."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


class SandboxClock:
    """Wall-clock milliseconds, never earlier than the scenario's ``now``, and advanceable by tests."""

    def __init__(self, not_before: datetime | None = None) -> None:
        self._offset_ms = 0
        if not_before is not None:
            floor = (not_before - _EPOCH) // timedelta(milliseconds=1)
            self._offset_ms = max(0, floor - self._real_ms())
        self._last = 0
        self._lock = threading.Lock()

    @staticmethod
    def _real_ms() -> int:
        return time.time_ns() // 1_000_000

    def now_ms(self) -> int:
        with self._lock:
            # Monotonic even if the host clock steps back.
            self._last = max(self._last, self._real_ms() + self._offset_ms)
            return self._last

    def advance(self, seconds: float) -> int:
        with self._lock:
            self._offset_ms += int(seconds * 1000)
        return self.now_ms()


@dataclass(frozen=True, slots=True)
class LimitDecision:
    allowed: bool
    limit: int
    remaining: int
    interval_ms: int


class RollingWindowLimiter:
    """At most ``limit`` requests in any rolling window of ``interval_ms`` (monotonic time)."""

    def __init__(self, limit: int, interval_ms: int) -> None:
        self.limit = limit
        self.interval_ms = interval_ms
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> LimitDecision:
        now = time.monotonic()
        horizon = now - self.interval_ms / 1000
        with self._lock:
            while self._hits and self._hits[0] <= horizon:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return LimitDecision(False, self.limit, 0, self.interval_ms)
            self._hits.append(now)
            return LimitDecision(True, self.limit, self.limit - len(self._hits), self.interval_ms)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


class DailyCounter:
    """A plain count of requests against a daily budget (the sandbox's "day" is its lifetime)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def acquire(self) -> LimitDecision:
        with self._lock:
            if self.used >= self.limit:
                return LimitDecision(False, self.limit, 0, 86_400_000)
            self.used += 1
            return LimitDecision(True, self.limit, self.limit - self.used, 86_400_000)

    def reset(self) -> None:
        with self._lock:
            self.used = 0


FaultKind = Literal["none", "storm", "error_502", "error_503", "drop"]


class FaultInjector:
    """Deterministic failures drawn from ``FaultOptions.seed`` in request order."""

    def __init__(self, options: FaultOptions) -> None:
        self._lock = threading.Lock()
        self.configure(options)

    def configure(self, options: FaultOptions) -> None:
        with self._lock:
            self.options = options
            self._rng = random.Random(options.seed)
            self._storm_left = options.storm_next

    def decide(self) -> FaultKind:
        """The fault (if any) for the next request."""
        o = self.options
        with self._lock:
            if self._storm_left > 0:
                self._storm_left -= 1
                return "storm"
            if o.storm_probability and self._rng.random() < o.storm_probability:
                self._storm_left = o.storm_length - 1
                return "storm"
            if o.error_rate and self._rng.random() < o.error_rate:
                return "error_502" if self._rng.random() < 0.5 else "error_503"
            if o.drop_rate and self._rng.random() < o.drop_rate:
                return "drop"
            return "none"

    def fail_item(self) -> bool:
        """Whether one input of a batch write fails (partial failure, 207)."""
        rate = self.options.partial_batch_rate
        if not rate:
            return False
        with self._lock:
            return self._rng.random() < rate

    def shuffle(self, items: list[Any]) -> None:
        with self._lock:
            self._rng.shuffle(items)


class RequestStats:
    """Requests per route, per status and per injected fault; served at ``GET /__sandbox/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.by_route: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.rate_limited = 0

    def record(self, route: str, status: int) -> None:
        with self._lock:
            self.by_route[route] += 1
            self.by_status[str(status)] += 1
            if status == 429:
                self.rate_limited += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self.by_route.values()),
                "by_route": dict(self.by_route),
                "by_status": dict(self.by_status),
                "faults": dict(self.faults),
                "rate_limited": self.rate_limited,
            }


class SandboxRuntime:
    """The shared, mutable machinery of one running sandbox."""

    def __init__(self, options: SandboxOptions, not_before: datetime | None = None) -> None:
        self.options = options
        self.clock = SandboxClock(not_before)
        self.limiter = RollingWindowLimiter(options.rate_limit_max, options.rate_limit_interval_ms)
        self.search_limiter = RollingWindowLimiter(
            options.search_rate_limit_max, options.search_rate_limit_interval_ms
        )
        self.daily = DailyCounter(options.daily_limit)
        self.faults = FaultInjector(options.faults)
        self.stats = RequestStats()

    def reset_limits(self) -> None:
        self.limiter.reset()
        self.search_limiter.reset()
        self.daily.reset()


# ---- dropped connections ---------------------------------------------------------------------------


class DropConnection(Exception):
    """Raised after a response has started so the server closes the socket mid-response."""


class DroppedResponse(Response):
    """Starts a response, sends part of the body, then drops the connection (client sees a transport error)."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"results": [', "more_body": True})
        raise DropConnection("sandbox fault: connection dropped")


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


# ---- latency ------------------------------------------------------------------------------------------


def retry_after_value(form: str, seconds: float, now: float | None = None) -> str:
    """A ``Retry-After`` value ``seconds`` ahead: delay-seconds, or an IMF-fixdate HTTP-date rounded up
    to the next whole second (RFC 9110 sections 5.6.7 and 10.2.3)."""
    if form == "date":
        moment = math.ceil((time.time() if now is None else now) + seconds)
        return email.utils.formatdate(moment, usegmt=True)
    return str(math.ceil(seconds))


class LatencyMiddleware:
    """Delays every HTTP request whose path starts with one of ``prefixes`` by ``options.latency_ms``,
    and gives 429 and 503 responses without one the ``Retry-After`` that ``options.faults.retry_after``
    asks for (every sandbox's rate limits and storms, in either of RFC 9110's forms)."""

    def __init__(self, app: ASGIApp, options: SandboxOptions, prefixes: tuple[str, ...] = ("/",)) -> None:
        self.app = app
        self.options = options
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        crm = (
            scope["type"] == "http"
            and str(scope["path"]).startswith(self.prefixes)
            and not str(scope["path"]).startswith("/__sandbox")
        )
        if crm and self.options.latency_ms > 0:
            await asyncio.sleep(self.options.latency_ms / 1000)
        faults = self.options.faults
        if not crm or faults.retry_after == "none":
            await self.app(scope, receive, send)
            return

        async def send_with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") in (429, 503):
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    value = retry_after_value(faults.retry_after, faults.retry_after_s)
                    headers.append((b"retry-after", value.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_retry_after)


# ---- control routes -----------------------------------------------------------------------------------


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = await request.json()
    return data if isinstance(data, dict) else {}


def control_routes(runtime: SandboxRuntime) -> list[Route]:
    """``/__sandbox/*`` routes shared by every sandbox (no authentication; loopback only)."""

    async def stats(request: Request) -> Response:
        return JSONResponse(runtime.stats.snapshot())

    async def reset_stats(request: Request) -> Response:
        runtime.stats.reset()
        return JSONResponse(runtime.stats.snapshot())

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            merged = {**runtime.faults.options.model_dump(), **body}
            runtime.faults.configure(FaultOptions.model_validate(merged))
            runtime.options.faults = runtime.faults.options
        return JSONResponse(runtime.faults.options.model_dump())

    async def reset_limits(request: Request) -> Response:
        runtime.reset_limits()
        return JSONResponse({"ok": True})

    async def limits(request: Request) -> Response:
        body = await _json_body(request)
        for name in ("rate_limit_max", "daily_limit", "search_rate_limit_max", "latency_ms"):
            if name in body:
                setattr(runtime.options, name, body[name])
        runtime.limiter.limit = runtime.options.rate_limit_max
        runtime.search_limiter.limit = runtime.options.search_rate_limit_max
        runtime.daily.limit = runtime.options.daily_limit
        runtime.reset_limits()
        return JSONResponse(
            runtime.options.model_dump(
                include={"rate_limit_max", "daily_limit", "search_rate_limit_max", "latency_ms"}
            )
        )

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            runtime.clock.advance(float(body.get("advance_s", 0)))
        return JSONResponse({"now": iso_ms(runtime.clock.now_ms()), "now_ms": runtime.clock.now_ms()})

    return [
        Route("/__sandbox/stats", stats, methods=["GET"]),
        Route("/__sandbox/reset-stats", reset_stats, methods=["POST"]),
        Route("/__sandbox/faults", faults, methods=["GET", "POST"]),
        Route("/__sandbox/reset-limits", reset_limits, methods=["POST"]),
        Route("/__sandbox/limits", limits, methods=["POST"]),
        Route("/__sandbox/clock", clock, methods=["GET", "POST"]),
    ]


# ---- running ------------------------------------------------------------------------------------------


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class SandboxServer:
    """Runs an ASGI app with uvicorn on loopback in a background thread.

    >>> with SandboxServer(app) as base_url:  # doctest: +SKIP
    ...     httpx.get(f"{base_url}/crm/v3/owners")
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port or find_free_port(host)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        import uvicorn

        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"sandbox server failed to start on {self.base_url}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"sandbox server did not start within {timeout}s")
            time.sleep(0.01)
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(app: ASGIApp, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve ``app`` in the foreground until interrupted (``crm-upsell sandbox serve``)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="off")


Endpoint = Callable[[Request], Awaitable[Response]]
