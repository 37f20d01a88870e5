"""The whole rule pass: features -> score -> segment -> tags -> proposal -> guardrails -> reason.

For every account, in account-id order:

1. derived features (``[features.derived]``) are added to the account's features;
2. each loyalty factor is evaluated and normalised over the whole base; the score is the weighted
   sum, 0-100;
3. the utilization expression and the score place the account in the segment matrix;
4. tag conditions are tested (they can read ``score``, ``segment``...);
5. every upgrade, cross-sell and retention rule is tested (they can also read ``tags``); a rule
   that matches is a candidate if it applies (an upgrade needs a higher tier in a family the
   account owns, a cross-sell a family it does not own, a retention product a lower tier or
   another family);
6. guardrails: the blocking conditions are tested; the kinds of those that fire are struck out
   (a complaint blocks upsells, not necessarily a retention offer). Of the remaining candidates,
   the lowest ``priority`` number wins, ties going to upgrades, then cross-sells, then retention,
   then the order in the file. The cooldown after the last proposal, the open upsell task limit
   and the open deal check then apply to it. The first guardrail that blocks is ``blocked_by``;
   with no candidate at all, the first condition that fires is still reported there;
7. the holdout (``[experiment] holdout_share``): of the accounts a proposal would now go to, those
   the caller's draw puts in the control group are blocked by ``holdout`` (the proposal is kept for
   the outcome report, but no task and no proposal field is written); they do not count against
   any cap, so the caps cannot bias the groups;
8. the per-owner weekly cap, across all accounts, in a fixed order: highest ``uplift x score``
   first, ties by account id; proposals beyond the cap are blocked by ``owner_weekly_cap``.

Expected uplift (yearly revenue change)::

    uplift = quantity x (annual(target) - annual(current))
    annual(p) = p.unit_price x 12 if p.period == "month" else p.unit_price   ("year", "once")

``current`` is the product owned in the target's family (none, so 0, for a cross-sell);
``quantity`` is, for a ``per_seat`` target, the rule's ``quantity`` expression if it has one and
gives a positive number, else the quantity owned in that family, else 1; for other products 1.
A downsell therefore has a negative uplift (the revenue given up to keep the customer), and a
retention rule without a product has 0.

Same inputs, same output: nothing here depends on dict order, time or randomness.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm_upsell_connector.rules.config import KINDS, CompiledRule, ProductConfig, RulesConfig
from crm_upsell_connector.rules.locale import labels_for
from crm_upsell_connector.rules.result import (
    FactorContribution,
    Proposal,
    Recommendation,
    TraceEntry,
    format_fact,
    format_value,
)
from crm_upsell_connector.rules.scoring import Normaliser, points
from crm_upsell_connector.rules.segments import place

OWNER_CAP = "owner_weekly_cap"
HOLDOUT = "holdout"
# Guardrails about pace, not suitability: the proposal stands (and shows on the account), but no
# new task is created while one is open, during the cooldown, or past the owner's weekly cap.
PACING_GUARDRAILS = frozenset({"cooldown", "open_upsell_task", OWNER_CAP})
NO_OWNER = ""


@dataclass(slots=True)
class _Candidate:
    rule: CompiledRule
    product: ProductConfig | None
    uplift: float
    quantity: float

    @property
    def family(self) -> str | None:
        return self.product.family if self.product is not None else None


@dataclass(slots=True)
class _Draft:
    """One account after the per-account pass, without its features (they are freed by then)."""

    account_id: str
    account_name: str
    owner_id: str | None
    score: float
    factors: tuple[FactorContribution, ...]
    segment: str
    tags: tuple[str, ...]
    candidate: _Candidate | None
    rule_facts: dict[str, Any]
    rule_text: str
    blocked_by: str | None
    block_reason: str | None
    block_facts: dict[str, Any]
    trace: tuple[TraceEntry, ...]
    utilization: float | None = None


class _Interner:
    """Shares equal trace entries, traces and tag tuples between accounts (most are identical)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], TraceEntry] = {}
        self._tuples: dict[tuple[int, ...], tuple[Any, ...]] = {}

    def entry(
        self, kind: Any, name: str, value: bool | None, error: str | None = None, detail: str | None = None
    ) -> TraceEntry:
        key = (kind, name, value, error, detail)
        found = self._entries.get(key)
        if found is None:
            found = self._entries[key] = TraceEntry(kind, name, value, error, detail)
        return found

    def tuple(self, items: Sequence[Any]) -> tuple[Any, ...]:
        key = tuple(map(id, items))
        found = self._tuples.get(key)
        if found is None:
            found = self._tuples[key] = tuple(items)
        return found


