"""A multi-currency org: CurrencyType rates against the corporate currency, optional dated rates
(advanced currency management), and the Organization row; or a single-currency org without them.

Object Reference: "CurrencyType" (ConversionRate is against the corporate currency; IsCorporate marks
it), "DatedConversionRate" (rates by StartDate/NextStartDate, used for opportunities when advanced
currency management is on) and "Organization" (DefaultCurrencyIsoCode). In a single-currency org
neither currency object exists (``INVALID_TYPE``) and records have no ``CurrencyIsoCode`` field
(Salesforce Help, "Considerations for Enabling Multiple Currencies").
"""

from __future__ import annotations

from crm_upsell_salesforce.sandbox.base import OrgBase
from crm_upsell_salesforce.sandbox.common import WHOLE_UNIT_CURRENCIES, to_ms
from crm_upsell_salesforce.sandbox.store import Rec

__all__ = ["CurrencyData"]


class CurrencyData(OrgBase):
    """Loading and changing the org's currencies."""

    def _setup_row(self, otype: str, values: dict[str, object]) -> Rec:
        table = self.tables[otype]
        stamp = to_ms(self.scenario.now) - 400 * 86_400_000
        rec = Rec(self._new_id(table), None, stamp, stamp)
        rec.over = dict(values)
        table.add(rec)
        return rec

    def _load_currencies(self) -> None:
        """The scenario's currency settings as the org's: ``Scenario.home_currency`` is the corporate
        currency, ``Scenario.exchange_rates`` (units per home unit, the way CurrencyType.ConversionRate
        is "the conversion rate of this currency type against the corporate currency") the active
        currencies' rates, every currency a deal uses among them."""
        sc = self.scenario
        corporate = sc.home_currency
        self._setup_row(
            "Organization",
            {"Name": "Sandbox Org", "DefaultCurrencyIsoCode": corporate, "IsSandbox": True},
        )
        rates = {corporate: 1.0, **{iso: rate for iso, rate in sc.exchange_rates.items() if iso != corporate}}
        for iso in sc.currencies():
            if iso not in rates:
                raise ValueError(f"the scenario's deals use {iso} but its exchange_rates give no rate for it")
        for iso, rate in rates.items():
            self._setup_row(
                "CurrencyType",
                {
                    "IsoCode": iso,
                    "ConversionRate": rate,
                    "DecimalPlaces": 0 if iso in WHOLE_UNIT_CURRENCIES else 2,
                    "IsActive": True,
                    "IsCorporate": iso == corporate,
                },
            )

    def set_dated_rates(self, iso: str, periods: list[tuple[str, float]]) -> None:
        """Advanced currency management: ``iso`` costs ``rate`` units per corporate unit from each
        ``start`` date (``YYYY-MM-DD``) until the next one."""
        with self.lock:
            ordered = sorted(periods)
            for n, (start, rate) in enumerate(ordered):
                following = ordered[n + 1][0] if n + 1 < len(ordered) else "9999-12-31"
                self._setup_row(
                    "DatedConversionRate",
                    {"IsoCode": iso, "ConversionRate": rate, "StartDate": start, "NextStartDate": following},
                )

    def make_single_currency(self) -> None:
        """Turn this org into a single-currency one: no currency objects, no CurrencyIsoCode fields."""
        with self.lock:
            for otype in ("CurrencyType", "DatedConversionRate"):
                self.schema.pop(otype, None)
            for sobj in self.schema.values():
                sobj.fields.pop("currencyisocode", None)
