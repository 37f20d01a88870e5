"""The report of one configured connection: on demand (``crm-upsell report``, the demo) and after
each scheduled run when ``[report] path`` is set."""

from __future__ import annotations

import logging
from pathlib import Path

from crm_upsell_connector.currency import resolve_home_currency
from crm_upsell_connector.http.redact import scrub
from crm_upsell_connector.pipeline import Session
from crm_upsell_connector.report.data import gather_report
from crm_upsell_connector.report.html import write_report

log = logging.getLogger(__name__)


def write_session_report(session: Session, out: Path) -> Path:
    """Gather the report of ``session``'s connection and write it to ``out``; returns the full path."""
    with session.engine.connect() as conn:
        data = gather_report(
            conn,
            session.name,
            session.rules,
            session.clock(),
            attribution_days=session.config.outcomes.attribution_days,
            currency=resolve_home_currency(conn, session.name, session.rules.tasks.currency),
        )
    return write_report(data, out)


def write_configured_report(session: Session) -> Path | None:
    """After a scheduled run: write the report to ``[report] path`` if set. A report that cannot be
    written is logged as an error and does not fail the run (its writes are done by then)."""
    target = session.config.report.path
    if not target:
        return None
    path = Path(target.replace("{connection}", session.name))
    try:
        written = write_session_report(session, path)
    except (OSError, ValueError) as exc:
        log.error(
            "report not written: %s",
            scrub(f"{path}: {exc}"),
            extra={"connection": session.name},
        )
        return None
    log.info("report written to %s", written, extra={"connection": session.name})
    return written
