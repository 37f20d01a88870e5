"""HubSpot over real HTTP: home-currency amounts, whole HTML bodies, merged companies, Retry-After dates.

The sandbox's scenario bills a few accounts in yen or euros (``amount_in_home_currency`` beside the
deal's own amount), logs notes and e-mails as several HTML paragraphs with complaints after a
``<br>`` or in paragraph 2, and has duplicate companies for HubSpot's merge.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from crm_upsell_hubspot.connector import HubSpotConnector, HubSpotPlugin
from crm_upsell_hubspot.sandbox import archive, create_app, hubspot_id, merge, sandbox_state
from crm_upsell_hubspot.settings import HubSpotSettings
from starlette.applications import Starlette

from crm_upsell_connector.apply import Applier
from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.currency import refresh_home_currency
from crm_upsell_connector.features import FeaturesConfig, compute_features
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.models import FieldSpec, FieldUpdate, TaskDraft
from crm_upsell_connector.plan import Plan, build_plan
from crm_upsell_connector.rules import RuleEngine, RulesConfig, load_rules
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store import schema
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.sync import Syncer

PLUGIN = HubSpotPlugin()
CONNECTION = "hs"
EXAMPLE = Path(__file__).parents[3] / "config.example.toml"
WORDS = FeaturesConfig().complaint_terms()


@dataclass
class Running:
    app: Starlette
    scenario: Scenario
    options: SandboxOptions
    base_url: str

    def connector(self) -> HubSpotConnector:
        settings = HubSpotSettings.model_validate(PLUGIN.sandbox_settings(self.base_url, self.options))
        secrets = SecretResolver(PLUGIN.sandbox_secrets(self.options))
        return HubSpotConnector(settings, secrets, ConnectorContext(CONNECTION, ()))

    def id(self, key: str) -> str:
        return hubspot_id(self.app, key)


@pytest.fixture
def sandbox() -> Iterator[Running]:
    options = SandboxOptions(accounts=60, seed=5)
    scenario = build_scenario(accounts=60, seed=5)
    app = create_app(scenario, options)
    with SandboxServer(app) as base_url:
        yield Running(app, scenario, options, base_url)


@pytest.fixture
async def connector(sandbox: Running) -> AsyncIterator[HubSpotConnector]:
    conn = sandbox.connector()
    yield conn
    await conn.close()


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


async def sync(engine: sa.Engine, connector: HubSpotConnector, sandbox: Running) -> None:
    await refresh_home_currency(engine, connector, CONNECTION, sandbox.scenario.now)
    report = await Syncer(engine, connector, CONNECTION, SyncSettings(clock_skew_s=0)).run()
    assert not report.failed


def features(engine: sa.Engine, sandbox: Running) -> dict[str, dict[str, object]]:
    with engine.connect() as conn:
        rows = compute_features(conn, CONNECTION, sandbox.scenario.now, FeaturesConfig(), [])
        return {str(r["account_id"]): r for r in rows}


async def test_amounts_reach_features_in_the_company_currency(
    sandbox: Running, connector: HubSpotConnector, engine: sa.Engine
) -> None:
    sc = sandbox.scenario
    assert await connector.home_currency() == "USD"
    await sync(engine, connector, sandbox)
    with engine.connect() as conn:
        deals = {r.id: r for r in conn.execute(sa.select(schema.deals))}
        items = list(conn.execute(sa.select(schema.line_items)))
    foreign = [d for d in sc.deals if d.currency != "USD"]
    assert {d.currency for d in foreign} >= {"JPY"}
    for deal in sc.deals:
        row = deals[sandbox.id(deal.key)]
        assert (row.amount, row.currency) == (deal.amount, deal.currency)  # the original is kept
        assert row.amount_home == pytest.approx(deal.amount_home)
    assert all((i.amount_home is None) == (i.extra.get("currency") != "USD") for i in items)
    f = features(engine, sandbox)
    cut = sc.now - timedelta(days=365)
    for key in {d.company_key for d in foreign}:
        won = [d for d in sc.deals if d.company_key == key and d.stage == "closedwon"]
        expected = sum(d.amount_home for d in won if d.close_date >= cut)
        assert f[sandbox.id(key)]["revenue_won_365d"] == pytest.approx(expected)
        assert f[sandbox.id(key)]["revenue_won_total"] == pytest.approx(sum(d.amount_home for d in won))


async def test_whole_html_bodies_are_read_and_complaints_anywhere_in_them_count(
    sandbox: Running, connector: HubSpotConnector, engine: sa.Engine
) -> None:
    sc = sandbox.scenario
    await sync(engine, connector, sandbox)
    with engine.connect() as conn:
        bodies = {r.id: r for r in conn.execute(sa.select(schema.activities))}
    for act in sc.activities:
        row = bodies[sandbox.id(act.key)]
        if act.kind in ("note", "email", "call", "meeting"):
            assert act.body in row.body  # every paragraph, every line after a <br>
        if act.kind == "email":
            assert row.direction == act.direction
    f = features(engine, sandbox)
    cut = sc.now - timedelta(days=90)
    for key, persona in sc.planted.items():
        expected = sum(
            1
            for a in sc.activities
            if a.company_key == key
            and a.kind != "task"
            and cut <= a.occurred_at <= sc.now
            and not (a.kind == "email" and a.direction == "outbound")
            and any(w in f"{a.subject}\n{a.body}".lower() for w in WORDS)
        )
        assert f[sandbox.id(key)]["complaints_90d"] == expected, (key, persona)
        if persona == "at_risk":
            assert expected >= 2  # the subject's complaint and the one only the body tells


def example_rules() -> RulesConfig:
    with EXAMPLE.open("rb") as f:
        return load_rules(tomllib.load(f), EXAMPLE.name)


async def test_a_merge_hands_the_history_to_the_merged_company_and_nothing_writes_to_the_old_ids(
    sandbox: Running, connector: HubSpotConnector, engine: sa.Engine
) -> None:
    sc = sandbox.scenario
    survivor_key, duplicate_key = sc.merges[0]
    old = [sandbox.id(survivor_key), sandbox.id(duplicate_key)]
    await sync(engine, connector, sandbox)
    before = features(engine, sandbox)
    merged = merge(sandbox.app, "companies", *old)
    await sync(engine, connector, sandbox)  # incremental: the merged company is new
    await sync(engine, connector, sandbox)  # seen again: nothing moves twice
    f = features(engine, sandbox)
    assert not set(old) & set(f)
    assert len(f) == len(before) - 1
    for name in ("deals_won", "revenue_won_total", "activities_365d", "contacts"):
        assert f[merged][name] == before[old[0]][name] + before[old[1]][name], name
    # Plan and apply: no write goes to an id HubSpot no longer has.
    rules = example_rules()
    now = sc.now
    with engine.connect() as conn:
        rows = compute_features(conn, CONNECTION, now, rules.features, rules.products)
        recs = RuleEngine(rules).evaluate(rows, now)
        plan = build_plan(conn, CONNECTION, recs, rules, now)
    targets = {c.account_id for c in plan.changes} | {t.account_id for t in plan.tasks}
    assert merged in targets and not targets & set(old)
    await connector.ensure_fields(ALL_FIELDS)
    report = await Applier(engine, connector, CONNECTION).apply(plan)
    assert report.ok and report.gone == 0
    # A write that still names an old id is answered under the merged id: gone, not failed.
    results = await connector.update_accounts([FieldUpdate(account_id=old[1], values={"reason": "x"})])
    assert results[0].gone and not results[0].ok
    # Reading by an old id answers with the merged company, as HubSpot does.
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        reply = await http.get(
            f"/crm/v3/objects/companies/{old[0]}",
            headers={"Authorization": f"Bearer {sandbox.options.token}"},
        )
    assert reply.json()["id"] == merged
    assert set(reply.json()["properties"]) >= {"hs_object_id"}


async def test_contacts_merge_too(sandbox: Running, connector: HubSpotConnector, engine: sa.Engine) -> None:
    await sync(engine, connector, sandbox)
    first, second = (sandbox.id(c.key) for c in sandbox.scenario.contacts[:2])
    merged = merge(sandbox.app, "contacts", first, second)
    await sync(engine, connector, sandbox)
    with engine.connect() as conn:
        ids = set(conn.execute(sa.select(schema.contacts.c.id)).scalars())
    assert merged in ids and not {first, second} & ids


async def test_the_segment_dropdown_shows_labels_and_replaces_an_earlier_text_property(
    sandbox: Running, connector: HubSpotConnector
) -> None:
    text = FieldSpec(name="segment", label="Upsell: segment", type="string")
    assert await connector.ensure_fields([text]) == ["crm_upsell_segment"]
    dropdown = FieldSpec(
        name="segment",
        label="Upsell: segment",
        type="enumeration",
        options=("champion", "at_risk"),
        option_labels=("Champion", "At risk"),
    )
    assert await connector.ensure_fields([dropdown]) == ["crm_upsell_segment"]
    prop = sandbox_state(sandbox.app).properties["companies"]["crm_upsell_segment"]
    assert (prop["type"], prop["fieldType"]) == ("enumeration", "select")
    assert [(o["value"], o["label"]) for o in prop["options"]] == [
        ("champion", "Champion"),
        ("at_risk", "At risk"),
    ]
    assert await connector.ensure_fields([dropdown]) == []  # already right: nothing to do
    # HubSpot's own properties keep their definition.
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        reply = await http.patch(
            "/crm/v3/properties/companies/name",
            json={"type": "enumeration", "fieldType": "select", "options": [{"label": "A", "value": "a"}]},
            headers={"Authorization": f"Bearer {sandbox.options.token}"},
        )
    assert reply.status_code == 400 and reply.json()["category"] == "VALIDATION_ERROR"


async def test_a_task_for_a_company_archived_since_the_sync_is_gone_not_failed(
    sandbox: Running, connector: HubSpotConnector, engine: sa.Engine
) -> None:
    await sync(engine, connector, sandbox)
    await connector.ensure_fields(ALL_FIELDS)
    target = sandbox.id(sandbox.scenario.companies[3].key)
    archive(sandbox.app, "companies", [target])
    draft = TaskDraft(
        key="k-gone", account_id=target, owner_id=None, subject="s", body="b", due=date(2026, 11, 9)
    )
    plan = Plan(connection=CONNECTION, created_at=sandbox.scenario.now, tasks=[draft])
    report = await Applier(engine, connector, CONNECTION).apply(plan)
    assert report.ok and report.gone == 1 and report.tasks_created == 0
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(schema.accounts.c.id).where(schema.accounts.c.id == target)).first()
            is None
        )
