"""stats.evaluate_ratio: a ratio of means over sequences (normalised patching effects, faithfulness),
on synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from interp_checks.stats import Comparison, evaluate_ratio, ratio_shares


def pairs(n: int, ratio: float, seed: int, gap: float = 5.0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    den = gap + rng.normal(0, noise, n)
    return ratio * den + rng.normal(0, noise, n), den


def test_the_estimate_is_the_ratio_of_means_not_the_mean_of_ratios():
    num, den = np.array([1.0, 1.0, 4.0]), np.array([0.01, 1.0, 3.0])  # per-sequence ratios 100, 1, 1.33
    ev = evaluate_ratio(num, den, Comparison(">=", 0.5), n_resamples=999)
    assert ev.estimate == pytest.approx(6.0 / 4.01)
    assert "ratio of means" in ev.estimand


def test_a_true_share_is_supported_and_a_false_one_refuted():
    num, den = pairs(64, 0.9, seed=1)
    supported = evaluate_ratio(num, den, Comparison(">=", 0.8), n_resamples=1999)
    refuted = evaluate_ratio(num, den, Comparison(">=", 0.99), n_resamples=1999)
    assert supported.p_value < 1e-3 and supported.ci[0] > 0.8
    assert refuted.p_value_refute < 1e-3 and refuted.ci[1] < 0.99
    assert "Fieller" in supported.test and "BCa" in supported.ci_method


def test_a_downward_gap_gives_the_same_share():
    num, den = pairs(40, 0.7, seed=2)
    up = evaluate_ratio(num, den, Comparison(">=", 0.5), n_resamples=999)
    down = evaluate_ratio(-num, -den, Comparison(">=", 0.5), n_resamples=999)
    assert down.estimate == pytest.approx(up.estimate) and down.p_value == pytest.approx(up.p_value)


def test_no_gap_means_no_verdict_either_way():
    rng = np.random.default_rng(3)
    ev = evaluate_ratio(rng.normal(0, 1, 64), rng.normal(0, 1, 64), Comparison(">=", 0.5), n_resamples=999)
    assert ev.p_value == 1.0 and ev.p_value_refute == 1.0
    assert "not significantly different from 0" in ev.note


def test_the_linearised_test_is_calibrated_at_the_threshold():
    """At R exactly equal to the threshold, the claim's p-value is uniform: ~alpha rejections."""
    rejections = 0
    for seed in range(400):
        num, den = pairs(30, 0.5, seed=100 + seed, noise=2.0)
        rejections += evaluate_ratio(num, den, Comparison(">=", 0.5), n_resamples=9).p_value < 0.05
    assert 0.02 <= rejections / 400 <= 0.085


def test_shares_average_to_the_estimate():
    num, den = pairs(20, 0.6, seed=4)
    assert np.mean(ratio_shares(num, den)) == pytest.approx(np.mean(num) / np.mean(den))


def test_a_between_claim_uses_both_bounds():
    num, den = pairs(64, 0.5, seed=5, noise=0.5)
    inside = evaluate_ratio(num, den, Comparison("between", 0.4, 0.6), n_resamples=999)
    outside = evaluate_ratio(num, den, Comparison("between", 0.6, 0.9), n_resamples=999)
    assert inside.p_value < 0.01 and outside.p_value_refute < 0.01


def test_an_exact_share_on_every_sequence_collapses_the_interval_instead_of_losing_it():
    """A component that carries the whole gap on every sequence (a hand-built circuit): BCa's
    jackknife has no spread, the percentile interval is the point, and the verdict is still reached."""
    den = np.random.default_rng(6).uniform(2, 8, 32)
    ev = evaluate_ratio(den.copy(), den, Comparison(">=", 0.8), n_resamples=999)
    assert ev.ci == pytest.approx((1.0, 1.0)) and ev.p_value < 1e-6
    assert "percentile" in ev.ci_method
