"""What mapping one record at a time cannot know: home-currency amounts, whole bodies, merges.

* Opportunities, opportunity products and assets get ``amount_home`` in the corporate currency
  (:mod:`.currency`; assets at the CurrencyType rate: dated rates apply to opportunities and their
  products only, Salesforce Help "Edit Dated Exchange Rates").
* Tasks and events get ``body``: ``Description`` as whole plain text (``html_to_text``: e-mails logged
  with HTML bodies keep every paragraph; plain text stays as it is).
* Deleted accounts and contacts whose ``MasterRecordId`` is set were merged away (SOAP API Developer
  Guide, "merge()"): their ids are deletes, and the survivor, when it is in the same page, lists
  them in ``extra["merged_ids"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm_upsell_connector.models import Activity, Deal, LineItem, Record
from crm_upsell_connector.text import html_to_text
from crm_upsell_salesforce.currency import Rates
from crm_upsell_salesforce.mapping import parse_datetime

__all__ = ["EXTRA_FIELDS", "OPTIONAL_EXTRA", "enrich", "merged_into"]

#: Fields read beyond ``mapping.fields_for``.
EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "accounts": ("MasterRecordId",),
    "contacts": ("MasterRecordId",),
    "opportunities": ("CurrencyIsoCode",),
    "line_items": ("CurrencyIsoCode", "ServiceDate"),
    "assets": ("CurrencyIsoCode",),
    "tasks": ("Description",),
    "events": ("Description",),
}
#: Of those, the ones a single-currency org does not have (left out when Salesforce says so).
OPTIONAL_EXTRA = frozenset({"currencyisocode"})
CURRENCY_STREAMS = frozenset({"opportunities", "line_items", "assets"})


def merged_into(deleted: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Survivor id -> the ids merged into it, from deleted rows' ``MasterRecordId``."""
    out: dict[str, list[str]] = {}
    for raw in deleted:
        master = raw.get("MasterRecordId")
        if master and raw.get("Id"):
            out.setdefault(str(master), []).append(str(raw["Id"]))
    return out


def enrich(
    stream: str,
    records: list[Record],
    raws: Sequence[dict[str, Any]],
    rates: Rates | None,
    merges: dict[str, list[str]],
) -> list[Record]:
    by_id = {str(r.get("Id")): r for r in raws}
    out: list[Record] = []
    for record in records:
        raw = by_id.get(record.id, {})
        update: dict[str, Any] = {}
        if isinstance(record, Deal) and rates is not None:
            update["amount_home"] = rates.home(
                record.amount, record.currency or rates.corporate, record.close_date
            )
        elif isinstance(record, LineItem) and rates is not None and stream in ("line_items", "assets"):
            iso = raw.get("CurrencyIsoCode") or rates.corporate
            on = parse_datetime(raw.get("ServiceDate")) if stream == "line_items" else None
            update["amount_home"] = rates.home(record.amount, str(iso) if iso else None, on)
        elif isinstance(record, Activity) and raw.get("Description"):
            update["body"] = html_to_text(str(raw["Description"]))
        if record.id in merges:
            update["extra"] = {**record.extra, "merged_ids": sorted(merges[record.id])}
        out.append(record.model_copy(update=update) if update else record)
    return out
