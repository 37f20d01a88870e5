"""End to end over real HTTP against the Zoho sandbox: reads, incremental, page_token past 2,000,
deletes, field setup, writes with per-record failures, tasks, credits and tokens expiring mid-read."""

from __future__ import annotations

import math
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from crm_upsell_zoho.connector import ZohoConnector, ZohoPlugin
from crm_upsell_zoho.sandbox import create_app, delete, sandbox_state, touch, zoho_id
from crm_upsell_zoho.settings import ZohoSettings
from starlette.applications import Starlette

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.errors import QuotaError
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.models import (
    Account,
    Activity,
    ActivityKind,
    FieldUpdate,
    LineItem,
    Page,
    Record,
    Stream,
    TaskDraft,
)
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.sync import Syncer

ACCOUNT_FIELDS = ("seats_purchased", "seats_active", "nps_score", "onboarding_stage", "do_not_contact")
PLUGIN = ZohoPlugin()
KINDS = {"tasks": "task", "calls": "call", "events": "meeting", "notes": "note"}
#: Streams whose full read is sized by the module's record count (one call each).
COUNTED_STREAMS = ("products", "accounts", "contacts", "deals", "tasks", "calls", "events")


@dataclass
class Running:
    app: Starlette
    scenario: Scenario
    options: SandboxOptions
    base_url: str

    def connector(self, **overrides: object) -> ZohoConnector:
        values = {**PLUGIN.sandbox_settings(self.base_url, self.options), **overrides}
        return ZohoConnector(
            ZohoSettings.model_validate(values),
            SecretResolver(PLUGIN.sandbox_secrets(self.options)),
            ConnectorContext("sbx", ACCOUNT_FIELDS),
        )

    def now(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=sandbox_state(self.app).now_ms())

    def raw(self) -> httpx.AsyncClient:
        """A client with the sandbox's fixed token, to look at records as Zoho shows them."""
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Zoho-oauthtoken {self.options.token}"}
        )


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
async def connector(sandbox: Running) -> AsyncIterator[ZohoConnector]:
    conn = sandbox.connector()
    yield conn
    await conn.close()


async def pages_of(it: AsyncIterator[Page]) -> list[Page]:
    return [page async for page in it]


async def records(conn: ZohoConnector, stream: str, since: datetime | None = None) -> list[Record]:
    # Contacts' pages carry their e-mail opt-out too: keep the stream's own records.
    kind = conn.streams[stream]
    return [r for page in await pages_of(conn.read(stream, since)) for r in page.records if r.stream is kind]


