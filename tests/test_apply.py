"""The outbox: a run killed at any point and run again creates no duplicate task and loses no update."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select

from crm_upsell_connector.apply import Applier, ApplyReport
from crm_upsell_connector.config import SyncSettings
from crm_upsell_connector.models import TaskDraft
from crm_upsell_connector.plan import FieldChange, Plan
from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.schema import accounts, activities, outbox
from crm_upsell_connector.sync import Syncer
from tests.fake_connector import Crash, FakeConnector, FakeCRM

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    yield engine
    engine.dispose()


async def synced(engine: Engine, crm: FakeCRM) -> None:
    await Syncer(engine, FakeConnector(crm), "t", SyncSettings(), clock=lambda: NOW).run()


def make_plan(ids: list[str], *, tasks: bool = True) -> Plan:
    plan = Plan(connection="t", created_at=NOW)
    for i in ids:
        after = {
            "loyalty_score": "80",
            "segment": "champion",
            "next_product": "CRM Professional",
            "reason": "r",
        }
        plan.changes.append(FieldChange(i, f"Company {i}", {}, after))
        if tasks:
            plan.tasks.append(
                TaskDraft(
                    key=f"key-{i}",
                    account_id=i,
                    owner_id="o1",
                    subject="Propose",
                    body="b",
                    due=date(2026, 11, 8),
                )
            )
    return plan


def task_keys_in_crm(crm: FakeCRM) -> list[str]:
    return sorted(t.upsell_key or "" for t in crm.tasks.values())


def statuses(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(outbox.c.status)).scalars())


async def test_apply_writes_fields_and_tasks_and_the_store_shows_them(engine: Engine) -> None:
    crm = FakeCRM(accounts=5)
    await synced(engine, crm)
    report = await Applier(engine, FakeConnector(crm), "t", batch_size=2).apply(make_plan(["1", "2", "3"]))
    assert (report.updated, report.tasks_created, report.failed) == (3, 3, [])
    assert crm.accounts["2"].product_fields["segment"] == "champion"
    with engine.connect() as conn:
        shown = conn.execute(select(accounts.c.product_fields).where(accounts.c.id == "2")).scalar_one()
        keys = set(
            conn.execute(
                select(activities.c.upsell_key).where(activities.c.upsell_key.is_not(None))
            ).scalars()
        )
    assert shown["segment"] == "champion"
    assert keys == {"key-1", "key-2", "key-3"}


async def test_the_same_plan_applied_twice_creates_each_task_once(engine: Engine) -> None:
    crm = FakeCRM(accounts=5)
    await synced(engine, crm)
    await Applier(engine, FakeConnector(crm), "t").apply(make_plan(["1", "2"]))
    report = await Applier(engine, FakeConnector(crm), "t").apply(make_plan(["1", "2"]))
    assert report.tasks_created == 0
    assert task_keys_in_crm(crm) == ["key-1", "key-2"]


@pytest.mark.parametrize("crash_call", [1, 2, 3, 4])
async def test_a_run_killed_at_any_call_then_rerun_ends_like_an_uninterrupted_one(
    engine: Engine, crash_call: int
) -> None:
    crm = FakeCRM(accounts=6)
    await synced(engine, crm)
    plan = make_plan(["1", "2", "3", "4"])
    dying = FakeConnector(crm)
    dying.fail_at_call = crash_call
    with pytest.raises(Crash):
        await Applier(engine, dying, "t", batch_size=2).apply(plan)
    await Applier(engine, FakeConnector(crm), "t", batch_size=2).apply(plan)
    assert task_keys_in_crm(crm) == ["key-1", "key-2", "key-3", "key-4"]
    assert all(crm.accounts[i].product_fields.get("segment") == "champion" for i in "1234")
    assert set(statuses(engine)) <= {"done", "superseded"}  # nothing left pending, sent or failed


async def test_tasks_created_but_answer_lost_are_found_not_created_again(engine: Engine) -> None:
    crm = FakeCRM(accounts=4)
    await synced(engine, crm)
    flaky = FakeConnector(crm)
    flaky.create_then_crash = True
    report = await Applier(engine, flaky, "t").apply(make_plan(["1", "2"]))
    assert report.tasks_created == 2 and report.ok
    await Applier(engine, FakeConnector(crm), "t").apply(make_plan(["1", "2"]))
    assert task_keys_in_crm(crm) == ["key-1", "key-2"]


async def test_a_failed_record_keeps_its_reason_and_is_retried_while_the_rest_stand(engine: Engine) -> None:
    crm = FakeCRM(accounts=3)
    await synced(engine, crm)
    plan = make_plan(["1", "3"], tasks=False)
    refusing = FakeConnector(crm)
    refusing.reject["3"] = "segment is not one of the allowed options"
    report = await Applier(engine, refusing, "t").apply(plan)
    assert report.updated == 1
    assert report.failed == [("field_update", "3", "segment is not one of the allowed options")]
    with engine.connect() as conn:
        row = conn.execute(
            select(outbox.c.status, outbox.c.error, outbox.c.attempts).where(outbox.c.ref == "3")
        ).one()
    assert tuple(row) == ("failed", "segment is not one of the allowed options", 1)
    again = await Applier(engine, refusing, "t").apply(Plan(connection="t", created_at=NOW))
    assert again.failed and again.failed[0][1] == "3"
    with engine.connect() as conn:
        assert conn.execute(select(outbox.c.attempts).where(outbox.c.ref == "3")).scalar_one() == 2


async def test_a_write_to_an_account_the_crm_no_longer_has_removes_it_and_is_not_a_failure(
    engine: Engine,
) -> None:
    crm = FakeCRM(accounts=3)
    await synced(engine, crm)
    del crm.accounts["2"]  # merged away or deleted in the CRM since the last sync
    connector = FakeConnector(crm)
    report = await Applier(engine, connector, "t").apply(make_plan(["1", "2"]))
    assert report.ok and report.gone >= 1
    assert report.updated == 1 and report.tasks_created == 1
    with engine.connect() as conn:
        assert conn.execute(select(accounts.c.id).where(accounts.c.connection == "t")).scalars().all() == [
            "1",
            "3",
        ]
        statuses_of_2 = conn.execute(select(outbox.c.status).where(outbox.c.account_id == "2")).scalars()
        assert set(statuses_of_2) == {"gone"}
    # Nothing is sent for it again: the next run does not even try.
    connector.sent_updates.clear()
    again = await Applier(engine, connector, "t").apply(Plan(connection="t", created_at=NOW))
    assert again.ok and connector.sent_updates == []


async def test_a_queued_write_whose_account_left_the_store_is_never_sent(engine: Engine) -> None:
    crm = FakeCRM(accounts=3)
    await synced(engine, crm)
    applier = Applier(engine, FakeConnector(crm), "t")
    applier.enqueue(make_plan(["1", "2"], tasks=False), None)
    with engine.begin() as conn:  # a sync saw account 2 deleted before the writes went out
        conn.execute(delete(accounts).where(accounts.c.connection == "t", accounts.c.id == "2"))
    connector = FakeConnector(crm)
    report = ApplyReport()
    await Applier(engine, connector, "t").drain(report)
    assert connector.sent_updates == ["1"]
    assert report.gone == 1 and report.ok


async def test_a_stop_request_ends_apply_after_the_batch_in_flight_and_the_rest_waits(engine: Engine) -> None:
    crm = FakeCRM(accounts=6)
    await synced(engine, crm)
    plan = make_plan(["1", "2", "3", "4"], tasks=False)
    stop = threading.Event()
    sent: list[tuple[str, int]] = []

    def after_each_batch(kind: str, n: int) -> None:
        sent.append((kind, n))
        stop.set()  # SIGTERM arrives while the first batch is being written

    report = await Applier(
        engine, FakeConnector(crm), "t", batch_size=2, progress=after_each_batch, stop=stop
    ).apply(plan)
    assert report.stopped and report.updated == 2 and sent == [("field_update", 2)]
    assert statuses(engine).count("pending") == 2  # the rest is queued, nothing half-sent
    report = await Applier(engine, FakeConnector(crm), "t", batch_size=2).apply(
        Plan(connection="t", created_at=NOW)
    )
    assert report.updated == 2 and not report.stopped
    assert all(crm.accounts[i].product_fields.get("segment") == "champion" for i in "1234")
