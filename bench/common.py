"""What every benchmark shares: a CRM sandbox in its own process, and peak memory."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from crm_upsell_connector.sandbox.server import find_free_port


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def sandbox_process(
    crm: str, accounts: int, latency_ms: int, rate: int, timeout: float = 900
) -> Iterator[int]:
    """``crm-upsell sandbox serve`` in a process of its own (so its memory and CPU are not ours)."""
    port = find_free_port()
    cmd = [sys.executable, "-m", "crm_upsell_connector.cli", "sandbox", "serve", "--crm", crm]
    cmd += ["--port", str(port), "--accounts", str(accounts), "--latency-ms", str(latency_ms)]
    cmd += ["--rate-limit", str(rate)]
    print(
        f"starting the {crm} sandbox: {accounts} accounts, {rate} req/10 s, {latency_ms} ms latency ...",
        flush=True,
    )
    built = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the sandbox exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the sandbox did not start in time") from None
                time.sleep(0.5)
        print(f"sandbox up in {time.monotonic() - built:.1f} s", flush=True)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
