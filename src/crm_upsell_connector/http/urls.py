"""URL checks shared by every connector's settings: https everywhere, plain http only on loopback."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str, *, what: str, example: str, bare_host: bool = False) -> str:
    """``value`` without a trailing slash, or a ValueError saying how to write it.

    TLS is never optional towards a real CRM: plain http is accepted only for a sandbox or proxy on
    this machine. ``bare_host`` refuses any path (a login host, for example).
    """
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{what} must be an absolute https URL like {example}, not {value!r}")
    if parts.scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"{what} must use https (plain http is only allowed for a sandbox on this machine "
            f"such as http://127.0.0.1:8080); got {value!r}"
        )
    if parts.query or parts.fragment or (bare_host and parts.path.strip("/")):
        detail = (
            "a bare host URL (no path, query or fragment)"
            if bare_host
            else "without a query string or fragment"
        )
        raise ValueError(f"{what} must be {detail}; got {value!r}")
    return f"{parts.scheme}://{parts.netloc}" if bare_host else value.strip().rstrip("/")
