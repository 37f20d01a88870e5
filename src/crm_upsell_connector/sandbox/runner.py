"""Running a sandbox: any ASGI app on loopback in a background thread (tests, ``sync --sandbox``),
or in the foreground (``crm-upsell sandbox serve``).
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

from starlette.types import ASGIApp


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class SandboxServer:
    """Runs an ASGI app with uvicorn on loopback in a background thread.

    >>> with SandboxServer(app) as base_url:  # doctest: +SKIP
    ...     httpx.get(f"{base_url}/crm/v3/owners")
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port or find_free_port(host)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        import uvicorn

        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"sandbox server failed to start on {self.base_url}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"sandbox server did not start within {timeout}s")
            time.sleep(0.01)
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(app: ASGIApp, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve ``app`` in the foreground until interrupted (``crm-upsell sandbox serve``)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="off")
