"""``POST /crm/v8/coql``: a select query over one module ("COQL API",
https://www.zoho.com/crm/developer/docs/api/v8/COQL-Overview.html); credits by LIMIT (1-200: 1,
201-1000: 2, 1001-2000: 3)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.coql_parse import COQLSyntaxError, parse_coql
from crm_upsell_zoho.sandbox.coql_query import QueryError, run_coql
from crm_upsell_zoho.sandbox.state import ZohoSandbox, bad

__all__ = ["coql", "coql_credits", "routes"]


def coql(sb: ZohoSandbox, payload: Any) -> Response:
    if not isinstance(payload, dict) or not isinstance(payload.get("select_query"), str):
        raise bad(
            "MANDATORY_NOT_FOUND",
            "required field not found",
            api_name="select_query",
            json_path="$.select_query",
        )
    try:
        query = parse_coql(payload["select_query"])
    except COQLSyntaxError as exc:
        raise bad("SYNTAX_ERROR", exc.message, near=exc.near) from None
    try:
        rows, more = run_coql(sb.org, query)
    except QueryError as exc:
        raise bad(exc.code, exc.message, **exc.details) from None
    if not rows:
        return Response(status_code=204)
    return JSONResponse({"data": rows, "info": {"count": len(rows), "more_records": more}})


def coql_credits(payload: Any) -> int:
    try:
        query = parse_coql(str(payload.get("select_query", "")))
    except (COQLSyntaxError, AttributeError):
        return 1
    limit = query.limit or 200
    return 1 if limit <= 200 else 2 if limit <= 1000 else 3


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [
        Route(
            "/crm/v8/coql",
            guard.api(lambda r, b: coql(sb, b), body=True, cost=coql_credits),
            methods=["POST"],
        )
    ]
