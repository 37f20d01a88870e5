"""The Zoho connector's shared state: settings, client, the product's field names and the org's field
metadata (which fields Accounts and Tasks have), and the home currency.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from crm_upsell_connector.connector import CallStats, Connector, ConnectorContext
from crm_upsell_connector.errors import FatalAPIError
from crm_upsell_connector.fields import ACCOUNT_FIELDS, TASK_KEY_FIELD
from crm_upsell_connector.models import FieldSpec, Stream
from crm_upsell_zoho.auth import build_auth
from crm_upsell_zoho.client import WRITE_LIMIT, ZohoClient, data_of
from crm_upsell_zoho.fields_setup import FieldState, judge_fields
from crm_upsell_zoho.mapping import MODULES, MappingOptions, fields_for
from crm_upsell_zoho.settings import ZohoSettings
from crm_upsell_zoho.shared import SharedPages

if TYPE_CHECKING:
    from crm_upsell_connector.secrets import SecretResolver

log = logging.getLogger(__name__)

#: connector stream -> canonical stream, in the order to sync.
STREAMS: dict[str, Stream] = {
    "users": Stream.OWNERS,
    "products": Stream.PRODUCTS,
    "accounts": Stream.ACCOUNTS,
    "contacts": Stream.CONTACTS,
    "deals": Stream.DEALS,
    "line_items": Stream.LINE_ITEMS,
    "sales_order_items": Stream.LINE_ITEMS,
    "invoice_items": Stream.LINE_ITEMS,
    "tasks": Stream.ACTIVITIES,
    "calls": Stream.ACTIVITIES,
    "events": Stream.ACTIVITIES,
    "notes": Stream.ACTIVITIES,
    "campaign_members": Stream.CAMPAIGN_MEMBERS,
}
# Modules whose fields differ between orgs: Accounts and Tasks (ours, after setup).
_META_MODULES = frozenset({"Accounts", "Tasks"})
# Fields only some orgs have, asked for anyway: Zoho refuses the read naming one, and the read goes on
# without it (one call, once per connector). Currency and Exchange_Rate exist in multi-currency orgs
# only ("Multi Currency Support").
_OPTIONAL_FIELDS = frozenset({"Currency", "Exchange_Rate", "Email_Opt_Out"})


class ZohoBase(Connector):
    """One Zoho CRM organisation, through OAuth (refresh token): what every part of the connector shares."""

    streams: Mapping[str, Stream] = STREAMS
    #: records per insert / update call (the outbox sends batches of this size).
    write_batch_size: int = WRITE_LIMIT

    def __init__(
        self,
        settings: ZohoSettings,
        secrets: SecretResolver,
        context: ConnectorContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        self.auth = build_auth(
            settings,
            secrets,
            timeout_s=context.http.timeout_s,
            transport=transport,
            on_token_fetch=lambda: self.client.count_call("POST /oauth/v2/token"),
        )
        self.client = ZohoClient(
            self.auth,
            api_version=settings.api_version,
            max_concurrency=settings.max_concurrency,
            rate_limit_max=settings.rate_limit_max,
            rate_limit_interval_s=settings.rate_limit_interval_s,
            credits_per_run=settings.credits_per_run,
            http=context.http,
            transport=transport,
        )
        self.shared = SharedPages()
        #: canonical name -> api_name of the product's fields (derived; corrected by setup/metadata).
        self._product_fields = {f.name: settings.api_name(f.label) for f in ACCOUNT_FIELDS}
        self._task_key_field = settings.api_name(TASK_KEY_FIELD.label)
        #: module -> (lower-cased api_name -> api_name) of its fields, once read (Accounts, Tasks).
        self._meta: dict[str, dict[str, str]] = {}
        #: module -> fields Zoho said the organisation does not have (e.g. no Deal_Products subform).
        self._missing: dict[str, set[str]] = {}
        self._meta_lock = asyncio.Lock()

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    @property
    def credits_used(self) -> int:
        return self.client.credits.used

    @property
    def token_refreshes(self) -> int:
        return self.auth.refreshes

    async def close(self) -> None:
        await self.client.close()

    def _options(self) -> MappingOptions:
        names: dict[str, str] = {}
        meta = self._meta.get("Accounts", {})
        for name in self.context.account_fields:
            names[name] = meta.get(name.lower(), name)
        return MappingOptions(
            product_fields=dict(self._product_fields),
            task_key_field=self._task_key_field,
            account_fields=self.context.account_fields,
            account_field_names=names,
            deal_subforms=self.settings.deal_subforms,
            product_value_aliases={
                spec.name: dict(zip(spec.option_labels, spec.options, strict=False))
                for spec in ACCOUNT_FIELDS
                if spec.type == "enumeration" and spec.option_labels
            },
        )

    # ---- field metadata -----------------------------------------------------------------------

    async def _fields_of(self, module: str) -> list[dict[str, Any]]:
        _, body = await self.client.request(
            "GET", "settings/fields", kind="fields", params={"module": module}
        )
        return data_of(body, "fields")

    def _learn(self, module: str, fields: list[dict[str, Any]]) -> None:
        """Take the real api_names of our fields (matched by label) and of the account fields."""
        by_label = {str(f.get("field_label") or "").strip().lower(): str(f.get("api_name")) for f in fields}
        self._meta[module] = {str(f.get("api_name")).lower(): str(f.get("api_name")) for f in fields}
        if module == "Accounts":
            for spec in ACCOUNT_FIELDS:
                found = by_label.get(self.settings.label_for(spec.label).lower())
                if found:
                    self._product_fields[spec.name] = found
        elif module == "Tasks":
            found = by_label.get(self.settings.label_for(TASK_KEY_FIELD.label).lower())
            if found:
                self._task_key_field = found

    async def _ensure_meta(self, module: str) -> None:
        """A module's field list, once per connector (for Accounts and Tasks, which carry fields that
        exist only after setup or only in some orgs): configured names such as ``nps_score`` are
        matched to Zoho's spelling (``NPS_Score``) without regard to case, and fields the org does
        not have are not asked for (Zoho refuses the whole read otherwise)."""
        if module in self._meta:
            return
        async with self._meta_lock:
            if module not in self._meta:
                self._learn(module, await self._fields_of(module))

    def _fields_param(self, stream: str, options: MappingOptions) -> str:
        module = MODULES[stream]
        names = fields_for(stream, options)
        meta = self._meta.get(module)
        if meta is not None:
            names = tuple(n for n in names if n.startswith("$") or n.lower() in meta)
        missing = self._missing.get(module, set())
        return ",".join(n for n in names if n not in missing)

    def _judge(self, specs: Sequence[FieldSpec], existing: Sequence[Mapping[str, Any]]) -> FieldState:
        return judge_fields(
            specs,
            existing,
            {s.name: self.settings.label_for(s.label) for s in specs},
            {s.name: self.settings.api_name(s.label) for s in specs},
        )

    async def home_currency(self) -> str | None:
        """The org's home currency: the one ``GET /org/currencies`` marks ``is_base`` ("Currencies",
        https://www.zoho.com/crm/developer/docs/api/v8/get-currencies.html); an org without
        multi-currency answers that with an error, and then ``GET /org``'s ``currency`` ("US Dollar -
        USD", "Get Organization Data") names it. None when neither says."""
        try:
            _, body = await self.client.request(
                "GET", "org/currencies", kind="records", endpoint="GET org/currencies"
            )
        except FatalAPIError:
            body = {}
        for row in data_of(body, "currencies"):
            code = row.get("iso_code")
            if row.get("is_base") is True and isinstance(code, str) and len(code.strip()) == 3:
                return code.strip().upper()
        _, org = await self.client.request("GET", "org", kind="records", endpoint="GET org")
        for row in data_of(org, "org"):
            found = re.search(r"\b([A-Z]{3})\)?\s*$", str(row.get("currency") or "").strip())
            if found:
                return found.group(1)
        return None
