"""Injected latency for a sandbox's API paths, and the ``Retry-After`` values its 429s carry (in
seconds or as an HTTP date).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_upsell_connector.sandbox.options import SandboxOptions


def retry_after_value(form: str, seconds: float, now: float | None = None) -> str:
    """A ``Retry-After`` value ``seconds`` ahead: delay-seconds, or an IMF-fixdate HTTP-date rounded up
    to the next whole second (RFC 9110 sections 5.6.7 and 10.2.3)."""
    if form == "date":
        moment = math.ceil((time.time() if now is None else now) + seconds)
        return email.utils.formatdate(moment, usegmt=True)
    return str(math.ceil(seconds))


class LatencyMiddleware:
    """Delays every HTTP request whose path starts with one of ``prefixes`` by ``options.latency_ms``,
    and gives 429 and 503 responses without one the ``Retry-After`` that ``options.faults.retry_after``
    asks for (every sandbox's rate limits and storms, in either of RFC 9110's forms)."""

    def __init__(self, app: ASGIApp, options: SandboxOptions, prefixes: tuple[str, ...] = ("/",)) -> None:
        self.app = app
        self.options = options
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        crm = (
            scope["type"] == "http"
            and str(scope["path"]).startswith(self.prefixes)
            and not str(scope["path"]).startswith("/__sandbox")
        )
        if crm and self.options.latency_ms > 0:
            await asyncio.sleep(self.options.latency_ms / 1000)
        faults = self.options.faults
        if not crm or faults.retry_after == "none":
            await self.app(scope, receive, send)
            return

        async def send_with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") in (429, 503):
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    value = retry_after_value(faults.retry_after, faults.retry_after_s)
                    headers.append((b"retry-after", value.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_retry_after)
