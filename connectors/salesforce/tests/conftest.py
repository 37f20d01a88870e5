"""Fixtures shared by the Salesforce tests that need a running sandbox and a connector pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from crm_upsell_salesforce.connector import SalesforceConnector, SalesforcePlugin
from crm_upsell_salesforce.sandbox import SalesforceSandbox, create_app, sandbox_state
from crm_upsell_salesforce.settings import SalesforceSettings
from starlette.applications import Starlette

from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver

PLUGIN = SalesforcePlugin()


@dataclass
class Org:
    """A running sandbox org and how to point a connector at it."""

    app: Starlette
    options: SandboxOptions
    base_url: str
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> SalesforceSandbox:
        return sandbox_state(self.app)

    def settings(self, **overrides: Any) -> SalesforceSettings:
        values: dict[str, Any] = {**PLUGIN.sandbox_settings(self.base_url, self.options), **overrides}
        return SalesforceSettings.model_validate(values)

    def connector(self, **overrides: Any) -> SalesforceConnector:
        environ = {**PLUGIN.sandbox_secrets(self.options), **self.environ}
        return SalesforceConnector(
            self.settings(**overrides), SecretResolver(environ), ConnectorContext("sbx", ("seats_purchased",))
        )

    def live(self, sobject: str) -> list[str]:
        table = self.state.tables[sobject]
        return [i for i in table.ids if table.live(i)]


def run_org(accounts: int, **options: Any) -> Iterator[Org]:
    opts = SandboxOptions(accounts=accounts, seed=3, **options)
    app = create_app(build_scenario(accounts=accounts, seed=3), opts)
    with SandboxServer(app) as base_url:
        yield Org(app, opts, base_url)


@pytest.fixture
def org() -> Iterator[Org]:
    """A fresh small org (tests change it)."""
    yield from run_org(8)
