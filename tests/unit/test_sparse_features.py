"""The sparse-feature generator behind the toy model of superposition (``inputs.sparse_features``):
the share of active features, their values, unit norm, and the seed scheme the check relies on to
regenerate a model's training set."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from interp_checks.inputs.sparse_features import fresh_points, sparse_points, training_points


def test_features_are_active_at_one_minus_sparsity_and_points_have_unit_norm():
    points = sparse_points(4_000, 200, 0.95, np.random.default_rng(0))
    active = points > 0
    # 800,000 Bernoulli(0.05) draws: the share's exact binomial interval must hold 0.05
    interval = stats.binomtest(int(active.sum()), active.size, 0.05).proportion_ci(0.999)
    assert interval.low < 0.05 < interval.high
    norms = np.linalg.norm(points, axis=1)
    assert np.allclose(norms[active.any(axis=1)], 1.0, atol=1e-6)
    assert points.dtype == np.float32 and points.min() >= 0.0


def test_active_values_are_uniform_before_scaling():
    # scaling to unit norm hides the raw values, but not the ratio of two active ones: with both features
    # always active (sparsity 0) it must be distributed as U / V for independent uniforms
    points = sparse_points(20_000, 2, 0.0, np.random.default_rng(1))
    ratio = points[:, 0] / points[:, 1]
    u, v = np.random.default_rng(2).random((2, 200_000))
    assert stats.ks_2samp(ratio, u / v).pvalue > 1e-3


def test_a_point_with_no_active_feature_stays_zero():
    points = sparse_points(50, 3, 0.9, np.random.default_rng(3))
    empty = ~(points > 0).any(axis=1)
    assert empty.any() and np.all(points[empty] == 0)


def test_training_sets_are_regenerated_from_size_and_seed_and_differ_between_them():
    first = training_points(100, 0.9, 20, data_seed=4)
    assert np.array_equal(first, training_points(100, 0.9, 20, data_seed=4))
    assert not np.array_equal(first, training_points(100, 0.9, 20, data_seed=5))
    # a larger T draws a new set, not a longer stream of the same seed (whose first points would share
    # which features are active)
    assert not np.array_equal(first > 0, training_points(100, 0.9, 21, data_seed=4)[:20] > 0)
    assert not np.array_equal(first, fresh_points(100, 0.9, 20, seed=4))


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_an_impossible_sparsity_is_refused(sparsity):
    with pytest.raises(ValueError, match="sparsity must be in"):
        sparse_points(5, 5, sparsity, np.random.default_rng(0))
