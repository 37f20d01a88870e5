"""What every part of the Salesforce connector shares: its state, stream objects and SOQL reads that
leave out optional fields the org lacks."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from crm_upsell_connector.connector import Connector, ConnectorContext
from crm_upsell_connector.errors import ConfigError, FatalAPIError
from crm_upsell_connector.fields import ACCOUNT_FIELD_NAMES
from crm_upsell_connector.models import Stream
from crm_upsell_salesforce import soql
from crm_upsell_salesforce.client import SalesforceClient
from crm_upsell_salesforce.currency import Rates, load_rates
from crm_upsell_salesforce.enrich import CURRENCY_STREAMS, EXTRA_FIELDS, OPTIONAL_EXTRA
from crm_upsell_salesforce.mapping import (
    SOBJECTS,
    MappingOptions,
    fields_for,
)
from crm_upsell_salesforce.marketing import OPT_OUT
from crm_upsell_salesforce.settings import SalesforceSettings

log = logging.getLogger(__name__)

#: connector stream -> canonical stream, in the order to sync.
STREAMS: dict[str, Stream] = {
    "users": Stream.OWNERS,
    "products": Stream.PRODUCTS,
    "accounts": Stream.ACCOUNTS,
    "contacts": Stream.CONTACTS,
    "opportunities": Stream.DEALS,
    "line_items": Stream.LINE_ITEMS,
    "assets": Stream.LINE_ITEMS,
    "tasks": Stream.ACTIVITIES,
    "events": Stream.ACTIVITIES,
    "campaign_members": Stream.CAMPAIGN_MEMBERS,
}


_NO_SUCH_COLUMN = re.compile(r"No such column '([A-Za-z0-9_.]+)'")


class QueryingBase(Connector):
    """The connector's state and its query helper; reads, writes, field setup and checks are mixins."""

    settings: SalesforceSettings
    context: ConnectorContext
    options: MappingOptions
    client: SalesforceClient
    _missing: dict[str, set[str]]  # stream -> optional fields (lower case) this org turned out not to have
    _unavailable: set[str]  # optional streams whose sObject the org does not have (CampaignMember)
    _fully_read: set[str]  # streams whose full read (every live id, deletes reconciled) completed here
    _rates: Rates | None  # the org's currencies, read once when first needed
    _rates_lock: asyncio.Lock

    async def rates(self) -> Rates:
        """The org's corporate currency and conversion rates (read once per connector)."""
        async with self._rates_lock:  # streams read at once share one look-up
            if self._rates is None:
                self._rates = await load_rates(self.client)
        return self._rates

    async def home_currency(self) -> str | None:
        """The org's corporate currency (``CurrencyType.IsCorporate``), or its only currency
        (``Organization.DefaultCurrencyIsoCode``) in a single-currency org."""
        return (await self.rates()).corporate

    def _sobject(self, stream: str) -> str:
        if stream not in STREAMS:
            raise ConfigError(f"Salesforce has no stream {stream!r}; streams are {', '.join(STREAMS)}")
        return SOBJECTS[stream]

    def _optional_fields(self, stream: str) -> set[str]:
        """Fields a query may leave out when the org lacks them (before ``setup``, or hidden by
        field-level security): the product's own fields and the mapped account fields."""
        if stream == "accounts":
            own = {self.options.product_field(n) for n in ACCOUNT_FIELD_NAMES}
            return {f.lower() for f in own | {api for _, api in self.options.account_fields}}
        if stream == "tasks":
            return {f.lower() for f in (self.options.task_key_field, self.options.direction_field) if f}
        if stream == "events":
            return {self.options.outcome_field.lower()} if self.options.outcome_field else set()
        if stream == "products":
            return {f.lower() for f in self.options.product_extra_fields}
        if stream == "contacts":
            return {OPT_OUT.lower()}
        if stream in CURRENCY_STREAMS:
            return set(OPTIONAL_EXTRA)  # single-currency orgs have no CurrencyIsoCode
        return set()

    def _fields(self, stream: str) -> tuple[str, ...]:
        missing = self._missing.get(stream, set())
        wanted = dict.fromkeys((*fields_for(stream, self.options), *EXTRA_FIELDS.get(stream, ())))
        return tuple(f for f in wanted if f.lower() not in missing)

    def _drop_missing(self, stream: str, exc: FatalAPIError) -> bool:
        """Leave out an optional field Salesforce says does not exist; False where it is not one."""
        if exc.error_code != "INVALID_FIELD":
            return False
        match = _NO_SUCH_COLUMN.search(exc.message)
        column = match.group(1).lower() if match else ""
        missing = self._missing.setdefault(stream, set())
        if column not in self._optional_fields(stream) or column in missing:
            return False
        ours = self._own_fields(stream)
        # ``setup`` creates the product's fields together: one missing means all are, which spares
        # a call per field (Salesforce names one unknown column per answer).
        dropped = ours if column in ours else {column}
        missing.update(dropped)
        log.warning(
            "Salesforce %s has no field %s (or the integration user cannot see it): read as empty; "
            "run 'crm-upsell setup' for the product's fields, and check field-level security",
            SOBJECTS[stream],
            f"{self.settings.field_prefix}*__c" if column in ours else (match.group(1) if match else column),
        )
        return True

    async def _refuse_hidden(self, stream: str, exc: FatalAPIError) -> None:
        """Raise where the product's own field exists but field-level security hides it: that is not
        "the field is not there yet" (before ``setup``), and reading it as empty would hide the fault.
        One Tooling API call, only on that error."""
        if exc.error_code != "INVALID_FIELD":
            return
        match = _NO_SUCH_COLUMN.search(exc.message)
        column = match.group(1).lower() if match else ""
        if column not in self._own_fields(stream):
            return
        table = "Activity" if stream in ("tasks", "events") else SOBJECTS[stream]
        query = soql.select(
            "CustomField",
            ("Id", "DeveloperName"),
            where=[
                soql.condition("TableEnumOrId", "=", table),
                soql.condition("DeveloperName", "=", column.removesuffix("__c")),
            ],
        )
        found = False
        async for records, _nxt in self.client.query_pages(
            query, resource="tooling/query", endpoint="GET tooling/query CustomField"
        ):
            found = found or bool(records)
        if found:
            raise ConfigError(
                f"Salesforce hides the product's field {SOBJECTS[stream]}.{match.group(1) if match else column} "
                "from the integration user (field-level security)",
                hint="run 'crm-upsell setup': it grants read/edit through the permission set "
                f"'{self.settings.field_prefix}Connector'; or grant it by hand "
                "(connectors/salesforce/README.md)",
            )

    def _own_fields(self, stream: str) -> set[str]:
        if stream == "accounts":
            return {self.options.product_field(n).lower() for n in ACCOUNT_FIELD_NAMES}
        if stream == "tasks":
            return {self.options.task_key_field.lower()}
        return set()

    async def _query(
        self,
        stream: str,
        build: Callable[[tuple[str, ...]], str],
        *,
        resume: str | None = None,
        resource: str = "query",
        endpoint: str,
        totals: list[int] | None = None,
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str | None]]:
        """``query_pages`` for a query over the stream's fields, without the optional fields the
        org turns out not to have (one extra call the first time each is found missing).
        ``totals`` receives the first answer's ``totalSize`` (see ``SalesforceClient.query_pages``)."""
        while True:
            batches = self.client.query_pages(
                build(self._fields(stream)),
                resource=resource,
                resume=resume,
                endpoint=endpoint,
                totals=totals,
            )
            try:
                first = await anext(batches)
            except StopAsyncIteration:
                return
            except FatalAPIError as exc:
                if resume is None:
                    await self._refuse_hidden(stream, exc)
                if resume is None and self._drop_missing(stream, exc):
                    continue
                raise
            yield first
            async for batch in batches:
                yield batch
            return
