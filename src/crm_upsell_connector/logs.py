"""Log output for people (one line per event) or for log collectors (one JSON object per line).

Records may carry structured fields through ``extra=`` (``connection``, ``run_id``, ``status``,
``records``...): the text format appends them as ``key=value``, the JSON format as keys. Every handler
gets the redacting filter, so no secret reaches either format.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from crm_upsell_connector.http.redact import install_log_redaction, scrub

LogFormat = Literal["text", "json"]
# Marks the handler setup_logging installed, so that a second call replaces it.
_OURS = "_crm_upsell_handler"

# What every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a record was logged with."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``2026-11-23T10:15:00Z INFO scheduler: run finished connection=eu status=ok``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"{stamp} {record.levelname} {record.name.removeprefix('crm_upsell_connector.')}: {record.getMessage()}"
        extra = " ".join(f"{k}={_text(v)}" for k, v in fields_of(record).items())
        if extra:
            line = f"{line} {extra}"
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        # The redacting filter cleans the message; the fields are cleaned here.
        return scrub(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the fields, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text) else text


def setup_logging(level: int, log_format: LogFormat = "text") -> None:
    """Log to standard error in ``log_format``, at ``level``; secrets are redacted on every handler.

    Like ``logging.basicConfig``, it leaves a root logger that someone else (an embedding program,
    pytest) already gave handlers alone, apart from the level; calling it again replaces its own handler.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(level)
    if level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler's own chatter ("Running job ...", "Added job ...") duplicates ours.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    install_log_redaction()
