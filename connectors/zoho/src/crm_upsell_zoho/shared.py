"""Pages of one module fetched for one stream and handed, once, to a sibling stream asking the very
same request (the deals and line_items streams both read Deals)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_SHARED_TTL_S = 120.0


@dataclass
class _Shared:
    future: asyncio.Future[dict[str, Any]]
    readers: set[str]
    at: float = field(default_factory=time.monotonic)


class SharedPages:
    """Pages of one module fetched for one stream and handed, once, to a sibling stream asking the
    very same request (the deals and line_items streams both read Deals).

    Entries live at most ``ttl_s`` and at most ``cap`` are kept: a sibling that falls behind simply
    fetches for itself.
    """

    def __init__(self, cap: int = 24, ttl_s: float = _SHARED_TTL_S) -> None:
        self.cap = cap
        self.ttl_s = ttl_s
        self.served = 0
        self._entries: OrderedDict[tuple[Any, ...], _Shared] = OrderedDict()

    def _expire(self) -> None:
        horizon = time.monotonic() - self.ttl_s
        for key in [k for k, e in self._entries.items() if e.at < horizon and e.future.done()]:
            del self._entries[key]
        while len(self._entries) > self.cap:
            self._entries.popitem(last=False)

    async def get(
        self, key: tuple[Any, ...], reader: str, fetch: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        self._expire()
        entry = self._entries.get(key)
        if entry is not None and reader not in entry.readers:
            entry.readers.add(reader)
            try:
                shared = await asyncio.shield(entry.future)
            except Exception as exc:  # the sibling's call failed: try for ourselves
                log.debug("a shared %s page failed for the sibling stream (%s); fetching again", key[0], exc)
            else:
                self.served += 1
                self._entries.pop(key, None)
                return shared
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._entries[key] = _Shared(future, {reader})
        self._expire()
        try:
            body = await fetch()
        except BaseException as exc:
            self._entries.pop(key, None)
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        future.set_result(body)
        return body
