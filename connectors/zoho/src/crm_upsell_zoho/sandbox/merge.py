"""``POST /crm/v8/{module}/{master_id}/actions/merge``: merge duplicates into a master record ("Merge
Records", https://www.zoho.com/crm/developer/docs/api/v8/merge-records.html).

Body ``{"merge": [{"data": [{"id": "<duplicate>"}], "master_record_fields": [...]}]}``. What pointed at a
duplicate (contacts, deals, activities, notes) moves to the master and counts as modified; each
duplicate is deleted, so it leaves lists and appears under ``GET /{module}/deleted``. The answer is
``{"merge": [{"code": "SUCCESS", "details": {"id": master}, ...}]}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.state import ZohoSandbox, bad

__all__ = ["merge", "routes"]

MERGE_MAX = 2  # duplicates merged into one master per call


def _move_references(sb: ZohoSandbox, module: str, old: int, new: int) -> None:
    org, now = sb.org, sb.now_ms()
    for name, mod in org.modules.items():
        lookups = [
            fd.api_name
            for fd in mod.fields.values()
            if fd.data_type == "lookup" and fd.lookup_module in (module, "*")
        ]
        if not lookups:
            continue
        table = org.tables[name]
        for rid in list(table.by_id):
            rec = table.recs[rid]
            for api_name in lookups:
                fd = mod.fields[api_name]
                if fd.lookup_module == "*" and org.stored(name, rec, "$se_module") != module:
                    continue
                if org.stored(name, rec, api_name) == old:
                    if rec.vals is None:
                        rec.vals = {}
                    rec.vals[api_name] = new
                    table.touch(rec, now)


def merge(sb: ZohoSandbox, request: Request, payload: Any) -> Response:
    module = sb.module_table(str(request.path_params["module"])).module
    master_id = int(request.path_params["record_id"])
    if sb.org.find(module, master_id) is None:
        raise bad("INVALID_DATA", "the id given seems to be invalid", resource_path_index=1)
    entries = payload.get("merge") if isinstance(payload, dict) else None
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise bad("MANDATORY_NOT_FOUND", "required field not found", api_name="merge", json_path="$.merge")
    entry = entries[0]
    data = entry.get("data")
    if not isinstance(data, list) or not data:
        raise bad(
            "MANDATORY_NOT_FOUND", "required field not found", api_name="data", json_path="$.merge[0].data"
        )
    if not isinstance(entry.get("master_record_fields"), list):
        raise bad(
            "MANDATORY_NOT_FOUND",
            "required field not found",
            api_name="master_record_fields",
            json_path="$.merge[0].master_record_fields",
        )
    if len(data) > MERGE_MAX:
        raise bad("LIMIT_EXCEEDED", "limit exceeded", api_name="data", maximum_length=MERGE_MAX)
    duplicates: list[int] = []
    for n, item in enumerate(data):
        raw = str(item.get("id")) if isinstance(item, dict) else ""
        if not raw.isdigit() or int(raw) == master_id or sb.org.find(module, int(raw)) is None:
            raise bad(
                "INVALID_DATA",
                "the id given seems to be invalid",
                api_name="id",
                json_path=f"$.merge[0].data[{n}].id",
            )
        duplicates.append(int(raw))
    for dup in duplicates:
        _move_references(sb, module, dup, master_id)
        sb.delete(module, [str(dup)])
    sb.org.tables[module].touch(sb.org.tables[module].recs[master_id], sb.now_ms())
    return JSONResponse(
        {
            "merge": [
                {
                    "code": "SUCCESS",
                    "details": {"id": str(master_id)},
                    "message": "records merged successfully",
                    "status": "success",
                }
            ]
        }
    )


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [
        Route(
            "/crm/v8/{module}/{record_id:int}/actions/merge",
            guard.api(lambda r, b: merge(sb, r, b), body=True),
            methods=["POST"],
        )
    ]
