"""Recording proposals: each proposal of a plan becomes one row of ``proposals``, once.

A proposal is what the rules proposed to an account: ``task`` when the plan queues a task for it,
``held_out`` when the holdout put the account in the control group, ``not_sent`` when a pacing
guardrail held it back (the owner's weekly cap, the cooldown after the last proposal). An account
whose task for it is still open is not proposed to again, so it records nothing new.

The same proposal (account, kind, product) seen again while its attribution window is open is the
same row; a row recorded as not sent (or held out, after the share was lowered) that later gets a
task becomes a ``task`` row. A second task for the same product (after the first was done and the
cooldown passed) is a new proposal with a row of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from crm_upsell_connector.plan import Plan
from crm_upsell_connector.rules.engine import HOLDOUT, OWNER_CAP
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.store.schema import proposals

#: the guardrails that hold a proposal back for pace; the proposal is followed as "not sent".
NOT_SENT_BECAUSE = frozenset({OWNER_CAP, "cooldown"})


@dataclass(frozen=True)
class _Entry:
    rec: Recommendation
    status: str  # task, held_out, not_sent
    task_key: str | None


def _entries(plan: Plan) -> list[_Entry]:
    tasks = {t.account_id: t.key for t in plan.tasks}
    out: list[_Entry] = []
    for rec in plan.recommendations:
        if rec.proposal is None:
            continue
        key = tasks.get(rec.account_id)
        if key is not None:
            out.append(_Entry(rec, "task", key))
        elif rec.blocked_by == HOLDOUT:
            out.append(_Entry(rec, "held_out", None))
        elif rec.blocked_by in NOT_SENT_BECAUSE:
            out.append(_Entry(rec, "not_sent", None))
    return out


def proposal_id(connection: str, account_id: str, kind: str, sku: str | None, at: datetime) -> str:
    raw = f"{connection}|{account_id}|{kind}|{sku or ''}|{at.isoformat()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def record_proposals(
    conn: Connection,
    connection: str,
    plan: Plan,
    families: Mapping[str, str],
    window_days: int,
    run_id: int | None = None,
) -> int:
    """Store the proposals of ``plan`` (made at ``plan.created_at``); returns how many rows changed.

    ``families`` maps each catalogue SKU to its product family.
    """
    entries = _entries(plan)
    if not entries:
        return 0
    now = plan.created_at
    live: dict[tuple[str, str | None, str | None], list[Any]] = {}
    query = select(
        proposals.c.id,
        proposals.c.account_id,
        proposals.c.kind,
        proposals.c.product_sku,
        proposals.c.status,
        proposals.c.task_key,
    ).where(proposals.c.connection == connection, proposals.c.window_ends_at > now)
    for row in conn.execute(query):
        live.setdefault((row.account_id, row.kind, row.product_sku), []).append(row)
    new_rows: list[dict[str, Any]] = []
    changed = 0
    for entry in entries:
        rec = entry.rec
        proposal = rec.proposal
        assert proposal is not None
        rows = live.get((rec.account_id, proposal.kind, proposal.product_sku), [])
        if entry.status != "task":
            if rows:
                continue  # already followed
        else:
            if any(r.task_key == entry.task_key for r in rows):
                continue
            waiting = next((r for r in rows if r.status != "task"), None)
            if waiting is not None:
                conn.execute(
                    update(proposals)
                    .where(proposals.c.connection == connection, proposals.c.id == waiting.id)
                    .values(status="task", task_key=entry.task_key, not_sent_reason=None)
                )
                changed += 1
                continue
        new_rows.append(
            {
                "connection": connection,
                "id": proposal_id(connection, rec.account_id, proposal.kind, proposal.product_sku, now),
                "account_id": rec.account_id,
                "run_id": run_id,
                "proposed_at": now,
                "window_ends_at": now + timedelta(days=window_days),
                "rule": proposal.rule,
                "kind": proposal.kind,
                "product_sku": proposal.product_sku,
                "product_family": families.get(proposal.product_sku or ""),
                "segment": rec.segment,
                "owner_id": rec.owner_id,
                "score": rec.score,
                "uplift": proposal.uplift,
                "status": entry.status,
                "not_sent_reason": rec.blocked_by if entry.status == "not_sent" else None,
                "task_key": entry.task_key,
            }
        )
    if new_rows:
        conn.execute(proposals.insert(), new_rows)
    return changed + len(new_rows)
