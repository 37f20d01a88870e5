"""Amounts in the org's corporate currency, the way Salesforce's own reports convert them.

In a multi-currency org each opportunity (and its products) keeps ``Amount`` in its own
``CurrencyIsoCode``. ``CurrencyType.ConversionRate`` is the rate of each active currency against the
corporate one (``IsCorporate``), so the corporate amount is ``amount / rate``; with advanced currency
management on, opportunities use the ``DatedConversionRate`` whose ``StartDate <= CloseDate <
NextStartDate`` (Object Reference "CurrencyType" and "DatedConversionRate"; Salesforce Help, "Manage
Multiple Currencies" and "Edit Dated Exchange Rates"). ``convertCurrency()`` is not used: it answers
in the *running user's* currency, not the corporate one. A single-currency org has no CurrencyType
(``INVALID_TYPE``): its currency is ``Organization.DefaultCurrencyIsoCode`` and every amount is
already at home. Dated rates are used whenever the org has any (the API does not say whether
advanced currency management is on; an org without it keeps none).
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.client import SalesforceClient
from crm_upsell_salesforce.mapping import parse_datetime

log = logging.getLogger(__name__)

__all__ = ["Rates", "load_rates"]


@dataclass
class Rates:
    """The corporate currency, CurrencyType rates and dated rates (by ISO code)."""

    corporate: str | None
    rates: dict[str, float] = field(default_factory=dict)
    dated: dict[str, list[tuple[date, date, float]]] = field(default_factory=dict)

    def rate(self, iso: str, on: date | None) -> float | None:
        """Units of ``iso`` per corporate unit on ``on`` (dated where known), or None."""
        periods = self.dated.get(iso)
        if periods and on is not None:
            i = bisect.bisect_right([p[0] for p in periods], on) - 1
            if i >= 0 and on < periods[i][1]:
                return periods[i][2]
        return self.rates.get(iso)

    def home(self, amount: float | None, iso: str | None, on: datetime | date | None = None) -> float | None:
        """``amount`` (in ``iso``) in the corporate currency; None where no rate says."""
        if amount is None:
            return None
        if iso is None or iso == self.corporate or not self.rates:
            return amount
        day = on.date() if isinstance(on, datetime) else on
        rate = self.rate(iso, day)
        if not rate or rate <= 0:
            return None
        return round(amount / rate, 2)


async def _rows(client: SalesforceClient, query: str, endpoint: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async for records, _nxt in client.query_pages(query, endpoint=endpoint):
        rows.extend(records)
    return rows


def _day(value: Any) -> date | None:
    moment = parse_datetime(value)
    return moment.date() if moment is not None else None


async def load_rates(client: SalesforceClient) -> Rates:
    """The org's currencies: 1 call in a single-currency org, 2 in a multi-currency one."""
    try:
        types = await _rows(
            client,
            soql.select(
                "CurrencyType",
                ("IsoCode", "ConversionRate", "IsCorporate"),
                where=[soql.condition("IsActive", "=", True)],
            ),
            "GET query CurrencyType",
        )
    except FatalAPIError as exc:
        if exc.error_code != "INVALID_TYPE":
            raise
        org = await _rows(
            client, soql.select("Organization", ("DefaultCurrencyIsoCode",)), "GET query Organization"
        )
        only = str(org[0].get("DefaultCurrencyIsoCode") or "") if org else ""
        return Rates(only or None)
    rates = {
        str(r["IsoCode"]): float(r["ConversionRate"])
        for r in types
        if r.get("IsoCode") and r.get("ConversionRate")
    }
    corporate = next((str(r["IsoCode"]) for r in types if r.get("IsCorporate")), None)
    dated: dict[str, list[tuple[date, date, float]]] = {}
    try:
        rows = await _rows(
            client,
            soql.select(
                "DatedConversionRate",
                ("IsoCode", "ConversionRate", "StartDate", "NextStartDate"),
                order_by=("IsoCode", "StartDate"),
            ),
            "GET query DatedConversionRate",
        )
    except FatalAPIError as exc:
        if exc.error_code not in ("INVALID_TYPE", "INSUFFICIENT_ACCESS"):
            raise
        rows = []
    for row in rows:
        start, until = _day(row.get("StartDate")), _day(row.get("NextStartDate")) or date.max
        if row.get("IsoCode") and start is not None and row.get("ConversionRate"):
            dated.setdefault(str(row["IsoCode"]), []).append((start, until, float(row["ConversionRate"])))
    if corporate is None:
        log.warning(
            "Salesforce names no corporate currency (CurrencyType.IsCorporate); home amounts are left empty"
        )
    return Rates(corporate, rates, dated)
