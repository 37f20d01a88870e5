"""API faults end to end, for every CRM: 429 storms, 5xx bursts, dropped connections, timeouts,
expired tokens mid-run and partial batch failures, against the sandboxes over real HTTP.

The run retries what can be retried, completes what it can, records each failed record with its
reason for the next run, and (through the CLI) exits non-zero with a summary when anything failed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_upsell_connector.cli import main
from crm_upsell_connector.fields import ALL_FIELDS
from crm_upsell_connector.sandbox.server import FaultOptions, SandboxServer

from .faults_support import (
    CRMS,
    CrmEnv,
    crm_env,
    crm_task_keys,
    dump_store,
    record_ids,
    run_pipeline,
    run_with,
    setup_fields,
    use_hubspot_oauth,
    write_cli_config,
)

pytestmark = pytest.mark.parametrize("crm", CRMS)

# Reads and writes both hit these: bursts of 429s, 5xx answers and connections cut mid-response.
# A HubSpot 429 without Retry-After pauses the client 2 s (Zoho 1 s): fewer storms where they cost more.
READ_FAULTS = {"seed": 5, "storm_length": 2, "error_rate": 0.25, "drop_rate": 0.12}
STORMS = {"hubspot": 0.015, "salesforce": 0.06, "zoho": 0.012}


async def reference_ids(env: CrmEnv, tmp_path: Path) -> dict[str, set[str]]:
    """What a fault-free sync of the same sandbox stores."""
    env.faults_off()
    ref = CrmEnv(env.crm, env.plugin, env.scenario, env.options, env.app, env.base_url, tmp_path / "ref.db")
    session = ref.session()
    try:
        async with session.connector() as connector:
            await session.sync(connector)
        return record_ids(session.engine)
    finally:
        session.engine.dispose()


async def test_sync_and_apply_complete_through_storms_5xx_and_drops(crm: str, tmp_path: Path) -> None:
    with crm_env(crm, tmp_path, accounts=30, seed=21) as env:
        session = env.session()
        try:
            await setup_fields(session)
            expected = await reference_ids(env, tmp_path)
            env.set_faults(**READ_FAULTS, storm_probability=STORMS[crm])
            async with session.connector() as connector:
                await session.sync(connector)
                # The run stored every record a fault-free sync of the same CRM stores.
                assert record_ids(session.engine) == expected
                first = await run_with(session, connector)
                retries = connector.stats.retries
            faults = env.stats()["faults"]
            # The faults really happened, and the client retried through them.
            assert faults.get("storm", 0) >= 1, faults
            assert faults.get("error_502", 0) + faults.get("error_503", 0) >= 1, faults
            assert faults.get("drop", 0) >= 1, faults
            assert retries >= sum(faults.values()) // 2

            # Writes that failed ambiguously are settled next run; no task is ever created twice.
            env.faults_off()
            second = await run_pipeline(session)
            assert second.report.ok, second.report.failed
            keys = await crm_task_keys(env, tmp_path / "probe.db")
            planned = {t.key for t in first.plan.tasks}
            assert planned <= set(keys)
            assert [k for k, n in Counter(keys).items() if n > 1] == []
            outbox = dump_store(session.engine)["outbox"]
            assert {r["status"] for r in outbox} <= {"done", "superseded"}
        finally:
            session.engine.dispose()


async def test_partial_batch_failures_are_recorded_and_completed_next_run(crm: str, tmp_path: Path) -> None:
    with crm_env(crm, tmp_path, accounts=40, seed=8) as env:
        session = env.session()
        try:
            await setup_fields(session)
            env.set_faults(partial_batch_rate=0.3, seed=4)
            first = await run_pipeline(session)
            report = first.report
            assert first.plan.tasks and first.plan.changes
            assert report.failed, "partial batch faults should fail some records"
            assert env.stats()["faults"].get("partial_batch", 0) > 0

            # Each failed record is in the outbox, failed, with the CRM's reason for it.
            rows = {(r["kind"], r["ref"]): r for r in dump_store(session.engine)["outbox"]}
            for kind, ref, reason in report.failed:
                row = rows[(kind, ref)]
                assert row["status"] == "failed"
                assert row["error"] == reason and reason
            runs = dump_store(session.engine)["runs"]
            assert any(r["command"] == "apply" and r["status"] == "partial" for r in runs), runs

            # Next run, faults off: the failed records go through, no task twice.
            env.faults_off()
            second = await run_pipeline(session)
            assert second.report.ok, second.report.failed
            failed_tasks = {ref for kind, ref, _ in report.failed if kind == "task"}
            outbox = dump_store(session.engine)["outbox"]
            assert {r["status"] for r in outbox} <= {"done", "superseded"}
            assert all(
                r["status"] == "done" for r in outbox if r["kind"] == "task" and r["ref"] in failed_tasks
            )
            keys = await crm_task_keys(env, tmp_path / "probe.db")
            assert sorted(keys) == sorted(set(keys))
            assert {t.key for t in first.plan.tasks} <= set(keys)
        finally:
            session.engine.dispose()


async def test_tokens_expiring_mid_run_are_refreshed_transparently(crm: str, tmp_path: Path) -> None:
    with crm_env(crm, tmp_path, accounts=30, seed=12) as env:
        use_hubspot_oauth(env)
        sandbox = env.state()
        session = env.session()
        pages = 0

        def expire_once_mid_step(stream: str, stored: int) -> None:
            # Every access token handed out so far dies while the step is under way.
            nonlocal pages
            pages += 1
            if pages in (4, 1000):
                sandbox.expire_tokens()

        try:
            async with session.connector() as connector:
                await connector.ensure_fields(ALL_FIELDS)
                expected = await reference_ids(env, tmp_path)
                await session.sync(connector, progress=expire_once_mid_step)
                assert record_ids(session.engine) == expected
                sandbox.expire_tokens()  # between sync and apply, with the same connector
                plan = session.plan(session.score())
                pages = 999
                report = await session.apply(connector, plan, progress=expire_once_mid_step)
                refreshes = connector.token_refreshes
            assert report.ok, report.failed
            assert plan.tasks
            assert refreshes >= 3, refreshes
            statuses = env.stats()["by_status"]
            assert int(statuses.get("401", 0)) >= 1, statuses  # the CRM did say "expired"
        finally:
            session.engine.dispose()


class SlowResponses:
    """ASGI middleware: every ``every``-th CRM call is answered ``delay_s`` late (after the CRM did
    the work), so the client's timeout fires on reads and on writes that did happen."""

    def __init__(self, app: ASGIApp, every: int, delay_s: float) -> None:
        self.app = app
        self.every = every
        self.delay_s = delay_s
        self.seen = 0
        self.delayed = 0
        self.enabled = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(
            ("/__sandbox", "/oauth", "/services/oauth2")
        ):
            await self.app(scope, receive, send)
            return
        self.seen += 1
        slow = self.enabled and self.seen % self.every == 0

        async def late_send(message: Message) -> None:
            if slow and message["type"] == "http.response.start":
                self.delayed += 1
                await asyncio.sleep(self.delay_s)
            await send(message)

        await self.app(scope, receive, late_send)


