"""``GET /crm/v8/{module}/actions/count``: how many records a module holds ("Get Record Count",
https://www.zoho.com/crm/developer/docs/api/v8/get-record-count.html).

Answers ``{"count": <records>}`` over the module's live records (deleted ones are in the recycle bin,
not counted); an unknown module is 400 ``INVALID_MODULE`` as on every module path. Zoho also filters
the count by ``criteria``, ``email``, ``phone``, ``word`` or ``cvid``: the sandbox does not emulate
those filters and refuses them (400 ``INVALID_DATA`` naming the parameter) rather than answer a count
that ignores them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.state import ZohoSandbox, bad

__all__ = ["count_records", "routes"]

#: The count's documented filters, which the sandbox does not emulate.
FILTERS = ("criteria", "email", "phone", "word", "cvid")


def count_records(sb: ZohoSandbox, request: Request, module_raw: str) -> Response:
    table = sb.module_table(module_raw)
    for name in FILTERS:
        if name in request.query_params:
            raise bad("INVALID_DATA", "the sandbox does not filter record counts", param_name=name)
    return JSONResponse({"count": len(table.recs)})


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [
        Route(
            "/crm/v8/{module}/actions/count",
            guard.api(lambda r, b: count_records(sb, r, str(r.path_params["module"]))),
            methods=["GET"],
        )
    ]
