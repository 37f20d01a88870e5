"""Normalisations, factor points and the segment matrix."""

from __future__ import annotations

from typing import Any

import pytest

from crm_upsell_connector.rules.config import FactorConfig, SegmentsConfig
from crm_upsell_connector.rules.scoring import Normaliser, points
from crm_upsell_connector.rules.segments import place


def factor(**kw: Any) -> FactorConfig:
    return FactorConfig.model_validate({"name": "f", "expr": "x", "weight": 1, **kw})


def test_minmax_caps_both_ends() -> None:
    n = Normaliser(factor(normalise="minmax", min=0, max=10), [])
    assert n(-5.0) == 0.0
    assert n(5.0) == 0.5
    assert n(50.0) == 1.0


def test_minmax_bounds_default_to_the_base() -> None:
    n = Normaliser(factor(normalise="minmax"), [2.0, 4.0, None, 6.0])
    assert n(2.0) == 0.0
    assert n(4.0) == 0.5
    assert n(6.0) == 1.0


def test_minmax_degenerate_base_is_middle() -> None:
    assert Normaliser(factor(normalise="minmax"), [3.0, 3.0])(3.0) == 0.5


def test_invert() -> None:
    n = Normaliser(factor(normalise="minmax", min=0, max=180, invert=True), [])
    assert n(0.0) == 1.0
    assert n(180.0) == 0.0


def test_percentile_mid_rank_and_ties() -> None:
    n = Normaliser(factor(normalise="percentile"), [1.0, 2.0, 2.0, 3.0])
    assert n(1.0) == pytest.approx(0.125)
    assert n(2.0) == pytest.approx(0.5)
    assert n(3.0) == pytest.approx(0.875)
    assert n(10.0) == 1.0


def test_percentile_ignores_missing_values() -> None:
    n = Normaliser(factor(normalise="percentile"), [None, 5.0])
    assert n(5.0) == 0.5
    assert n(None) is None


def test_bands() -> None:
    f = factor(
        normalise="bands",
        bands=[{"at_least": 1, "score": 0.3}, {"at_least": 3, "score": 0.8}, {"at_least": 5, "score": 1.0}],
    )
    n = Normaliser(f, [])
    assert n(0.0) == 0.0
    assert n(1.0) == 0.3
    assert n(4.9) == 0.8
    assert n(100.0) == 1.0


def test_missing_scores_the_missing_share() -> None:
    assert points(factor(weight=2, missing=0.5), None, 4.0) == 25.0
    assert points(factor(weight=2), None, 4.0) == 0.0
    assert points(factor(weight=2), 1.0, 4.0) == 50.0


def test_segment_matrix() -> None:
    config = SegmentsConfig()
    assert place(config, 90.0, 0.95).segment == "champion"
    assert place(config, 70.0, 0.85).segment == "champion"  # a threshold belongs to the band above
    assert place(config, 69.9, 0.85).segment == "expand"
    assert place(config, 10.0, 0.1).segment == "at_risk"
    placement = place(config, 50.0, None)
    assert (placement.segment, placement.loyalty_band, placement.utilization_band) == (
        "unmeasured",
        "mid",
        None,
    )
