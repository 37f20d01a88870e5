"""One run of a connection's pipeline as a background worker does it, logged, its outcome classified.

Both schedulers use it: the in-process APScheduler worker of SQLite stores and the procrastinate jobs
of PostgreSQL stores. The outcome says what a scheduler should do next: nothing (``done``, also for a
failure another try will not fix), try again later (``retry``), or wait for the run holding the
connection's lock (``busy``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine

from crm_upsell_connector.apply import ApplyReport
from crm_upsell_connector.config import Config
from crm_upsell_connector.connector import ConnectorPlugin
from crm_upsell_connector.errors import (
    AuthError,
    BusyError,
    ConfigError,
    ConnectorError,
    FatalAPIError,
    MassChangeError,
    QuotaError,
    StopRequested,
)
from crm_upsell_connector.pipeline import PipelineReport, Session
from crm_upsell_connector.plan import Plan
from crm_upsell_connector.report.session import write_configured_report
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.secrets import SecretResolver
from crm_upsell_connector.sync import Progress, SyncReport

log = logging.getLogger("crm_upsell_connector.scheduler")

#: Errors another try will not fix: the run waits for a person, or for the next tick (quota).
#: A run held by the mass-change guard waits for a person: retrying would only hold it again.
NOT_RETRIED = (ConfigError, AuthError, QuotaError, FatalAPIError, MassChangeError)

Outcome = Literal["done", "failed", "retry", "busy"]


@dataclass
class Attempt:
    """What one try of a run came to; ``error`` is one safe line (no secrets) when it failed."""

    outcome: Outcome
    error: str = ""


class LogView:
    """Reports a scheduled run's steps as log records with structured fields."""

    def __init__(self, connection: str) -> None:
        self.extra = {"connection": connection}

    def progress(self, label: str) -> AbstractContextManager[Progress]:
        return nullcontext(lambda _what, _n: None)

    def synced(self, report: SyncReport) -> None:
        log.info(
            "synced",
            extra={
                **self.extra,
                "records": report.records,
                "deleted": report.deleted,
                "failed_streams": report.failed,
            },
        )
        if report.failed:
            log.warning(
                "nothing written to the CRM this run because a stream failed to sync", extra=self.extra
            )

    def scored(self, recs: list[Recommendation]) -> None:
        proposals = sum(1 for r in recs if r.proposal is not None)
        log.info("scored", extra={**self.extra, "accounts": len(recs), "proposals": proposals})

    def planned(self, plan: Plan) -> None:
        log.info("planned", extra={**self.extra, "updates": len(plan.changes), "tasks": len(plan.tasks)})

    def applied(self, report: ApplyReport) -> None:
        log.info(
            "applied",
            extra={
                **self.extra,
                "updated": report.updated,
                "tasks_created": report.tasks_created,
                "write_failures": len(report.failed),
            },
        )
        for kind, ref, reason in report.failed[:20]:
            log.warning("write failed: %s %s: %s", kind, ref, reason, extra=self.extra)


def attempt_run(
    config: Config,
    name: str,
    *,
    engine: Engine,
    plugins: dict[str, ConnectorPlugin],
    secrets: SecretResolver,
    stop: threading.Event,
    details: dict[str, Any],
    trigger: str = "schedule",
) -> Attempt:
    """One run of ``name`` under its ``RunLock``; ``details`` (tick, attempt, worker) go to its summary.

    Never raises for a failed run: the failure is logged, recorded on the run and classified.
    """
    extra = {"connection": name, **details}
    try:
        session = Session.open(config, name, plugins=plugins, engine=engine, secrets=secrets)
        session.stop = stop
        session.trigger = trigger
        with session.writing():
            log.info("run started", extra=extra)
            report = asyncio.run(_run(session, details, trigger))
    except BusyError:
        log.info("skipped: another run of this connection is still going", extra=extra)
        return Attempt("busy", "another run of this connection was still going")
    except StopRequested:
        log.info("run stopped at a checkpoint; the next run resumes from it", extra=extra)
        return Attempt("done")
    except NOT_RETRIED as exc:
        log.error("run failed: %s", exc.one_line(), extra={**extra, "error_kind": type(exc).__name__})
        return Attempt("failed", exc.one_line())
    except ConnectorError as exc:
        log.error("run failed: %s", exc.one_line(), extra={**extra, "error_kind": type(exc).__name__})
        return Attempt("retry", exc.one_line())
    except Exception as exc:
        log.exception("run failed with an internal error", extra=extra)
        return Attempt("retry", f"internal error: {type(exc).__name__}")
    log.info("run finished", extra={**extra, **_public(report)})
    if report.ok:
        return Attempt("done")
    return Attempt("retry", f"the run ended {report.status}")


async def _run(session: Session, details: dict[str, Any], trigger: str) -> PipelineReport:
    async with session.connector() as connector:
        report = await session.run_pipeline(
            connector, trigger=trigger, view=LogView(session.name), details=details
        )
    write_configured_report(session)  # [report] path
    return report


def _public(report: PipelineReport) -> dict[str, Any]:
    keys = ("records", "proposals", "updated", "tasks_created", "write_failures", "calls")
    picked = {k: report.summary[k] for k in keys if k in report.summary}
    return {"run_id": report.run_id, "status": report.status, **picked}
