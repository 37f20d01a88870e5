"""Apply: execute a plan through the outbox so that a run killed anywhere resumes without duplicates.

Every write is recorded (``pending``) before it is sent, marked ``sent`` just before the call and
``done`` or ``failed`` after it. On the next run, task creations left ``sent`` are settled by asking
the CRM for our task keys (created: done; not there: sent again); field updates are idempotent and
simply sent again. Failed records keep their reason and are retried next run.

A write whose account the CRM no longer has (``WriteResult.gone``: not found, merged away, deleted)
is marked ``gone``, not failed, and the account leaves the store; a queued write whose account has
left the store meanwhile (a sync saw it deleted or merged) is marked ``gone`` without being sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, select, update

from crm_upsell_connector.batching import chunked
from crm_upsell_connector.connector import Connector
from crm_upsell_connector.errors import APIError, QuotaError, RetriableAPIError
from crm_upsell_connector.models import ActivityKind, FieldUpdate, TaskDraft, WriteResult
from crm_upsell_connector.plan import Plan
from crm_upsell_connector.store.repo import upsert
from crm_upsell_connector.store.schema import accounts, activities, outbox, task_keys

log = logging.getLogger(__name__)

BATCH = 100
MAX_ATTEMPTS = 5
Progress = Callable[[str, int], None]


@dataclass
class ApplyReport:
    updated: int = 0
    tasks_created: int = 0
    recovered: int = 0
    #: writes not made because their account no longer exists in the CRM (removed from the store)
    gone: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, ref, reason)
    #: a stop was requested: the writes not yet sent stay pending in the outbox for the next run.
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed


def _now() -> datetime:
    return datetime.now(UTC)


class Applier:
    def __init__(
        self,
        engine: Engine,
        connector: Connector,
        connection: str,
        *,
        batch_size: int = BATCH,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.stop = stop
        #: called before each batch; raises when this run may no longer write (its lock was lost).
        self.guard = guard
        self.engine = engine
        self.connector = connector
        self.connection = connection
        self.batch_size = batch_size
        self.progress = progress

    async def apply(self, plan: Plan, run_id: int | None = None) -> ApplyReport:
        report = ApplyReport()
        report.recovered = await self.recover()
        self.enqueue(plan, run_id)
        await self.drain(report)
        return report

    # ---- enqueue ------------------------------------------------------------------------------

    def enqueue(self, plan: Plan, run_id: int | None) -> None:
        """Record every write of the plan before anything is sent (one transaction)."""
        now = _now()
        with self.engine.begin() as conn:
            for change in plan.changes:
                # A newer update for the same account replaces one that never got through.
                conn.execute(
                    update(outbox)
                    .where(
                        outbox.c.connection == self.connection,
                        outbox.c.kind == "field_update",
                        outbox.c.account_id == change.account_id,
                        outbox.c.status.in_(("pending", "failed")),
                    )
                    .values(status="superseded", updated_at=now)
                )
                self._insert(
                    conn, "field_update", change.account_id, change.account_id, change.update(), run_id, now
                )
            for draft in plan.tasks:
                known = conn.execute(
                    select(task_keys.c.key).where(
                        task_keys.c.connection == self.connection, task_keys.c.key == draft.key
                    )
                ).first()
                if known is not None:
                    continue
                conn.execute(
                    task_keys.insert().values(
                        connection=self.connection,
                        key=draft.key,
                        account_id=draft.account_id,
                        owner_id=draft.owner_id,
                        product_sku=None,
                        created_at=now,
                    )
                )
                self._insert(conn, "task", draft.key, draft.account_id, draft, run_id, now)

    def _insert(
        self,
        conn: Connection,
        kind: str,
        ref: str,
        account_id: str,
        payload: FieldUpdate | TaskDraft,
        run_id: int | None,
        now: datetime,
    ) -> None:
        conn.execute(
            outbox.insert().values(
                connection=self.connection,
                run_id=run_id,
                kind=kind,
                ref=ref,
                account_id=account_id,
                payload=payload.model_dump(mode="json"),
                status="pending",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )

    # ---- recover ------------------------------------------------------------------------------

    async def recover(self) -> int:
        """Settle writes a previous run sent without recording the answer."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.kind, outbox.c.ref, outbox.c.payload).where(
                    outbox.c.connection == self.connection, outbox.c.status == "sent"
                )
            ).all()
        if not rows:
            return 0
        tasks = [r for r in rows if r.kind == "task"]
        found = await self.connector.find_tasks([r.ref for r in tasks]) if tasks else {}
        now = _now()
        with self.engine.begin() as conn:
            for row in rows:
                if row.kind == "task" and row.ref in found:
                    self._mark_done(conn, row.id, found[row.ref], now)
                    self._remember_task(conn, TaskDraft.model_validate(row.payload), found[row.ref], now)
                else:
                    conn.execute(
                        update(outbox).where(outbox.c.id == row.id).values(status="pending", updated_at=now)
                    )
        log.info(
            "recovered %d write(s) left in flight by an earlier run (%d task(s) found created)",
            len(rows),
            len(found),
        )
        return len(rows)

    # ---- drain --------------------------------------------------------------------------------

    async def drain(self, report: ApplyReport) -> None:
        """Send everything pending, and what failed before (up to MAX_ATTEMPTS), in batches."""
        for kind in ("field_update", "task"):
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(outbox.c.id, outbox.c.ref, outbox.c.account_id, outbox.c.payload)
                    .where(
                        outbox.c.connection == self.connection,
                        outbox.c.kind == kind,
                        (outbox.c.status == "pending")
                        | and_(outbox.c.status == "failed", outbox.c.attempts < MAX_ATTEMPTS),
                    )
                    .order_by(outbox.c.id)
                ).all()
            rows = self._drop_gone(rows, report)
            for batch in chunked(rows, self.batch_size):
                if self.stop is not None and self.stop.is_set():
                    report.stopped = True
                    return
                if self.guard is not None:
                    self.guard()
                await self._send(kind, batch, report)

    def _drop_gone(self, rows: Sequence[Any], report: ApplyReport) -> list[Any]:
        """The rows whose account is still in the store; the others are marked ``gone`` unsent."""
        if not rows:
            return []
        wanted = sorted({r.account_id for r in rows})
        with self.engine.begin() as conn:
            known: set[str] = set()
            for start in range(0, len(wanted), 500):
                known.update(
                    conn.execute(
                        select(accounts.c.id).where(
                            accounts.c.connection == self.connection,
                            accounts.c.id.in_(wanted[start : start + 500]),
                        )
                    ).scalars()
                )
            lost = [r.id for r in rows if r.account_id not in known]
            if lost:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(lost))
                    .values(status="gone", error="the account is no longer in the CRM", updated_at=_now())
                )
        report.gone += len(lost)
        return [r for r in rows if r.account_id in known]

    async def _send(self, kind: str, rows: Sequence[Any], report: ApplyReport) -> None:
        ids = [r.id for r in rows]
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids))
                .values(status="sent", attempts=outbox.c.attempts + 1, updated_at=now)
            )
        try:
            if kind == "field_update":
                results = await self.connector.update_accounts(
                    [FieldUpdate.model_validate(r.payload) for r in rows]
                )
            else:
                results = await self.connector.create_tasks(
                    [TaskDraft.model_validate(r.payload) for r in rows]
                )
        except QuotaError:
            self._reset(ids, "stopped for the API quota; sent next run")
            raise
        except APIError as exc:
            if kind == "task" and isinstance(exc, RetriableAPIError):
                # The CRM may have created some of these before failing: ask it, never guess.
                await self._settle_ambiguous(rows, exc, report)
                return
            self._fail(rows, exc.one_line(), report, kind)
            return
        if kind == "task":
            rows, results = await self._confirm_unsure(rows, results, report)
        self._record(kind, rows, results, report)

    async def _confirm_unsure(
        self, rows: Sequence[Any], results: list[WriteResult], report: ApplyReport
    ) -> tuple[Sequence[Any], list[WriteResult]]:
        """A task reported failed but worth another try (a timeout, a dropped connection) may have
        been created all the same: ask the CRM before recording it as failed, or the next run would
        create it a second time."""
        unsure = [r.ref for r in results if not r.ok and r.retriable and not r.gone]
        if not unsure:
            return rows, results
        try:
            found = await self.connector.find_tasks(unsure)
        except APIError as exc:
            # Leave them "sent": the next run settles them before sending anything.
            left = set(unsure)
            report.failed.extend(("task", ref, exc.one_line()) for ref in unsure)
            return [r for r in rows if r.ref not in left], [r for r in results if r.ref not in left]
        return rows, [
            WriteResult(ref=r.ref, ok=True, crm_id=found[r.ref]) if not r.ok and r.ref in found else r
            for r in results
        ]

    def _record(
        self, kind: str, rows: Sequence[Any], results: list[WriteResult], report: ApplyReport
    ) -> None:
        by_ref = {r.ref: r for r in results}
        now = _now()
        with self.engine.begin() as conn:
            for row in rows:
                result = by_ref.get(row.ref)
                if result is not None and result.ok:
                    self._mark_done(conn, row.id, result.crm_id, now)
                    if kind == "task":
                        self._remember_task(conn, TaskDraft.model_validate(row.payload), result.crm_id, now)
                        report.tasks_created += 1
                    else:
                        self._remember_fields(conn, FieldUpdate.model_validate(row.payload))
                        report.updated += 1
                    continue
                if result is not None and result.gone:
                    self._forget_account(conn, row.account_id, result.error, row.id, now)
                    report.gone += 1
                    continue
                reason = (result.error if result else None) or "the CRM returned no result for this record"
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id)
                    .values(status="failed", error=reason, updated_at=now)
                )
                report.failed.append((kind, row.ref, reason))
        if self.progress is not None:
            self.progress(kind, len(rows))

    async def _settle_ambiguous(self, rows: Sequence[Any], exc: APIError, report: ApplyReport) -> None:
        try:
            found = await self.connector.find_tasks([r.ref for r in rows])
        except APIError:
            # Leave them "sent": the next run settles them before sending anything.
            report.failed.extend(("task", r.ref, exc.one_line()) for r in rows)
            return
        results = [
            WriteResult(
                ref=r.ref,
                ok=r.ref in found,
                crm_id=found.get(r.ref),
                error=None if r.ref in found else exc.one_line(),
            )
            for r in rows
        ]
        self._record("task", rows, results, report)

    def _fail(self, rows: Sequence[Any], reason: str, report: ApplyReport, kind: str) -> None:
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(status="failed", error=reason, updated_at=now)
            )
        report.failed.extend((kind, r.ref, reason) for r in rows)

    def _reset(self, ids: list[int], reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids))
                .values(status="pending", error=reason, attempts=outbox.c.attempts - 1, updated_at=_now())
            )

    # ---- store bookkeeping --------------------------------------------------------------------

    def _mark_done(self, conn: Connection, row_id: int, crm_id: str | None, now: datetime) -> None:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id)
            .values(status="done", crm_id=crm_id, error=None, updated_at=now)
        )

    def _forget_account(
        self, conn: Connection, account_id: str, error: str | None, row_id: int, now: datetime
    ) -> None:
        """The CRM no longer has this account: the write is ``gone`` and the account leaves the store
        (with the writes still queued for it); its contacts, deals and activities stay until the CRM
        says where they went (a merge re-points them, a deletion removes them)."""
        reason = error or "the account is no longer in the CRM"
        conn.execute(
            update(outbox).where(outbox.c.id == row_id).values(status="gone", error=reason, updated_at=now)
        )
        conn.execute(
            update(outbox)
            .where(
                outbox.c.connection == self.connection,
                outbox.c.account_id == account_id,
                outbox.c.status.in_(("pending", "failed")),
            )
            .values(status="gone", error=reason, updated_at=now)
        )
        conn.execute(
            delete(accounts).where(accounts.c.connection == self.connection, accounts.c.id == account_id)
        )
        log.info("account %s is no longer in the CRM (%s): removed from the store", account_id, reason)

    def _remember_fields(self, conn: Connection, change: FieldUpdate) -> None:
        """The store shows what the CRM now shows, so the next plan does not write it again."""
        current = conn.execute(
            select(accounts.c.product_fields).where(
                accounts.c.connection == self.connection, accounts.c.id == change.account_id
            )
        ).scalar_one_or_none()
        merged = {**(current or {}), **change.values}
        conn.execute(
            update(accounts)
            .where(accounts.c.connection == self.connection, accounts.c.id == change.account_id)
            .values(product_fields=merged)
        )

    def _remember_task(self, conn: Connection, draft: TaskDraft, crm_id: str | None, now: datetime) -> None:
        if not crm_id:
            return
        upsert(
            conn,
            activities,
            [
                {
                    "connection": self.connection,
                    "id": crm_id,
                    "kind": ActivityKind.TASK.value,
                    "account_id": draft.account_id,
                    "contact_id": None,
                    "owner_id": draft.owner_id,
                    "occurred_at": now,
                    "direction": None,
                    "outcome": None,
                    "subject": draft.subject,
                    "status": "open",
                    "upsell_key": draft.key,
                    "updated_at": now,
                    "extra": {},
                }
            ],
        )
