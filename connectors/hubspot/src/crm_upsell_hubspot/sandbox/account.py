"""Account information: ``GET /account-info/v3/details`` (company currency, time zone, portal id).

Shape from https://developers.hubspot.com/docs/api-reference/latest/account/account-information/get-account-details:
``companyCurrency`` is "the primary currency used by the company", ``additionalCurrencies`` the
others the account may use (https://developers.hubspot.com/docs/api/settings/currencies).
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from crm_upsell_hubspot.sandbox.state import PortalState

PORTAL_ID = 4_000_001


class AccountMixin(PortalState):
    """The account-information route."""

    def account_details(self) -> Response:
        currencies = self.scenario.currencies()
        return JSONResponse(
            {
                "portalId": PORTAL_ID,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": self.scenario.home_currency,
                "additionalCurrencies": [c for c in currencies if c != self.scenario.home_currency],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18_000_000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )
