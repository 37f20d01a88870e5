"""A running sandbox's shared state: its options, clock, limiters, fault injector and request
statistics (served at ``/__sandbox/stats``).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Any

from crm_upsell_connector.sandbox.faults import FaultInjector
from crm_upsell_connector.sandbox.limits import DailyCounter, RollingWindowLimiter, SandboxClock
from crm_upsell_connector.sandbox.options import SandboxOptions


class RequestStats:
    """Requests per route, per status and per injected fault; served at ``GET /__sandbox/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.by_route: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.rate_limited = 0

    def record(self, route: str, status: int) -> None:
        with self._lock:
            self.by_route[route] += 1
            self.by_status[str(status)] += 1
            if status == 429:
                self.rate_limited += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self.by_route.values()),
                "by_route": dict(self.by_route),
                "by_status": dict(self.by_status),
                "faults": dict(self.faults),
                "rate_limited": self.rate_limited,
            }


class SandboxRuntime:
    """The shared, mutable machinery of one running sandbox."""

    def __init__(self, options: SandboxOptions, not_before: datetime | None = None) -> None:
        self.options = options
        self.clock = SandboxClock(not_before)
        self.limiter = RollingWindowLimiter(options.rate_limit_max, options.rate_limit_interval_ms)
        self.search_limiter = RollingWindowLimiter(
            options.search_rate_limit_max, options.search_rate_limit_interval_ms
        )
        self.daily = DailyCounter(options.daily_limit)
        self.faults = FaultInjector(options.faults)
        self.stats = RequestStats()

    def reset_limits(self) -> None:
        self.limiter.reset()
        self.search_limiter.reset()
        self.daily.reset()
