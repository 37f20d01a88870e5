"""The pipeline on both stores: SQLite and PostgreSQL give the same recommendations and writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_upsell_connector.config import parse_config
from crm_upsell_connector.connector import load_plugins
from crm_upsell_connector.demo import sandbox_config
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver

ACCOUNTS = 80


async def run_twice(store_url: str) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Sandbox -> sync -> score -> plan -> apply, then again; returns recs, first and second plans."""
    plugin = load_plugins()["hubspot"]
    options = SandboxOptions(accounts=ACCOUNTS, seed=3, search_rate_limit_max=100)
    scenario = build_scenario(accounts=ACCOUNTS, seed=3)
    with SandboxServer(plugin.sandbox_app(scenario, options)) as base_url:
        config = parse_config(sandbox_config(plugin, base_url, options, store_url), "test")
        session = Session.open(
            config, "demo", secrets=SecretResolver(environ=plugin.sandbox_secrets(options))
        )
        session.clock = lambda: scenario.now
        try:
            async with session.connector() as connector:
                await connector.ensure_fields(ALL_FIELDS)
                await session.sync(connector)
                recs = session.score()
                first = session.plan(recs)
                await session.apply(connector, first)
                await session.sync(connector)
                second = session.plan(session.score())
        finally:
            session.engine.dispose()
    return [r.model_dump(mode="json") for r in recs], first.to_json(), second.to_json()


@pytest.mark.postgres
async def test_sqlite_and_postgresql_agree(tmp_path: Path, pg_database: str) -> None:
    lite = await run_twice(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    pg = await run_twice(pg_database)
    assert lite[0] == pg[0]  # same features, scores, segments, proposals and reasons
    assert [t["key"] for t in lite[1]["tasks"]] == [t["key"] for t in pg[1]["tasks"]]
    assert lite[1]["tasks"], "the scenario should produce proposals"
    for _, _, second in (lite, pg):
        assert second["tasks"] == [] and second["field_updates"] == []
