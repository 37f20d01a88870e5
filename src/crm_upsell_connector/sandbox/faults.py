"""Injected failures: which request fails and how (a storm of 429s, a 502 or 503, a dropped
connection), drawn from a seed so a run can be repeated, and the dropped-connection response.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any, Literal

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from crm_upsell_connector.sandbox.options import FaultOptions

FaultKind = Literal["none", "storm", "error_502", "error_503", "drop"]


class FaultInjector:
    """Deterministic failures drawn from ``FaultOptions.seed`` in request order."""

    def __init__(self, options: FaultOptions) -> None:
        self._lock = threading.Lock()
        self.configure(options)

    def configure(self, options: FaultOptions) -> None:
        with self._lock:
            self.options = options
            self._rng = random.Random(options.seed)
            self._storm_left = options.storm_next

    def decide(self) -> FaultKind:
        """The fault (if any) for the next request."""
        o = self.options
        with self._lock:
            if self._storm_left > 0:
                self._storm_left -= 1
                return "storm"
            if o.storm_probability and self._rng.random() < o.storm_probability:
                self._storm_left = o.storm_length - 1
                return "storm"
            if o.error_rate and self._rng.random() < o.error_rate:
                return "error_502" if self._rng.random() < 0.5 else "error_503"
            if o.drop_rate and self._rng.random() < o.drop_rate:
                return "drop"
            return "none"

    def fail_item(self) -> bool:
        """Whether one input of a batch write fails (partial failure, 207)."""
        rate = self.options.partial_batch_rate
        if not rate:
            return False
        with self._lock:
            return self._rng.random() < rate

    def shuffle(self, items: list[Any]) -> None:
        with self._lock:
            self._rng.shuffle(items)


class DropConnection(Exception):
    """Raised after a response has started so the server closes the socket mid-response."""


class DroppedResponse(Response):
    """Starts a response, sends part of the body, then drops the connection (client sees a transport error)."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"results": [', "more_body": True})
        raise DropConnection("sandbox fault: connection dropped")


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
