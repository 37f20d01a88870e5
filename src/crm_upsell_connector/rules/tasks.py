"""The follow-up task for a recommendation: subject, body, due date and priority from ``[tasks]``.

Templates use ``string.Template`` placeholders (``$product_name``, ``${reason}``), checked when
the config loads; they reach only the values listed in ``TASK_PLACEHOLDERS``, never attributes
or code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from crm_upsell_connector.labels import Labels
from crm_upsell_connector.models import TaskDraft
from crm_upsell_connector.rules.config import TASK_PLACEHOLDERS, RulesConfig, TasksConfig, Template, template
from crm_upsell_connector.rules.locale import NO_OFFER, labels_for
from crm_upsell_connector.rules.result import Recommendation, format_value

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


def task_priority(tasks: TasksConfig, score: float) -> Priority:
    """The priority of the first band (highest ``min_score`` first) the score reaches."""
    for band in sorted(tasks.priority, key=lambda b: -b.min_score):
        if score >= band.min_score:
            return band.priority
    return tasks.default_priority


def task_key(recommendation: Recommendation) -> str:
    """A stable key for the proposal (account, kind, product): the same proposal, the same key."""
    proposal = recommendation.proposal
    if proposal is None:
        raise ValueError(f"account {recommendation.account_id} has no proposal")
    text = f"{recommendation.account_id}|{proposal.kind}|{proposal.product_sku or ''}|{proposal.rule}"
    return "cuc-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _templates(tasks: TasksConfig) -> tuple[Template, Template]:
    cached = _TEMPLATES.get(id(tasks))
    if cached is None or cached[0] is not tasks:
        subject = template(tasks.subject, file="<config>", key="tasks.subject", known=TASK_PLACEHOLDERS)
        body = template(tasks.body, file="<config>", key="tasks.body", known=TASK_PLACEHOLDERS)
        cached = _TEMPLATES[id(tasks)] = (tasks, subject, body)
    return cached[1], cached[2]


_TEMPLATES: dict[int, tuple[TasksConfig, Template, Template]] = {}


def render_task(
    recommendation: Recommendation,
    rules: RulesConfig | TasksConfig,
    now: datetime,
    currency: str | None = None,
    *,
    owner_name: str | None = None,
) -> RenderedTask:
    """Subject, body, due date and priority of the task for a recommendation with a proposal.

    ``rules`` is the whole ``RulesConfig`` or just its ``tasks`` section (then English labels and
    no feature descriptions). ``currency`` is the org's home currency
    (``currency.resolve_home_currency``, which already applies ``[tasks] currency``); without it,
    ``[tasks] currency``; without either, amounts carry no code. The body is plain text in words:
    labels for the kind and the segment, facts as phrases with units (``customer for 3 years``),
    never a feature, rule or tag name unless the configured template asks for ``$rule`` or ``$tags``.
    """
    proposal = recommendation.proposal
    if proposal is None:
        raise ValueError(f"account {recommendation.account_id} has no proposal, so no task")
    if isinstance(rules, RulesConfig):
        tasks = rules.tasks
        subject, body = rules.compiled.subject, rules.compiled.body
        labels = labels_for(rules)
        schema: Mapping[str, Any] = rules.compiled.schema
    else:
        tasks = rules
        subject, body = _templates(tasks)
        labels = labels_for(None)
        schema = {}
    currency = (currency or tasks.currency or "").upper()
    values = {
        "account_id": recommendation.account_id,
        "account_name": recommendation.account_name,
        "owner_id": recommendation.owner_id or "",
        "owner_name": owner_name or recommendation.owner_id or "",
        "kind": proposal.kind,
        "kind_label": labels.kind(proposal.kind),
        "product_sku": proposal.product_sku or "",
        "product_name": proposal.product_name,
        "offer": proposal.offer or NO_OFFER.get(labels.language, NO_OFFER["en"]),
        "uplift": f"{currency} {proposal.uplift:,.0f}".strip(),
        "score": format_value(recommendation.score),
        "segment": labels.segment(recommendation.segment),
        "tags": ", ".join(recommendation.tags) or "-",
        "reason": recommendation.reason,
        "facts": "\n".join(
            f"- {line}" for line in fact_lines(recommendation.facts, labels, schema, currency)
        ),
        "rule": proposal.rule,
    }
    return RenderedTask(
        subject=subject.render(values).strip(),
        body=body.render(values).strip(),
        due=(now + timedelta(days=tasks.due_in_days)).date(),
        priority=task_priority(tasks, recommendation.score),
    )


# Facts shown elsewhere in the task (the segment, the uplift line) or only meaningful to engineers.
# The segment's own inputs and ids are not facts a rep reads: the segment label and the facts the
# utilization comes from (seats, usage) already say it in words.
_NOT_IN_BODY = frozenset(
    {"segment", "expected_uplift", "account_id", "owner_id", "account_name", "utilization"}
)
_SEAT_FACTS = ("seats_active", "seats_purchased", "seat_utilization", "seat_utilization_pct")


def fact_lines(
    facts: Mapping[str, Any], labels: Labels, schema: Mapping[str, Any], currency: str = ""
) -> list[str]:
    """The facts behind a proposal as phrases a rep reads, in the order the rule named them."""
    lines: list[str] = []
    seats = labels.seats(facts)
    skip = set(_NOT_IN_BODY)
    if seats is not None:
        lines.append(seats)
        skip.update(_SEAT_FACTS)
    elif "seat_utilization_pct" in facts:
        skip.add("seat_utilization")
    for name, value in facts.items():
        if name in skip:
            continue
        spec = schema.get(name)
        description = getattr(spec, "description", None) if spec is not None else None
        if description and description.startswith("computed:"):
            description = None
        line = labels.fact(name, value, currency=currency, description=description)
        if line and line not in lines:
            lines.append(line)
    return lines
