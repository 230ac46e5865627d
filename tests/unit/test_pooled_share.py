"""stats.pooled.share_statistic: the share of an indicator among selected tokens, pooled over
documents, equals its direct computation on the observed tokens and on any document weights (a
document of weight w counts its tokens w times), and is undefined (NaN, inconclusive) with nothing selected."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interp_checks.stats import Comparison
from interp_checks.stats.pooled import evaluate_pooled, share_statistic


def tokens(seed: int = 0, n_documents: int = 25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    document = np.repeat(np.arange(n_documents), rng.integers(1, 30, n_documents))
    indicator = rng.random(document.size) < rng.beta(1, 6, n_documents)[document]
    among = rng.random(document.size) < 0.6
    return indicator, among, document


def test_the_observed_share_is_the_direct_one():
    indicator, among, document = tokens()
    stat = share_statistic(indicator, document, among=among, estimand="e")
    assert stat.observed() == pytest.approx((indicator & among).sum() / among.sum())
    assert share_statistic(indicator, document, estimand="e").observed() == pytest.approx(indicator.mean())


def test_a_weighted_document_counts_its_tokens_that_many_times():
    indicator, among, document = tokens(1)
    weights = np.random.default_rng(2).integers(0, 4, (5, document.max() + 1)).astype(float)
    stat = share_statistic(indicator, document, among=among, estimand="e")
    per_token = weights[:, document]
    direct = (per_token * (indicator & among)).sum(axis=1) / (per_token * among).sum(axis=1)
    np.testing.assert_allclose(stat.value(weights), direct)


def test_nothing_selected_is_undefined_and_inconclusive():
    indicator, _, document = tokens(3)
    stat = share_statistic(indicator, document, among=np.zeros_like(indicator), estimand="e")
    assert math.isnan(stat.observed()) and "no token is selected" in stat.note
    evaluation = evaluate_pooled(stat, Comparison("<=", 0.2), statistic="s", n_resamples=99)
    assert evaluation.p_value == evaluation.p_value_refute == 1.0


def test_a_rare_indicator_is_supported_below_a_threshold_above_it():
    indicator, among, document = tokens(4, n_documents=60)
    stat = share_statistic(indicator, document, among=among, estimand="e")
    assert stat.observed() < 0.2
    assert evaluate_pooled(stat, Comparison("<=", 0.3), statistic="s", n_resamples=999).p_value < 0.01


def test_shapes_and_types_are_checked():
    with pytest.raises(ValueError, match="indicator must be boolean"):
        share_statistic(np.array([0, 1]), np.array([0, 1]), estimand="e")
    with pytest.raises(ValueError, match="among must be boolean"):
        share_statistic(np.array([True, False]), np.array([0, 1]), among=np.array([True]), estimand="e")
