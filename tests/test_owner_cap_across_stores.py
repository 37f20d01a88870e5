"""The owner's weekly cap and the one-open-task rule hold for a store that did not make the tasks.

Store A runs against the HubSpot sandbox until owners reach their cap; store B, fresh, points at
the same portal: the tasks the CRM shows (their hidden task key) count, so B plans no task past an
owner's cap and none on an account that already has an open product task.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from crm_upsell_hubspot.sandbox import create_app

from crm_upsell_connector.cli import main
from crm_upsell_connector.features import FeaturesConfig, compute_features
from crm_upsell_connector.features.product_tasks import owner_tasks_since
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.store import schema
from crm_upsell_connector.store.engine import open_store
from tests.test_cli_hubspot import TOKEN_ENV, Env, write_config

ACCOUNTS = 120
CAP = 2


def _config(path: Path, base_url: str, store: Path) -> Path:
    write_config(path, base_url, store)
    text = path.read_text(encoding="utf-8")
    old = "max_new_tasks_per_owner_per_week = 10"
    assert old in text
    path.write_text(text.replace(old, f"max_new_tasks_per_owner_per_week = {CAP}"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Env, Path]]:
    tmp = tmp_path_factory.mktemp("cap")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    scenario = build_scenario(accounts=ACCOUNTS, seed=5, now=today)
    options = SandboxOptions(accounts=ACCOUNTS, seed=5, search_rate_limit_max=100)
    with SandboxServer(create_app(scenario, options)) as base_url:
        a = _config(tmp / "a.toml", base_url, tmp / "a.sqlite3")
        b = _config(tmp / "b.toml", base_url, tmp / "b.sqlite3")
        os.environ[TOKEN_ENV] = options.token
        try:
            yield Env(scenario, base_url, a, options), b
        finally:
            os.environ.pop(TOKEN_ENV, None)


def _crm_tasks(env: Env) -> list[dict[str, str]]:
    """The product's tasks as the CRM shows them (they carry the hidden task key)."""
    with env.crm() as crm:
        body = {
            "filterGroups": [{"filters": [{"propertyName": "crm_upsell_key", "operator": "HAS_PROPERTY"}]}],
            "properties": ["hubspot_owner_id", "crm_upsell_key", "hs_task_status"],
            "limit": 200,
        }
        found = crm.post("/crm/v3/objects/tasks/search", json=body).json()
        assert found["total"] <= 200
        ids = [t["id"] for t in found["results"]]
        links = crm.post(
            "/crm/v4/associations/tasks/companies/batch/read", json={"inputs": [{"id": i} for i in ids]}
        ).json()["results"]
    company_of = {link["from"]["id"]: str(link["to"][0]["toObjectId"]) for link in links}
    return [
        {
            "owner": t["properties"]["hubspot_owner_id"],
            "account": company_of[t["id"]],
            "status": t["properties"].get("hs_task_status") or "",
        }
        for t in found["results"]
    ]


