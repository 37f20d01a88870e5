"""``GET /crm/v8/Notes``: every note of the org, as "Get Notes" documents it
(https://www.zoho.com/crm/developer/docs/api/v8/get-notes.html).

What differs from other modules: the page lists ``page``, ``per_page``, ``fields``, ``sort_by``,
``sort_order`` and ``ids`` and **no** ``If-Modified-Since`` header, so the sandbox ignores that header
here (a connector relying on it reads everything and is caught by its tests); ``$se_module`` is not a
Notes field (the parent's module is inside ``Parent_Id``); and only some profiles may list all notes:
with ``notes_listable`` off the sandbox answers as Zoho does to a profile without the permission,
403 ``NO_PERMISSION``. A note's related list on its parent (``GET /{module}/{id}/Notes``) stays open.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.records import list_records
from crm_upsell_zoho.sandbox.state import ZohoSandbox, bad

__all__ = ["list_notes", "routes"]


def list_notes(sb: ZohoSandbox, request: Request) -> Response:
    if not sb.notes_listable:
        raise bad("NO_PERMISSION", "permission denied", 403, permissions=["Crm_Implied_View_Notes"])
    if "if-modified-since" in request.headers:
        scope = dict(request.scope)
        scope["headers"] = [
            (k, v) for k, v in Headers(scope=request.scope).raw if k.lower() != b"if-modified-since"
        ]
        request = Request(scope, request.receive)
    return list_records(sb, request, "Notes")


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [Route("/crm/v8/Notes", guard.api(lambda r, b: list_notes(sb, r)), methods=["GET"])]