async def test_full_read_of_every_stream_costs_one_call_per_200_records(
    sandbox: Running, connector: ZohoConnector
) -> None:
    sc = sandbox.scenario
    expected = {
        "users": len(sc.owners),
        "products": len(sc.products),
        "accounts": len(sc.companies),
        "contacts": len(sc.contacts),
        "deals": len(sc.deals),
        **{stream: sum(a.kind == kind for a in sc.activities) for stream, kind in KINDS.items()},
    }
    budget = 2  # the field lists of Accounts and Tasks, read once per connector
    for stream, count in expected.items():
        pages = await pages_of(connector.read(stream, None))
        got = [r for page in pages for r in page.records if r.stream is connector.streams[stream]]
        assert len(got) == len({r.id for r in got}) == count, stream
        budget += max(1, math.ceil(count / 200))
        if stream in COUNTED_STREAMS:
            # One "Get Record Count" call sizes the read for progress; every page carries it.
            budget += 1
            assert {p.total for p in pages} == {count}, stream
        else:
            assert {p.total for p in pages} <= {None}, stream
    before = connector.stats.calls - connector.stats.by_endpoint.get("POST /oauth/v2/token", 0)
    assert before == budget
    assert connector.stats.by_endpoint.get("GET Accounts/actions/count") == 1
    items = await records(connector, "line_items")
    # Line items: the Deals pages just read are shared; each deal's Products related list costs one
    # call (Zoho has no cheaper way to read it; lost deals too, for the outcomes of proposals).
    related_calls = connector.stats.by_endpoint.get("GET Deals/{id}/Products", 0)
    assert related_calls == len(sc.deals)
    assert connector.stats.calls - connector.stats.by_endpoint.get("POST /oauth/v2/token", 0) == (
        budget + related_calls
    )
    assert connector.shared.served >= 1
    expected_pairs = {
        (zoho_id(sandbox.app, li.deal_key), zoho_id(sandbox.app, li.product_key)) for li in sc.line_items
    }
    assert {(i.deal_id, i.product_id) for i in items if isinstance(i, LineItem)} == expected_pairs
    skus = {zoho_id(sandbox.app, p.key): p.sku for p in sc.products}
    assert all(isinstance(i, LineItem) and i.sku == skus[i.product_id or ""] for i in items)

    accounts = {r.id: r for r in await records(connector, "accounts")}
    for company in sc.companies:
        account = accounts[zoho_id(sandbox.app, company.key)]
        assert isinstance(account, Account)
        assert account.name == company.name  # Japanese names kept as they are
        assert account.owner_id == zoho_id(sandbox.app, company.owner_key)
        assert account.fields["seats_purchased"] == (
            None if company.seats_purchased is None else str(company.seats_purchased)
        )
        # nps_score is NPS_Score in Zoho: matched without regard to case.
        assert account.fields["nps_score"] == (None if company.nps_score is None else str(company.nps_score))
    for stream in KINDS:
        for record in await records(connector, stream):
            assert isinstance(record, Activity)
            assert record.account_id in accounts
    products = await records(connector, "products")
    assert all(p.extra.get("family") and p.sku for p in products)  # type: ignore[attr-defined]
    assert (
        connector.credits_used == connector.stats.calls - connector.stats.by_endpoint["POST /oauth/v2/token"]
    )


async def test_incremental_read_picks_up_touched_records_and_skips_the_boundary(
    sandbox: Running, connector: ZohoConnector
) -> None:
    full = await pages_of(connector.read("contacts", None))
    cursor = full[-1].watermark
    assert cursor is not None
    at_cursor = frozenset(r.id for p in full for r in p.records if r.updated_at == cursor)
    assert await pages_of(connector.read("contacts", cursor, None, at_cursor)) == []
    ids = [r.id for r in full[0].records if r.stream is Stream.CONTACTS][:3]
    since = sandbox.now()
    touch(sandbox.app, "Contacts", ids=ids)
    calls = connector.stats.calls
    got = await records(connector, "contacts", since - timedelta(seconds=1))
    assert sorted(r.id for r in got) == sorted(ids)
    assert all(r.account_id for r in got)  # type: ignore[attr-defined]
    assert connector.stats.calls - calls == 1
    assert await records(connector, "contacts", sandbox.now() + timedelta(days=1)) == []


async def test_more_than_2000_changed_in_one_second_are_read_by_page_token() -> None:
    for running in start(760):
        conn = running.connector()
        try:
            since = running.now()
            touched = touch(running.app, "Contacts", count=10_000)  # every contact, in one millisecond
            assert len(touched) > 2_000
            pages = await pages_of(conn.read("contacts", since))
            got = [r.id for p in pages for r in p.records if r.stream is Stream.CONTACTS]
            assert len(got) == len(set(got)) == len(touched)
            assert sorted(got) == sorted(touched)
            # 200 a call; one more where the touch fell into the next second (a keyset restart).
            assert conn.stats.by_endpoint["GET Contacts"] <= math.ceil(len(touched) / 200) + 1
        finally:
            await conn.close()