async def test_timeouts_are_retried_and_ambiguous_writes_settled(crm: str, tmp_path: Path) -> None:
    with crm_env(crm, tmp_path, accounts=30, seed=14) as env:
        session = env.session()
        try:
            await setup_fields(session)
            expected = await reference_ids(env, tmp_path)
        finally:
            session.engine.dispose()
        slow = SlowResponses(env.app, every=4, delay_s=0.6)
        with SandboxServer(slow) as slow_url:
            env.base_url = slow_url
            env.http["timeout_s"] = 0.25
            session = env.session()
            try:
                async with session.connector() as connector:
                    await session.sync(connector)
                    assert record_ids(session.engine) == expected
                    first = await run_with(session, connector)
                assert slow.delayed >= 3, slow.delayed
                slow.enabled = False
                second = await run_pipeline(session)
                assert second.report.ok, second.report.failed
                keys = await crm_task_keys(env, tmp_path / "probe.db")
                assert sorted(keys) == sorted(set(keys)), "a timed-out task creation was sent twice"
                assert {t.key for t in first.plan.tasks} <= set(keys)
            finally:
                session.engine.dispose()


def test_cli_run_with_partial_failures_exits_1_and_names_them(
    crm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with crm_env(crm, tmp_path, accounts=30, seed=9) as env:
        for name, value in env.secrets_env().items():
            monkeypatch.setenv(name, value)
        config = write_cli_config(env, tmp_path / "config.toml")
        assert main(["--config", str(config), "setup"]) == 0
        env.set_faults(partial_batch_rate=0.35, seed=2)
        capsys.readouterr()
        code = main(["--config", str(config), "run"])
        out, err = capsys.readouterr()
        assert code == 1, (out, err)
        failed_lines = [line.strip() for line in out.splitlines() if line.strip().startswith("failed ")]
        assert failed_lines, out
        assert "failed" in next(line for line in out.splitlines() if line.startswith("Applied:"))
        # Every failed record is named with its reason, as recorded in the outbox.
        store: Any = dump_store_at(env)
        failed_rows = [r for r in store["outbox"] if r["status"] == "failed"]
        assert failed_rows
        for row in failed_rows[:20]:
            assert f"failed {row['kind']} {row['ref']}: {row['error']}" in failed_lines

        env.faults_off()
        assert main(["--config", str(config), "run"]) == 0
        out, _ = capsys.readouterr()
        assert "failed" not in out.split("Applied:")[-1]


def dump_store_at(env: CrmEnv) -> dict[str, list[dict[str, Any]]]:
    from crm_upsell_connector.store.engine import open_store

    engine = open_store(env.store_url)
    try:
        return dump_store(engine)
    finally:
        engine.dispose()


def test_fault_options_reach_every_sandbox(crm: str, tmp_path: Path) -> None:
    """The control route the tests rely on takes effect (a guard against silently fault-free tests)."""
    with crm_env(crm, tmp_path, accounts=5, faults=FaultOptions(error_rate=1.0, seed=1)) as env:
        assert env.control("GET", "/__sandbox/faults")["error_rate"] == 1.0
        env.faults_off()
        assert env.control("GET", "/__sandbox/faults")["error_rate"] == 0.0
