"""The follow-up task for a recommendation: subject, body, due date and priority from ``[tasks]``.

Templates use ``string.Template`` placeholders (``$product_name``, ``${reason}``), checked when
the config loads; they reach only the values listed in ``TASK_PLACEHOLDERS``, never attributes
or code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from crm_upsell_connector.models import TaskDraft
from crm_upsell_connector.rules.config import RulesConfig
from crm_upsell_connector.rules.result import KIND_LABELS, Recommendation, format_value

Priority = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class RenderedTask:
    subject: str
    body: str
    due: date
    priority: Priority

    def draft(self, key: str, account_id: str, owner_id: str | None) -> TaskDraft:
        """The write-side record for this task."""
        return TaskDraft(
            key=key,
            account_id=account_id,
            owner_id=owner_id,
            subject=self.subject,
            body=self.body,
            due=self.due,
            priority=self.priority,
        )


def task_priority(rules: RulesConfig, score: float) -> Priority:
    """The priority of the first band (highest ``min_score`` first) the score reaches."""
    for band in sorted(rules.tasks.priority, key=lambda b: -b.min_score):
        if score >= band.min_score:
            return band.priority
    return rules.tasks.default_priority


def task_key(recommendation: Recommendation) -> str:
    """A stable key for the proposal (account, kind, product): the same proposal, the same key."""
    proposal = recommendation.proposal
    if proposal is None:
        raise ValueError(f"account {recommendation.account_id} has no proposal")
    text = f"{recommendation.account_id}|{proposal.kind}|{proposal.product_sku or ''}|{proposal.rule}"
    return "cuc-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def render_task(recommendation: Recommendation, rules: RulesConfig, now: datetime) -> RenderedTask:
    """Subject, body, due date and priority of the task for a recommendation with a proposal."""
    proposal = recommendation.proposal
    if proposal is None:
        raise ValueError(f"account {recommendation.account_id} has no proposal, so no task")
    compiled = rules.compiled
    currency = rules.tasks.currency
    values = {
        "account_id": recommendation.account_id,
        "account_name": recommendation.account_name,
        "owner_id": recommendation.owner_id or "",
        "kind": proposal.kind,
        "kind_label": KIND_LABELS[proposal.kind],
        "product_sku": proposal.product_sku or "",
        "product_name": proposal.product_name,
        "offer": proposal.offer or "-",
        "uplift": f"{currency} {proposal.uplift:,.0f}",
        "score": format_value(recommendation.score),
        "segment": recommendation.segment,
        "tags": ", ".join(recommendation.tags) or "-",
        "reason": recommendation.reason,
        "facts": "\n".join(f"- {k}: {format_value(v)}" for k, v in recommendation.facts.items()),
        "rule": proposal.rule,
    }
    return RenderedTask(
        subject=compiled.subject.render(values).strip(),
        body=compiled.body.render(values).strip(),
        due=(now + timedelta(days=rules.tasks.due_in_days)).date(),
        priority=task_priority(rules, recommendation.score),
    )
