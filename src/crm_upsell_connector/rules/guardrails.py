"""Steps 6 to 8 of the rule pass: the blocking conditions and built-in guardrails (cooldown, open
upsell task, open deal), the holdout, and the per-owner weekly cap."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crm_upsell_connector.rules.drafts import (
    HOLDOUT,
    NO_OWNER,
    OWNER_CAP,
    EngineState,
    _Candidate,
    _Draft,
    _Interner,
)
from crm_upsell_connector.rules.result import TraceEntry, format_value


class GuardrailsMixin(EngineState):
    """``_guardrails`` (per account), ``_apply_holdout`` and ``_apply_owner_cap`` (across accounts)."""

    def _guardrails(
        self,
        context: Mapping[str, Any],
        candidates: list[_Candidate],
        trace: list[TraceEntry],
        interner: _Interner,
    ) -> tuple[_Candidate | None, str | None, str | None, tuple[str, ...]]:
        """Trace every guardrail; return the candidate and what blocks it (name, reason, fact names).

        A blocking condition limited to some kinds removes those kinds from the choice (a
        complaint blocks the upgrade, not the retention offer); the built-in guardrails then
        apply to the best remaining candidate.
        """
        guards = self.rules.guardrails
        conditions: list[tuple[str, str, tuple[str, ...], frozenset[str]]] = []
        for guard, expression in self.compiled.guardrails:
            value, error = expression.test(context)
            trace.append(interner.entry("guardrail", guard.name, value, error))
            if value:
                reason = guard.reason or guard.name.replace("_", " ")
                conditions.append((guard.name, reason, expression.names, frozenset(guard.kinds)))
        blocked_kinds = {kind for *_, kinds in conditions for kind in kinds}
        allowed = [c for c in candidates if c.rule.kind not in blocked_kinds]
        candidate = allowed[0] if allowed else (candidates[0] if candidates else None)
        kind = candidate.rule.kind if candidate else None
        fired: list[tuple[str, str, tuple[str, ...], bool]] = [
            (name, reason, names, kind is None or kind in kinds) for name, reason, names, kinds in conditions
        ]

        last = context.get("days_since_last_proposal")
        cooling = last is not None and last < guards.cooldown_days
        since = "no proposal yet" if last is None else f"last proposal {int(last)} days ago"
        detail = f"{since}, cooldown {format_value(guards.cooldown_days)} days"
        trace.append(interner.entry("guardrail", "cooldown", cooling, None, detail))
        if cooling:
            fired.append(
                (
                    "cooldown",
                    f"proposed {int(last or 0)} days ago (cooldown {format_value(guards.cooldown_days)} days)",
                    ("days_since_last_proposal",),
                    True,
                )
            )
        open_tasks = context.get("open_upsell_tasks") or 0.0
        busy = open_tasks >= guards.max_open_upsell_tasks
        detail = f"{format_value(open_tasks)} open, at most {guards.max_open_upsell_tasks}"
        trace.append(interner.entry("guardrail", "open_upsell_task", busy, None, detail))
        if busy:
            fired.append(("open_upsell_task", "an upsell task is already open", ("open_upsell_tasks",), True))

        covered: bool | None = None
        detail = "no candidate" if candidate is None else ""
        if guards.open_deal_blocks == "off":
            detail = "off"
        elif candidate is not None:
            families = context.get("open_deal_families") or []
            if guards.open_deal_blocks == "account":
                covered = bool(context.get("open_deals"))
                detail = f"{format_value(context.get('open_deals'))} open deals"
            else:
                covered = candidate.family is not None and candidate.family in families
                detail = f"open deal families: {format_value(families)}"
        trace.append(interner.entry("guardrail", "open_deal", covered, None, detail))
        if covered:
            fired.append(
                (
                    "open_deal",
                    f"an open deal already covers {(candidate.family if candidate else None) or 'the account'}",
                    ("open_deal_skus", "open_deal_families"),
                    True,
                )
            )

        for name, reason, names, applies in fired:
            if applies:
                return candidate, name, reason, names
        return candidate, None, None, ()

    def _apply_holdout(
        self, drafts: list[_Draft], held_out: Callable[[str], bool], interner: _Interner
    ) -> None:
        """Accounts a proposal would go to now (no guardrail holds it, so none with an open
        proposal task) that the draw puts in the control group."""
        entry = interner.entry("guardrail", HOLDOUT, True, None, "in the control group of the holdout")
        for d in drafts:
            if d.candidate is not None and d.blocked_by is None and held_out(d.account_id):
                d.blocked_by = HOLDOUT
                d.block_reason = "held out as the control group that measures the uplift of proposals"
                d.block_facts = {}
                d.trace = (*d.trace, entry)

    def _apply_owner_cap(self, drafts: list[_Draft], already: Mapping[str, int], interner: _Interner) -> None:
        cap = self.rules.guardrails.max_new_tasks_per_owner_per_week
        live = [d for d in drafts if d.candidate is not None and d.blocked_by is None]
        live.sort(key=lambda d: (-(d.candidate.uplift if d.candidate else 0.0) * d.score, d.account_id))
        used = dict(already)
        for d in live:
            owner = d.owner_id or NO_OWNER
            count = used.get(owner, 0)
            over = cap is not None and count >= cap
            detail = f"{count} new tasks for this owner this week, cap {cap if cap is not None else 'none'}"
            d.trace = (*d.trace, interner.entry("guardrail", OWNER_CAP, over, None, detail))
            if over:
                d.blocked_by = OWNER_CAP
                d.block_reason = f"the owner already has {count} new upsell tasks this week (cap {cap})"
                d.block_facts = {}
            else:
                used[owner] = count + 1
        no_proposal = interner.entry("guardrail", OWNER_CAP, None, None, "no proposal to count")
        for d in drafts:
            if len(d.trace) == 0 or d.trace[-1].name != OWNER_CAP:
                d.trace = (*d.trace, no_proposal)
            d.trace = interner.tuple(d.trace)
