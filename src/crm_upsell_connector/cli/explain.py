"""``crm-upsell explain``: everything behind one account's recommendation."""

from __future__ import annotations

import json
from collections.abc import Mapping

from rich.table import Table

from crm_upsell_connector.cli.output import console
from crm_upsell_connector.features import FEATURE_SCHEMA
from crm_upsell_connector.rules.result import Recommendation


def _fmt(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:.2f}"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)


def render_explanation(rec: Recommendation, sources: Mapping[str, str] | None = None) -> None:
    """Print everything behind ``rec``; ``sources`` names where each fact's value came from."""
    console.print(f"Account {rec.account_name} ({rec.account_id}), owner {rec.owner_id or '(none)'}")
    console.print(
        f"Loyalty score: {rec.score:.1f} / 100   segment: {rec.segment}   tags: {', '.join(rec.tags) or '-'}"
    )
    factors = Table(title="Score factors", show_edge=False)
    for col in ("factor", "value", "normalised", "weight", "points"):
        factors.add_column(col, justify="left" if col == "factor" else "right")
    for f in rec.factors:
        factors.add_row(f.name, _fmt(f.value), _fmt(f.normalised), _fmt(f.weight), _fmt(f.points))
    console.print(factors)
    trace = Table(title="Rules and guardrails", show_edge=False)
    for col in ("kind", "name", "value", "note"):
        trace.add_column(col)
    for entry in rec.trace:
        trace.add_row(entry.kind, entry.name, _fmt(entry.value), entry.error or "")
    console.print(trace)
    if rec.proposal is not None and rec.blocked_by is None:
        p = rec.proposal
        console.print(
            f"Proposal: {p.product_name} ({p.product_sku}), {p.kind}, uplift {p.uplift:,.0f}/yr, rule {p.rule}"
        )
    elif rec.blocked_by == "holdout" and rec.proposal is not None:
        p = rec.proposal
        console.print(
            f"Held out: in the control group of the holdout ([experiment] holdout_share), so no task and "
            f"no proposal fields; it would be {p.product_name} ({p.product_sku}) by rule {p.rule}"
        )
    elif rec.blocked_by:
        console.print(f"No proposal: blocked by {rec.blocked_by}")
    else:
        console.print("No proposal: no rule matched")
    console.print(f"Reason: {rec.reason}")
    facts = Table(title="Facts", show_edge=False)
    facts.add_column("feature")
    facts.add_column("value")
    facts.add_column("how it is derived")
    if sources is not None:
        facts.add_column("source")
    for key in sorted(rec.facts):
        spec = FEATURE_SCHEMA.get(key)
        where = [sources.get(key, "CRM, synced into the store")] if sources is not None else []
        facts.add_row(key, _fmt(rec.facts[key]), spec.description if spec else "", *where)
    console.print(facts)
