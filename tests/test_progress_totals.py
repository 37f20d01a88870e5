"""Progress knows how much is left where the CRM says how many records a read returns."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from crm_upsell_zoho.sandbox import sandbox_state

from crm_upsell_connector.cli.output import Bars, progress_bar
from crm_upsell_connector.config import parse_config
from crm_upsell_connector.models import Page
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.secrets import SecretResolver
from tests.reliability.harness import CONNECTION, Env, open_env

#: Zoho streams whose full read is sized by "Get Record Count" -> their module.
ZOHO_COUNTED = {
    "products": "Products",
    "accounts": "Accounts",
    "contacts": "Contacts",
    "deals": "Deals",
    "tasks": "Tasks",
    "calls": "Calls",
    "events": "Events",
}


class Recorder:
    def __init__(self) -> None:
        self.done: dict[str, int] = {}
        self.totals: dict[str, int] = {}

    def __call__(self, what: str, n: int) -> None:
        self.done[what] = self.done.get(what, 0) + n

    def set_total(self, what: str, total: int) -> None:
        self.totals.setdefault(what, total)


def _sync(env: Env, *, full: bool = False) -> Recorder:
    config = parse_config(tomllib.loads(env.config.read_text(encoding="utf-8")), str(env.config))
    session = Session.open(config, CONNECTION, secrets=SecretResolver(environ=env.environ))
    recorder = Recorder()

    async def go() -> None:
        async with session.connector() as connector:
            await session.sync(connector, full=full, progress=recorder)

    try:
        asyncio.run(go())
    finally:
        session.engine.dispose()
    return recorder


def test_salesforce_reads_report_their_total_size(tmp_path: Path) -> None:
    with open_env("salesforce", tmp_path) as env:
        recorder = _sync(env)
    assert recorder.totals, "no totals reported"
    for stream, total in recorder.totals.items():
        assert total >= recorder.done.get(stream, 0) > 0, (stream, total, recorder.done)
    assert recorder.totals["accounts"] == recorder.done["accounts"]


def test_salesforce_incremental_reads_report_their_total_size(tmp_path: Path) -> None:
    with open_env("salesforce", tmp_path) as env:
        config = parse_config(tomllib.loads(env.config.read_text(encoding="utf-8")), str(env.config))
        session = Session.open(config, CONNECTION, secrets=SecretResolver(environ=env.environ))

        async def go() -> list[Page]:
            async with session.connector() as connector:
                # Changed since long ago: every account, by SystemModstamp; totalSize sizes the read.
                return [p async for p in connector.read("accounts", datetime(2000, 1, 1, tzinfo=UTC))]

        try:
            pages = asyncio.run(go())
        finally:
            session.engine.dispose()
    read = sum(len(p.records) for p in pages)
    assert read > 0
    assert {p.total for p in pages} == {read}


def test_zoho_full_reads_report_the_module_record_count(tmp_path: Path) -> None:
    with open_env("zoho", tmp_path) as env:
        recorder = _sync(env)
        tables = sandbox_state(env.app).org.tables
        sizes = {stream: len(tables[module].recs) for stream, module in ZOHO_COUNTED.items()}
    # Every module read by a full read reports the module's record count as its total.
    assert {s: recorder.totals.get(s) for s in ZOHO_COUNTED} == sizes
    assert recorder.done["accounts"] == recorder.totals["accounts"] > 0
    for stream in ("users", "notes", "line_items"):  # no count documented for these reads
        assert stream not in recorder.totals


def test_hubspot_searches_report_their_total(tmp_path: Path) -> None:
    with open_env("hubspot", tmp_path) as env:
        config = parse_config(tomllib.loads(env.config.read_text(encoding="utf-8")), str(env.config))
        session = Session.open(config, CONNECTION, secrets=SecretResolver(environ=env.environ))

        async def go() -> list[Page]:
            async with session.connector() as connector:
                # An incremental read is a search; its first answer's "total" sizes the whole read.
                return [p async for p in connector.read("companies", datetime(2000, 1, 1, tzinfo=UTC))]

        try:
            pages = asyncio.run(go())
        finally:
            session.engine.dispose()
    read = sum(len(p.records) for p in pages)
    assert read > 0
    assert {p.total for p in pages} == {read}


def test_the_terminal_bars_take_a_total_and_estimate() -> None:
    with progress_bar("syncing", enabled=True) as bars:
        assert isinstance(bars, Bars)
        bars("accounts", 10)
        bars.set_total("accounts", 40)
        bars("accounts", 10)
        task = bars.progress.tasks[bars.tasks["accounts"]]
        assert (task.completed, task.total) == (20, 40)
        bars.set_total("accounts", 99)  # the first total stands
        assert task.total == 40


@pytest.mark.parametrize("enabled", [False])
def test_no_bars_when_not_a_terminal(enabled: bool) -> None:
    with progress_bar("syncing", enabled=enabled) as advance:
        advance("accounts", 3)  # does nothing, fails nothing
