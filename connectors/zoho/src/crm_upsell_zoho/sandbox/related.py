"""``GET /crm/v8/{module}/{id}/{related_list}``: one record's related list ("Related Records",
https://www.zoho.com/crm/developer/docs/api/v8/get-related-records.html).

The sandbox serves the lists the connector reads: a deal's **Products** (the products linked to the
deal, as Zoho's Deals module keeps them in a standard org) and a record's **Notes**. ``fields`` is
required and checked against the related module (at most 50), ``page``/``per_page`` (at most 200)
page, a record with nothing related answers 204, an unknown record 400 ``INVALID_DATA`` on the id, an
unknown related list 400 ``INVALID_DATA`` naming it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.campaigns import RELATION_FIELDS
from crm_upsell_zoho.sandbox.state import PER_PAGE_MAX, ZohoSandbox, bad

__all__ = ["list_related", "routes"]

#: (parent module, related list api_name) -> related module.
RELATED_LISTS: dict[tuple[str, str], str] = {
    ("Deals", "Products"): "Products",
    ("Accounts", "Notes"): "Notes",
    ("Deals", "Notes"): "Notes",
    ("Contacts", "Notes"): "Notes",
    ("Campaigns", "Contacts"): "Contacts",
}


def _related_ids(sb: ZohoSandbox, parent: str, parent_id: int, related: str) -> list[int]:
    org = sb.org
    if parent == "Campaigns":
        return [c for c, _ in org.campaign_members.get(parent_id, []) if org.find("Contacts", c) is not None]
    if related == "Products":
        return [p for p in org.deal_products.get(parent_id, []) if org.find("Products", p) is not None]
    table = org.tables["Notes"]
    return [
        rid
        for rid in table.by_id
        if org.stored("Notes", table.recs[rid], "Parent_Id") == parent_id
        and org.stored("Notes", table.recs[rid], "$se_module") == parent
    ]


def list_related(sb: ZohoSandbox, request: Request) -> Response:
    parent = sb.module_table(str(request.path_params["module"])).module
    raw_id = str(request.path_params["record_id"])
    related_name = str(request.path_params["related"])
    related = RELATED_LISTS.get((parent, related_name))
    if related is None:
        raise bad("INVALID_DATA", "the related list given seems to be invalid", resource_path_index=2)
    record = sb.org.find(parent, int(raw_id)) if raw_id.isdigit() else None
    if record is None:
        raise bad("INVALID_DATA", "the id given seems to be invalid", resource_path_index=1)
    q = request.query_params
    relation = RELATION_FIELDS.get((parent, related_name), ())
    asked = [f.strip() for f in (q.get("fields") or "").split(",") if f.strip()]
    own = [f for f in asked if f not in relation]
    # The relation's own fields (a campaign member's Member_Status) ride beside the module's.
    fields = sb.fields_param(related, ",".join(own) if own else ("id" if asked else q.get("fields")))
    per_page = sb.int_param(q.get("per_page"), "per_page", PER_PAGE_MAX, 1, PER_PAGE_MAX)
    page = sb.int_param(q.get("page"), "page", 1)
    ids = _related_ids(sb, parent, record.id, related)
    start = (page - 1) * per_page
    chunk = ids[start : start + per_page]
    if not chunk:
        return Response(status_code=204)
    table = sb.org.tables[related]
    data = [sb.org.render(related, table.recs[i], fields) for i in chunk]
    if relation and parent == "Campaigns":
        status = dict(sb.org.campaign_members.get(record.id, []))
        for row, i in zip(data, chunk, strict=True):
            if "Member_Status" in asked:
                row["Member_Status"] = status.get(i)
    return JSONResponse(
        {
            "data": data,
            "info": {
                "per_page": per_page,
                "count": len(data),
                "page": page,
                "more_records": start + per_page < len(ids),
            },
        }
    )


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [
        Route(
            "/crm/v8/{module}/{record_id:int}/{related}",
            guard.api(lambda r, b: list_related(sb, r)),
            methods=["GET"],
        )
    ]
