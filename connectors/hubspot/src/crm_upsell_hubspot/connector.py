"""The HubSpot connector: reads every stream, sets up the product's properties, writes fields and tasks.

The connector class puts its parts together: :mod:`.reads` (list pages, keyset search on the
modification stamp, associations), :mod:`.writes` (batch updates and task creation), :mod:`.checks`
and :mod:`.streams` (what they share). Their public names stay importable from here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from crm_upsell_connector.connector import CallStats, ConnectorContext, PluginBase
from crm_upsell_connector.discovery import CrmSchema
from crm_upsell_connector.models import FieldSpec, Stream
from crm_upsell_hubspot.auth import HubSpotOAuth, build_auth
from crm_upsell_hubspot.checks import ChecksMixin
from crm_upsell_hubspot.client import SEARCH_LIMIT, HubSpotClient
from crm_upsell_hubspot.properties import MappingOptions
from crm_upsell_hubspot.property_setup import PropertySetup
from crm_upsell_hubspot.reads import ReadsMixin
from crm_upsell_hubspot.settings import HubSpotSettings
from crm_upsell_hubspot.streams import (
    ASSOCIATION,
    LINK_CACHE_SIZE,
    OWNERS_LIMIT,
    STREAMS,
    from_ms,
    to_ms,
)
from crm_upsell_hubspot.writes import WritesMixin

if TYPE_CHECKING:
    from crm_upsell_connector.sandbox.server import SandboxOptions
    from crm_upsell_connector.secrets import SecretResolver

__all__ = [
    "ASSOCIATION",
    "LINK_CACHE_SIZE",
    "OWNERS_LIMIT",
    "SANDBOX_TOKEN_ENV",
    "STREAMS",
    "HubSpotConnector",
    "HubSpotPlugin",
    "from_ms",
    "to_ms",
]

log = logging.getLogger(__name__)
SANDBOX_TOKEN_ENV = "CRM_UPSELL_SANDBOX_HUBSPOT_TOKEN"  # noqa: S105 - a variable name, not a secret


class HubSpotConnector(ReadsMixin, WritesMixin, ChecksMixin):
    """One HubSpot account, through a private app token or OAuth."""

    streams: Mapping[str, Stream] = STREAMS

    def __init__(
        self,
        settings: HubSpotSettings,
        secrets: SecretResolver,
        context: ConnectorContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        self.options = MappingOptions(prefix=settings.property_prefix, account_fields=context.account_fields)
        self._links = OrderedDict()
        auth = build_auth(
            settings,
            secrets,
            timeout_s=context.http.timeout_s,
            transport=transport,
            on_token_fetch=lambda: self.client.count_call("POST /oauth/v1/token"),
        )
        self.client = HubSpotClient(
            settings.base_url,
            auth=auth,
            rate_limit_max=settings.rate_limit_max,
            rate_limit_interval_s=settings.rate_limit_interval_s,
            search_rate_per_s=settings.search_rate_per_s,
            daily_share=settings.daily_api_share,
            http=context.http,
            transport=transport,
        )

        self.setup = PropertySetup(self.client, settings)

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    @property
    def token_refreshes(self) -> int:
        auth = self.client.auth
        return auth.refreshes if isinstance(auth, HubSpotOAuth) else 0

    async def close(self) -> None:
        await self.client.close()

    async def home_currency(self) -> str | None:
        """The account's company currency, from ``GET /account-info/v3/details`` (``companyCurrency``,
        https://developers.hubspot.com/docs/api-reference/latest/account/account-information/get-account-details).
        Line items in it get their amount as home amount (HubSpot gives deals theirs)."""
        details = await self.client.get("/account-info/v3/details")
        code = str(details.get("companyCurrency") or "").strip().upper() or None
        self.options = dataclasses.replace(self.options, home_currency=code)
        return code

    # ---- fields -------------------------------------------------------------------------------

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> list[str]:
        """Create the group and the missing properties, convert earlier text ones into dropdowns;
        returns the HubSpot names created or converted (see ``property_setup``)."""
        return await self.setup.ensure(specs)

    # ---- discovery ----------------------------------------------------------------------------

    async def describe(self, *, sample_size: int = 200, catalogue: bool = True) -> CrmSchema:
        from crm_upsell_hubspot.discover import describe

        return await describe(self, sample_size=sample_size, catalogue=catalogue)


class HubSpotPlugin(PluginBase):
    """What the package registers in the ``crm_upsell_connector.connectors`` entry-point group."""

    name = "hubspot"
    title = "HubSpot"
    settings_model: type[BaseModel] = HubSpotSettings
    connector_class = HubSpotConnector
    sandbox_module = "crm_upsell_hubspot.sandbox"

    def sandbox_settings(self, base_url: str, options: SandboxOptions) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "auth": "private_app",
            "token": f"env:{SANDBOX_TOKEN_ENV}",
            "rate_limit_max": options.rate_limit_max,
            "rate_limit_interval_s": options.rate_limit_interval_ms / 1000.0,
            "search_page_size": min(SEARCH_LIMIT, options.search_cap),
            "search_rate_per_s": max(
                1, int(options.search_rate_limit_max * 1000 / options.search_rate_limit_interval_ms)
            ),
        }

    def sandbox_secrets(self, options: SandboxOptions) -> dict[str, str]:
        return {SANDBOX_TOKEN_ENV: str(options.token)}
