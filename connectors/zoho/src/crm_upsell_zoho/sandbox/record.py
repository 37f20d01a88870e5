"""``GET /crm/v8/{module}/{id}``: one record with every field, subforms and line items included
("Subform API", https://www.zoho.com/crm/developer/docs/api/v8/subforms.html: a record's subform data
comes with ``GET /{module_API_name}/{record_ID}``). ``fields`` is optional here and, when given, as
strict as on the list. An id the module does not hold answers 400 ``INVALID_DATA`` naming ``id``
(the sandbox's reading; Zoho's page does not show that answer).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.state import ZohoSandbox, bad

__all__ = ["get_record", "routes"]


def get_record(sb: ZohoSandbox, request: Request, module_raw: str, record_id: int) -> Response:
    table = sb.module_table(module_raw)
    module = table.module
    raw_fields = request.query_params.get("fields")
    fields = sb.fields_param(module, raw_fields) if raw_fields else list(sb.org.modules[module].fields)
    rec = table.recs.get(record_id)
    if rec is None:
        raise bad("INVALID_DATA", "the id given seems to be invalid", api_name="id", resource_path_index=1)
    return JSONResponse({"data": [sb.org.render(module, rec, fields)]})


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [
        Route(
            "/crm/v8/{module}/{id:int}",
            guard.api(lambda r, b: get_record(sb, r, str(r.path_params["module"]), int(r.path_params["id"]))),
            methods=["GET"],
        )
    ]
