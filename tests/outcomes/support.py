"""A HubSpot sandbox on loopback, a session on a temporary store, and one pipeline run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm_upsell_hubspot.sandbox import HubSpotSandbox, create_app, sandbox_state

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import Connector
from crm_upsell_connector.demo import plugin_for, sandbox_config
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store


@dataclass
class World:
    scenario: Scenario
    sandbox: HubSpotSandbox
    base_url: str
    store_url: str
    options: SandboxOptions
    crm: str = "hubspot"

    def session(self, **overrides: Any) -> Session:
        """A session on the sandbox; ``overrides`` replace top-level config sections."""
        plugin = plugin_for(self.crm)
        data = sandbox_config(plugin, self.base_url, self.options, self.store_url)
        data.update(overrides)
        config = parse_config(data, "test config")
        secrets = SecretResolver(environ=plugin.sandbox_secrets(self.options))
        return Session.open(config, "demo", secrets=secrets, engine=open_store(self.store_url))


@asynccontextmanager
async def world(
    tmp_path: Path, accounts: int = 150, seed: int = 11, crm: str = "hubspot"
) -> AsyncIterator[World]:
    """A seeded sandbox of ``crm`` on loopback (``sandbox`` is its in-process state)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    scenario = build_scenario(accounts=accounts, seed=seed, now=today)
    options = SandboxOptions(accounts=accounts, seed=seed, search_rate_limit_max=200)
    app = (
        create_app(scenario, options) if crm == "hubspot" else plugin_for(crm).sandbox_app(scenario, options)
    )
    state = sandbox_state(app) if crm == "hubspot" else app.state.sandbox
    with SandboxServer(app) as base_url:
        store = f"sqlite:///{tmp_path / 'store.sqlite3'}"
        yield World(scenario, state, base_url, store, options, crm)


async def run_once(session: Session, connector: Connector) -> None:
    """Sync, score, plan and apply, as one scheduled run does."""
    await session.sync(connector)
    plan = session.plan(session.score())
    await session.apply(connector, plan)


async def set_up(session: Session, connector: Connector) -> None:
    await connector.ensure_fields(ALL_FIELDS)
