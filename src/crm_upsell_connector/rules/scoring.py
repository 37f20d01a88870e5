"""The loyalty score: each factor's value brought to 0..1, weighted, summed to 0-100.

Normalisations:

- ``percentile``: the mid-rank of the value among the accounts scored together (the customer
  base): ``(below + equal / 2) / n``, so ties share a rank and one account alone scores 0.5;
- ``minmax``: ``(value - min) / (max - min)`` with the value capped to ``[min, max]``; a bound
  left out is the lowest / highest value in the base; a base where they meet scores 0.5;
- ``bands``: the ``score`` of the highest band whose ``at_least`` the value reaches, 0 below all.

``invert`` turns "less is better" (days since the last activity) around. A factor whose value is
missing (null, or an expression error on a null) scores its ``missing`` share (default 0): missing
data never counts as good data, and the explanation shows it as missing, not as zero.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from crm_upsell_connector.rules.config import FactorConfig


class Normaliser:
    """One factor's normalisation, prepared once over the values of the whole base."""

    def __init__(self, factor: FactorConfig, population: Sequence[float | None]) -> None:
        self.factor = factor
        values = sorted(v for v in population if v is not None)
        self._sorted = values
        self.low = factor.min if factor.min is not None else (values[0] if values else 0.0)
        self.high = factor.max if factor.max is not None else (values[-1] if values else 1.0)
        self._bounds = [b.at_least for b in factor.bands]

    def __call__(self, value: float | None) -> float | None:
        if value is None:
            return None
        kind = self.factor.normalise
        if kind == "percentile":
            result = self._percentile(value)
        elif kind == "bands":
            at = bisect_right(self._bounds, value) - 1
            result = self.factor.bands[at].score if at >= 0 else 0.0
        else:
            result = self._minmax(value)
        return 1.0 - result if self.factor.invert else result

    def _percentile(self, value: float) -> float:
        values = self._sorted
        if not values:
            return 0.5
        below = bisect_left(values, value)
        equal = bisect_right(values, value) - below
        return (below + equal / 2.0) / len(values)

    def _minmax(self, value: float) -> float:
        if self.high <= self.low:
            return 0.5
        capped = min(max(value, self.low), self.high)
        return (capped - self.low) / (self.high - self.low)


def points(factor: FactorConfig, normalised: float | None, total_weight: float) -> float:
    """A factor's share of the 0-100 score."""
    share = factor.missing if normalised is None else normalised
    return factor.weight * share / total_weight * 100.0 if total_weight > 0 else 0.0
