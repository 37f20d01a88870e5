"""HTTP wiring: routes, version checks, auth, faults, the daily limit and the ``/__sandbox`` controls."""

from __future__ import annotations

import gc
import json
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.forms import read_form, read_json_object
from crm_upsell_connector.sandbox.scenario import (
    Scenario,
)
from crm_upsell_connector.sandbox.server import (
    DroppedResponse,
    LatencyMiddleware,
    SandboxOptions,
    control_routes,
)
from crm_upsell_salesforce.sandbox.common import (
    API_VERSIONS,
    VERSION,
    Fail,
    error_response,
    sf_datetime,
)
from crm_upsell_salesforce.sandbox.org import SalesforceSandbox

# ---- HTTP wiring -----------------------------------------------------------------------------------------

Handler = Callable[[Request, Any], Response]
Endpoint = Callable[[Request], Awaitable[Response]]
_ROUTE_SEGMENT = re.compile(r"/([^/]+)")


def _route_name(request: Request) -> str:
    def generic(match: re.Match[str]) -> str:
        segment = match.group(1)
        if VERSION.fullmatch(segment):
            return "/{version}"
        if any(ch.isdigit() for ch in segment) and re.fullmatch(r"[A-Za-z0-9]{15,18}(?:-\d+)?", segment):
            return "/{id}"
        return match.group()

    path = _ROUTE_SEGMENT.sub(generic, request.url.path)
    return f"{request.method} {path.rstrip('/') or '/'}"


class _Wiring:
    """Wraps API handlers with version checks, auth, faults, the daily limit, headers, stats and the lock."""

    def __init__(self, sb: SalesforceSandbox) -> None:
        self.sb = sb

    def api(self, handler: Handler, *, body: bool = False) -> Endpoint:
        runtime = self.sb.runtime

        async def endpoint(request: Request) -> Response:
            response = await self._run(request, handler, body)
            runtime.stats.record(_route_name(request), response.status_code)
            return response

        return endpoint

    async def _run(self, request: Request, handler: Handler, body: bool) -> Response:
        sb, runtime = self.sb, self.sb.runtime
        version = request.path_params.get("version")
        if version is not None and not _valid_version(str(version)):
            return error_response(404, "NOT_FOUND", "The requested resource does not exist")
        with sb.lock:
            denied = sb.authenticate(request)
        if denied is not None:
            return denied
        fault = runtime.faults.decide()
        if fault != "none":
            runtime.stats.fault(fault)
            if fault == "storm":
                return error_response(
                    503, "SERVER_UNAVAILABLE", "Server is temporarily unavailable; too many requests."
                )
            if fault == "error_502":
                return error_response(
                    500,
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include this ErrorId if you contact support: "
                    f"{random.randrange(10**9)}-{random.randrange(10**5)} (-{random.randrange(10**9)})",
                )
            if fault == "error_503":
                return error_response(
                    503, "SERVER_UNAVAILABLE", "Server is temporarily unavailable. Please retry."
                )
            return DroppedResponse()
        daily = runtime.daily.acquire()
        if not daily.allowed:
            limited = error_response(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            return _limit_header(limited, runtime.daily.used, runtime.daily.limit)
        payload: Any = None
        if body:
            raw = await request.body()
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = _INVALID
            if payload is _INVALID or payload is None:
                invalid = error_response(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
                return _limit_header(invalid, runtime.daily.used, runtime.daily.limit)
        # A page allocates thousands of short-lived dicts; with a big org in memory, the cyclic GC would
        # rescan every stored record each time (tenfold slower pages). Refcounting frees the page anyway.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with sb.lock:
                response = handler(request, payload)
        except Fail as exc:
            response = exc.response
        finally:
            if gc_was_enabled:
                gc.enable()
        return _limit_header(response, runtime.daily.used, runtime.daily.limit)


_INVALID = object()


def _limit_header(response: Response, used: int, limit: int) -> Response:
    response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{limit}"
    return response


def _valid_version(raw: str) -> bool:
    match = VERSION.fullmatch(raw)
    return match is not None and int(match.group(1)) >= 20


def create_app(scenario: Scenario, options: SandboxOptions) -> Starlette:
    """The Salesforce emulator as a Starlette app; ``app.state.sandbox`` is its :class:`SalesforceSandbox`."""
    sb = SalesforceSandbox(scenario, options)
    w = _Wiring(sb)
    data = "/services/data/{version}"

    async def token(request: Request) -> Response:
        form = await read_form(request)
        instance_url = f"{request.url.scheme}://{request.url.netloc}"
        response = sb.issue_token(form, instance_url)
        sb.runtime.stats.record("POST /services/oauth2/token", response.status_code)
        return response

    async def versions(request: Request) -> Response:
        return JSONResponse(
            [
                {"label": label, "url": f"/services/data/v{v}", "version": v}
                for v, label in API_VERSIONS.items()
            ]
        )

    def resources(request: Request, _body: Any) -> Response:
        base = f"/services/data/{request.path_params['version']}"
        return JSONResponse(
            {
                name: f"{base}/{path}"
                for name, path in (
                    ("sobjects", "sobjects"),
                    ("query", "query"),
                    ("queryAll", "queryAll"),
                    ("limits", "limits"),
                    ("composite", "composite"),
                    ("tooling", "tooling"),
                )
            }
        )

    def both(path: str, endpoint: Endpoint, methods: list[str]) -> list[Route]:
        return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]

    routes = [
        Route("/services/oauth2/token", token, methods=["POST"]),
        *both("/services/data", versions, ["GET"]),
        *both(data, w.api(resources), ["GET"]),
        *both(data + "/limits", w.api(lambda r, b: sb.limits()), ["GET"]),
        *both(data + "/query", w.api(lambda r, b: sb.query(r, all_rows=False)), ["GET"]),
        *both(data + "/queryAll", w.api(lambda r, b: sb.query(r, all_rows=True)), ["GET"]),
        Route(data + "/query/{locator}", w.api(lambda r, b: sb.query_more(r)), methods=["GET"]),
        Route(data + "/queryAll/{locator}", w.api(lambda r, b: sb.query_more(r)), methods=["GET"]),
        *both(data + "/sobjects", w.api(lambda r, b: sb.describe_global(r)), ["GET"]),
        *both(data + "/sobjects/{sobject}/describe", w.api(lambda r, b: sb.describe(r)), ["GET"]),
        *both(data + "/sobjects/{sobject}/deleted", w.api(lambda r, b: sb.get_deleted(r)), ["GET"]),
        *both(
            data + "/composite/sobjects",
            w.api(lambda r, b: sb.collections(r, b, create=r.method == "POST"), body=True),
            ["POST", "PATCH"],
        ),
        Route(
            data + "/composite/sobjects/{sobject}",
            w.api(lambda r, b: sb.collections(r, b, create=False), body=True),
            methods=["PATCH"],
        ),
        *both(
            data + "/tooling/query", w.api(lambda r, b: sb.query(r, all_rows=False, tooling=True)), ["GET"]
        ),
        Route(
            data + "/tooling/query/{locator}",
            w.api(lambda r, b: sb.query_more(r, tooling=True)),
            methods=["GET"],
        ),
        *both(
            data + "/tooling/sobjects/{sobject}",
            w.api(lambda r, b: sb.create_custom_field(r, b), body=True),
            ["POST"],
        ),
        *control_routes(sb.runtime),
        *_salesforce_control_routes(sb),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(LatencyMiddleware, options=options, prefixes=("/services",))],
    )
    app.state.sandbox = sb
    return app


