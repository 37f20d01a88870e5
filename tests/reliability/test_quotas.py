"""Quotas, for every CRM: a run never goes past its share of the daily API allowance, stops with a
QuotaError (exit 5 through the CLI) keeping every committed page, and the next run continues where
it stopped, ending with the same store as an uninterrupted sync.

- Salesforce: ``daily_api_share`` of the org's remaining daily calls (``Sforce-Limit-Info``).
- HubSpot: ``daily_api_share`` of the portal's remaining daily calls (``X-HubSpot-RateLimit-Daily*``).
- Zoho: ``credits_per_run`` API credits.

"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from crm_upsell_connector.cli import main
from crm_upsell_connector.errors import QuotaError
from crm_upsell_connector.store.engine import open_store

from .faults_support import CANONICAL, CRMS, CrmEnv, crm_env, dump_store, write_cli_config

pytestmark = pytest.mark.parametrize("crm", CRMS)

ACCOUNTS = 30
DAILY_LIMIT = 100
SHARE = 0.06  # 6 calls a run out of 100 (a full sync of this scenario takes 11 to 15)
ZOHO_CREDITS = 6


def canonical(engine: Any) -> dict[str, list[dict[str, Any]]]:
    """The synced records, in a stable order (what "the same store" means here)."""
    dump = dump_store(engine)
    return {
        name: sorted(dump[name], key=lambda r: (str(r["connection"]), str(r["id"]))) for name in CANONICAL
    }


async def uninterrupted(env: CrmEnv, path: Path) -> dict[str, list[dict[str, Any]]]:
    ref = CrmEnv(env.crm, env.plugin, env.scenario, env.options, env.app, env.base_url, path)
    session = ref.session()
    try:
        async with session.connector() as connector:
            await session.sync(connector)
        return canonical(session.engine)
    finally:
        session.engine.dispose()


def limit_the_run(env: CrmEnv) -> None:
    """Give the CRM (or the connection settings) a small allowance."""
    if env.crm == "zoho":
        env.settings["credits_per_run"] = ZOHO_CREDITS
    else:
        env.settings["daily_api_share"] = SHARE
        env.set_limits(daily_limit=DAILY_LIMIT)


def used(env: CrmEnv) -> int:
    return int(env.state().runtime.daily.used)


def allowance(env: CrmEnv, used_before: int) -> int:
    """What one run may spend by the connection's settings."""
    if env.crm == "zoho":
        return ZOHO_CREDITS
    return math.floor(SHARE * (DAILY_LIMIT - used_before))


def restore_allowance(env: CrmEnv) -> None:
    """Back to the usual allowance: the default share of a big daily limit; no Zoho credit cap."""
    env.settings.pop("daily_api_share", None)
    env.settings.pop("credits_per_run", None)
    env.set_limits(daily_limit=1_000_000)


async def test_a_run_stops_within_its_allowance_and_the_next_one_continues(crm: str, tmp_path: Path) -> None:
    with crm_env(crm, tmp_path, accounts=ACCOUNTS, seed=31) as env:
        expected = await uninterrupted(env, tmp_path / "reference.db")
        limit_the_run(env)
        session = env.session()
        try:
            before = used(env)
            cap = allowance(env, before)
            with pytest.raises(QuotaError) as stopped:
                async with session.connector() as connector:
                    await session.sync(connector)
            assert "next run" in stopped.value.one_line(), stopped.value.one_line()
            spent = used(env) - before
            assert 0 < spent <= cap, f"the run spent {spent} of the API allowance, its share was {cap}"
            # What the run committed before it stopped is kept, with the place to go on from.
            kept = canonical(session.engine)
            assert 0 < sum(len(rows) for rows in kept.values()) < sum(len(r) for r in expected.values())
            runs = dump_store(session.engine)["runs"]
            assert [(r["status"], r["summary"].get("error")) for r in runs] == [("failed", "QuotaError")]

            restore_allowance(env)
            session.engine.dispose()
            session = env.session()
            async with session.connector() as connector:
                report = await session.sync(connector)
            # It continued: what the first run finished is only read for changes, not again in full.
            modes = {name: s.mode for name, s in report.streams.items()}
            assert "incremental" in modes.values(), modes
            assert canonical(session.engine) == expected
        finally:
            session.engine.dispose()


def test_cli_exits_5_on_the_quota_and_the_next_run_completes(
    crm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with crm_env(crm, tmp_path, accounts=ACCOUNTS, seed=32) as env:
        expected = asyncio.run(uninterrupted(env, tmp_path / "reference.db"))
        limit_the_run(env)
        for name, value in env.secrets_env().items():
            monkeypatch.setenv(name, value)
        config = write_cli_config(env, tmp_path / "config.toml")
        capsys.readouterr()
        assert main(["--config", str(config), "sync"]) == 5
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "next run" in err

        restore_allowance(env)
        write_cli_config(env, config)
        assert main(["--config", str(config), "sync"]) == 0, capsys.readouterr()
        engine = open_store(env.store_url)
        try:
            assert canonical(engine) == expected
        finally:
            engine.dispose()
