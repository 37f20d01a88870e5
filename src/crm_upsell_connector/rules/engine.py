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

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from crm_upsell_connector.rules.candidates import CandidatesMixin
from crm_upsell_connector.rules.config import KINDS, RulesConfig
from crm_upsell_connector.rules.drafts import (
    HOLDOUT,
    NO_OWNER,
    OWNER_CAP,
    PACING_GUARDRAILS,
    _Candidate,
    _Draft,
    _Interner,
)
from crm_upsell_connector.rules.guardrails import GuardrailsMixin
from crm_upsell_connector.rules.recommendations import RecommendationsMixin, _fact_list, _facts
from crm_upsell_connector.rules.result import FactorContribution, Recommendation, TraceEntry, format_fact
from crm_upsell_connector.rules.scoring import Normaliser, points
from crm_upsell_connector.rules.segments import place

__all__ = ["HOLDOUT", "NO_OWNER", "OWNER_CAP", "PACING_GUARDRAILS", "RuleEngine"]


class RuleEngine(CandidatesMixin, GuardrailsMixin, RecommendationsMixin):
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