def _salesforce_control_routes(sb: SalesforceSandbox) -> list[Route]:
    async def touch_route(request: Request) -> Response:
        b = await read_json_object(request)
        try:
            ids = sb.touch(
                str(b.get("object", "Account")),
                count=b.get("count"),
                ids=b.get("ids"),
                same_ms=bool(b.get("same_ms", True)),
            )
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"ids": ids, "modified_at": sf_datetime(sb.now_ms())})

    async def delete_route(request: Request) -> Response:
        b = await read_json_object(request)
        try:
            ids = sb.delete(str(b.get("object", "Account")), ids=b.get("ids"), count=b.get("count"))
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"ids": ids, "deleted_at": sf_datetime(sb.now_ms())})

    async def set_fields_route(request: Request) -> Response:
        b = await read_json_object(request)
        try:
            record = sb.set_fields(str(b.get("object", "Account")), str(b["id"]), dict(b.get("fields") or {}))
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc}"}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(record)

    async def planted_route(request: Request) -> Response:
        return JSONResponse(sb.planted())

    async def ids_route(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        return JSONResponse({k: sb.ids[k] for k in keys if k in sb.ids})

    async def expire_route(request: Request) -> Response:
        return JSONResponse({"expired": sb.expire_tokens()})

    async def archive_route(request: Request) -> Response:
        b = await read_json_object(request)
        return JSONResponse({"ids": sb.archive(str(b.get("object", "Task")), list(b.get("ids") or []))})

    async def purge_route(request: Request) -> Response:
        b = await read_json_object(request)
        try:
            ids = sb.purge_deleted(str(b.get("object", "Account")))
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"purged": ids})

    async def long_reads_route(request: Request) -> Response:
        """``{"timeout_rows": N, "locator_batches": M}`` (null turns either off)."""
        b = await read_json_object(request)
        for name in ("timeout_rows", "locator_batches"):
            if name in b:
                value = b[name]
                setattr(
                    sb,
                    "query_timeout_rows" if name == "timeout_rows" else name,
                    None if value is None else int(value),
                )
        return JSONResponse({"timeout_rows": sb.query_timeout_rows, "locator_batches": sb.locator_batches})

    async def merge_route(request: Request) -> Response:
        b = await read_json_object(request)
        try:
            ids = sb.merge(str(b.get("object", "Account")), str(b.get("master")), list(b.get("merged") or []))
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"deleted": ids})

    async def refresh_tokens_route(request: Request) -> Response:
        """``{"rotate": true}`` turns refresh-token rotation on; ``{"revoke": true}`` revokes them all."""
        b = await read_json_object(request)
        if "rotate" in b:
            sb.rotate_refresh_tokens = bool(b["rotate"])
        if b.get("revoke"):
            sb.revoke_refresh_tokens()
        return JSONResponse({"rotate": sb.rotate_refresh_tokens, "valid": len(sb.refresh_tokens)})

    return [
        Route("/__sandbox/touch", touch_route, methods=["POST"]),
        Route("/__sandbox/delete", delete_route, methods=["POST"]),
        Route("/__sandbox/set-fields", set_fields_route, methods=["POST"]),
        Route("/__sandbox/planted", planted_route, methods=["GET"]),
        Route("/__sandbox/ids", ids_route, methods=["GET"]),
        Route("/__sandbox/expire-tokens", expire_route, methods=["POST"]),
        Route("/__sandbox/refresh-tokens", refresh_tokens_route, methods=["POST"]),
        Route("/__sandbox/archive", archive_route, methods=["POST"]),
        Route("/__sandbox/merge", merge_route, methods=["POST"]),
        Route("/__sandbox/purge-deleted", purge_route, methods=["POST"]),
        Route("/__sandbox/long-reads", long_reads_route, methods=["POST"]),
    ]
