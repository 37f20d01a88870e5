"""What a run records when it ends badly: its status (failed, stopped, interrupted, held) and one
safe line about why (secrets scrubbed), for the runs table, ``runs`` and ``status``."""

from __future__ import annotations

import asyncio
from typing import Any

from crm_upsell_connector.apply import ApplyReport
from crm_upsell_connector.errors import ConnectorError, MassChangeError, StopRequested
from crm_upsell_connector.http.redact import scrub


def failure_status(exc: BaseException) -> str:
    """``held`` for a plan the mass-change guard stopped, ``interrupted`` for Ctrl-C (asyncio cancels
    the run's task, then raises KeyboardInterrupt), ``stopped`` for a stop asked for by SIGTERM,
    ``failed`` for everything else."""
    if isinstance(exc, MassChangeError):
        return "held"
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return "interrupted"
    return "stopped" if isinstance(exc, StopRequested) else "failed"


def error_name(exc: BaseException) -> str:
    return INTERRUPTED_LINE if failure_status(exc) == "interrupted" else type(exc).__name__


INTERRUPTED_LINE = "interrupted (Ctrl-C); the next run resumes from the last committed page or write"


def step_error(exc: BaseException) -> dict[str, Any]:
    """What a failed sync or apply step records: the error's kind, its line, and a guard stop."""
    line = error_line(exc)
    return {
        "error": error_name(exc),
        "reason": line,
        **({"guard": line} if isinstance(exc, MassChangeError) else {}),
    }


def error_summary(exc: BaseException) -> dict[str, Any]:
    """What a run that ended in ``exc`` records: the one-line error, its kind, and a guard stop."""
    interrupted = failure_status(exc) == "interrupted"
    summary: dict[str, Any] = {
        "error": error_line(exc),
        "error_kind": "interrupted" if interrupted else type(exc).__name__,
    }
    if isinstance(exc, MassChangeError):
        summary["guard"] = summary["error"]
    return summary


#: write failures kept with a run (the outbox keeps all of them).
_FAILURES_KEPT = 50


def failure_rows(report: ApplyReport) -> list[dict[str, str]]:
    """The first write failures of an apply, with their reasons (secrets scrubbed)."""
    return [
        {"kind": kind, "ref": ref, "reason": scrub(reason)[:300]}
        for kind, ref, reason in report.failed[:_FAILURES_KEPT]
    ]


def error_line(exc: BaseException) -> str:
    """One line about a failure, safe to store and show (secrets scrubbed)."""
    if failure_status(exc) == "interrupted":
        return INTERRUPTED_LINE
    text = exc.one_line() if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
    return scrub(text).splitlines()[0][:500] if text.strip() else type(exc).__name__
