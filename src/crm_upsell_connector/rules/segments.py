"""The loyalty x utilization matrix: which band of each axis an account falls in, and its cell.

A value at or above a threshold belongs to the band above it. An account whose utilization is
missing has no column; it gets the ``missing_utilization`` segment instead of a guess.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from crm_upsell_connector.rules.config import SegmentsConfig


@dataclass(frozen=True)
class Placement:
    segment: str
    loyalty_band: str
    utilization_band: str | None


def place(config: SegmentsConfig, score: float, utilization: float | None) -> Placement:
    """The cell of the matrix for a score (0-100) and a utilization (or ``None``)."""
    row = bisect_right(config.loyalty_thresholds, score)
    loyalty_band = config.loyalty_bands[row]
    if utilization is None:
        return Placement(config.missing_utilization, loyalty_band, None)
    column = bisect_right(config.utilization_thresholds, utilization)
    return Placement(config.cells[row][column], loyalty_band, config.utilization_bands[column])
