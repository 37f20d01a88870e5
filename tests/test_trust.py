"""Trust before writing, for each CRM over its sandbox: discover, check against the CRM, nothing
written before setup, the mass-change guard, saved plans, and the run history."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crm_upsell_connector.cli import main
from crm_upsell_connector.config import load_config
from crm_upsell_connector.jobs.run import Attempt, attempt_run
from crm_upsell_connector.scheduler import Worker
from crm_upsell_connector.secrets import SecretResolver
from tests.reliability.harness import CRMS, Env, crm_account_fields, crm_tasks, open_env

MASS_CHANGE_EXIT = 8
# The example maps seats_active; a typo in it turns every account's segment "unmeasured".
GOOD_MAPPING = 'seats_active = { field = "seats_active"'
TYPO_MAPPING = 'seats_active = { field = "seats_activ"'
# How each sandbox is told that an account was edited in the CRM.
TOUCH = {
    "hubspot": lambda ids: {"object_type": "companies", "ids": [int(i) for i in ids]},
    "salesforce": lambda ids: {"object": "Account", "ids": ids},
    "zoho": lambda ids: {"module": "Accounts", "ids": ids},
}


def _open(crm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with open_env(crm, tmp_path / crm) as opened:
        for key, value in opened.environ.items():
            if os.environ.get(key) != value:
                monkeypatch.setenv(key, value)
        yield opened


@pytest.fixture(params=CRMS)
def env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from _open(str(request.param), tmp_path, monkeypatch)


@pytest.fixture
def hubspot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The run history is the same for every CRM: one is enough."""
    yield from _open("hubspot", tmp_path, monkeypatch)


def cli(env: Env, *args: str) -> int:
    return main(["--config", str(env.config), *args])


def edit_config(env: Env, old: str, new: str) -> None:
    text = env.config.read_text(encoding="utf-8")
    assert old in text
    env.config.write_text(text.replace(old, new), encoding="utf-8")


