"""Plan: the minimal set of CRM writes that makes the CRM show the current recommendations.

A field already holding the value is not written; an account with an open upsell task (in the CRM,
or queued in the outbox) gets no second one. The plan prints as a diff before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from crm_upsell_connector.fields import ACCOUNT_FIELD_NAMES
from crm_upsell_connector.models import FieldUpdate, TaskDraft
from crm_upsell_connector.rules.config import RulesConfig
from crm_upsell_connector.rules.engine import HOLDOUT
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.rules.tasks import render_task
from crm_upsell_connector.store.schema import accounts, activities, outbox

_REASON_MAX = 2000


@dataclass(frozen=True)
class FieldChange:
    account_id: str
    account_name: str
    before: dict[str, str | None]
    after: dict[str, str]

    def update(self) -> FieldUpdate:
        return FieldUpdate(account_id=self.account_id, values=dict(self.after))


@dataclass
class Plan:
    connection: str
    created_at: datetime
    changes: list[FieldChange] = field(default_factory=list)
    tasks: list[TaskDraft] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    #: what the plan was built from (the outcome tracker records the proposals among them).
    recommendations: list[Recommendation] = field(default_factory=list, repr=False)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.tasks

    def updates(self) -> list[FieldUpdate]:
        return [c.update() for c in self.changes]

    def to_json(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "created_at": self.created_at.isoformat(),
            "field_updates": [
                {"account_id": c.account_id, "account": c.account_name, "before": c.before, "after": c.after}
                for c in self.changes
            ],
            "tasks": [t.model_dump(mode="json") for t in self.tasks],
            "skipped": self.skipped,
        }

    def render(self, limit: int | None = None) -> str:
        """A human-readable diff, like ``terraform plan``."""
        lines: list[str] = []
        for change in self.changes[:limit]:
            lines.append(f"~ account {change.account_id} ({change.account_name})")
            for name, new in change.after.items():
                old = change.before.get(name)
                if name == "updated_at" or _same(old, new):
                    continue
                lines.append(f"    {name}: {_show(old)} -> {_show(new)}")
        for task in self.tasks[:limit]:
            lines.append(
                f"+ task on account {task.account_id} for owner {task.owner_id or '(none)'}: {task.subject}"
            )
            lines.append(f"    due {task.due.isoformat()}, priority {task.priority}, key {task.key}")
        hidden = 0 if limit is None else max(0, len(self.changes) - limit) + max(0, len(self.tasks) - limit)
        if hidden:
            lines.append(f"  ... and {hidden} more (use --json for all)")
        lines.append(
            f"Plan: {len(self.changes)} account(s) to update, {len(self.tasks)} task(s) to create"
            + "".join(f", {n} {why}" for why, n in sorted(self.skipped.items()))
            + "."
        )
        return "\n".join(lines)


def _show(value: str | None) -> str:
    if value is None or value == "":
        return "(empty)"
    text = value if len(value) <= 60 else value[:57] + "..."
    return json.dumps(text, ensure_ascii=False)


def _same(old: str | None, new: str) -> bool:
    """Equal as the CRM shows them: numbers by value, text without surrounding blanks."""
    left = (old or "").strip()
    right = new.strip()
    if left == right:
        return True
    try:
        a, b = float(left), float(right)
    except ValueError:
        return False
    return math.isclose(a, b, abs_tol=0.5)


def desired_values(rec: Recommendation) -> dict[str, str]:
    """What the account's product fields should show for ``rec`` (without ``updated_at``).

    A held-out account (the holdout's control group) shows its score and segment only.
    """
    held_out = rec.blocked_by == HOLDOUT
    proposal = None if held_out else rec.proposal
    return {
        "loyalty_score": str(round(rec.score)),
        "segment": rec.segment,
        "next_product": proposal.product_name if proposal else "",
        "reason": "" if held_out else rec.reason[:_REASON_MAX],
        "expected_uplift": str(round(proposal.uplift)) if proposal else "",
    }


def task_key(connection: str, rec: Recommendation, now: datetime) -> str:
    """Stable for one proposal within one ISO week: re-planning never yields a second task."""
    assert rec.proposal is not None
    year, week, _ = now.isocalendar()
    raw = f"{connection}|{rec.account_id}|{rec.proposal.kind}|{rec.proposal.product_sku}|{year}-W{week:02d}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def accounts_with_open_upsell_tasks(conn: Connection, connection: str) -> set[str]:
    """Accounts the CRM shows an open task of ours on, or that the outbox is about to give one."""
    crm = conn.execute(
        select(activities.c.account_id).where(
            activities.c.connection == connection,
            activities.c.upsell_key.is_not(None),
            activities.c.status != "done",
        )
    ).scalars()
    queued = conn.execute(
        select(outbox.c.account_id).where(
            outbox.c.connection == connection,
            outbox.c.kind == "task",
            outbox.c.status.in_(("pending", "sent", "failed")),
        )
    ).scalars()
    return {a for a in crm if a} | set(queued)


def build_plan(
    conn: Connection,
    connection: str,
    recommendations: Iterable[Recommendation],
    rules: RulesConfig,
    now: datetime,
) -> Plan:
    recommendations = list(recommendations)
    plan = Plan(connection=connection, created_at=now, recommendations=recommendations)
    current = {
        row.id: (row.name, row.product_fields or {})
        for row in conn.execute(
            select(accounts.c.id, accounts.c.name, accounts.c.product_fields).where(
                accounts.c.connection == connection
            )
        )
    }
    covered = accounts_with_open_upsell_tasks(conn, connection)
    stamp = now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    for rec in recommendations:
        if rec.account_id not in current:
            continue
        name, shown = current[rec.account_id]
        wanted = desired_values(rec)
        before = {k: shown.get(k) for k in ACCOUNT_FIELD_NAMES}
        if not all(_same(before.get(k), v) for k, v in wanted.items()):
            plan.changes.append(FieldChange(rec.account_id, name, before, {**wanted, "updated_at": stamp}))
        if not rec.wants_task:
            continue
        if rec.account_id in covered:
            plan.skipped["already have an open upsell task"] = (
                plan.skipped.get("already have an open upsell task", 0) + 1
            )
            continue
        rendered = render_task(rec, rules.tasks, now)
        plan.tasks.append(
            TaskDraft(
                key=task_key(connection, rec, now),
                account_id=rec.account_id,
                owner_id=rec.owner_id,
                subject=rendered.subject,
                body=rendered.body,
                due=rendered.due,
                priority=rendered.priority,
            )
        )
        covered.add(rec.account_id)
    return plan
