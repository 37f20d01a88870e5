"""The Zoho sandbox as one Starlette app: every API area's routes behind the shared guard.

Each area module (``auth``, ``fields``, ``records``, ``writes``, ``coql``, ``related``, ``notes``,
``users``, ``deleted``, ``counts``) offers ``routes(sb, guard)``; :data:`AREAS` lists them in matching
order (a specific path before ``/{module}``). A new area is a new module and one line in :data:`AREAS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard, ConcurrencyMiddleware
from crm_upsell_connector.sandbox.scenario import Scenario
from crm_upsell_connector.sandbox.server import LatencyMiddleware, SandboxOptions, control_routes
from crm_upsell_zoho.sandbox import (
    auth,
    coql,
    counts,
    deleted,
    fields,
    merge,
    notes,
    organization,
    record,
    records,
    related,
    users,
    writes,
)
from crm_upsell_zoho.sandbox import control as zoho_control
from crm_upsell_zoho.sandbox.state import ZohoSandbox, err
from crm_upsell_zoho.sandbox_outcomes import outcome_routes

__all__ = ["AREAS", "create_app", "delete", "sandbox_state", "set_fields", "touch", "zoho_id"]

Area = Callable[[ZohoSandbox, ApiGuard], list[Route]]
#: The API areas in matching order.
AREAS: tuple[Area, ...] = (
    auth.routes,
    users.routes,
    coql.routes,
    fields.routes,
    organization.routes,
    counts.routes,
    deleted.routes,
    merge.routes,
    related.routes,
    record.routes,
    notes.routes,
    records.routes,
    writes.routes,
)


def too_many(message: str = "Too many requests") -> JSONResponse:
    """429 ``TOO_MANY_REQUESTS``: Zoho's answer to too many calls at once or in a short time ("API
    Limits", https://www.zoho.com/crm/developer/docs/api/v8/api-limits.html)."""
    return err("TOO_MANY_REQUESTS", message, 429)


class ZohoAnswers:
    """What Zoho answers when the guard refuses a call."""

    def __init__(self, sb: ZohoSandbox) -> None:
        self.sb = sb

    def authenticate(self, request: Request) -> Response | None:
        return auth.authenticate(self.sb, request)

    def too_many(self) -> Response:
        return too_many()

    def server_error(self, status: int) -> Response:
        if status == 502:
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502, media_type="text/html")
        return err("INTERNAL_ERROR", "Internal Server Error", status)

    def budget_spent(self) -> Response:
        return err("LIMIT_EXCEEDED", "API credit limit exceeded for the day", 429)

    def invalid_json(self) -> Response:
        return err("INVALID_DATA", "the request body is not valid JSON", api_name="body")


def create_app(
    scenario: Scenario,
    options: SandboxOptions,
    *,
    discrete_limit: int = 2_000,
    token_limit: int = 100_000,
    concurrency_limit: int = 10,
    utc_offset_min: int = 0,
) -> Starlette:
    """The Zoho CRM emulator as a Starlette app; ``app.state.sandbox`` is its :class:`ZohoSandbox`.

    ``discrete_limit`` is how far ``page`` reaches (2,000 in Zoho; smaller in tests), ``token_limit`` how
    many records one ``page_token`` chain may serve, ``utc_offset_min`` the org's time zone offset.
    """
    sb = ZohoSandbox(
        scenario,
        options,
        discrete_limit=discrete_limit,
        token_limit=token_limit,
        concurrency_limit=concurrency_limit,
        utc_offset_min=utc_offset_min,
    )
    guard = ApiGuard(sb.runtime, sb.lock, ZohoAnswers(sb))

    async def not_found(request: Request) -> Response:
        return err("INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", 404)

    routes = [
        *(route for area in AREAS for route in area(sb, guard)),
        *control_routes(sb.runtime),
        *outcome_routes(sb),  # POST /__sandbox/play-outcomes (crm_upsell_zoho.sandbox_outcomes)
        *zoho_control.routes(sb),
        Route("/crm/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                ConcurrencyMiddleware,
                gate=sb.gate,
                refuse=lambda: too_many("concurrency limit exceeded; too many requests in progress"),
                runtime=sb.runtime,
                prefix="/crm/",
            ),
            Middleware(LatencyMiddleware, options=options, prefixes=("/crm", "/oauth")),
        ],
    )
    app.state.sandbox = sb
    return app


def sandbox_state(app: Starlette | ZohoSandbox) -> ZohoSandbox:
    """The :class:`ZohoSandbox` behind an app from :func:`create_app`."""
    if isinstance(app, ZohoSandbox):
        return app
    state: ZohoSandbox = app.state.sandbox
    return state


def touch(
    app: Starlette | ZohoSandbox,
    module: str = "Accounts",
    count: int | None = None,
    ids: Iterable[str] | None = None,
) -> list[str]:
    """Mark ``count`` records (lowest ids first) or ``ids`` modified now."""
    return sandbox_state(app).touch(module, count, ids)


def delete(
    app: Starlette | ZohoSandbox, module: str, ids: Iterable[str], *, permanent: bool = False
) -> list[str]:
    """Delete records; they leave lists and COQL and appear under ``GET /{module}/deleted``."""
    return sandbox_state(app).delete(module, ids, permanent=permanent)


def set_fields(
    app: Starlette | ZohoSandbox, module: str, record_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Set field values on one record as a user would (its Modified_Time moves)."""
    return sandbox_state(app).set_fields(module, record_id, values)


def zoho_id(app: Starlette | ZohoSandbox, key: str) -> str:
    """The Zoho id given to a scenario key."""
    return sandbox_state(app).zoho_id(key)
