"""Keeps secrets out of URLs, headers, log lines and error messages.

Every secret value the product resolves is registered here; :func:`scrub` replaces any registered
value (and well-known secret query parameters and auth headers) wherever text leaves the process.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMS = frozenset(
    {
        "access_token",
        "refresh_token",
        "client_secret",
        "code",
        "hapikey",
        "token",
        "password",
        "assertion",
        "client_assertion",
        "api_key",
        "apikey",
    }
)
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
_MIN_SECRET_LEN = 6

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it would be printed."""
    global _pattern
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


_BEARER = re.compile(r"(?i)\b(bearer|zoho-oauthtoken)\s+[A-Za-z0-9._~+/=-]+")
_PARAM_TEXT = re.compile(
    r"(?i)\b(" + "|".join(sorted(SECRET_PARAMS)) + r")(=|\"\s*:\s*\"|'\s*:\s*')([^&\s\"']+)"
)


def scrub(text: str) -> str:
    """``text`` with every registered secret, bearer token and secret parameter masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _PARAM_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def redact_url(url: str) -> str:
    """The URL with secret query parameters and user info masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = urlencode(
        [
            (k, MASK if k.lower() in SECRET_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*,",
    )
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: (MASK if k.lower() in SECRET_HEADERS else scrub(v)) for k, v in headers.items()}


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs every record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            # Format the traceback now: a handler would otherwise format it after this filter ran.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Attach the redacting filter to every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