def test_a_fresh_store_keeps_the_cap_and_the_open_task_rule(
    stores: tuple[Env, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    env, config_b = stores
    assert main(["--config", str(env.config), "setup"]) == 0
    assert main(["--config", str(env.config), "run"]) == 0
    capsys.readouterr()

    made = _crm_tasks(env)
    per_owner = Counter(t["owner"] for t in made)
    assert made and max(per_owner.values()) == CAP  # store A filled some owners' week
    full = {owner for owner, n in per_owner.items() if n >= CAP}
    with_task = {t["account"] for t in made if t["status"] != "COMPLETED"}

    # Store A knows the cap holds more proposals back.
    assert main(["--config", str(env.config), "plan", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == []

    # Store B has no task keys of its own: only the CRM tells it what A made.
    assert main(["--config", str(config_b), "sync"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config_b), "plan", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    planned = Counter(t["owner_id"] for t in plan["tasks"])
    for owner, n in planned.items():
        assert per_owner.get(owner, 0) + n <= CAP, f"owner {owner} would get {per_owner.get(owner, 0) + n}"
    assert not full & set(planned)
    assert not with_task & {t["account_id"] for t in plan["tasks"]}

    # Store B says why: the accounts of full owners are held by the cap, those with a task by it.
    assert main(["--config", str(config_b), "score", "--json"]) == 0
    recs = {r["account_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert all(recs[a]["blocked_by"] is not None for a in with_task if a in recs and recs[a]["proposal"])
    capped = [r for r in recs.values() if r["blocked_by"] == "owner_weekly_cap"]
    assert capped and {r["owner_id"] for r in capped} & full
    assert main(["--config", str(config_b), "explain", capped[0]["account_id"]]) == 0
    assert "blocked by owner_weekly_cap" in capsys.readouterr().out


NOW = datetime(2026, 11, 4, 12, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
def store(store_url: str) -> Iterator[sa.Engine]:
    """An empty store on each backend (SQLite, and PostgreSQL when the server is there)."""
    engine = open_store(store_url)
    yield engine
    engine.dispose()


def _insert(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    defaults = {"connection": "c1", "extra": {}, "updated_at": NOW}
    with engine.begin() as conn:
        for row in rows:
            conn.execute(table.insert(), {**{k: v for k, v in defaults.items() if k in table.c}, **row})


def _task(
    id: str, key: str, owner: str | None, created: datetime, status: str = "open", **row: Any
) -> dict[str, Any]:
    # The CRM gives the due date (after creation) and the last change: the earlier is the creation.
    return {
        "id": id,
        "kind": "task",
        "account_id": "a1",
        "owner_id": owner,
        "upsell_key": key,
        "occurred_at": created + timedelta(days=7),
        "updated_at": created,
        "status": status,
        **row,
    }


def test_the_weekly_count_takes_the_crm_and_the_store_each_task_once(store: sa.Engine) -> None:
    _insert(
        store,
        schema.task_keys,
        [
            {"key": "k1", "account_id": "a1", "owner_id": "o1", "created_at": ago(1)},
            {"key": "k5", "account_id": "a5", "owner_id": "o1", "created_at": ago(10)},  # last week
            {"key": "k6", "account_id": "a6", "owner_id": "o4", "created_at": ago(2)},  # not synced yet
        ],
    )
    _insert(store, schema.activities, [
        _task("t1", "k1", "o2", ago(1)),  # ours, reassigned in the CRM: counts once, for o2
        _task("t2", "k2", "o1", ago(2)),  # made by another store
        _task("t3", "k3", "o1", ago(20)),  # made weeks ago, still open: not this week
        _task("t4", "k4", "o3", ago(3), status="done"),  # done, but made this week
        _task("t7", "k7", None, ago(1)),  # no owner: no one's cap
        {"id": "n1", "kind": "note", "account_id": "a1", "owner_id": "o1", "upsell_key": "k8",
         "occurred_at": ago(1), "status": None},
        _task("t9", "", "o1", ago(1)),  # a rep's own task
    ])  # fmt: skip
    with store.connect() as conn:
        assert owner_tasks_since(conn, "c1", NOW - timedelta(days=7)) == {"o1": 1, "o2": 1, "o3": 1, "o4": 1}
        assert owner_tasks_since(conn, "other", NOW - timedelta(days=7)) == {}


def test_open_tasks_count_the_crm_and_the_outbox_each_task_once(store: sa.Engine) -> None:
    _insert(
        store,
        schema.accounts,
        [
            {"id": a, "name": a, "owner_id": "o1", "fields": {}, "product_fields": {}}
            for a in ("a1", "a2", "a3")
        ],
    )
    _insert(
        store,
        schema.activities,
        [
            _task("t1", "k1", "o1", ago(2)),
            _task("t3", "k3", "o1", ago(30), status="done", account_id="a3"),
        ],
    )
    outbox = {"kind": "task", "payload": {}, "attempts": 0, "created_at": NOW}
    _insert(
        store,
        schema.outbox,
        [
            {**outbox, "ref": "k1", "account_id": "a1", "status": "sent"},  # the same task as t1
            {**outbox, "ref": "k2", "account_id": "a2", "status": "pending"},  # on its way
            {**outbox, "ref": "k3", "account_id": "a3", "status": "sent"},  # the CRM shows it done
            {**outbox, "ref": "k4", "account_id": "a3", "status": "superseded"},
        ],
    )
    with store.connect() as conn:
        rows = {r["account_id"]: r for r in compute_features(conn, "c1", NOW, FeaturesConfig(), [])}
    assert {a: r["open_upsell_tasks"] for a, r in rows.items()} == {"a1": 1.0, "a2": 1.0, "a3": 0.0}
    assert rows["a1"]["days_since_last_proposal"] == 2.0
    assert rows["a3"]["days_since_last_proposal"] == 30.0
