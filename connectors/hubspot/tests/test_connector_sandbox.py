"""End to end over real HTTP against the HubSpot sandbox: reads, incremental, the search cap, deletes,
field setup, batch writes with partial failures, tasks, and an OAuth token expiring mid-read."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from crm_upsell_hubspot.connector import HubSpotConnector, HubSpotPlugin
from crm_upsell_hubspot.sandbox import archive, create_app, hubspot_id, sandbox_state
from crm_upsell_hubspot.settings import HubSpotSettings
from starlette.applications import Starlette

from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.models import (
    Account,
    Activity,
    ActivityKind,
    FieldUpdate,
    Page,
    Record,
    Stream,
    TaskDraft,
)
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver

ACCOUNT_FIELDS = ("seats_purchased", "seats_active", "nps_score", "onboarding_stage")
PLUGIN = HubSpotPlugin()


@dataclass
class Running:
    app: Starlette
    scenario: Scenario
    options: SandboxOptions
    base_url: str

    def connector(self, **overrides: object) -> HubSpotConnector:
        values = {**PLUGIN.sandbox_settings(self.base_url, self.options), **overrides}
        settings = HubSpotSettings.model_validate(values)
        environ = {
            **PLUGIN.sandbox_secrets(self.options),
            "SBX_SECRET": self.options.client_secret,
            "SBX_REFRESH": self.options.refresh_token,
        }
        return HubSpotConnector(settings, SecretResolver(environ), ConnectorContext("sbx", ACCOUNT_FIELDS))

    def now(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=sandbox_state(self.app).now_ms())


def start(accounts: int, **options: object) -> Iterator[Running]:
    opts = SandboxOptions(accounts=accounts, seed=3, **options)
    scenario = build_scenario(accounts=accounts, seed=3)
    app = create_app(scenario, opts)
    with SandboxServer(app) as base_url:
        yield Running(app, scenario, opts, base_url)


@pytest.fixture
def sandbox() -> Iterator[Running]:
    yield from start(8)


@pytest.fixture
async def connector(sandbox: Running) -> AsyncIterator[HubSpotConnector]:
    conn = sandbox.connector()
    yield conn
    await conn.close()


async def pages_of(it: AsyncIterator[Page]) -> list[Page]:
    return [page async for page in it]


async def records(conn: HubSpotConnector, stream: str, since: datetime | None = None) -> list[Record]:
    # Contacts' pages carry their marketing engagement too: keep the stream's own records.
    kind = conn.streams[stream]
    return [r for page in await pages_of(conn.read(stream, since)) for r in page.records if r.stream is kind]


async def test_full_read_of_every_stream(sandbox: Running, connector: HubSpotConnector) -> None:
    sc = sandbox.scenario
    expected = {
        "owners": len(sc.owners),
        "products": len(sc.products),
        "companies": len(sc.companies),
        "contacts": len(sc.contacts),
        "deals": len(sc.deals),
        "line_items": len(sc.line_items),
        **{
            f"{k}s": sum(a.kind == k for a in sc.activities)
            for k in ("call", "meeting", "email", "note", "task")
        },
    }
    budget = 0
    for stream, count in expected.items():
        got = await records(connector, stream)
        assert len(got) == len({r.id for r in got}) == count, stream
        budget += max(1, math.ceil(count / 100))
    assert connector.stats.calls == budget  # one list call per 100 records, associations inline

    companies = {r.id: r for r in await records(connector, "companies")}
    by_key = {c.key: c for c in sc.companies}
    for key, company in by_key.items():
        account = companies[hubspot_id(sandbox.app, key)]
        assert isinstance(account, Account)
        assert account.name == company.name  # Japanese names kept as they are
        assert account.fields["seats_purchased"] == (
            None if company.seats_purchased is None else str(company.seats_purchased)
        )
        assert account.owner_id is not None
    for kind in ("calls", "tasks", "notes"):
        for record in await records(connector, kind):
            assert isinstance(record, Activity)
            assert record.account_id in companies
    contact = (await records(connector, "contacts"))[0]
    assert contact.account_id in companies  # type: ignore[attr-defined]
    items = await records(connector, "line_items")
    deals = {r.id for r in await records(connector, "deals")}
    assert all(i.deal_id in deals for i in items)  # type: ignore[attr-defined]
    products = await records(connector, "products")
    assert all(p.extra.get("family") for p in products)


async def test_full_read_resumes_from_its_after_token(capped: Running) -> None:
    conn = capped.connector()
    try:
        first = await pages_of(conn.read("emails", None))
        assert len(first) >= 2
        resumed = await pages_of(conn.read("emails", None, first[0].resume))
        assert [r.id for p in resumed for r in p.records] == [r.id for p in first[1:] for r in p.records]
        assert resumed[-1].watermark is not None
        assert all(p.watermark is None for p in resumed[:-1])
    finally:
        await conn.close()


async def test_incremental_read_picks_up_touched_records(
    sandbox: Running, connector: HubSpotConnector
) -> None:
    full = await pages_of(connector.read("contacts", None))
    cursor = full[-1].watermark
    assert cursor is not None
    unchanged = await records(connector, "contacts", cursor)
    assert all(r.updated_at >= cursor for r in unchanged)
    ids = [r.id for r in full[0].records if r.stream is Stream.CONTACTS][:3]
    sandbox_state(sandbox.app).touch("contacts", ids=ids)
    calls_before = connector.stats.calls
    pages = await pages_of(connector.read("contacts", cursor))
    got = {r.id: r for p in pages for r in p.records}
    assert set(ids) <= set(got)
    assert all(got[i].account_id for i in ids)  # type: ignore[attr-defined]  # associations from v4 batch read
    assert pages[-1].watermark == max(r.updated_at for r in got.values())
    assert connector.stats.calls - calls_before == 2  # one search page + one association read


async def test_boundary_ids_are_skipped(sandbox: Running, connector: HubSpotConnector) -> None:
    full = await pages_of(connector.read("companies", None))
    cursor = full[-1].watermark
    assert cursor is not None
    at_cursor = frozenset(r.id for p in full for r in p.records if r.updated_at == cursor)
    assert at_cursor
    assert await pages_of(connector.read("companies", cursor, None, at_cursor)) == []


@pytest.fixture
def capped() -> Iterator[Running]:
    yield from start(30, search_cap=50)


@pytest.mark.parametrize("same_ms", [True, False])
async def test_more_changes_than_the_search_cap_are_never_missed(capped: Running, same_ms: bool) -> None:
    conn = capped.connector()
    try:
        since = capped.now()
        state = sandbox_state(capped.app)
        all_ids = [r.id for r in await records(conn, "contacts")]
        assert len(all_ids) > capped.options.search_cap + 20
        touched = state.touch("contacts", ids=all_ids, same_ms=same_ms)
        pages = await pages_of(conn.read("contacts", since))
        got = [r.id for p in pages for r in p.records if r.stream is Stream.CONTACTS]
        assert sorted(set(got)) == sorted(touched)
        assert len(got) == len(set(got))  # nothing read twice either
        watermarks = [p.watermark for p in pages]
        assert all(w is not None for w in watermarks)
        assert watermarks == sorted(watermarks)  # type: ignore[type-var]
    finally:
        await conn.close()


async def test_archived_records_are_reported(sandbox: Running, connector: HubSpotConnector) -> None:
    ids = [r.id for r in await records(connector, "companies")][:2]
    before = sandbox.now() - timedelta(milliseconds=1)
    archive(sandbox.app, "companies", ids)
    deleted = [i for p in await pages_of(connector.read_deleted("companies", None)) for i in p.deleted_ids]
    assert sorted(deleted) == sorted(ids)
    recent = [i for p in await pages_of(connector.read_deleted("companies", before)) for i in p.deleted_ids]
    assert sorted(recent) == sorted(ids)
    later = sandbox.now() + timedelta(hours=1)
    assert [
        i for p in await pages_of(connector.read_deleted("companies", later)) for i in p.deleted_ids
    ] == []
    assert not set(ids) & {r.id for r in await records(connector, "companies")}


async def test_ensure_fields_is_idempotent_and_check_passes(connector: HubSpotConnector) -> None:
    before = {r.item: r for r in await connector.check()}
    assert before["credentials"].ok
    assert not before["fields on companies"].ok
    assert "crm-upsell setup" in before["fields on companies"].detail
    created = await connector.ensure_fields(ALL_FIELDS)
    assert sorted(created) == sorted(f"crm_upsell_{f.name}" for f in ALL_FIELDS)
    assert await connector.ensure_fields(ALL_FIELDS) == []
    after = await connector.check()
    assert all(r.ok for r in after), [r for r in after if not r.ok]


async def test_batch_update_with_partial_failures(sandbox: Running, connector: HubSpotConnector) -> None:
    await connector.ensure_fields(ALL_FIELDS)
    accounts = [r.id for r in await records(connector, "companies")]
    updates = [
        FieldUpdate(account_id=a, values={"segment": "champion", "reason": "席の 92% を利用"})
        for a in accounts
    ]
    updates.append(FieldUpdate(account_id="999999999", values={"segment": "champion"}))
    updates.append(FieldUpdate(account_id=accounts[0], values={"loyalty_score": "not a number"}))
    results = await connector.update_accounts(updates)
    assert [r.ref for r in results] == [u.account_id for u in updates]
    assert all(r.ok for r in results[: len(accounts)])
    missing, invalid = results[-2:]
    assert not missing.ok
    assert not missing.retriable
    assert "OBJECT_NOT_FOUND" in (missing.error or "")
    assert not invalid.ok
    assert not invalid.retriable
    stored = {r.id: r for r in await records(connector, "companies")}
    assert stored[accounts[1]].product_fields["reason"] == "席の 92% を利用"  # type: ignore[attr-defined]

    async with httpx.AsyncClient(base_url=sandbox.base_url) as raw:
        await raw.post("/__sandbox/faults", json={"partial_batch_rate": 0.5, "seed": 1})
    results = await connector.update_accounts(updates[: len(accounts)])
    failed = [r for r in results if not r.ok]
    assert failed
    assert len(failed) < len(accounts)
    assert all(r.retriable and r.error for r in failed)


async def test_tasks_are_created_owned_associated_and_found(
    sandbox: Running, connector: HubSpotConnector
) -> None:
    await connector.ensure_fields(ALL_FIELDS)
    accounts = [r for r in await records(connector, "companies") if isinstance(r, Account)][:3]
    drafts = [
        TaskDraft(
            key=f"upsell-{a.id}",
            account_id=a.id,
            owner_id=a.owner_id,
            subject="上位プランのご提案",
            body="Why: 46 of 50 seats in use",
            due=date(2026, 12, 1),
            priority="high",
        )
        for a in accounts
    ]
    bad = TaskDraft(
        key="bad", account_id="not-an-id", owner_id=None, subject="s", body="b", due=date(2026, 12, 1)
    )
    results = await connector.create_tasks([*drafts, bad])
    assert [r.ref for r in results] == [*(d.key for d in drafts), "bad"]
    assert all(r.ok and r.crm_id for r in results[:3])
    assert not results[3].ok
    assert not results[3].retriable

    found = await connector.find_tasks([d.key for d in drafts] + ["no-such-key"])
    assert found == {d.key: r.crm_id for d, r in zip(drafts, results, strict=False)}

    tasks = {
        r.upsell_key: r for r in await records(connector, "tasks") if isinstance(r, Activity) and r.upsell_key
    }
    for draft, account in zip(drafts, accounts, strict=True):
        task = tasks[draft.key]
        assert task.kind is ActivityKind.TASK
        assert task.status == "open"
        assert task.account_id == account.id
        assert task.owner_id == account.owner_id
        assert task.subject == "上位プランのご提案"
        assert task.occurred_at == datetime(2026, 12, 1, 9, tzinfo=UTC)

    async with httpx.AsyncClient(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {sandbox.options.token}"}
    ) as raw:
        response = await raw.post(
            "/crm/v4/associations/tasks/companies/batch/read", json={"inputs": [{"id": results[0].crm_id}]}
        )
    types = [t["typeId"] for t in response.json()["results"][0]["to"][0]["associationTypes"]]
    assert types == [192]


async def test_oauth_token_expiring_mid_read_is_refreshed() -> None:
    for running in start(30):
        conn = running.connector(
            auth="oauth",
            token=None,
            client_id=running.options.client_id,
            client_secret="env:SBX_SECRET",
            refresh_token="env:SBX_REFRESH",
        )
        try:
            expected = sum(a.kind == "email" for a in running.scenario.activities)
            got: list[str] = []
            async for page in conn.read("emails", None):
                got.extend(r.id for r in page.records)
                # Half an hour passes on HubSpot's clock: the access token expires between two pages.
                sandbox_state(running.app).runtime.clock.advance(1801)
            assert len(got) == expected > 100
            assert conn.token_refreshes >= 2
            assert conn.stats.by_endpoint["POST /oauth/v1/token"] == conn.token_refreshes
        finally:
            await conn.close()


async def test_short_lived_oauth_tokens_are_refreshed_transparently() -> None:
    for running in start(30, access_token_ttl_s=1):
        conn = running.connector(
            auth="oauth",
            token=None,
            client_id=running.options.client_id,
            client_secret="env:SBX_SECRET",
            refresh_token="env:SBX_REFRESH",
        )
        try:
            got: list[str] = []
            async for page in conn.read("emails", None):
                got.extend(r.id for r in page.records)
                sandbox_state(running.app).runtime.clock.advance(2)  # expired between pages
            assert len(got) == sum(a.kind == "email" for a in running.scenario.activities)
            assert conn.token_refreshes >= 2
        finally:
            await conn.close()


@pytest.mark.parametrize("same_ms", [True, False])
async def test_more_than_ten_thousand_changed_companies_at_hubspots_real_cap(same_ms: bool) -> None:
    """PITFALLS: HubSpot's search stops at 10,000 results; every changed record must still arrive."""
    for running in start(10_150, search_cap=10_000, search_rate_limit_max=1000):
        conn = running.connector()
        try:
            since = running.now()
            touched = sandbox_state(running.app).touch("companies", count=10_150, same_ms=same_ms)
            got = [r.id for page in await pages_of(conn.read("companies", since)) for r in page.records]
            assert len(got) == len(set(got)) == 10_150
            assert sorted(got) == sorted(touched)
        finally:
            await conn.close()


