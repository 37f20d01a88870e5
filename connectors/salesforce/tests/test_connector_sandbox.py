"""End to end over real HTTP against the Salesforce sandbox: the three auth flows, full and incremental
reads, nextRecordsUrl paging and resuming, getDeleted and queryAll, field setup, Collections writes
with partial failures, tasks, the daily share, and a session expiring mid-read."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from crm_upsell_salesforce.connector import SalesforceConnector, SalesforcePlugin
from crm_upsell_salesforce.sandbox import create_app, delete, sandbox_keypair, sandbox_state, touch
from crm_upsell_salesforce.settings import SalesforceSettings
from starlette.applications import Starlette

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.connector import ConnectorContext
from crm_upsell_connector.errors import ConfigError, QuotaError
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.models import Account, Activity, ActivityKind, FieldUpdate, Page, Record, TaskDraft
from crm_upsell_connector.sandbox.scenario import build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.repo import load_sync_state
from crm_upsell_connector.sync import Syncer

ACCOUNT_FIELDS = ("seats_purchased", "seats_active", "nps_score", "onboarding_stage")
PLUGIN = SalesforcePlugin()
STREAM_OBJECTS = {
    "users": "User",
    "products": "Product2",
    "accounts": "Account",
    "contacts": "Contact",
    "opportunities": "Opportunity",
    "line_items": "OpportunityLineItem",
    "assets": "Asset",
    "tasks": "Task",
    "events": "Event",
    "campaign_members": "CampaignMember",
}


@dataclass
class Running:
    app: Starlette
    options: SandboxOptions
    base_url: str

    def connector(self, auth: str = "client_credentials", **overrides: object) -> SalesforceConnector:
        values: dict[str, object] = {**PLUGIN.sandbox_settings(self.base_url, self.options)}
        if auth == "jwt":
            values.update(
                auth="jwt",
                username="integration@example.com",
                private_key="env:SBX_JWT_KEY",
                client_secret=None,
            )
        elif auth == "refresh_token":
            values.update(auth="refresh_token", refresh_token="env:SBX_REFRESH")
        values.update(overrides)
        environ = {
            **PLUGIN.sandbox_secrets(self.options),
            "SBX_JWT_KEY": sandbox_keypair().private_pem,
            "SBX_REFRESH": self.options.refresh_token,
        }
        settings = SalesforceSettings.model_validate(values)
        return SalesforceConnector(settings, SecretResolver(environ), ConnectorContext("sbx", ACCOUNT_FIELDS))

    def live(self, sobject: str) -> list[str]:
        table = sandbox_state(self.app).tables[sobject]
        return [i for i in table.recs if table.live(i)]


def start(accounts: int) -> Iterator[Running]:
    options = SandboxOptions(accounts=accounts, seed=3)
    app = create_app(build_scenario(accounts=accounts, seed=3), options)
    with SandboxServer(app) as base_url:
        yield Running(app, options, base_url)


@pytest.fixture(scope="module")
def big() -> Iterator[Running]:
    """Read-only tests: enough accounts for more than 2,000 tasks (two query batches)."""
    yield from start(140)


@pytest.fixture
def small() -> Iterator[Running]:
    """Tests that change data get a fresh org."""
    yield from start(8)


@pytest.fixture
async def conn(small: Running) -> AsyncIterator[SalesforceConnector]:
    c = small.connector()
    yield c
    await c.close()


async def pages_of(it: AsyncIterator[Page]) -> list[Page]:
    return [page async for page in it]


async def records(c: SalesforceConnector, stream: str, since: datetime | None = None) -> list[Record]:
    # Contacts' pages carry their e-mail opt-out too: keep the stream's own records.
    kind = c.streams[stream]
    return [r for page in await pages_of(c.read(stream, since)) for r in page.records if r.stream is kind]


@pytest.mark.parametrize("auth", ["client_credentials", "jwt", "refresh_token"])
async def test_each_auth_flow_reads(big: Running, auth: str) -> None:
    c = big.connector(auth)
    try:
        users = await records(c, "users")
    finally:
        await c.close()
    assert len(users) == len(big.live("User")) > 0
    assert c.stats.by_endpoint["POST /services/oauth2/token"] == 1


async def test_a_wrong_jwt_key_is_refused_without_the_key_in_the_message(big: Running) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from crm_upsell_connector.errors import AuthError

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings = SalesforceSettings.model_validate(
        {
            **PLUGIN.sandbox_settings(big.base_url, big.options),
            "auth": "jwt",
            "username": "integration@example.com",
            "private_key": "env:K",
            "client_secret": None,
        }
    )
    c = SalesforceConnector(settings, SecretResolver({"K": pem}), ConnectorContext("x"))
    try:
        with pytest.raises(AuthError) as caught:
            await records(c, "users")
    finally:
        await c.close()
    assert "invalid" in caught.value.one_line() and "PRIVATE KEY" not in caught.value.one_line()


async def test_full_read_of_every_stream_costs_one_call_per_2000_records(big: Running) -> None:
    c = big.connector()
    try:
        await c.ensure_fields(ALL_FIELDS)  # adds fields, not records: the org stays as it was
        budget = c.stats.calls
        for stream, sobject in STREAM_OBJECTS.items():
            got = await records(c, stream)
            expected = len(big.live(sobject))
            assert len(got) == len({r.id for r in got}) == expected, stream
            budget += max(1, math.ceil(expected / 2000))
        assert len(big.live("Task")) > 2000  # the paging below is exercised
        # The org's currencies, read once for home amounts: CurrencyType and DatedConversionRate.
        assert c.stats.calls == budget + 2
    finally:
        await c.close()


async def test_activities_link_to_accounts_and_kinds_follow_subtype(big: Running) -> None:
    c = big.connector()
    try:
        tasks = [r for r in await records(c, "tasks") if isinstance(r, Activity)]
        events = [r for r in await records(c, "events") if isinstance(r, Activity)]
    finally:
        await c.close()
    kinds = {a.kind for a in tasks}
    assert kinds == {ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.NOTE, ActivityKind.TASK}
    assert all(e.kind is ActivityKind.MEETING for e in events)
    accounts = set(big.live("Account"))
    assert all(a.account_id in accounts for a in tasks + events)
    assert any(a.direction == "inbound" for a in tasks if a.kind is ActivityKind.EMAIL)
    assert any(a.direction == "outbound" for a in tasks if a.kind is ActivityKind.CALL)
    assert any(e.outcome for e in events)


async def test_a_full_read_resumes_after_the_last_committed_id(big: Running) -> None:
    c = big.connector()
    try:
        first = await anext(c.read("tasks", None))
        assert first.resume == f"id:{first.records[-1].id}"  # never expires, unlike a query locator
        rest = await pages_of(c.read("tasks", None, first.resume))
    finally:
        await c.close()
    ids = [r.id for r in first.records] + [r.id for p in rest for r in p.records]
    assert len(ids) == len(set(ids)) == len(big.live("Task"))
    assert all(p.present_ids is None for p in rest)  # a resumed read cannot list every id


async def test_a_position_saved_by_an_older_version_reads_from_the_start_loudly(
    big: Running, caplog: pytest.LogCaptureFixture
) -> None:
    c = big.connector()
    try:
        with caplog.at_level(logging.WARNING):
            pages = await pages_of(c.read("tasks", None, "/services/data/v62.0/query/01gNOSUCHLOCATOR-2000"))
    finally:
        await c.close()
    assert sum(len(p.records) for p in pages) == len(big.live("Task"))
    assert "reading from the start" in caplog.text


async def test_session_expiring_mid_read_refreshes_and_replays(big: Running) -> None:
    c = big.connector("jwt")
    try:
        reader = c.read("tasks", None)
        first = await anext(reader)
        assert sandbox_state(big.app).expire_tokens() >= 1
        rest = await pages_of(reader)
    finally:
        await c.close()
    assert len(first.records) + sum(len(p.records) for p in rest) == len(big.live("Task"))
    assert c.token_refreshes == 2


async def test_incremental_read_returns_what_changed_and_skips_the_boundary(small: Running) -> None:
    c = small.connector()
    try:
        since = datetime.now(UTC) - timedelta(seconds=1)
        assert await records(c, "accounts", datetime.now(UTC) + timedelta(days=1)) == []
        touched = touch(small.app, "Account", count=3)
        pages = await pages_of(c.read("accounts", since))
        got = [r for p in pages for r in p.records]
        assert sorted(r.id for r in got) == sorted(touched)
        stamp = got[0].updated_at
        assert pages[-1].watermark == stamp
        # The boundary records already stored at the cursor are left out when asked.
        again = await pages_of(c.read("accounts", stamp, None, frozenset(touched[:2])))
        assert [r.id for p in again for r in p.records] == touched[2:]
    finally:
        await c.close()


async def test_deletes_through_get_deleted_and_reconcile_by_ids(small: Running) -> None:
    c = small.connector()
    try:
        gone = delete(small.app, "Contact", count=2)
        recent = await pages_of(c.read_deleted("contacts", datetime.now(UTC) - timedelta(hours=1)))
        assert sorted(i for p in recent for i in p.deleted_ids) == sorted(gone)
        assert c.stats.by_endpoint.get("GET sobjects/Contact/deleted") == 1
        # Past getDeleted's 15 days (or never checked): every live id, and the store drops the rest.
        for since in (datetime.now(UTC) - timedelta(days=40), None):
            (page,) = await pages_of(c.read_deleted("contacts", since))
            assert page.present_prefix == "003"
            assert sorted(page.present_ids or []) == sorted(small.live("Contact"))
        assert c.stats.by_endpoint.get("GET query Contact ids") == 2
        # Incremental reads through queryAll bring the deleted rows along.
        changed = await pages_of(c.read("contacts", datetime.now(UTC) - timedelta(minutes=5)))
        assert sorted(i for p in changed for i in p.deleted_ids) == sorted(gone)
        assert not {r.id for r in await records(c, "contacts")} & set(gone)
    finally:
        await c.close()


async def test_setup_is_idempotent_and_check_passes(conn: SalesforceConnector) -> None:
    before = await conn.check()
    assert any(not r.ok and "crm-upsell setup" in r.detail for r in before)
    created = await conn.ensure_fields(ALL_FIELDS)
    assert "Account.Crm_Upsell_Loyalty_Score__c" in created and "Activity.Crm_Upsell_Key__c" in created
    assert await conn.ensure_fields(ALL_FIELDS) == []
    results = await conn.check()
    assert results and all(r.ok for r in results), [r for r in results if not r.ok]


async def test_accounts_read_before_setup_leave_our_fields_empty(conn: SalesforceConnector) -> None:
    accounts = [r for r in await records(conn, "accounts") if isinstance(r, Account)]
    assert accounts and all(v is None for a in accounts for v in a.product_fields.values())
    assert any(a.fields.get("seats_purchased") for a in accounts)
    # Without the key field nothing can tell which tasks exist: an error, never "none".
    with pytest.raises(ConfigError, match="task key field"):
        await conn.find_tasks(["anything"])


async def test_collections_update_with_partial_failures(small: Running, conn: SalesforceConnector) -> None:
    await conn.ensure_fields(ALL_FIELDS)
    ids = small.live("Account")
    removed = delete(small.app, "Account", ids=[ids[-1]])[0]
    values = {"loyalty_score": "88", "segment": "champion", "reason": "株式会社: uses 46 of 50 seats"}
    updates = [FieldUpdate(account_id=i, values=values) for i in ids[:-1]]
    updates += [
        FieldUpdate(account_id=removed, values=values),
        FieldUpdate(account_id="001000000000000AAA", values=values),
        FieldUpdate(account_id=ids[0], values={"segment": "x" * 300}),  # too long: fails alone
    ]
    calls = conn.stats.calls
    results = await conn.update_accounts(updates)
    assert conn.stats.calls - calls == 2  # the second update of ids[0] goes in a batch of its own
    by_ref = [(r.ref, r.ok) for r in results]
    assert by_ref[: len(ids) - 1] == [(i, True) for i in ids[:-1]]
    assert not results[-3].ok and results[-3].error and "ENTITY_IS_DELETED" in results[-3].error
    assert not results[-2].ok and not results[-1].ok and not results[-1].retriable
    after = {r.id: r for r in await records(conn, "accounts") if isinstance(r, Account)}
    assert after[ids[1]].product_fields["reason"] == "株式会社: uses 46 of 50 seats"
    assert after[ids[1]].product_fields["loyalty_score"] == "88"


async def test_tasks_are_created_owned_linked_and_found(small: Running, conn: SalesforceConnector) -> None:
    await conn.ensure_fields(ALL_FIELDS)
    accounts = [r for r in await records(conn, "accounts") if isinstance(r, Account)]
    drafts = [
        TaskDraft(
            key=f"key-{n}",
            account_id=a.id,
            owner_id=a.owner_id,
            subject=f"Propose CRM Enterprise to {a.name}",
            body="Why: uses 46 of 50 seats",
            due=date(2026, 12, 1),
            priority="high",
        )
        for n, a in enumerate(accounts[:3])
    ]
    bad = TaskDraft(
        key="key-bad",
        account_id="001000000000000AAA",
        owner_id=None,
        subject="s",
        body="b",
        due=date(2026, 12, 1),
    )
    results = await conn.create_tasks([*drafts, bad])
    assert [r.ok for r in results] == [True, True, True, False]
    assert results[-1].error
    found = await conn.find_tasks(["key-0", "key-1", "key-2", "key-bad", "' OR Name != '"])
    assert found == {d.key: r.crm_id for d, r in zip(drafts, results, strict=False)}
    # What Salesforce holds, field by field.
    rows = {}
    async for batch, _ in conn.client.query_pages(
        "SELECT Id, WhatId, OwnerId, ActivityDate, Subject, Description, Priority, Status, Crm_Upsell_Key__c "
        "FROM Task WHERE Crm_Upsell_Key__c != null",
        endpoint="test",
    ):
        rows.update({r["Crm_Upsell_Key__c"]: r for r in batch})
    for draft, account in zip(drafts, accounts, strict=False):
        row = rows[draft.key]
        assert (row["WhatId"], row["OwnerId"]) == (account.id, account.owner_id)
        assert (row["ActivityDate"], row["Priority"], row["Status"]) == ("2026-12-01", "High", "Not Started")
        assert row["Subject"] == draft.subject and row["Description"] == draft.body
    ours = [r for r in await records(conn, "tasks") if isinstance(r, Activity) and r.upsell_key]
    assert {t.upsell_key for t in ours} == {"key-0", "key-1", "key-2"}
    assert all(t.kind is ActivityKind.TASK and t.status == "open" for t in ours)


async def test_the_daily_share_stops_a_read_and_request_limit_exceeded_too(small: Running) -> None:
    runtime = sandbox_state(small.app).runtime
    c = small.connector(daily_api_share=0.25)
    try:
        await records(c, "users")  # learns the allocation: plenty left
        assert c.client.budget.allowance is not None and c.client.budget.allowance > 1000
    finally:
        await c.close()
    runtime.daily.limit = runtime.daily.used + 9
    c = small.connector(daily_api_share=0.25)
    try:
        await records(c, "users")  # 9 left before it: this run may use 2
        await records(c, "products")
        with pytest.raises(QuotaError, match="25%"):
            await records(c, "accounts")
    finally:
        await c.close()
    assert c.stats.calls == 3  # the token and two queries; the third query was never sent
    runtime.daily.used = runtime.daily.limit
    c = small.connector(daily_api_share=1.0)
    try:
        with pytest.raises(QuotaError, match="REQUEST_LIMIT_EXCEEDED"):
            await records(c, "users")
    finally:
        await c.close()


async def test_a_sync_stopped_by_the_daily_share_keeps_its_cursors_and_resumes(
    small: Running, tmp_path: Path
) -> None:
    engine = open_store("sqlite:///" + str(tmp_path / "store.sqlite3"))
    settings = SyncSettings(parallel_streams=1, delete_check_hours=24, clock_skew_s=0)
    runtime = sandbox_state(small.app).runtime
    # 19 calls left in the org's day, half of them for this run: 9 calls, the first 5 streams
    # (accounts take three before setup: the first answer says the product's fields are missing,
    # the Tooling API confirms they do not exist yet; opportunities two more for the currencies).
    runtime.daily.limit = runtime.daily.used + 18
    c = small.connector(daily_api_share=0.5)
    try:
        with pytest.raises(QuotaError, match="resumes from its checkpoints"):
            await Syncer(engine, c, "sbx", settings).run()
    finally:
        await c.close()
    with engine.connect() as db:
        done = [s for s in STREAM_OBJECTS if load_sync_state(db, "sbx", s).cursor is not None]
    assert done == ["users", "products", "accounts", "contacts", "opportunities"]
    runtime.daily.limit = 1_000_000
    c = small.connector()
    try:
        report = await Syncer(engine, c, "sbx", settings).run()
    finally:
        await c.close()
    assert report.streams["tasks"].mode == "full" and report.streams["accounts"].mode == "incremental"
    assert report.streams["accounts"].records == 0
    engine.dispose()
