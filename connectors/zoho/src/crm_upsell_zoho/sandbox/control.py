"""``/__sandbox/*`` routes of the Zoho sandbox (loopback only, no authentication): tests and the demo
steer the org with them (touch, delete, set fields as a user would, expire tokens, read credits)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import json_object
from crm_upsell_zoho.sandbox.state import ZohoSandbox
from crm_upsell_zoho.sandbox.store import WriteError

__all__ = ["routes"]


def routes(sb: ZohoSandbox) -> list[Route]:
    async def touch_route(request: Request) -> Response:
        b = await json_object(request)
        try:
            ids = sb.touch(str(b.get("module", "Accounts")), count=b.get("count"), ids=b.get("ids"))
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse({"ids": ids, "modified_time": sb.org.zt(sb.now_ms())})

    async def delete_route(request: Request) -> Response:
        b = await json_object(request)
        module = str(b.get("module", "Accounts"))
        ids = b.get("ids")
        try:
            if ids is None:
                with sb.lock:
                    ids = [str(i) for i in sb.module_or_key(module).by_id[: int(b.get("count", 0))]]
            done = sb.delete(module, ids, permanent=bool(b.get("permanent", False)))
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse({"ids": done, "deleted_time": sb.org.zt(sb.now_ms())})

    async def set_fields_route(request: Request) -> Response:
        b = await json_object(request)
        try:
            record = sb.set_fields(
                str(b.get("module", "Accounts")), str(b["id"]), dict(b.get("values") or {})
            )
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc}"}, 404)
        except WriteError as exc:
            return JSONResponse(exc.body(), 400)
        return JSONResponse(record)

    async def planted_route(request: Request) -> Response:
        return JSONResponse(sb.planted())

    async def ids_route(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        return JSONResponse({k: sb.zoho_id(k) for k in keys if k in sb.org.ids})

    async def expire_route(request: Request) -> Response:
        return JSONResponse({"expired": sb.expire_tokens()})

    async def credits_route(request: Request) -> Response:
        return JSONResponse(sb.credits())

    async def triggers_route(request: Request) -> Response:
        return JSONResponse(
            {"writes_without_trigger": sb.writes_without_trigger, "triggers_fired": dict(sb.triggers_fired)}
        )

    return [
        Route("/__sandbox/triggers", triggers_route, methods=["GET"]),
        Route("/__sandbox/touch", touch_route, methods=["POST"]),
        Route("/__sandbox/delete", delete_route, methods=["POST"]),
        Route("/__sandbox/set-fields", set_fields_route, methods=["POST"]),
        Route("/__sandbox/planted", planted_route, methods=["GET"]),
        Route("/__sandbox/ids", ids_route, methods=["GET"]),
        Route("/__sandbox/expire-tokens", expire_route, methods=["POST"]),
        Route("/__sandbox/credits", credits_route, methods=["GET"]),
    ]
