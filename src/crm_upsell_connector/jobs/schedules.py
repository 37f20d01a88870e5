"""Connection schedules as procrastinate periodic jobs, fire times computed exactly as in SQLite mode.

procrastinate defers each periodic job once per scheduled time whatever the number of workers (a
unique row per task, ``periodic_id`` and time in ``procrastinate_periodic_defers``). It reads
the times from a croniter object; here that object is ``TriggerTimes``, which asks the connection's
APScheduler trigger (``ScheduleSettings.trigger``) instead. So ``every = "90m"`` (counted from
midnight UTC), cron lines in any time zone across DST changes, and crontab's weekday numbers give
the same ticks with either store, and no schedule needs a cron line of its own.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import procrastinate
from apscheduler.triggers.base import BaseTrigger
from procrastinate.periodic import PeriodicTask

from crm_upsell_connector.config import Config
from crm_upsell_connector.jobs.app import CATCH_UP_S, QUEUE, RUN_TASK, connection_lock

# When a schedule has no later tick at all, the deferrer looks again after this long.
_NEVER_S = 86400.0
_TINY = timedelta(microseconds=1)


class TriggerTimes:
    """The part of croniter's interface procrastinate's periodic deferrer uses, over a trigger.

    Times are POSIX timestamps (float seconds), as the deferrer passes and expects them;
    ``get_next`` is strictly after the current time and ``get_prev`` at or before it, as croniter's.
    ``get_prev`` looks back at most ``lookback_s`` (the deferrer ignores older ticks anyway).
    """

    def __init__(self, trigger: BaseTrigger, lookback_s: float = CATCH_UP_S) -> None:
        self.trigger = trigger
        self.lookback_s = lookback_s
        self.current = datetime.now(UTC).timestamp()

    def set_current(self, start_time: float, force: bool = True) -> float:
        self.current = float(start_time)
        return self.current

    def _next_after(self, at: float) -> float | None:
        now = datetime.fromtimestamp(at, UTC) + _TINY
        fire = self.trigger.get_next_fire_time(None, now)
        return None if fire is None else float(fire.timestamp())

    def get_next(self, ret_type: type = float, start_time: float | None = None) -> float:
        if start_time is not None:
            self.current = float(start_time)
        fire = self._next_after(self.current)
        self.current = fire if fire is not None else self.current + _NEVER_S
        return self.current

    def get_prev(self, ret_type: type = float) -> float:
        floor = self.current - self.lookback_s - 1
        latest = floor
        at = floor
        while (fire := self._next_after(at)) is not None and fire <= self.current:
            latest = at = fire
        self.current = latest
        return latest


def register_schedules(app: procrastinate.App, config: Config, names: list[str]) -> None:
    """One periodic job of the run task per scheduled connection (``periodic_id`` = its name).

    procrastinate's deferrer queues due ticks one at a time, in registration order, and every worker
    tries each one (the database keeps the first). In the same order, the workers would all wait
    on the same connection's row; each worker's own random order lets them queue different
    connections at the same moment, so a tick of many connections is queued sooner.
    """
    for name in random.sample(names, len(names)):
        schedule = config.connections[name].schedule
        assert schedule is not None
        periodic: PeriodicTask = app.periodic_registry.register_task(  # type: ignore[type-arg]
            task=app.tasks[RUN_TASK],
            cron=schedule.describe(),
            periodic_id=name,
            configure_kwargs={
                "task_kwargs": {"connection": name},
                "lock": connection_lock(name),
                "queueing_lock": connection_lock(name),
                "queue": QUEUE,
            },
        )
        # The deferrer reads ``periodic.croniter`` (a cached property): it gets the trigger's times.
        periodic.__dict__["croniter"] = TriggerTimes(schedule.trigger())
