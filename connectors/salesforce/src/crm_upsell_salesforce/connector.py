"""The Salesforce connector: reads every stream by SOQL, sets up the custom fields and access to them,
writes fields and tasks.

Reads go through ``queryAll`` (archived and deleted rows in the same pass), paged at 2,000 records a
batch, so a stream costs ``ceil(N / 2000)`` calls (:mod:`.reads`); deletes the Recycle Bin no longer
holds are reconciled by ids (:mod:`.deletes`); amounts get their corporate-currency value, bodies
their whole text, merges their survivor (:mod:`.enrich`). Writes go through sObject Collections, 200
records a call, ``allOrNone = false`` (:mod:`.writes`). ``setup`` creates fields with the Tooling API
and grants access through the product's permission set (:mod:`.field_setup`, :mod:`.access`);
``check`` proves it through the describe (:mod:`.checks`). Refresh tokens rotate (:mod:`.rotation`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from crm_upsell_connector.connector import CallStats, ConnectorContext, PluginBase
from crm_upsell_connector.discovery import CrmSchema
from crm_upsell_connector.errors import ConfigError
from crm_upsell_connector.models import (
    Stream,
)
from crm_upsell_salesforce.auth import build_auth
from crm_upsell_salesforce.client import COLLECTION_LIMIT, SalesforceClient
from crm_upsell_salesforce.mapping import (
    MappingOptions,
)
from crm_upsell_salesforce.settings import SalesforceSettings

if TYPE_CHECKING:
    from crm_upsell_connector.sandbox.server import SandboxOptions
    from crm_upsell_connector.secrets import SecretResolver

from crm_upsell_salesforce.checks import ChecksMixin
from crm_upsell_salesforce.querying import STREAMS
from crm_upsell_salesforce.reads import ReadsMixin
from crm_upsell_salesforce.writes import WritesMixin

log = logging.getLogger(__name__)

SANDBOX_SECRET_ENV = "CRM_UPSELL_SANDBOX_SALESFORCE_CLIENT_SECRET"  # noqa: S105 - a variable name


class SalesforceConnector(ReadsMixin, WritesMixin, ChecksMixin):
    """One Salesforce org, through a connected app (JWT bearer, refresh token or client credentials)."""

    streams: Mapping[str, Stream] = STREAMS
    write_batch_size = COLLECTION_LIMIT

    async def describe(self, *, sample_size: int = 200, catalogue: bool = True) -> CrmSchema:
        from crm_upsell_salesforce.discover import describe

        return await describe(self, sample_size=sample_size, catalogue=catalogue)

    def __init__(
        self,
        settings: SalesforceSettings,
        secrets: SecretResolver,
        context: ConnectorContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        # stream -> optional fields (lower case) this org turned out not to have
        self._missing: dict[str, set[str]] = {}
        self._unavailable: set[str] = set()  # optional objects this org does not have (marketing.py)
        self._fully_read: set[str] = set()
        self._rates = None
        self._rates_lock = asyncio.Lock()
        try:
            self.options = MappingOptions.build(
                settings.field_prefix,
                context.account_fields,
                settings.product_extra_fields,
                direction_field=settings.activity_direction_field,
                outcome_field=settings.meeting_outcome_field,
            )
        except ValueError as exc:
            raise ConfigError(f"a mapped account field is not usable in Salesforce: {exc}") from None
        auth = build_auth(
            settings,
            secrets,
            timeout_s=context.http.timeout_s,
            transport=transport,
            on_token_fetch=lambda: self.client.count_call("POST /services/oauth2/token"),
            credentials=context.credentials,
        )
        self.client = SalesforceClient(
            auth=auth,
            api_version=settings.api_version,
            daily_share=settings.daily_api_share,
            rate_limit_max=settings.rate_limit_max,
            rate_limit_interval_s=settings.rate_limit_interval_s,
            http=context.http,
            transport=transport,
        )

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    @property
    def token_refreshes(self) -> int:
        return self.client.auth.refreshes

    async def close(self) -> None:
        await self.client.close()


class SalesforcePlugin(PluginBase):
    """What the package registers in the ``crm_upsell_connector.connectors`` entry-point group."""

    name = "salesforce"
    title = "Salesforce"
    settings_model: type[BaseModel] = SalesforceSettings
    connector_class = SalesforceConnector
    sandbox_module = "crm_upsell_salesforce.sandbox"

    def sandbox_settings(self, base_url: str, options: SandboxOptions) -> dict[str, Any]:
        """The sandbox through the client-credentials flow (its login host is the sandbox itself)."""
        return {
            "login_url": base_url,
            "auth": "client_credentials",
            "client_id": options.client_id,
            "client_secret": f"env:{SANDBOX_SECRET_ENV}",
            "product_extra_fields": ["Tier__c"],
            "activity_direction_field": "Direction__c",
            "meeting_outcome_field": "Outcome__c",
        }

    def sandbox_secrets(self, options: SandboxOptions) -> dict[str, str]:
        return {SANDBOX_SECRET_ENV: options.client_secret}


__all__ = ["STREAMS", "SalesforceConnector", "SalesforcePlugin"]