async def test_deleted_records_are_reported(sandbox: Running, connector: ZohoConnector) -> None:
    ids = [r.id for r in await records(connector, "accounts")][:2]
    before = sandbox.now() - timedelta(seconds=1)
    delete(sandbox.app, "Accounts", ids[:1])
    delete(sandbox.app, "Accounts", ids[1:], permanent=True)
    deleted = [i for p in await pages_of(connector.read_deleted("accounts", None)) for i in p.deleted_ids]
    assert sorted(deleted) == sorted(ids)
    recent = [i for p in await pages_of(connector.read_deleted("accounts", before)) for i in p.deleted_ids]
    assert sorted(recent) == sorted(ids)
    later = sandbox.now() + timedelta(hours=1)
    assert [i for p in await pages_of(connector.read_deleted("accounts", later)) for i in p.deleted_ids] == []
    assert not set(ids) & {r.id for r in await records(connector, "accounts")}
    assert [p async for p in connector.read_deleted("users", None)] == []


async def test_setup_is_idempotent_and_check_passes(connector: ZohoConnector) -> None:
    before = {r.item: r for r in await connector.check()}
    assert before["credentials"].ok
    assert not before["fields on Accounts"].ok
    assert "crm-upsell setup" in before["fields on Accounts"].detail
    created = await connector.ensure_fields(ALL_FIELDS)
    expected = [f"Upsell_{f.name}" for f in ALL_FIELDS if f.object == "account"]
    assert sorted(created) == sorted([*expected, "Upsell_task_key"])
    assert await connector.ensure_fields(ALL_FIELDS) == []
    after = await connector.check()
    assert all(r.ok for r in after), [r for r in after if not r.ok]
    # Another connector (a fresh run) finds them too.
    assert await connector.ensure_fields(ALL_FIELDS[:2]) == []


async def test_account_updates_with_per_record_failures(sandbox: Running, connector: ZohoConnector) -> None:
    await connector.ensure_fields(ALL_FIELDS)
    accounts = [r.id for r in await records(connector, "accounts")]
    updates = [
        FieldUpdate(
            account_id=a, values={"segment": "champion", "reason": "席の 92% を利用", "loyalty_score": "88"}
        )
        for a in accounts
    ]
    updates.append(FieldUpdate(account_id="999999999", values={"segment": "x"}))
    updates.append(FieldUpdate(account_id=accounts[0], values={"loyalty_score": "not a number"}))
    results = await connector.update_accounts(updates)
    assert [r.ref for r in results] == [u.account_id for u in updates]
    assert all(r.ok for r in results[: len(accounts)])
    missing, invalid = results[-2:]
    assert not missing.ok and not missing.retriable and "INVALID_DATA" in (missing.error or "")
    assert not invalid.ok and not invalid.retriable and "Upsell_loyalty_score" in (invalid.error or "")
    stored = {r.id: r for r in await records(connector, "accounts")}
    account = stored[accounts[1]]
    assert isinstance(account, Account)
    assert account.product_fields["reason"] == "席の 92% を利用"
    assert account.product_fields["loyalty_score"] == "88"
    writes = connector.stats.by_endpoint["PUT Accounts"]
    assert writes == 2  # the repeated account goes into a second batch, never twice in one

    async with sandbox.raw() as raw:
        await raw.post("/__sandbox/faults", json={"partial_batch_rate": 0.5, "seed": 1})
    results = await connector.update_accounts(updates[: len(accounts)])
    failed = [r for r in results if not r.ok]
    assert failed and len(failed) < len(accounts)
    assert all(r.retriable and "INTERNAL_ERROR" in (r.error or "") for r in failed)


