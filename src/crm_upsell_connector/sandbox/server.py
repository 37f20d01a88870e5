"""Server plumbing every CRM sandbox shares: options, clock, rate limits, latency, faults, stats, and a runner.

A connector's ``sandbox.py`` builds the CRM-specific routes on top of :class:`SandboxRuntime` and adds
:func:`control_routes` (``/__sandbox/*``) so tests can inspect and steer the server; :class:`SandboxServer`
runs any ASGI app on loopback in a background thread.

Each job has its module (:mod:`.options`, :mod:`.limits`, :mod:`.faults`, :mod:`.latency`,
:mod:`.runtime`, :mod:`.control`, :mod:`.runner`); their public names stay importable from here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from crm_upsell_connector.sandbox.control import control_routes
from crm_upsell_connector.sandbox.faults import DropConnection, DroppedResponse, FaultInjector, FaultKind
from crm_upsell_connector.sandbox.latency import LatencyMiddleware, retry_after_value
from crm_upsell_connector.sandbox.limits import (
    DailyCounter,
    LimitDecision,
    RollingWindowLimiter,
    SandboxClock,
    iso_ms,
)
from crm_upsell_connector.sandbox.options import FaultOptions, SandboxOptions
from crm_upsell_connector.sandbox.runner import SandboxServer, find_free_port, serve_forever
from crm_upsell_connector.sandbox.runtime import RequestStats, SandboxRuntime

__all__ = [
    "DailyCounter",
    "DropConnection",
    "DroppedResponse",
    "FaultInjector",
    "FaultKind",
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


Endpoint = Callable[[Request], Awaitable[Response]]
