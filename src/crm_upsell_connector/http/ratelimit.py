"""A client-side rate limiter that learns the CRM's limits from its headers and its 429s.

It keeps the send times of the last interval (a rolling window, like the CRMs count), never lets
more than ``max_requests`` start inside one interval, caps requests in flight, and pauses everyone
when the CRM says the window is spent or asks to retry after a delay.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from crm_upsell_connector.http.budget import DailyBudget


@dataclass(frozen=True)
class LimitHint:
    """What one response said about the limit (any part may be unknown)."""

    max_requests: int | None = None
    remaining: int | None = None
    interval_s: float | None = None
    retry_after_s: float | None = None


class RateLimiter:
    def __init__(
        self,
        max_requests: int,
        interval_s: float,
        *,
        max_in_flight: int = 8,
        headroom: float = 0.03,
        clock: Clock | None = None,
        daily: DailyBudget | None = None,
    ) -> None:
        if max_requests < 1 or interval_s <= 0:
            raise ValueError("a rate limit needs at least one request per positive interval")
        self.max_requests = max_requests
        self.interval_s = interval_s
        self.headroom = headroom
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._paused_until = 0.0
        self._clock = clock or Clock()
        self.waited_s = 0.0
        #: the run's share of the CRM's daily allowance, checked before each send (retries included).
        self.daily = daily

    @property
    def budget(self) -> int:
        """Requests allowed per interval, keeping a little headroom for clock drift and latency."""
        return max(1, self.max_requests - max(1, math.ceil(self.max_requests * self.headroom)))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot: waits for room in the window and for a free in-flight place."""
        if self.daily is not None:
            self.daily.spend()
        async with self._in_flight:
            await self._acquire()
            yield

    async def _acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock.now()
                while self._sent and self._sent[0] <= now - self.interval_s:
                    self._sent.popleft()
                wait = self._paused_until - now
                if wait <= 0 and len(self._sent) >= self.budget:
                    wait = self._sent[0] + self.interval_s - now
                if wait <= 0:
                    self._sent.append(now)
                    return
                self.waited_s += wait
                await self._clock.sleep(wait)

    def observe(self, hint: LimitHint) -> None:
        """Learn from a response: adopt the CRM's limit and pause when it says to."""
        now = self._clock.now()
        if hint.interval_s and hint.interval_s > 0:
            self.interval_s = hint.interval_s
        if hint.max_requests and hint.max_requests > 0 and hint.max_requests != self.max_requests:
            self.max_requests = hint.max_requests
        if hint.retry_after_s is not None:
            # The CRM said when to come back (``Retry-After: 0`` is "now"): that beats guessing.
            if hint.retry_after_s > 0:
                self._paused_until = max(self._paused_until, now + hint.retry_after_s)
        elif hint.remaining is not None and hint.remaining <= 0:
            # The server's window is spent: wait until our oldest send leaves it.
            oldest = self._sent[0] if self._sent else now
            self._paused_until = max(self._paused_until, oldest + self.interval_s)


class Clock:
    """Monotonic time and sleep; tests substitute a fake one."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
