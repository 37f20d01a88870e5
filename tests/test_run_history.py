"""The run history in the store (``store.runs.list_runs``), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_upsell_connector.store.engine import open_store
from crm_upsell_connector.store.runs import finish_run, get_run, list_runs, start_run


def test_runs_newest_first_with_their_steps_apart(store_url: str) -> None:
    engine = open_store(store_url)
    try:
        first = start_run(engine, "main", "run", {"trigger": "schedule"}, trigger="schedule")
        sync = start_run(engine, "main", "sync", trigger="schedule", parent_id=first)
        finish_run(engine, sync, "ok", {"records": 3, "streams": {"companies": 3}})
        finish_run(engine, first, "held", {"guard": "the plan changes the segment of 9 of 10 accounts"})
        other = start_run(engine, "emea", "run", trigger="manual")
        finish_run(engine, other, "ok", {"records": 0})
        manual_sync = start_run(engine, "main", "sync")

        listed = list_runs(engine, "main")
        assert [r.id for r in listed] == [manual_sync, first]  # steps of a run are left out
        held = listed[1]
        assert (held.trigger, held.status, held.summary["guard"][:20]) == (
            "schedule",
            "held",
            "the plan changes the",
        )
        assert held.duration_s is not None and held.duration_s >= 0
        assert listed[0].finished_at is None and listed[0].trigger == "manual"

        assert [r.id for r in list_runs(engine, parent_id=first)] == [sync]
        assert [r.id for r in list_runs(engine, steps=True, limit=2)] == [manual_sync, other]
        assert {r.connection for r in list_runs(engine)} == {"main", "emea"}
        assert list_runs(engine, "main", commands=["run"])[0].id == first
        assert list_runs(engine, since=datetime.now(UTC) + timedelta(days=1)) == []
        assert get_run(engine, sync) is not None and get_run(engine, 10_000) is None
        assert get_run(engine, first).to_json()["parent_id"] is None  # type: ignore[union-attr]
    finally:
        engine.dispose()
