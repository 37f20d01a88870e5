"""The rule engine: loyalty score, segment matrix, upgrade / cross-sell / retention picks, guardrails.

Rules are data in ``config.toml`` (CEL expressions compiled at load), the same for every CRM::

    rules = load_rules(tomllib.load(f), "config.toml")
    recommendations = RuleEngine(rules).evaluate(compute_features(...), now)
"""

from __future__ import annotations

from crm_upsell_connector.rules.config import RulesConfig, compile_rules, load_rules
from crm_upsell_connector.rules.engine import RuleEngine
from crm_upsell_connector.rules.result import (
    FactorContribution,
    Proposal,
    Recommendation,
    TraceEntry,
    segment_counts,
    top_proposals,
)
from crm_upsell_connector.rules.tasks import RenderedTask, render_task, task_key

__all__ = [
    "FactorContribution",
    "Proposal",
    "Recommendation",
    "RenderedTask",
    "RuleEngine",
    "RulesConfig",
    "TraceEntry",
    "compile_rules",
    "load_rules",
    "render_task",
    "segment_counts",
    "task_key",
    "top_proposals",
]
