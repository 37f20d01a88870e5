"""CRM v3 owners: paged list, filter by e-mail."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_upsell_connector.sandbox.server import iso_ms
from crm_upsell_hubspot.sandbox.catalog import _OWNER_LIMIT_MAX
from crm_upsell_hubspot.sandbox.common import _int_param, _ms
from crm_upsell_hubspot.sandbox.state import PortalState


class OwnersMixin(PortalState):
    """The ``/crm/v3/owners`` route."""

    def list_owners(self, request: Request) -> Response:
        q = request.query_params
        limit = max(1, min(_int_param(q.get("limit"), 100, "limit"), _OWNER_LIMIT_MAX))
        start = int(q["after"]) if (q.get("after") or "").isdigit() else 0
        email = (q.get("email") or "").lower()
        if (q.get("archived") or "false").lower() == "true":
            return JSONResponse({"results": []})
        owners = [o for o in self.scenario.owners if not email or o.email.lower() == email]
        page = owners[start : start + limit]
        stamp = _ms(self.scenario.now) - 1200 * 86_400_000
        results = [
            {
                "id": str(self.owner_ids[o.key]),
                "email": o.email,
                "type": "PERSON",
                "firstName": o.first_name,
                "lastName": o.last_name,
                "userId": 9_000_000 + i,
                "userIdIncludingInactive": 9_000_000 + i,
                "createdAt": iso_ms(stamp + i * 86_400_000),
                "updatedAt": iso_ms(stamp + i * 86_400_000 + 3_600_000),
                "archived": False,
                "teams": [],
            }
            for i, o in enumerate(page, start=start)
        ]
        body: dict[str, Any] = {"results": results}
        if start + limit < len(owners):
            nxt = str(start + limit)
            body["paging"] = {
                "next": {"after": nxt, "link": str(request.url.include_query_params(after=nxt))}
            }
        return JSONResponse(body)