def test_discover_lists_fields_with_fill_products_and_owners(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(env, "discover", "--json") == 0
    found = json.loads(capsys.readouterr().out)
    assert [o["object"] for o in found["objects"]] == ["account", "task", "contact", "deal"]
    assert all(o["fields"] for o in found["objects"])
    account = next(o for o in found["objects"] if o["object"] == "account")
    assert account["sampled"] == 40
    seats = next(f for f in account["fields"] if f["name"].lower().startswith("seats_active"))
    assert seats["kind"] == "number" and 0 < seats["filled"] <= 40
    assert {"CRM-STARTER", "CRM-PRO"} <= {p["sku"] for p in found["products"]}
    assert found["owners"] and all(o["id"] for o in found["owners"])
    assert found["mapped"]["seats_active"] == seats["name"]

    assert cli(env, "discover") == 0
    text = capsys.readouterr().out
    assert "CRM-PRO" in text and re.search(r"seats_active\S*\s+number", text, re.IGNORECASE)


def test_check_names_a_misspelt_mapped_field_and_warns_on_unknown_skus(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(env, "setup") == 0
    assert cli(env, "check") == 0
    assert "FAIL" not in capsys.readouterr().out

    edit_config(env, GOOD_MAPPING, TYPO_MAPPING)
    assert cli(env, "check") == 2
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "features.fields.seats_active.field" in x)
    assert line.startswith("FAIL") and "seats_activ" in line and "did you mean" in line
    edit_config(env, TYPO_MAPPING, GOOD_MAPPING)

    # A catalogue whose SKUs the CRM does not have: a warning naming them, exit 0.
    text = env.config.read_text(encoding="utf-8")
    env.config.write_text(re.sub(r'"CRM-([A-Z]+)"', r'"OLD-\1"', text), encoding="utf-8")
    assert cli(env, "check") == 0
    out = capsys.readouterr().out
    warning = next(x for x in out.splitlines() if x.startswith("warn products: SKU(s)"))
    assert "OLD-PRO" in warning and "OLD-STARTER" in warning
    assert any("CRM-PRO" in x for x in out.splitlines() if "missing from the catalogue" in x)


def test_run_before_setup_writes_nothing(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(env, "check") == 2
    assert "crm-upsell setup" in capsys.readouterr().out
    assert cli(env, "run") == 2
    err = capsys.readouterr().err
    assert "run 'crm-upsell setup'" in err and "nothing was written" in err
    assert crm_tasks(env.crm, env.app) == []
    assert crm_account_fields(env.crm, env.app) == {}


def test_mass_change_is_held_until_allowed(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(env, "setup") == 0
    assert cli(env, "run") == 0  # the first run changes everything, and is exempt from the shares
    before_fields = crm_account_fields(env.crm, env.app)
    before_tasks = crm_tasks(env.crm, env.app)
    assert before_fields and before_tasks
    capsys.readouterr()

    edit_config(env, GOOD_MAPPING, TYPO_MAPPING)
    assert cli(env, "run", "--dry-run") == 0  # the review shows what apply would hold
    assert "Mass-change guard: the plan changes the segment" in capsys.readouterr().out
    assert cli(env, "run") == MASS_CHANGE_EXIT
    err = capsys.readouterr().err
    assert "max_segment_change_share" in err and "--allow-mass-change" in err
    held = re.search(r"segment of (\d+) of 40 accounts \((\d+)%\)", err)
    assert held is not None and int(held[2]) >= 90
    assert crm_account_fields(env.crm, env.app) == before_fields
    assert crm_tasks(env.crm, env.app) == before_tasks

    assert cli(env, "status") == 1
    assert "held by the mass-change guard" in capsys.readouterr().out
    assert cli(env, "runs", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "held"

    assert cli(env, "run", "--allow-mass-change") == 0
    after = crm_account_fields(env.crm, env.app)
    segments = [k for k in next(iter(after.values())) if "segment" in k.lower()]
    assert segments
    unmeasured = sum(1 for values in after.values() if values.get(segments[0]) == "unmeasured")
    assert unmeasured >= 0.9 * len(after)
    assert cli(env, "status") == 0


def test_saved_plan_applies_exactly_its_writes_and_a_stale_one_is_refused(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli(env, "setup") == 0
    assert cli(env, "sync") == 0
    saved = tmp_path / "plan.json"
    assert cli(env, "plan", "--out", str(saved)) == 0
    capsys.readouterr()
    plan = json.loads(saved.read_text(encoding="utf-8"))
    assert plan["tasks"] and plan["field_updates"]
    assert saved.stat().st_mode & 0o077 == 0

    # An account the plan writes to is edited in the CRM: the plan is stale, nothing is written.
    target = plan["field_updates"][0]["account_id"]
    with httpx.Client(base_url=env.server.base_url) as crm:
        crm.post("/__sandbox/touch", json=TOUCH[env.crm]([target])).raise_for_status()
    assert cli(env, "apply", str(saved)) == 2
    err = capsys.readouterr().err
    assert "stale" in err and "plan --out" in err and len(err.strip().splitlines()) == 1
    assert crm_tasks(env.crm, env.app) == []
    assert crm_account_fields(env.crm, env.app) == {}

    fresh = tmp_path / "fresh.json"
    assert cli(env, "plan", "--out", str(fresh)) == 0
    plan = json.loads(fresh.read_text(encoding="utf-8"))
    assert cli(env, "apply", str(fresh)) == 0
    assert sorted(k for k, _ in crm_tasks(env.crm, env.app)) == sorted(t["key"] for t in plan["tasks"])
    assert set(crm_account_fields(env.crm, env.app)) == {u["account_id"] for u in plan["field_updates"]}
    capsys.readouterr()
    # Applied once, the same plan is stale: its tasks exist and its accounts changed.
    assert cli(env, "apply", str(fresh)) == 2
    assert "stale" in capsys.readouterr().err


def test_dry_run_says_nothing_was_written(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(env, "setup") == 0
    assert cli(env, "run", "--dry-run") == 0
    assert capsys.readouterr().out.rstrip().endswith("Dry run: nothing was written to the CRM.")
    assert crm_tasks(env.crm, env.app) == []


def attempt(worker: Worker, number: int) -> Attempt:
    """One scheduled try of the connection ``main``, as the worker makes it (a retry when > 1)."""
    return attempt_run(
        worker.config,
        "main",
        engine=worker.engine,
        plugins=worker.plugins,
        secrets=worker.secrets,
        stop=worker.stop,
        details={"attempt": number, "worker": worker.id},
        trigger="schedule" if number == 1 else "worker",
    )


def test_runs_lists_the_runs_of_a_scheduled_worker(hubspot: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env = hubspot
    assert cli(env, "setup") == 0
    text = env.config.read_text(encoding="utf-8")
    env.config.write_text(text + '\n[connections.main.schedule]\nevery = "1h"\n', encoding="utf-8")
    worker = Worker(load_config(env.config), secrets=SecretResolver())
    try:
        attempt(worker, 1)
        attempt(worker, 2)
    finally:
        worker.engine.dispose()
    assert cli(env, "run", "--dry-run") == 0
    capsys.readouterr()
    assert cli(env, "runs", "--limit", "3", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["trigger"] for r in listed] == ["manual", "worker", "schedule"]
    assert [r["command"] for r in listed] == ["run", "run", "run"]
    first = listed[2]
    assert first["status"] == "ok" and first["summary"]["streams"]["companies"] == 40
    assert first["summary"]["tasks_created"] > 0 and first["summary"]["calls"] > 0

    assert cli(env, "runs") == 0
    table = capsys.readouterr().out
    assert "schedule" in table and "worker" in table
    assert cli(env, "runs", "show", str(first["id"])) == 0
    shown = capsys.readouterr().out
    assert "companies" in shown and "tasks created" in shown and "step" in shown
    assert cli(env, "runs", "show", "99999") == 2


def test_init_discover_proposes_the_mapping_and_a_catalogue_skeleton(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(env, "setup") == 0
    edit_config(env, GOOD_MAPPING, TYPO_MAPPING)
    text = env.config.read_text(encoding="utf-8")
    env.config.write_text(re.sub(r'"CRM-([A-Z]+)"', r'"OLD-\1"', text), encoding="utf-8")
    capsys.readouterr()

    assert cli(env, "init", "--discover") == 0
    out = capsys.readouterr().out
    assert "5 of 5 feature(s) mapped" in out and "catalogue: 3 CRM product(s)" in out
    text = env.config.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("seats_active = "))
    assert re.search(r'field = "seats_active(__c)?"', line, re.IGNORECASE)
    assert '# sku = "CRM-PRO"' in text and "# [[products]]" in text
    assert cli(env, "check") == 0  # the mapping is right again; the old SKUs stay a warning
    assert "warn products: SKU(s) OLD-" in capsys.readouterr().out

    assert cli(env, "init", "--discover") == 0  # again: the skeleton is not added twice
    assert env.config.read_text(encoding="utf-8").count('# sku = "CRM-PRO"') == 1


def test_a_scheduled_worker_is_held_by_the_guard_and_does_not_retry(
    hubspot: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env = hubspot
    assert cli(env, "setup") == 0
    assert cli(env, "run") == 0
    edit_config(env, GOOD_MAPPING, TYPO_MAPPING)
    text = env.config.read_text(encoding="utf-8")
    env.config.write_text(text + '\n[connections.main.schedule]\nevery = "1h"\n', encoding="utf-8")
    before = crm_account_fields(env.crm, env.app)
    worker = Worker(load_config(env.config), secrets=SecretResolver())
    try:
        assert attempt(worker, 1).outcome == "failed"  # no retry: it needs a person
    finally:
        worker.engine.dispose()
    assert crm_account_fields(env.crm, env.app) == before
    capsys.readouterr()
    assert cli(env, "status") == 1
    assert "held by the mass-change guard" in capsys.readouterr().out
    assert cli(env, "runs", "--json") == 0
    last = json.loads(capsys.readouterr().out)[0]
    assert (last["trigger"], last["status"]) == ("schedule", "held")
    assert "max_segment_change_share" in last["summary"]["guard"]
