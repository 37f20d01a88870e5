"""The ``/__sandbox/*`` routes every sandbox shares (no authentication; loopback only): stats,
faults, limits and the clock, so tests can inspect and steer the server.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.limits import iso_ms
from crm_upsell_connector.sandbox.options import FaultOptions
from crm_upsell_connector.sandbox.runtime import SandboxRuntime


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