async def test_tasks_are_linked_owned_and_found_by_key(sandbox: Running, connector: ZohoConnector) -> None:
    await connector.ensure_fields(ALL_FIELDS)
    accounts = [r for r in await records(connector, "accounts") if isinstance(r, Account)][:3]
    drafts = [
        TaskDraft(
            key=f"upsell-{a.id}-it's",
            account_id=a.id,
            owner_id=a.owner_id,
            subject="上位プランのご提案",
            body="Why: 46 of 50 seats in use",
            due=date(2026, 12, 1),
            priority="high",
        )
        for a in accounts
    ]
    bad = TaskDraft(key="bad", account_id="123", owner_id=None, subject="s", body="b", due=date(2026, 12, 1))
    results = await connector.create_tasks([*drafts, bad])
    assert [r.ref for r in results] == [*(d.key for d in drafts), "bad"]
    assert all(r.ok and r.crm_id for r in results[:3])
    assert not results[3].ok and not results[3].retriable
    assert connector.stats.by_endpoint["POST Tasks"] == 1

    found = await connector.find_tasks([d.key for d in drafts] + ["no-such-key", "x' or id is not null --"])
    assert found == {d.key: r.crm_id for d, r in zip(drafts, results, strict=False)}

    tasks = {
        r.upsell_key: r for r in await records(connector, "tasks") if isinstance(r, Activity) and r.upsell_key
    }
    for draft, account in zip(drafts, accounts, strict=True):
        task = tasks[draft.key]
        assert (task.kind, task.status, task.account_id, task.owner_id) == (
            ActivityKind.TASK,
            "open",
            account.id,
            account.owner_id,
        )
        assert task.subject == "上位プランのご提案"
        assert task.occurred_at == datetime(2026, 12, 1, tzinfo=UTC)

    async with sandbox.raw() as raw:
        response = await raw.get(
            "/crm/v8/Tasks",
            params={
                "fields": "What_Id,Owner,Priority,Status,Due_Date,Description",
                "sort_by": "Created_Time",
            },
        )
    shown = {row["id"]: row for row in response.json()["data"]}[str(results[0].crm_id)]
    assert shown["What_Id"]["id"] == accounts[0].id and shown["$se_module"] == "Accounts"
    assert shown["Owner"]["id"] == accounts[0].owner_id
    assert (shown["Priority"], shown["Status"], shown["Due_Date"]) == ("High", "Not Started", "2026-12-01")


async def test_token_expiring_mid_read_is_refreshed() -> None:
    for running in start(80):
        conn = running.connector()
        try:
            expected = sum(a.kind == "call" for a in running.scenario.activities)
            got: list[str] = []
            async for page in conn.read("calls", None):
                got.extend(r.id for r in page.records)
                # An hour passes on Zoho's clock: the access token expires between two pages.
                sandbox_state(running.app).runtime.clock.advance(3601)
            assert len(got) == len(set(got)) == expected > 200
            assert conn.token_refreshes >= 2
            assert conn.stats.by_endpoint["POST /oauth/v2/token"] == conn.token_refreshes
        finally:
            await conn.close()


async def test_token_revoked_early_is_refreshed_on_invalid_token(
    sandbox: Running, connector: ZohoConnector
) -> None:
    assert await records(connector, "users")
    sandbox_state(sandbox.app).expire_tokens()  # INVALID_TOKEN on the next call, long before expiry
    assert await records(connector, "products")
    assert connector.token_refreshes == 2


async def test_credit_cap_stops_the_sync_and_the_next_run_resumes() -> None:
    for running in start(30):
        with tempfile.TemporaryDirectory() as tmp:
            engine = open_store("sqlite:///" + str(Path(tmp) / "cap.sqlite3"))
            # Enough for the first streams (users, products, accounts with its field list, contacts,
            # deals; each but users with its record count), not for the line items (a call per won
            # or open deal) nor the activities.
            capped = running.connector(credits_per_run=10)
            try:
                with pytest.raises(QuotaError):
                    await Syncer(engine, capped, "sbx", SyncSettings(parallel_streams=1)).run()
                assert capped.credits_used <= 10
            finally:
                await capped.close()
            fresh = running.connector()
            try:
                report = await Syncer(engine, fresh, "sbx", SyncSettings(parallel_streams=1)).run()
            finally:
                await fresh.close()
            # Streams finished before the cap are incremental now; the stopped one carries on.
            modes = {name: s.mode for name, s in report.streams.items()}
            assert modes["users"] == modes["deals"] == "incremental"
            assert modes["line_items"] == modes["tasks"] == modes["notes"] == "full"
            engine.dispose()
