"""The PostgreSQL job queue's pieces that need no worker: schedules as periodic jobs, the schema.

procrastinate's own periodic deferrer, fed the connections' schedules, must queue exactly the ticks
the SQLite scheduler fires (intervals counted from midnight UTC, cron lines in their time zone across
a DST change, crontab weekdays), each once. The store's migrations install procrastinate's schema
and a downgrade removes it again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from procrastinate.periodic import PeriodicDeferrer
from sqlalchemy import inspect, text

from crm_upsell_connector.config import Config, parse_config
from crm_upsell_connector.jobs.app import CATCH_UP_S, RUN_TASK, connection_lock, make_app
from crm_upsell_connector.jobs.schedules import register_schedules
from crm_upsell_connector.store.engine import MIGRATIONS, open_store


def _config(schedules: dict[str, dict[str, Any]]) -> Config:
    connections = {
        name: {"crm": "hubspot", "settings": {"token": "env:X"}, "schedule": schedule}
        for name, schedule in schedules.items()
    }
    return parse_config(
        {"connections": connections, "store": {"url": "postgresql+psycopg://u@127.0.0.1:1/none"}}, "t.toml"
    )


def _deferrer(config: Config) -> PeriodicDeferrer:
    app = make_app(config.store.url)  # never opened: the deferrer only computes times here
    app.task(name=RUN_TASK, pass_context=True)(lambda context, timestamp, connection: None)
    register_schedules(app, config, sorted(config.connections))
    return PeriodicDeferrer(registry=app.periodic_registry, max_delay=CATCH_UP_S)


def _fire_times(config: Config, name: str, after: datetime, until: datetime) -> list[int]:
    schedule = config.connections[name].schedule
    assert schedule is not None
    trigger, times, now = schedule.trigger(), [], after
    while (fire := trigger.get_next_fire_time(None, now)) is not None and fire <= until:
        times.append(int(fire.timestamp()))
        now = fire + timedelta(microseconds=1)
    return times


def _queued(config: Config, start: datetime, end: datetime) -> dict[str, list[int]]:
    """What the deferrer queues, per connection, when it runs from ``start`` to ``end``."""
    deferrer = _deferrer(config)
    queued: dict[str, list[int]] = {name: [] for name in config.connections}
    at = start
    while at <= end:
        for periodic, timestamp in deferrer.get_previous_tasks(at=at.timestamp()):
            queued[periodic.periodic_id].append(timestamp)
            assert periodic.configure_kwargs["lock"] == connection_lock(periodic.periodic_id)
            assert periodic.configure_kwargs["queueing_lock"] == connection_lock(periodic.periodic_id)
        # The deferrer sleeps until its next tick; step there (or a little later) and look again.
        at += timedelta(seconds=max(1.0, min(deferrer.get_next_tick(at=at.timestamp()), 3600.0)))
    return queued


def _expected(config: Config, name: str, start: datetime, end: datetime) -> list[int]:
    """The SQLite scheduler's ticks in (start, end], after the latest one before the start when
    that one is recent enough to catch up (CATCH_UP_S)."""
    before = _fire_times(config, name, start - timedelta(days=8), start)
    caught_up = [before[-1]] if before and start.timestamp() - before[-1] <= CATCH_UP_S else []
    return caught_up + _fire_times(config, name, start, end)


def test_the_deferrer_queues_the_ticks_the_sqlite_scheduler_fires_each_once() -> None:
    # Berlin leaves summer time on 27 October 2024: 06:00 local is 04:00 UTC, then 05:00 UTC.
    config = _config(
        {
            "ninety": {"every": "90m"},
            "berlin": {"cron": "0 6-8 * * 1-5", "timezone": "Europe/Berlin"},
            "sunday": {"cron": "30 2 * * 0"},
        }
    )
    start = datetime(2024, 10, 24, 23, 59, 30, tzinfo=UTC)
    end = start + timedelta(days=5)
    queued = _queued(config, start, end)
    for name in config.connections:
        assert queued[name] == _expected(config, name, start, end), name
        assert queued[name], name
    berlin = [datetime.fromtimestamp(t, UTC) for t in queued["berlin"]]
    assert {(t.day, t.hour) for t in berlin if t.hour in (4, 5)} >= {(25, 4), (28, 5)}
    assert [datetime.fromtimestamp(t, UTC).weekday() for t in queued["sunday"]] == [6]


def test_intervals_no_cron_line_expresses_are_queued_on_their_ticks() -> None:
    config = _config({"seconds": {"every": "45s"}, "seven": {"every": "7m"}})
    start = datetime(2024, 3, 1, 11, 0, 20, tzinfo=UTC)
    end = start + timedelta(hours=2)
    queued = _queued(config, start, end)
    for name in config.connections:
        assert queued[name] == _expected(config, name, start, end), name
    # Counted from midnight UTC: 11:00:00 is a 45 s tick (880 x 45 s), so 11:00:45 the next.
    assert queued["seconds"][:2] == [int(start.timestamp()) - 20, int(start.timestamp()) + 25]


def test_a_tick_older_than_the_catch_up_window_is_not_queued_on_start() -> None:
    config = _config({"daily": {"cron": "0 3 * * *"}})
    deferrer = _deferrer(config)
    at = datetime(2024, 5, 1, 3, 0, tzinfo=UTC) + timedelta(seconds=CATCH_UP_S + 60)
    assert list(deferrer.get_previous_tasks(at=at.timestamp())) == []
    next_in = deferrer.get_next_tick(at=at.timestamp())
    assert datetime.fromtimestamp(at.timestamp() + next_in, UTC) == datetime(2024, 5, 2, 3, 0, tzinfo=UTC)


@pytest.mark.postgres
def test_migrations_install_procrastinate_and_a_downgrade_removes_it(fresh_pg_url: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    engine = open_store(fresh_pg_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"procrastinate_jobs", "procrastinate_workers", "procrastinate_periodic_defers"} <= tables
        assert "schedule_ticks" not in tables
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "-1")  # one step: the procrastinate migration
        tables = set(inspect(engine).get_table_names())
        assert "schedule_ticks" in tables and not {t for t in tables if t.startswith("procrastinate_")}
        with engine.connect() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%'")
            ).scalar()
        assert left == 0
    finally:
        engine.dispose()
    # Opening the store again upgrades it again.
    engine = open_store(fresh_pg_url)
    try:
        assert "procrastinate_jobs" in set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
