"""The Starlette app: routes, ``/__sandbox`` control routes and module-level helpers for tests."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.scenario import Scenario
from crm_upsell_connector.sandbox.server import LatencyMiddleware, SandboxOptions, control_routes, iso_ms
from crm_upsell_hubspot.sandbox.common import _normalize_type
from crm_upsell_hubspot.sandbox.portal import HubSpotSandbox
from crm_upsell_hubspot.sandbox.wiring import _Wiring
from crm_upsell_hubspot.sandbox_outcomes import outcome_routes


def _p(request: Request, name: str) -> str:
    return str(request.path_params[name])


def create_app(scenario: Scenario, options: SandboxOptions) -> Starlette:
    """The HubSpot emulator as a Starlette app; ``app.state.sandbox`` is its :class:`HubSpotSandbox`."""
    sb = HubSpotSandbox(scenario, options)
    w = _Wiring(sb)
    obj = "/crm/v3/objects/{object_type}"

    async def token(request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed without python-multipart
        raw = (await request.body()).decode("utf-8", "replace")
        data = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        for k, v in request.query_params.items():
            data.setdefault(k, v)
        response = sb.issue_token(data)
        sb.runtime.stats.record("POST /oauth/v1/token", response.status_code)
        return response

    routes = [
        Route("/oauth/v1/token", token, methods=["POST"]),
        Route("/crm/v3/owners", w.crm(lambda r, b: sb.list_owners(r)), methods=["GET"]),
        Route("/crm/v3/owners/", w.crm(lambda r, b: sb.list_owners(r)), methods=["GET"]),
        Route(
            "/crm/v3/properties/{object_type}",
            w.crm(lambda r, b: sb.list_properties(_p(r, "object_type"), r)),
            methods=["GET"],
        ),
        Route(
            "/crm/v3/properties/{object_type}/groups",
            w.crm(lambda r, b: sb.list_groups(_p(r, "object_type"))),
            methods=["GET"],
        ),
        Route(
            "/crm/v3/properties/{object_type}/groups",
            w.crm(lambda r, b: sb.create_group(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            "/crm/v3/properties/{object_type}/batch/create",
            w.crm(lambda r, b: sb.batch_create_properties(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            "/crm/v3/properties/{object_type}/{name}",
            w.crm(lambda r, b: sb.get_property(_p(r, "object_type"), _p(r, "name"))),
            methods=["GET"],
        ),
        Route(
            "/crm/v3/properties/{object_type}",
            w.crm(lambda r, b: sb.create_property(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            "/crm/v3/properties/{object_type}/{name}",
            w.crm(lambda r, b: sb.update_property(_p(r, "object_type"), _p(r, "name"), b), body=True),
            methods=["PATCH"],
        ),
        Route("/account-info/v3/details", w.crm(lambda r, b: sb.account_details()), methods=["GET"]),
        Route(
            f"{obj}/merge",
            w.crm(lambda r, b: sb.merge_objects(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(obj, w.crm(lambda r, b: sb.list_objects(r, _p(r, "object_type"))), methods=["GET"]),
        Route(
            f"{obj}/search",
            w.crm(lambda r, b: sb.search(_p(r, "object_type"), b), search=True, body=True),
            methods=["POST"],
        ),
        Route(
            f"{obj}/batch/read",
            w.crm(lambda r, b: sb.batch_read(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            f"{obj}/batch/update",
            w.crm(lambda r, b: sb.batch_update(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            f"{obj}/batch/create",
            w.crm(lambda r, b: sb.batch_create(_p(r, "object_type"), b), body=True),
            methods=["POST"],
        ),
        Route(
            obj + "/{object_id}",
            w.crm(lambda r, b: sb.get_object(r, _p(r, "object_type"), _p(r, "object_id"))),
            methods=["GET"],
        ),
        Route(
            obj + "/{object_id}",
            w.crm(lambda r, b: sb.delete_object(_p(r, "object_type"), _p(r, "object_id"))),
            methods=["DELETE"],
        ),
        Route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/read",
            w.crm(
                lambda r, b: sb.associations_batch_read(_p(r, "from_type"), _p(r, "to_type"), b), body=True
            ),
            methods=["POST"],
        ),
        *control_routes(sb.runtime),
        *_hubspot_control_routes(sb),
        *outcome_routes(sb),  # POST /__sandbox/play-outcomes (crm_upsell_hubspot.sandbox_outcomes)
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(LatencyMiddleware, options=options, prefixes=("/crm", "/oauth", "/account-info"))
        ],
    )
    app.state.sandbox = sb
    return app


def _hubspot_control_routes(sb: HubSpotSandbox) -> list[Route]:
    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        data = json.loads(raw) if raw else {}
        return data if isinstance(data, dict) else {}

    async def touch_route(request: Request) -> Response:
        b = await body_of(request)
        ids = sb.touch(
            str(b.get("object_type", "companies")),
            count=b.get("count"),
            ids=b.get("ids"),
            same_ms=bool(b.get("same_ms", True)),
        )
        return JSONResponse({"ids": ids, "modified_at": iso_ms(sb.now_ms())})

    async def archive_route(request: Request) -> Response:
        b = await body_of(request)
        otype = _normalize_type(str(b.get("object_type", "companies")))
        ids = b.get("ids")
        if ids is None:
            with sb.lock:
                ids = [str(i) for i in sb.tables[otype].active[: int(b.get("count", 0))]]
        return JSONResponse({"ids": sb.archive(otype, ids), "archived_at": iso_ms(sb.now_ms())})

    async def set_property_route(request: Request) -> Response:
        b = await body_of(request)
        try:
            record = sb.set_properties(
                str(b.get("object_type", "companies")), str(b["id"]), dict(b.get("properties") or {})
            )
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc}"}, status_code=404)
        return JSONResponse(record)

    async def planted_route(request: Request) -> Response:
        return JSONResponse(sb.planted())

    async def ids_route(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        return JSONResponse({k: sb.hubspot_id(k) for k in keys if k in sb.ids or k in sb.owner_ids})

    async def expire_route(request: Request) -> Response:
        return JSONResponse({"expired": sb.expire_tokens()})

    async def batch_order_route(request: Request) -> Response:
        b = await body_of(request)
        sb.shuffle_batch_results = bool(b.get("shuffle", True))
        return JSONResponse({"shuffle": sb.shuffle_batch_results})

    return [
        Route("/__sandbox/touch", touch_route, methods=["POST"]),
        Route("/__sandbox/archive", archive_route, methods=["POST"]),
        Route("/__sandbox/set-property", set_property_route, methods=["POST"]),
        Route("/__sandbox/planted", planted_route, methods=["GET"]),
        Route("/__sandbox/ids", ids_route, methods=["GET"]),
        Route("/__sandbox/expire-tokens", expire_route, methods=["POST"]),
        Route("/__sandbox/batch-order", batch_order_route, methods=["POST"]),
    ]


# ---- module-level helpers for tests -----------------------------------------------------------------------


def sandbox_state(app: Starlette | HubSpotSandbox) -> HubSpotSandbox:
    """The :class:`HubSpotSandbox` behind an app from :func:`create_app`."""
    if isinstance(app, HubSpotSandbox):
        return app
    state: HubSpotSandbox = app.state.sandbox
    return state


def touch(
    app: Starlette | HubSpotSandbox,
    object_type: str = "companies",
    count: int | None = None,
    ids: Iterable[str] | None = None,
) -> list[str]:
    """Mark ``count`` records (lowest ids first) or ``ids`` modified now, all at the same millisecond."""
    return sandbox_state(app).touch(object_type, count, ids)


def archive(app: Starlette | HubSpotSandbox, object_type: str, ids: Iterable[str]) -> list[str]:
    """Archive records; they leave lists and search and appear under ``archived=true``."""
    return sandbox_state(app).archive(object_type, ids)


def set_properties(
    app: Starlette | HubSpotSandbox, object_type: str, object_id: str, properties: dict[str, str | None]
) -> dict[str, Any]:
    """Set property values on one record as a user would (the record's modified stamp moves)."""
    return sandbox_state(app).set_properties(object_type, object_id, properties)


def hubspot_id(app: Starlette | HubSpotSandbox, key: str) -> str:
    """The HubSpot id given to a scenario key (``co-000001``, ``owner-0001``...)."""
    return sandbox_state(app).hubspot_id(key)


def merge(app: Starlette | HubSpotSandbox, object_type: str, primary_id: str, other_id: str) -> str:
    """Merge ``other_id`` into ``primary_id`` as a HubSpot user would; returns the merged record's id."""
    sb = sandbox_state(app)
    otype = _normalize_type(object_type)
    with sb.lock:
        table = sb.tables[otype]
        primary, other = table.get(int(primary_id)), table.get(int(other_id))
        if primary is None or other is None or primary.id == other.id:
            raise KeyError(f"cannot merge {otype}/{other_id} into {otype}/{primary_id}")
        return str(sb.merge(otype, primary, other).id)
