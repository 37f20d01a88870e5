"""The funnel per rule, segment, owner or product, and the uplift of each rule against the holdout.

Funnel (treated proposals only: sent as a task, or held back by pacing)::

    proposed -> task created -> task done -> deal opened -> deal won (and revenue won)

Each step gives the number of proposals that reached it, its share of the proposals with a 95 %
Wilson interval, and its share of the step before (``proportion_confint``, statsmodels).

Uplift per rule: the share of proposals that led to a won deal among treated accounts minus the
same share among held-out accounts (intention to treat: a treated proposal the caps held back
counts as treated, since the holdout is drawn before the caps), with a 95 % Newcombe interval
(``confint_proportions_2indep``, statsmodels). With fewer than ``MIN_GROUP`` proposals in either
group the verdict says plainly that it is too small to tell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from crm_upsell_connector.outcomes.track import Outcome

GroupBy = Literal["rule", "segment", "owner", "product"]
STEPS = ("proposed", "task_created", "task_done", "deal_opened", "deal_won")
STEP_LABELS = {
    "proposed": "proposed",
    "task_created": "task created",
    "task_done": "task done",
    "deal_opened": "deal opened",
    "deal_won": "deal won",
}
MIN_GROUP = 30
ALPHA = 0.05


@dataclass(frozen=True)
class Step:
    name: str
    count: int
    share: float  # of the proposals
    low: float  # 95 % interval of ``share``
    high: float
    of_previous: float | None  # count / the previous step's count

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "count": self.count,
            "share_of_proposed": round(self.share, 4),
            "ci95": [round(self.low, 4), round(self.high, 4)],
            "of_previous_step": None if self.of_previous is None else round(self.of_previous, 4),
        }


@dataclass(frozen=True)
class FunnelRow:
    group: str
    steps: tuple[Step, ...]
    revenue_won: float
    not_sent: int

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "steps": [s.to_json() for s in self.steps],
            "revenue_won": round(self.revenue_won, 2),
            "not_sent": self.not_sent,
        }


@dataclass(frozen=True)
class UpliftRow:
    rule: str
    treated: int
    treated_won: int
    held_out: int
    held_out_won: int
    uplift: float | None  # treated rate - held-out rate
    low: float | None
    high: float | None
    revenue_per_treated: float
    revenue_per_held_out: float
    verdict: str

    def to_json(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "rule": self.rule,
            "treated": {"proposals": self.treated, "won": self.treated_won},
            "held_out": {"proposals": self.held_out, "won": self.held_out_won},
            "uplift": r(self.uplift),
            "ci95": None if self.low is None else [r(self.low), r(self.high)],
            "revenue_per_treated_proposal": round(self.revenue_per_treated, 2),
            "revenue_per_held_out_proposal": round(self.revenue_per_held_out, 2),
            "verdict": self.verdict,
        }


@dataclass
class OutcomeSummary:
    by: GroupBy
    attribution_days: int
    total: FunnelRow
    groups: list[FunnelRow] = field(default_factory=list)
    uplift: list[UpliftRow] = field(default_factory=list)
    held_out: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "attribution_days": self.attribution_days,
            "total": self.total.to_json(),
            "groups": [g.to_json() for g in self.groups],
            "held_out_proposals": self.held_out,
            "uplift": [u.to_json() for u in self.uplift],
        }


def _key(by: GroupBy) -> Callable[[Outcome], str]:
    if by == "rule":
        return lambda o: o.rule or "(no rule)"
    if by == "segment":
        return lambda o: o.segment or "(no segment)"
    if by == "owner":
        return lambda o: o.owner_id or "(no owner)"
    return lambda o: o.product_sku or "(no product)"


def _reached(o: Outcome) -> tuple[bool, ...]:
    return (
        True,
        o.task_created_at is not None,
        o.task_done_at is not None,
        o.deal_opened_at is not None,
        bool(o.deal_won),
    )


def funnel(group: str, outcomes: Sequence[Outcome]) -> FunnelRow:
    counts = [0] * len(STEPS)
    revenue = 0.0
    not_sent = 0
    for o in outcomes:
        for i, hit in enumerate(_reached(o)):
            counts[i] += hit
        if o.deal_won and o.revenue_home is not None:
            revenue += o.revenue_home
        not_sent += o.status == "not_sent"
    total = counts[0]
    steps = []
    for i, (name, count) in enumerate(zip(STEPS, counts, strict=True)):
        share, low, high = interval(count, total)
        previous = counts[i - 1] if i else None
        steps.append(Step(name, count, share, low, high, None if not previous else count / previous))
    return FunnelRow(group, tuple(steps), revenue, not_sent)


def interval(count: int, nobs: int) -> tuple[float, float, float]:
    """The share ``count / nobs`` and its 95 % Wilson interval (0, 0, 0 when ``nobs`` is 0)."""
    if nobs <= 0:
        return 0.0, 0.0, 0.0
    low, high = proportion_confint(count, nobs, alpha=ALPHA, method="wilson")
    return count / nobs, float(low), float(high)


def uplift(rule: str, treated: Sequence[Outcome], held_out: Sequence[Outcome]) -> UpliftRow:
    nt, nc = len(treated), len(held_out)
    kt = sum(1 for o in treated if o.deal_won)
    kc = sum(1 for o in held_out if o.deal_won)
    rev_t = sum(o.revenue_home or 0.0 for o in treated if o.deal_won)
    rev_c = sum(o.revenue_home or 0.0 for o in held_out if o.deal_won)
    diff = low = high = None
    if nt and nc:
        diff = kt / nt - kc / nc
        lo, hi = confint_proportions_2indep(kt, nt, kc, nc, method="newcomb", compare="diff", alpha=ALPHA)
        low, high = float(lo), float(hi)
    if nc == 0:
        verdict = "no held-out accounts for this rule (yet)"
    elif min(nt, nc) < MIN_GROUP:
        verdict = f"too small to tell ({nt} vs {nc}; {MIN_GROUP} in each group needed)"
    elif low is not None and high is not None and low > 0:
        verdict = "proposals win more deals than the holdout"
    elif low is not None and high is not None and high < 0:
        verdict = "proposals win fewer deals than the holdout"
    else:
        verdict = "no clear difference yet (the interval spans zero)"
    return UpliftRow(
        rule,
        nt,
        kt,
        nc,
        kc,
        diff,
        low,
        high,
        rev_t / nt if nt else 0.0,
        rev_c / nc if nc else 0.0,
        verdict,
    )


def summarise(
    outcomes: Iterable[Outcome], by: GroupBy = "rule", attribution_days: int = 90
) -> OutcomeSummary:
    """The funnel overall and per group, and the uplift per rule against the holdout."""
    rows = list(outcomes)
    treated = [o for o in rows if o.treated]
    held = [o for o in rows if not o.treated]
    key = _key(by)
    grouped: dict[str, list[Outcome]] = {}
    for o in treated:
        grouped.setdefault(key(o), []).append(o)
    by_rule_t: dict[str, list[Outcome]] = {}
    by_rule_c: dict[str, list[Outcome]] = {}
    for o in rows:
        (by_rule_t if o.treated else by_rule_c).setdefault(o.rule or "(no rule)", []).append(o)
    return OutcomeSummary(
        by=by,
        attribution_days=attribution_days,
        total=funnel("all", treated),
        groups=[funnel(name, grouped[name]) for name in sorted(grouped)],
        uplift=[
            uplift(rule, by_rule_t.get(rule, []), by_rule_c.get(rule, []))
            for rule in sorted(set(by_rule_t) | set(by_rule_c))
        ],
        held_out=len(held),
    )
