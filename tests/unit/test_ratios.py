"""stats.ratios on synthetic data whose answer is known: a ratio of means stays put where a mean of
per-sequence ratios explodes, its interval and test are calibrated, an undefined ratio is never
judged, and the share of draws beaten is an exact binomial test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from interp_checks.stats import Comparison
from interp_checks.stats.ratios import (
    curve_areas,
    display_values,
    evaluate_ratio_of_means,
    evaluate_share_beaten,
    evaluate_with,
    ratio_of_means,
)


def pairs(rng: np.random.Generator, n: int, ratio: float, *, den_mean: float = 4.0, den_sd: float = 1.5, noise: float = 0.8) -> np.ndarray:
    den = rng.normal(den_mean, den_sd, n)
    return np.stack([ratio * den + rng.normal(0.0, noise, n), den], axis=1)


def test_the_ratio_of_means_stays_near_the_truth_where_per_sequence_ratios_explode():
    rng = np.random.default_rng(0)
    x = pairs(rng, 64, 0.8)
    x[:6, 1] = rng.normal(0.0, 0.02, 6)  # sequences the model gets no better than the empty circuit
    x[:6, 0] = rng.normal(0.0, 0.5, 6)
    per_sequence = np.mean(x[:, 0] / x[:, 1])
    evaluation = evaluate_ratio_of_means(x, Comparison(">=", 0.5), n_resamples=999)
    assert abs(per_sequence - 0.8) > 1.0  # the mean of ratios is useless here
    assert evaluation.estimate == pytest.approx(0.8, abs=0.1)
    assert evaluation.ci[0] < evaluation.estimate < evaluation.ci[1]


def test_the_interval_covers_and_the_test_holds_its_level_at_the_threshold():
    """At the true ratio = the threshold, the claim ">= t" is a true null: support must come at most
    about alpha of the time; the 90% interval must cover the truth about 90% of the time."""
    rng = np.random.default_rng(1)
    truth, reps, supported, covered = 0.7, 300, 0, 0
    for rep in range(reps):
        x = pairs(rng, 40, truth, den_sd=2.0, noise=1.5)
        evaluation = evaluate_ratio_of_means(x, Comparison(">=", truth), n_resamples=299, seed=rep)
        supported += evaluation.p_value < 0.05
        covered += evaluation.ci[0] <= truth <= evaluation.ci[1]
    assert supported / reps <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / reps)
    assert abs(covered / reps - 0.9) <= 2.5 * math.sqrt(0.09 / reps) + 0.02


def test_the_test_is_fiellers_t_test_of_numerator_minus_threshold_times_denominator():
    x = pairs(np.random.default_rng(2), 50, 0.9)
    evaluation = evaluate_ratio_of_means(x, Comparison(">=", 0.8), n_resamples=199)
    expected = stats.ttest_1samp(x[:, 0] - 0.8 * x[:, 1], 0.0, alternative="greater").pvalue
    assert evaluation.p_value == pytest.approx(expected)
    assert evaluation.estimate == pytest.approx(x[:, 0].mean() / x[:, 1].mean())


def test_a_denominator_that_is_not_reliably_positive_is_never_supported_nor_refuted():
    rng = np.random.default_rng(3)
    x = np.stack([rng.normal(0, 1, 64), rng.normal(0, 1, 64)], axis=1)  # a random-weights model: no gain to share
    for comparison in (Comparison(">=", 0.8), Comparison("<=", 0.8)):
        evaluation = evaluate_ratio_of_means(x, comparison, n_resamples=199)
        assert (evaluation.p_value, evaluation.p_value_refute) == (1.0, 1.0)
        assert "not reliably positive" in evaluation.note


def test_the_share_beaten_is_an_exact_binomial_test_with_ties_counted_against():
    draws = np.array([0.1] * 90 + [0.5] * 10)
    evaluation = evaluate_share_beaten(0.5, draws, Comparison(">=", 0.8))  # ties with 10 draws
    assert evaluation.estimate == 0.9
    assert evaluation.p_value == pytest.approx(stats.binomtest(90, 100, 0.8, alternative="greater").pvalue)
    assert "(1 + 10) / (100 + 1)" in evaluation.note  # the permutation p against "one more draw"
    worse = evaluate_share_beaten(0.05, draws, Comparison(">=", 0.8))
    assert worse.estimate == 0.0 and worse.p_value_refute < 1e-10


def test_curve_areas_of_a_straight_line_and_of_the_model_itself():
    cpr, cmd = curve_areas(np.linspace(0, 1, 5))
    assert (cpr, cmd) == (pytest.approx(0.5), pytest.approx(0.5))
    cpr, cmd = curve_areas(np.array([0.0, 1.0, 1.0, 1.0, 1.0]))
    assert (cpr, cmd) == (pytest.approx(0.875), pytest.approx(0.125))


def test_displayed_values_average_to_the_estimate():
    rng = np.random.default_rng(4)
    x = pairs(rng, 30, 0.6)
    assert display_values("ratio_of_means", x).mean() == pytest.approx(ratio_of_means(x[:, 0], x[:, 1]))
    den = x[:, 1]
    curve = np.stack([den, np.zeros(30), 0.5 * den + rng.normal(0, 0.2, 30), den], axis=1)
    cpr = evaluate_with("curve_area", curve, Comparison(">=", 0.1), n_resamples=199)
    assert display_values("curve_area", curve).mean() == pytest.approx(cpr.estimate)
    cmd = evaluate_with("curve_gap_area", curve, Comparison("<=", 0.9), n_resamples=199)
    assert display_values("curve_gap_area", curve).mean() == pytest.approx(cmd.estimate, abs=0.02)
