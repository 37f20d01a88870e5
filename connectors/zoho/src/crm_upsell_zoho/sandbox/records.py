"""``GET /crm/v8/{module}``: records a page at a time, by ``page`` then by ``page_token``.

Paging as "Get Records" documents it (https://www.zoho.com/crm/developer/docs/api/v8/get-records.html):
``page``/``per_page`` (at most 200) reach the first 2,000 records; past that, 400
``DISCRETE_PAGINATION_LIMIT_EXCEEDED`` and the caller follows ``next_page_token`` (bound to module, sort and
If-Modified-Since, valid 24 h, up to 100,000 records). ``If-Modified-Since`` is inclusive at second
precision. ``fields`` is mandatory, at most 50 names, each a field of the module. The default sort is
``id`` ``desc``.
"""

from __future__ import annotations

import bisect
import secrets
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.inventory import LINE_ITEM_SUBFORMS
from crm_upsell_zoho.sandbox.state import PER_PAGE_MAX, PageToken, ZohoSandbox, bad
from crm_upsell_zoho.sandbox.store import Table

__all__ = ["list_records", "routes"]

_TOKEN_TTL_MS = 86_400_000
_SORT_BY = ("id", "Created_Time", "Modified_Time")


def _rec_id(element: Any) -> int:
    return element if isinstance(element, int) else int(element[1])


def _slice(seq: Sequence[Any], lo: int, pos: Any, desc: bool, n: int, offset: int) -> tuple[list[Any], bool]:
    """A page of ``seq[lo:]`` (ascending) after ``pos`` (or at ``offset``), in the requested direction."""
    if not desc:
        start = bisect.bisect_right(seq, pos, lo) if pos is not None else lo + offset
        items = list(seq[start : start + n])
        return items, start + n < len(seq)
    end = bisect.bisect_left(seq, pos, lo) if pos is not None else len(seq) - offset
    if end <= lo:
        return [], False
    start = max(lo, end - n)
    return list(seq[start:end])[::-1], start > lo


def _ordered(sb: ZohoSandbox, table: Table, sort_by: str, since_ms: int | None) -> tuple[Sequence[Any], int]:
    """The ascending sequence to page over and the index of its first element."""
    if sort_by == "Modified_Time":
        lo = 0 if since_ms is None else bisect.bisect_left(table.by_mod, (since_ms, -1))
        return table.by_mod, lo
    if since_ms is None:
        return (table.by_id, 0) if sort_by == "id" else (table.by_created, 0)
    key = (table.module, sort_by, since_ms, table.version)
    cached = sb.filtered.get(key)
    if cached is None:
        start = bisect.bisect_left(table.by_mod, (since_ms, -1))
        ids = [rid for _, rid in table.by_mod[start:]]
        cached = sorted(ids) if sort_by == "id" else sorted((table.recs[i].created_ms, i) for i in ids)
        if len(sb.filtered) > 8:
            sb.filtered.clear()
        sb.filtered[key] = cached
    return cached, 0


def list_records(sb: ZohoSandbox, request: Request, module_raw: str) -> Response:
    table = sb.module_table(module_raw)
    module = table.module
    q = request.query_params
    fields = sb.fields_param(module, q.get("fields"))
    per_page = sb.int_param(q.get("per_page"), "per_page", PER_PAGE_MAX, 1, PER_PAGE_MAX)
    sort_by = q.get("sort_by") or "id"
    if sort_by not in _SORT_BY:
        raise bad("INVALID_DATA", "invalid data", param_name="sort_by", supported_values=list(_SORT_BY))
    sort_order = q.get("sort_order") or "desc"
    if sort_order not in ("asc", "desc"):
        raise bad("INVALID_DATA", "invalid data", param_name="sort_order", supported_values=["asc", "desc"])
    desc = sort_order == "desc"
    since = sb.since(request)
    token_raw = q.get("page_token")
    now = sb.now_ms()
    if token_raw:
        if q.get("page"):
            raise bad(
                "AMBIGUITY_DURING_PROCESSING",
                "ambiguity while processing the request",
                ambiguity_due_to=[{"param_name": "page"}, {"param_name": "page_token"}],
            )
        state = sb.page_tokens.get(token_raw)
        if state is None:
            raise bad("INVALID_DATA", "invalid data", param_name="page_token")
        if now >= state.expires_ms:
            raise bad(
                "EXPIRED_VALUE",
                "the page token has expired",
                api_name="page_token",
                json_path="page_token",
            )
        if request.headers.get("if-modified-since") is None:
            since = state.since_ms
        for name, mine, theirs in (
            ("module", module, state.module),
            ("sort_by", sort_by if q.get("sort_by") else state.sort_by, state.sort_by),
            ("sort_order", desc if q.get("sort_order") else state.desc, state.desc),
            ("If-Modified-Since", since, state.since_ms),
        ):
            if mine != theirs:
                raise bad(
                    "TOKEN_BOUND_DATA_MISMATCH",
                    "the given data does not match the page token",
                    param_name=name,
                )
        sort_by, desc = state.sort_by, state.desc
        if state.served >= sb.token_limit:
            raise bad(
                "PAGINATION_LIMIT_EXCEEDED",
                f"You can only get upto {sb.token_limit} records using page_token param",
                param_name="page_token",
            )
        seq, lo = _ordered(sb, table, sort_by, since)
        n = min(per_page, sb.token_limit - state.served)
        items, more = _slice(seq, lo, state.pos, desc, n, 0)
        served = state.served + len(items)
        page = 1
    else:
        page = sb.int_param(q.get("page"), "page", 1)
        offset = (page - 1) * per_page
        if offset >= sb.discrete_limit:
            raise bad(
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                f"You can only get the first {sb.discrete_limit} records without using page_token param",
                limit=sb.discrete_limit,
            )
        seq, lo = _ordered(sb, table, sort_by, since)
        n = min(per_page, sb.discrete_limit - offset)
        items, more = _slice(seq, lo, None, desc, n, offset)
        served = offset + len(items)
    if not items:
        return Response(status_code=204)
    next_token: str | None = None
    expiry: str | None = None
    if more:
        next_token = secrets.token_hex(24)
        expires = now + _TOKEN_TTL_MS
        sb.page_tokens[next_token] = PageToken(module, sort_by, desc, since, items[-1], served, expires)
        expiry = sb.org.zt(expires)
        if len(sb.page_tokens) > 10_000:
            sb.page_tokens = {k: v for k, v in sb.page_tokens.items() if v.expires_ms > now}
    data = [sb.org.render(module, table.recs[_rec_id(e)], fields) for e in items]
    if not sb.org.line_items_in_lists:  # emulate an org whose list reads leave line items out
        data = [{k: v for k, v in row.items() if k not in LINE_ITEM_SUBFORMS} for row in data]
    return JSONResponse(
        {
            "data": data,
            "info": {
                "call": False,
                "per_page": per_page,
                "next_page_token": next_token,
                "count": len(data),
                "sort_by": sort_by,
                "page": page,
                "previous_page_token": token_raw or None,
                "page_token_expiry": expiry,
                "sort_order": "desc" if desc else "asc",
                "email": False,
                "more_records": more,
            },
        }
    )


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [
        Route(
            "/crm/v8/{module}",
            guard.api(lambda r, b: list_records(sb, r, str(r.path_params["module"]))),
            methods=["GET"],
        )
    ]
