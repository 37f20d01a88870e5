"""``GET /crm/v8/{module}/deleted``: the recycle bin and permanently deleted records ("Get Deleted
Records", https://www.zoho.com/crm/developer/docs/api/v8/get-deleted-records.html)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.state import PER_PAGE_MAX, ZohoSandbox, bad

__all__ = ["list_deleted", "routes"]


def list_deleted(sb: ZohoSandbox, request: Request, module_raw: str) -> Response:
    table = sb.module_table(module_raw)
    q = request.query_params
    kind = q.get("type") or "all"
    if kind not in ("all", "recycle", "permanent"):
        raise bad(
            "INVALID_DATA",
            "invalid data",
            param_name="type",
            supported_values=["all", "recycle", "permanent"],
        )
    per_page = sb.int_param(q.get("per_page"), "per_page", PER_PAGE_MAX, 1, PER_PAGE_MAX)
    page = sb.int_param(q.get("page"), "page", 1)
    since = sb.since(request)
    rows = [
        d
        for d in reversed(table.deleted)
        if (kind == "all" or d.kind == kind) and (since is None or d.deleted_ms >= since)
    ]
    start = (page - 1) * per_page
    chunk = rows[start : start + per_page]
    if not chunk:
        return Response(status_code=204)
    org = sb.org
    data = [
        {
            "deleted_by": org.user_json(d.deleted_by, email=False),
            "id": str(d.id),
            "display_name": d.display_name,
            "type": d.kind,
            "created_by": org.user_json(d.created_by, email=False),
            "deleted_time": org.zt(d.deleted_ms),
        }
        for d in chunk
    ]
    return JSONResponse(
        {
            "data": data,
            "info": {
                "per_page": per_page,
                "count": len(data),
                "page": page,
                "more_records": start + per_page < len(rows),
            },
        }
    )


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [
        Route(
            "/crm/v8/{module}/deleted",
            guard.api(lambda r, b: list_deleted(sb, r, str(r.path_params["module"]))),
            methods=["GET"],
        )
    ]