class RuleEngine:
    """Evaluates a compiled ``RulesConfig`` over the features of a customer base."""

    def __init__(self, rules: RulesConfig, currency: str | None = None) -> None:
        """``currency``: the org's home currency code, shown with amounts in reasons."""
        self.rules = rules
        self.currency = currency
        self.compiled = rules.compiled
        self._names = tuple(self.compiled.schema)

    def evaluate(
        self,
        features: Iterable[Mapping[str, Any]],
        now: datetime,
        *,
        owner_open_tasks_this_week: Mapping[str, int] | None = None,
        held_out: Callable[[str], bool] | None = None,
    ) -> list[Recommendation]:
        """One recommendation per account, sorted by account id.

        ``features`` are ``compute_features`` rows (a list or the iterator itself); the whole base
        must be passed at once, since percentile factors rank an account against the others.
        ``now`` is the as-of time the features were computed for. ``owner_open_tasks_this_week``
        counts the upsell tasks each owner already got this week (key ``""``: no owner).
        ``held_out(account_id)`` says whether an account is in the holdout's control group.
        """
        del now  # features are already relative to it; kept so callers state the as-of time
        compiled = self.compiled
        names = self._names
        # Pass 1, streaming: derived features and factor values; each account is kept as a tuple.
        packed: list[tuple[str, tuple[Any, ...]]] = []
        factor_values: list[list[Any]] = [[] for _ in compiled.factors]
        factor_errors: list[dict[int, str]] = [{} for _ in compiled.factors]
        for row in features:
            context = dict(row)
            for name, expression in compiled.derived:
                context[name] = expression.evaluate(context).value
            for values, errors, (_, expression) in zip(
                factor_values, factor_errors, compiled.factors, strict=True
            ):
                outcome = expression.evaluate(context)
                if outcome.error is not None:
                    errors[len(values)] = outcome.error
                values.append(outcome.value)
            packed.append((str(context["account_id"]), tuple([context.get(n) for n in names])))
        normalisers = [
            Normaliser(factor, values)
            for (factor, _), values in zip(compiled.factors, factor_values, strict=True)
        ]
        total_weight = sum(factor.weight for factor, _ in compiled.factors)

        # Pass 2, in account id order: score, segment, tags, rules, guardrails.
        interner = _Interner()
        order = sorted(range(len(packed)), key=lambda i: packed[i][0])
        drafts: list[_Draft] = []
        for i in order:
            context = dict(zip(names, packed[i][1], strict=True))
            packed[i] = ("", ())  # free the features as we go
            contributions = []
            for (factor, _), values, errors, normaliser in zip(
                compiled.factors, factor_values, factor_errors, normalisers, strict=True
            ):
                value = values[i]
                normalised = normaliser(value)
                contributions.append(
                    FactorContribution(
                        factor.name,
                        value,
                        None if normalised is None else round(normalised, 4),
                        factor.weight,
                        round(points(factor, normalised, total_weight), 2),
                        errors.get(i),
                    )
                )
            score = round(sum(c.points for c in contributions), 1)
            drafts.append(self._account(context, score, tuple(contributions), interner))

        if held_out is not None:
            self._apply_holdout(drafts, held_out, interner)
        self._apply_owner_cap(drafts, owner_open_tasks_this_week or {}, interner)
        return [self._recommendation(d) for d in drafts]

    # ---- one account ---------------------------------------------------------------------------

    def _account(
        self,
        context: dict[str, Any],
        score: float,
        factors: tuple[FactorContribution, ...],
        interner: _Interner,
    ) -> _Draft:
        compiled = self.compiled
        utilization = compiled.utilization.evaluate(context).value if compiled.utilization else None
        placement = place(self.rules.segments, score, utilization)
        context.update(
            score=score,
            utilization=utilization,
            segment=placement.segment,
            loyalty_band=placement.loyalty_band,
            utilization_band=placement.utilization_band,
        )
        trace: list[TraceEntry] = []
        tags: list[str] = []
        for name, expression in compiled.tags:
            value, error = expression.test(context)
            trace.append(interner.entry("tag", name, value, error))
            if value:
                tags.append(name)
        context["tags"] = tags

        candidates: list[tuple[tuple[int, int, int], _Candidate]] = []
        for rule in compiled.rules:
            value, error = rule.when.test(context)
            detail = None
            if value:
                candidate, why_not = self._candidate(rule, context)
                if candidate is None:
                    detail = f"not applicable: {why_not}"
                else:
                    product = candidate.product
                    detail = f"candidate: {product.sku if product else 'retention call'}"
                    candidates.append(((rule.config.priority, KINDS.index(rule.kind), rule.index), candidate))
            trace.append(interner.entry("rule", rule.config.name, value, error, detail))
        candidates.sort(key=lambda kc: kc[0])

        best, blocked_by, block_reason, block_names = self._guardrails(
            context, [c for _, c in candidates], trace, interner
        )
        rule_facts: dict[str, Any] = {}
        rule_text = ""
        if best is not None:
            rule = best.rule
            fact_names = [
                *(rule.reason.names if rule.reason else ()),
                *rule.when.names,
                *(rule.quantity.names if rule.quantity else ()),
            ]
            rule_facts = _facts(context, fact_names)
            if rule.reason is not None:
                values = {n: format_fact(n, context.get(n), self.currency) for n in rule.reason.names}
                rule_text = rule.reason.render(values).strip().rstrip(".")
            else:
                rule_text = _fact_list(rule_facts, compiled.schema, self.currency) or rule.config.name
        return _Draft(
            account_id=str(context["account_id"]),
            account_name=str(context.get("account_name") or ""),
            owner_id=context.get("owner_id"),
            score=score,
            factors=factors,
            segment=placement.segment,
            tags=interner.tuple(tags),
            candidate=best,
            rule_facts=rule_facts,
            rule_text=rule_text,
            blocked_by=blocked_by,
            block_reason=block_reason,
            block_facts=_facts(context, block_names),
            trace=tuple(trace),
            utilization=utilization if isinstance(utilization, int | float) else None,
        )

    def _candidate(self, rule: CompiledRule, context: Mapping[str, Any]) -> tuple[_Candidate | None, str]:
        compiled = self.compiled
        owned_tiers: Mapping[str, float] = context.get("owned_tiers") or {}
        config = rule.config
        sku = getattr(config, "product", None)
        product = compiled.products[sku] if sku else None
        if rule.kind == "upgrade":
            family = product.family if product else getattr(config, "family", None)
            assert family is not None
            owned = owned_tiers.get(family)
            if owned is None:
                return None, f"does not own a {family} product"
            if product is None:
                product = next((p for p in compiled.families[family] if p.tier > owned), None)
                if product is None:
                    return None, f"already on the top {family} tier"
            elif product.tier <= owned:
                return None, f"already owns {family} tier {format_value(owned)}"
        elif rule.kind == "cross_sell":
            assert product is not None
            if product.family in owned_tiers:
                return None, f"already owns a {product.family} product"
        elif product is not None:
            owned = owned_tiers.get(product.family)
            if owned is not None and product.tier >= owned:
                return None, f"{product.sku} is not below the {product.family} tier owned"
        if product is None:
            return _Candidate(rule, None, 0.0, 0.0), ""
        quantity = self._quantity(rule, product, context)
        current = self._owned_product(product.family, context)
        current_annual = current.unit_price * current.periods_per_year if current else 0.0
        uplift = quantity * (product.unit_price * product.periods_per_year - current_annual)
        return _Candidate(rule, product, round(uplift, 2), quantity), ""

    def _quantity(self, rule: CompiledRule, product: ProductConfig, context: Mapping[str, Any]) -> float:
        if not product.per_seat:
            return 1.0
        if rule.quantity is not None:
            value = rule.quantity.evaluate(context).value
            if isinstance(value, float) and value > 0:
                return value
        owned_quantity: Mapping[str, float] = context.get("owned_quantity") or {}
        owned = owned_quantity.get(product.family)
        return owned if owned is not None and owned > 0 else 1.0

    def _owned_product(self, family: str, context: Mapping[str, Any]) -> ProductConfig | None:
        owned_products: Mapping[str, str] = context.get("owned_products") or {}
        sku = owned_products.get(family)
        if sku is not None and sku in self.compiled.products:
            return self.compiled.products[sku]
        tier = (context.get("owned_tiers") or {}).get(family)
        members = self.compiled.families.get(family, [])
        return next((p for p in members if p.tier == tier), None)

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

    # ---- output --------------------------------------------------------------------------------

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
