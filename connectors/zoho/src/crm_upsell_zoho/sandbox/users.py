"""``GET /crm/v8/users``: the org's users ("Get Users",
https://www.zoho.com/crm/developer/docs/api/v8/get-users.html)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.state import ZohoSandbox, bad

__all__ = ["list_users", "routes"]

_USER_TYPES = frozenset(
    {
        "AllUsers",
        "ActiveUsers",
        "AdminUsers",
        "CurrentUser",
        "ActiveConfirmedUsers",
        "ActiveConfirmedAdmins",
        "AllActiveUsers",
        "ConfirmedUsers",
    }
)


def list_users(sb: ZohoSandbox, request: Request) -> Response:
    q = request.query_params
    kind = q.get("type") or "AllUsers"
    if kind not in _USER_TYPES:
        raise bad("INVALID_DATA", "invalid data", param_name="type")
    per_page = sb.int_param(q.get("per_page"), "per_page", 200, 1, 200)
    page = sb.int_param(q.get("page"), "page", 1)
    org = sb.org
    users = org.users if kind not in ("CurrentUser", "AdminUsers", "ActiveConfirmedAdmins") else org.users[:1]
    since = sb.since(request)
    if since is not None:  # like records: only users modified at or after the header's second
        users = [u for u in users if u.created_ms + 3_600_000 >= since]
    start = (page - 1) * per_page
    chunk = users[start : start + per_page]
    if not chunk:
        return Response(status_code=204)
    data = []
    for user in chunk:
        admin = user.id == org.admin.id
        data.append(
            {
                "id": str(user.id),
                "first_name": user.first_name,
                "last_name": user.last_name,
                "full_name": user.full_name,
                "email": user.email,
                "status": "active",
                "confirm": True,
                "zuid": str(60_000_000 + user.id % 1_000_000),
                "role": {"name": "CEO" if admin else "Manager", "id": str(org.admin.id + 900_000)},
                "profile": {
                    "name": "Administrator" if admin else "Standard",
                    "id": str(org.admin.id + (900_001 if admin else 900_002)),
                },
                "created_time": org.zt(user.created_ms),
                "Modified_Time": org.zt(user.created_ms + 3_600_000),
                "type__s": "Regular User",
            }
        )
    return JSONResponse(
        {
            "users": data,
            "info": {
                "per_page": per_page,
                "count": len(data),
                "page": page,
                "more_records": start + per_page < len(users),
            },
        }
    )


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [Route("/crm/v8/users", guard.api(lambda r, b: list_users(sb, r)), methods=["GET"])]
