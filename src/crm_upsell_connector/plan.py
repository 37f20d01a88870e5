"""Plan: the minimal set of CRM writes that makes the CRM show the current recommendations.

A field already holding the value is not written; an account with an open upsell task (in the CRM,
or queued in the outbox) gets no second one. The plan prints as a diff before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from crm_upsell_connector.currency import resolve_home_currency
from crm_upsell_connector.features.product_tasks import QUEUED_TASK_STATUSES
from crm_upsell_connector.fields import ACCOUNT_FIELD_NAMES, segment_ids
from crm_upsell_connector.models import FieldUpdate, TaskDraft
from crm_upsell_connector.rules.config import RulesConfig
from crm_upsell_connector.rules.engine import HOLDOUT
from crm_upsell_connector.rules.locale import labels_for
from crm_upsell_connector.rules.result import Recommendation
from crm_upsell_connector.rules.tasks import render_task
from crm_upsell_connector.store.schema import accounts, activities, outbox, owners

_REASON_MAX = 2000


@dataclass(frozen=True)
class FieldChange:
    account_id: str
    account_name: str
    before: dict[str, str | None]
    after: dict[str, str]

    def update(self) -> FieldUpdate:
        return FieldUpdate(account_id=self.account_id, values=dict(self.after))

    @property
    def shown_before(self) -> bool:
        """Whether the CRM already shows any of the product's fields on this account."""
        return any(v for v in self.before.values())

    def changes(self, name: str) -> bool:
        """Whether this change gives field ``name`` another value than the CRM shows."""
        return name in self.after and not _same(self.before.get(name), self.after[name])


@dataclass
class Plan:
    connection: str
    created_at: datetime
    changes: list[FieldChange] = field(default_factory=list)
    tasks: list[TaskDraft] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    #: accounts of the connection in the store when the plan was made (the guard's shares count on it).
    accounts: int = 0
    #: no account shows any of the product's fields yet: the first write to this CRM.
    first_write: bool = False
    #: owner id -> name, for showing the plan (the CRM ids stay in ``--json``).
    owner_names: dict[str, str] = field(default_factory=dict)
    #: account id -> name, for the tasks.
    account_names: dict[str, str] = field(default_factory=dict)
    #: segment id -> label ([locale.segments]).
    segment_labels: dict[str, str] = field(default_factory=dict)

    def owner(self, owner_id: str | None) -> str:
        """The owner as the plan shows it: the name, else the id, else '(no owner)'."""
        if not owner_id:
            return "(no owner)"
        return self.owner_names.get(owner_id) or f"owner {owner_id}"

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
            "accounts": self.accounts,
            "first_write": self.first_write,
        }

    def render(self, limit: int | None = None, *, ids: bool = True) -> str:
        """A human-readable diff, like ``terraform plan``: accounts and owners by name.

        ``ids`` adds the accounts' CRM ids (the demo leaves them out; ``--json`` has everything).
        """
        lines: list[str] = []
        for change in self.changes[:limit]:
            where = f" ({change.account_id})" if ids else ""
            lines.append(f"~ account {change.account_name or change.account_id}{where}")
            for name, new in change.after.items():
                old = change.before.get(name)
                if name == "updated_at" or _same(old, new):
                    continue
                if name == "segment":
                    old = self.segment_labels.get(old or "", old)
                    new = self.segment_labels.get(new, new)
                shown_old, shown_new = show_change(old, new)
                lines.append(f"    {name.replace('_', ' ')}: {shown_old} -> {shown_new}")
        for task in self.tasks[:limit]:
            account = self.account_names.get(task.account_id) or task.account_id
            where = f" ({task.account_id})" if ids else ""
            lines.append(f"+ task for {self.owner(task.owner_id)} on {account}{where}: {task.subject}")
            lines.append(f"    due {task.due.isoformat()}, priority {task.priority}")
        hidden = 0 if limit is None else max(0, len(self.changes) - limit) + max(0, len(self.tasks) - limit)
        if hidden:
            lines.append(f"  ... and {hidden} more ('crm-upsell plan --json' lists every write)")
        lines.append(
            f"Plan: {len(self.changes)} account(s) to update, {len(self.tasks)} task(s) to create"
            + "".join(f", {n} {why}" for why, n in sorted(self.skipped.items()))
            + "."
        )
        return "\n".join(lines)


_SHOW_MAX = 60
_CONTEXT = 20


def show_change(old: str | None, new: str) -> tuple[str, str]:
    """``old`` and ``new`` for the diff, long values cut around the part that changed, never through it.

    Where both hold text and one is long, what they share at the start and at the end is shortened
    to ``...`` and 20 characters of context, so the changed middle always shows in full. A value
    that appears or disappears shows whole.
    """
    if not old or not new or (len(old) <= _SHOW_MAX and len(new) <= _SHOW_MAX):
        return _show(old), _show(new)
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    cut_start = max(0, start - _CONTEXT)
    return _window(old, cut_start, end), _window(new, cut_start, end)


def _window(value: str, cut_start: int, same_end: int) -> str:
    cut_end = len(value) - max(0, same_end - _CONTEXT)
    text = value[cut_start:cut_end]
    return (
        ("..." if cut_start else "")
        + json.dumps(text, ensure_ascii=False)
        + ("..." if cut_end < len(value) else "")
    )


def _show(value: str | None) -> str:
    """A whole value (a value that is all new is all change: nothing of it is left out)."""
    if value is None or value == "":
        return "(empty)"
    return json.dumps(value, ensure_ascii=False)


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
            outbox.c.status.in_(QUEUED_TASK_STATUSES),
        )
    ).scalars()
    return {a for a in crm if a} | set(queued)


def owner_names(conn: Connection, connection: str) -> dict[str, str]:
    """Owner id -> name (the e-mail where the CRM gives no name)."""
    return {
        row.id: row.name or row.email or row.id
        for row in conn.execute(
            select(owners.c.id, owners.c.name, owners.c.email).where(owners.c.connection == connection)
        )
    }


def account_names(conn: Connection, connection: str, ids: Sequence[str]) -> dict[str, str]:
    """Account id -> name for ``ids`` (those in the store)."""
    found: dict[str, str] = {}
    for chunk in (list(ids)[i : i + 500] for i in range(0, len(ids), 500)):
        query = select(accounts.c.id, accounts.c.name).where(
            accounts.c.connection == connection, accounts.c.id.in_(chunk)
        )
        found.update({row.id: row.name for row in conn.execute(query) if row.name})
    return found


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
    plan.accounts = len(current)
    plan.first_write = not any(any(v for v in shown.values()) for _, shown in current.values())
    covered = accounts_with_open_upsell_tasks(conn, connection)
    plan.owner_names = owner_names(conn, connection)
    labels = labels_for(rules)
    plan.segment_labels = {s: labels.segment(s) for s in segment_ids(rules)}
    home = resolve_home_currency(conn, connection, rules.tasks.currency)
    stamp = now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    for rec in recommendations:
        if rec.account_id not in current:
            continue
        name, shown = current[rec.account_id]
        plan.account_names[rec.account_id] = name
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
        rendered = render_task(rec, rules, now, home, owner_name=plan.owner_names.get(rec.owner_id or ""))
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
