"""The product as a user runs it: the ``crm-upsell`` commands against the HubSpot sandbox over HTTP."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from crm_upsell_hubspot.sandbox import create_app

from crm_upsell_connector.cli import main
from crm_upsell_connector.init import example_text
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer

ACCOUNTS = 120
TOKEN_ENV = "CRM_UPSELL_TEST_HUBSPOT_TOKEN"


@dataclass
class Env:
    scenario: Scenario
    base_url: str
    config: Path
    options: SandboxOptions

    def crm(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.options.token}"})


def write_config(path: Path, base_url: str, store: Path, **settings: Any) -> None:
    text = example_text()
    text = text.replace(
        'token = "keyring:hubspot-token"', f'token = "env:{TOKEN_ENV}"\nbase_url = "{base_url}"'
    )
    for key, value in settings.items():
        text = text.replace("[connections.main.settings]", f"[connections.main.settings]\n{key} = {value}")
    text = text.replace('# url = "sqlite:////var/lib/crm-upsell/store.sqlite3"', f'url = "sqlite:///{store}"')
    tomllib.loads(text)
    path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("cli")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    scenario = build_scenario(accounts=ACCOUNTS, seed=5, now=today)
    options = SandboxOptions(accounts=ACCOUNTS, seed=5, search_rate_limit_max=100)
    with SandboxServer(create_app(scenario, options)) as base_url:
        config = tmp / "config.toml"
        write_config(config, base_url, tmp / "store.sqlite3")
        os.environ[TOKEN_ENV] = options.token
        try:
            yield Env(scenario, base_url, config, options)
        finally:
            os.environ.pop(TOKEN_ENV, None)


def cli(env: Env, *args: str) -> int:
    return main(["--config", str(env.config), *args])


def test_connectors_lists_hubspot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connectors"]) == 0
    assert "hubspot" in capsys.readouterr().out


def test_the_whole_pipeline_as_a_user_runs_it(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(env, "setup") == 0
    assert "created" in capsys.readouterr().out
    assert cli(env, "setup") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert cli(env, "check") == 0
    assert "FAIL" not in capsys.readouterr().out

    assert cli(env, "run", "--dry-run") == 0
    dry = capsys.readouterr().out
    assert "Plan:" in dry
    with env.crm() as crm:
        tasks = crm.post(
            "/crm/v3/objects/tasks/search",
            json={
                "filterGroups": [
                    {"filters": [{"propertyName": "crm_upsell_key", "operator": "HAS_PROPERTY"}]}
                ]
            },
        ).json()
    assert tasks["total"] == 0  # a dry run writes nothing

    assert cli(env, "plan", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["tasks"] and plan["field_updates"]

    assert cli(env, "apply") == 0
    applied = capsys.readouterr().out
    assert f"{len(plan['tasks'])} task(s) created" in applied

    # The CRM now shows the fields and the tasks, owned by the company owner, linked with type 192.
    with env.crm() as crm:
        planted = crm.get("/__sandbox/planted").json()
        found = crm.post(
            "/crm/v3/objects/tasks/search",
            json={
                "filterGroups": [
                    {"filters": [{"propertyName": "crm_upsell_key", "operator": "HAS_PROPERTY"}]}
                ],
                "properties": ["hubspot_owner_id", "crm_upsell_key", "hs_task_body", "hs_task_subject"],
                "limit": 200,
            },
        ).json()
        assert found["total"] == len(plan["tasks"])
        task_ids = [t["id"] for t in found["results"]]
        links = crm.post(
            "/crm/v4/associations/tasks/companies/batch/read", json={"inputs": [{"id": i} for i in task_ids]}
        ).json()["results"]
        company_of = {link["from"]["id"]: link["to"][0] for link in links}
        assert all(192 in [t["typeId"] for t in to["associationTypes"]] for to in company_of.values())
        for task in found["results"]:
            company_id = str(company_of[task["id"]]["toObjectId"])
            company = crm.get(
                f"/crm/v3/objects/companies/{company_id}",
                params={"properties": "hubspot_owner_id,crm_upsell_next_product,crm_upsell_loyalty_score"},
            ).json()
            assert task["properties"]["hubspot_owner_id"] == company["properties"]["hubspot_owner_id"]
            assert company["properties"]["crm_upsell_next_product"] in task["properties"]["hs_task_body"]
            assert planted[company_id] not in (
                "at_risk",
                "dormant",
                "new_customer",
                "do_not_contact",
                "covered",
            )

    # A second run writes nothing new: no task twice, no field rewritten.
    assert cli(env, "run") == 0
    again = capsys.readouterr().out
    assert "Plan: 0 account(s) to update, 0 task(s) to create" in again


def test_explain_shows_every_rule_and_guardrail(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(env, "sync") == 0
    capsys.readouterr()
    assert cli(env, "score", "--json") == 0
    recs = json.loads(capsys.readouterr().out)
    chosen = next(r for r in recs if r["proposal"])
    assert cli(env, "explain", chosen["account_id"]) == 0
    out = capsys.readouterr().out
    assert "Score factors" in out and "Rules and guardrails" in out
    assert "cooldown" in out and chosen["proposal"]["product_name"] in out


def test_unknown_account_for_explain_is_one_clear_line(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(env, "explain", "no-such-account") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: no account with id 'no-such-account' in the store (run 'crm-upsell sync' first)"]


def test_config_mistakes_are_one_line_with_the_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(example_text().replace("[sync]\n", "[sync]\nparalel_streams = 2\n"), encoding="utf-8")
    assert main(["--config", str(config), "check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "sync.paralel_streams: unknown key" in err

    config.write_text(example_text().replace('token = "keyring:hubspot-token"', 'token = "pat-na1-123456"'))
    assert main(["--config", str(config), "check"]) == 2
    err = capsys.readouterr().err
    assert "pat-na1-123456" not in err and "reference" in err

    assert main(["--config", str(tmp_path / "missing.toml"), "sync"]) == 2
    assert "crm-upsell init" in capsys.readouterr().err


def test_a_rejected_token_is_one_line_without_the_token(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    os.environ[TOKEN_ENV] = "wrong-token-value-123"
    try:
        code = cli(env, "sync")
    finally:
        os.environ[TOKEN_ENV] = env.options.token
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "wrong-token-value-123" not in err


def test_init_writes_a_config_that_check_can_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "new" / "config.toml"
    assert main(["--config", str(path), "init", "--crm", "hubspot", "--token", "keyring:hs-token"]) == 0
    assert 'token = "keyring:hs-token"' in path.read_text()
    assert main(["--config", str(path), "init", "--crm", "hubspot", "--token", "keyring:hs-token"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_init_for_another_crm_writes_that_connectors_settings(tmp_path: Path) -> None:
    path = tmp_path / "sf.toml"
    assert main(["--config", str(path), "init", "--crm", "salesforce"]) == 0
    text = path.read_text()
    assert 'crm = "salesforce"' in text
    assert "# login_url = " in text and "daily_api_share" in text
    assert "keyring:hubspot-token" not in text  # no HubSpot keys left behind