async def test_a_run_stops_within_its_share_of_the_daily_allowance_and_the_next_resumes(
    tmp_path: Path,
) -> None:
    from crm_upsell_connector.config import SyncSettings
    from crm_upsell_connector.errors import QuotaError
    from crm_upsell_connector.store.engine import open_store
    from crm_upsell_connector.sync import Syncer

    for running in start(40, daily_limit=20, search_rate_limit_max=1000):
        engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
        settings = SyncSettings(parallel_streams=1)
        first = running.connector(daily_api_share=0.5)
        try:
            with pytest.raises(QuotaError) as stopped:
                await Syncer(engine, first, "sbx", settings).run()
            budget = first.client.budget
            assert budget.allowance == 10  # half of the 20 left at the start
            assert budget.spent == 10  # the 11th call was never sent
            assert "resumes from its checkpoints" in stopped.value.one_line()
        finally:
            await first.close()
        sandbox_state(running.app).runtime.reset_limits()  # a new day
        second = running.connector(daily_api_share=1.0)
        try:
            report = await Syncer(engine, second, "sbx", settings).run()
            assert report.failed == {}
            assert any(s.mode == "resumed" for s in report.streams.values())
        finally:
            await second.close()
        with engine.connect() as conn:
            from sqlalchemy import func, select

            from crm_upsell_connector.store.schema import accounts

            assert conn.execute(select(func.count()).select_from(accounts)).scalar_one() == 40
        engine.dispose()
