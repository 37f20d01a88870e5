"""A sandbox's clock (real time, or moved forward by tests) and the rate limits it enforces:
rolling windows and a daily counter, each answering whether a call may pass and how long to wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 with milliseconds and ``Z``."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


class SandboxClock:
    """Wall-clock milliseconds, never earlier than the scenario's ``now``, and advanceable by tests."""

    def __init__(self, not_before: datetime | None = None) -> None:
        self._offset_ms = 0
        if not_before is not None:
            floor = (not_before - _EPOCH) // timedelta(milliseconds=1)
            self._offset_ms = max(0, floor - self._real_ms())
        self._last = 0
        self._lock = threading.Lock()

    @staticmethod
    def _real_ms() -> int:
        return time.time_ns() // 1_000_000

    def now_ms(self) -> int:
        with self._lock:
            # Monotonic even if the host clock steps back.
            self._last = max(self._last, self._real_ms() + self._offset_ms)
            return self._last

    def advance(self, seconds: float) -> int:
        with self._lock:
            self._offset_ms += int(seconds * 1000)
        return self.now_ms()


@dataclass(frozen=True, slots=True)
class LimitDecision:
    allowed: bool
    limit: int
    remaining: int
    interval_ms: int


class RollingWindowLimiter:
    """At most ``limit`` requests in any rolling window of ``interval_ms`` (monotonic time)."""

    def __init__(self, limit: int, interval_ms: int) -> None:
        self.limit = limit
        self.interval_ms = interval_ms
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> LimitDecision:
        now = time.monotonic()
        horizon = now - self.interval_ms / 1000
        with self._lock:
            while self._hits and self._hits[0] <= horizon:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return LimitDecision(False, self.limit, 0, self.interval_ms)
            self._hits.append(now)
            return LimitDecision(True, self.limit, self.limit - len(self._hits), self.interval_ms)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


class DailyCounter:
    """A plain count of requests against a daily budget (the sandbox's "day" is its lifetime)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def acquire(self) -> LimitDecision:
        with self._lock:
            if self.used >= self.limit:
                return LimitDecision(False, self.limit, 0, 86_400_000)
            self.used += 1
            return LimitDecision(True, self.limit, self.limit - self.used, 86_400_000)

    def reset(self) -> None:
        with self._lock:
            self.used = 0
