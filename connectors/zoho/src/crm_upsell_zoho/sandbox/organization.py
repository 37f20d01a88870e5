"""The organization: ``GET /crm/v8/org`` ("Get Organization Data",
https://www.zoho.com/crm/developer/docs/api/v8/get-org-data.html) and ``GET /crm/v8/org/currencies``
("Currencies", https://www.zoho.com/crm/developer/docs/api/v8/get-currencies.html): the home currency is
the one with ``is_base``; ``exchange_rate`` is units of that currency per unit of the home currency."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_upsell_connector.sandbox.plumbing import ApiGuard
from crm_upsell_zoho.sandbox.state import ZohoSandbox
from crm_upsell_zoho.sandbox.store import currency_name

__all__ = ["routes"]


def get_org(sb: ZohoSandbox, request: Request) -> Response:
    home = sb.org.home_currency
    name, symbol = currency_name(home)
    return JSONResponse(
        {
            "org": [
                {
                    "id": str(sb.org.admin.id + 1_000_000),
                    "company_name": "Sandbox Org",
                    "currency": f"{name} - {home}",
                    "currency_symbol": symbol,
                    "currency_locale": "en_US",
                    "mc_status": True,
                    "time_zone": "UTC",
                    "country_code": "US",
                }
            ]
        }
    )


def list_currencies(sb: ZohoSandbox, request: Request) -> Response:
    data = [
        {
            "id": str(sb.org.admin.id + 2_000_000 + n),
            "iso_code": code,
            "name": f"{currency_name(code)[0]} - {code}",
            "symbol": currency_name(code)[1],
            "is_base": code == sb.org.home_currency,
            "is_active": True,
            "exchange_rate": f"{rate:.9f}",
        }
        for n, (code, rate) in enumerate(sb.org.currencies.items())
    ]
    return JSONResponse({"currencies": data})


def routes(sb: ZohoSandbox, guard: ApiGuard) -> list[Route]:
    return [
        Route("/crm/v8/org", guard.api(lambda r, b: get_org(sb, r)), methods=["GET"]),
        Route("/crm/v8/org/currencies", guard.api(lambda r, b: list_currencies(sb, r)), methods=["GET"]),
    ]
