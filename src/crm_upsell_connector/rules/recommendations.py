"""The rule pass's output: each account's ``Recommendation``, with its reason in plain words and
the facts behind it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crm_upsell_connector.rules.drafts import HOLDOUT, PACING_GUARDRAILS, EngineState, _Draft
from crm_upsell_connector.rules.locale import labels_for
from crm_upsell_connector.rules.result import Proposal, Recommendation, format_fact


class RecommendationsMixin(EngineState):
    """``_recommendation``: a draft as the ``Recommendation`` callers see."""

    def _recommendation(self, d: _Draft) -> Recommendation:
        schema = self.compiled.schema
        proposal: Proposal | None = None
        candidate = d.candidate
        facts: dict[str, Any]
        if candidate is not None:
            rule = candidate.rule
            product = candidate.product
            product_name = product.name if product else "retention call"
            if d.blocked_by is None or d.blocked_by in PACING_GUARDRAILS or d.blocked_by == HOLDOUT:
                # Pacing guardrails hold back a new task, not the recommendation the CRM shows; a
                # held-out proposal is kept in the store (never shown) for the outcome report.
                proposal = Proposal(
                    rule.kind,
                    product.sku if product else None,
                    product_name,
                    candidate.uplift,
                    rule.config.name,
                    rule.config.offer,
                )
                reason = labels_for(self.rules).proposal(rule.kind, product_name, d.rule_text)
                if product is not None and product.pitch.strip():
                    reason += f" {product.pitch.strip()}"
                facts = dict(d.rule_facts)
            else:
                facts = dict(d.block_facts)
                reason = (
                    f"No proposal: {d.block_reason}"
                    + (f" ({_fact_list(facts, schema, self.currency)})" if facts else "")
                    + f". Would have proposed {product_name} ({d.rule_text})."
                )
                for key, value in d.rule_facts.items():
                    facts.setdefault(key, value)
        elif d.blocked_by is not None:
            facts = dict(d.block_facts)
            reason = f"No proposal: {d.block_reason}" + (
                f" ({_fact_list(facts, schema, self.currency)})." if facts else "."
            )
        else:
            facts = {}
            reason = "No proposal: no rule matched."
        facts["score"] = d.score
        facts["segment"] = d.segment
        if d.utilization is not None:
            facts["utilization"] = d.utilization
        if candidate is not None and candidate.product is not None:
            facts["quantity"] = candidate.quantity
            facts["expected_uplift"] = candidate.uplift
        return Recommendation(
            account_id=d.account_id,
            account_name=d.account_name,
            owner_id=d.owner_id,
            score=d.score,
            factors=d.factors,
            segment=d.segment,
            tags=d.tags,
            proposal=proposal,
            reason=reason,
            blocked_by=d.blocked_by,
            facts=facts,
            trace=d.trace,
        )


def _facts(context: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: context[name] for name in dict.fromkeys(names) if name in context}


def _fact_list(facts: Mapping[str, Any], schema: Mapping[str, Any], currency: str | None = None) -> str:
    parts = []
    for name, value in facts.items():
        spec = schema.get(name)
        what = spec.description if spec is not None else name.replace("_", " ")
        parts.append(f"{what}: {format_fact(name, value, currency)}")
    return "; ".join(parts)
