"""The contract every connector passes, run against that connector's own sandbox over real HTTP.

A connector's tests subclass :class:`ConnectorContractTests` and set ``plugin_name``; the suite
starts the plugin's sandbox on loopback with a small seeded scenario and exercises the interface
the core relies on. Needs pytest (a test dependency, not a runtime one).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.connector import Connector, ConnectorContext, ConnectorPlugin, load_plugins
from crm_upsell_connector.fields import ACCOUNT_FIELDS, ALL_FIELDS
from crm_upsell_connector.models import (
    OPTIONAL_STREAMS,
    Account,
    Activity,
    ActivityKind,
    FieldUpdate,
    Record,
    Stream,
    TaskDraft,
)
from crm_upsell_connector.sandbox.scenario import Scenario, build_scenario
from crm_upsell_connector.sandbox.server import SandboxOptions, SandboxServer
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.sync import Syncer

CONTRACT_ACCOUNTS = 30
ACCOUNT_FIELD_NAMES = ("seats_purchased", "seats_active", "nps_score", "onboarding_stage", "do_not_contact")


@dataclass
class Sandbox:
    plugin: ConnectorPlugin
    scenario: Scenario
    options: SandboxOptions
    base_url: str

    def connector(self) -> Connector:
        settings = self.plugin.settings_model.model_validate(
            self.plugin.sandbox_settings(self.base_url, self.options)
        )
        secrets = SecretResolver(environ=self.plugin.sandbox_secrets(self.options))
        return self.plugin.create(settings, secrets, ConnectorContext("contract", ACCOUNT_FIELD_NAMES))


async def read_all(connector: Connector, stream: str, since: datetime | None = None) -> list[Record]:
    records: list[Record] = []
    async for page in connector.read(stream, since):
        records.extend(page.records)
    return records


class ConnectorContractTests:
    """Subclass with ``plugin_name = "..."`` in a connector's test package."""

    plugin_name: str = ""

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls) -> Iterator[Sandbox]:
        plugins = load_plugins()
        assert cls.plugin_name in plugins, f"connector {cls.plugin_name!r} is not installed"
        plugin = plugins[cls.plugin_name]
        options = SandboxOptions(accounts=CONTRACT_ACCOUNTS, seed=11)
        scenario = build_scenario(accounts=CONTRACT_ACCOUNTS, seed=11)
        with SandboxServer(plugin.sandbox_app(scenario, options)) as base_url:
            yield Sandbox(plugin, scenario, options, base_url)

    @pytest.fixture
    async def connector(self, sandbox: Sandbox) -> AsyncIterator[Connector]:
        connector = sandbox.connector()
        try:
            yield connector
        finally:
            await connector.close()

    def _stream_for(self, connector: Connector, canonical: Stream) -> list[str]:
        return [name for name, kind in connector.streams.items() if kind is canonical]

    def test_every_canonical_stream_is_served(self, sandbox: Sandbox) -> None:
        connector = sandbox.connector()
        served = set(connector.streams.values())
        assert set(Stream) - OPTIONAL_STREAMS <= served <= set(Stream)

    async def test_full_read_returns_every_account_once(self, sandbox: Sandbox, connector: Connector) -> None:
        (stream,) = self._stream_for(connector, Stream.ACCOUNTS)
        records = await read_all(connector, stream)
        assert all(isinstance(r, Account) for r in records)
        assert len({r.id for r in records}) == len(records) == CONTRACT_ACCOUNTS
        assert all(r.updated_at.tzinfo is not None for r in records)
        assert any(r.fields.get("seats_purchased") for r in records if isinstance(r, Account))

    async def test_activities_are_linked_to_accounts(self, connector: Connector) -> None:
        linked = 0
        for stream in self._stream_for(connector, Stream.ACTIVITIES):
            for record in await read_all(connector, stream):
                assert isinstance(record, Activity)
                linked += record.account_id is not None
        assert linked > CONTRACT_ACCOUNTS

    async def test_incremental_read_since_now_is_empty_and_since_past_is_complete(
        self, connector: Connector
    ) -> None:
        (stream,) = self._stream_for(connector, Stream.ACCOUNTS)
        future = datetime.now(UTC) + timedelta(days=1)
        assert await read_all(connector, stream, future) == []
        past = datetime(2000, 1, 1, tzinfo=UTC)
        assert len(await read_all(connector, stream, past)) == CONTRACT_ACCOUNTS

    async def test_ensure_fields_is_idempotent_and_check_passes(self, connector: Connector) -> None:
        await connector.ensure_fields(ALL_FIELDS)
        assert await connector.ensure_fields(ALL_FIELDS) == []
        results = await connector.check()
        assert results and all(r.ok for r in results), [r for r in results if not r.ok]

    async def test_field_updates_are_read_back(self, connector: Connector) -> None:
        await connector.ensure_fields(ALL_FIELDS)
        (stream,) = self._stream_for(connector, Stream.ACCOUNTS)
        target = (await read_all(connector, stream))[0]
        values = {f.name: "" for f in ACCOUNT_FIELDS}
        values.update(
            {"loyalty_score": "88", "segment": "champion", "reason": "uses 46 of 50 seats; 株式会社"}
        )
        values["updated_at"] = "2026-11-01T00:00:00Z"
        results = await connector.update_accounts(
            [
                FieldUpdate(account_id=target.id, values=values),
                FieldUpdate(account_id="999999999", values=values),
            ]
        )
        by_ref = {r.ref: r for r in results}
        assert by_ref[target.id].ok
        assert not by_ref["999999999"].ok and by_ref["999999999"].error
        after = {r.id: r for r in await read_all(connector, stream)}[target.id]
        assert isinstance(after, Account)
        assert after.product_fields["segment"] == "champion"
        assert after.product_fields["reason"] == "uses 46 of 50 seats; 株式会社"

    async def test_tasks_are_created_owned_linked_and_found_by_key(self, connector: Connector) -> None:
        await connector.ensure_fields(ALL_FIELDS)
        (stream,) = self._stream_for(connector, Stream.ACCOUNTS)
        account = (await read_all(connector, stream))[1]
        assert isinstance(account, Account)
        draft = TaskDraft(
            key="contract-key-0001",
            account_id=account.id,
            owner_id=account.owner_id,
            subject="Propose CRM Professional",
            body="Why: uses 46 of 50 seats",
            due=date(2026, 11, 15),
            priority="high",
        )
        (result,) = await connector.create_tasks([draft])
        assert result.ok and result.crm_id
        assert await connector.find_tasks(["contract-key-0001", "no-such-key"]) == {
            "contract-key-0001": result.crm_id
        }
        tasks = [
            r
            for s in self._stream_for(connector, Stream.ACTIVITIES)
            for r in await read_all(connector, s)
            if isinstance(r, Activity) and r.upsell_key == "contract-key-0001"
        ]
        assert len(tasks) == 1
        task = tasks[0]
        assert task.kind is ActivityKind.TASK and task.account_id == account.id
        assert task.owner_id == account.owner_id and task.status == "open"

    async def test_sync_into_store_then_incremental_costs_one_call_per_stream(
        self, connector: Connector
    ) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            engine = open_store("sqlite:///" + str(Path(tmp) / "contract.sqlite3"))
            # No skew margin: records other tests just wrote are not "changed" for this measurement.
            settings = SyncSettings(delete_check_hours=24, clock_skew_s=0)
            syncer = Syncer(engine, connector, "contract", settings)
            first = await syncer.run()
            assert first.streams[self._stream_for(connector, Stream.ACCOUNTS)[0]].records == CONTRACT_ACCOUNTS
            before = dict(connector.stats.by_endpoint)
            retries = connector.stats.retries
            await syncer.run()
            spent = {
                k: n - before.get(k, 0)
                for k, n in connector.stats.by_endpoint.items()
                if n > before.get(k, 0)
            }
            # Retries of 429s caused by the previous tests' traffic on the shared sandbox do not count.
            assert sum(spent.values()) - (connector.stats.retries - retries) <= len(connector.streams), spent
            engine.dispose()
