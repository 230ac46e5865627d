"""stats.ratios and the estimator registry on synthetic data whose answer is known: a ratio of means
stays put where a mean of per-sequence ratios explodes, its interval and Fieller test are
calibrated, a gap running downwards gives the same share, a gap not reliably away from 0 is never
judged (by any estimator built on the ratio), and the share of draws beaten is an exact binomial
test. One implementation serves patching's ``normalized`` and faithfulness's f."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from interp_checks.stats import Comparison, ESTIMATORS, ratio_shares
from interp_checks.stats.estimators import display_values, evaluate_with
from interp_checks.stats.ratios import curve_areas, evaluate_ratio_of_means, evaluate_share_beaten, ratio_of_means


def pairs(rng: np.random.Generator, n: int, ratio: float, *, den_mean: float = 4.0, den_sd: float = 1.5, noise: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """(numerators, denominators), one pair per sequence, with mean(num) / mean(den) = ``ratio``."""
    den = rng.normal(den_mean, den_sd, n)
    return ratio * den + rng.normal(0.0, noise, n), den


def test_the_estimate_is_the_ratio_of_means_not_the_mean_of_ratios():
    num, den = np.array([1.0, 1.0, 4.0]), np.array([0.01, 1.0, 3.0])  # per-sequence ratios 100, 1, 1.33
    ev = evaluate_ratio_of_means(num, den, Comparison(">=", 0.5), n_resamples=999)
    assert ev.estimate == pytest.approx(6.0 / 4.01)
    assert "ratio of means" in ev.estimand


def test_the_ratio_of_means_stays_near_the_truth_where_per_sequence_ratios_explode():
    rng = np.random.default_rng(0)
    num, den = pairs(rng, 64, 0.8)
    den[:6] = rng.normal(0.0, 0.02, 6)  # sequences the model gets no better than the empty circuit
    num[:6] = rng.normal(0.0, 0.5, 6)
    per_sequence = np.mean(num / den)
    evaluation = evaluate_ratio_of_means(num, den, Comparison(">=", 0.5), n_resamples=999)
    assert abs(per_sequence - 0.8) > 1.0  # the mean of ratios is useless here
    assert evaluation.estimate == pytest.approx(0.8, abs=0.1)
    assert evaluation.ci[0] < evaluation.estimate < evaluation.ci[1]


def test_a_true_share_is_supported_and_a_false_one_refuted():
    num, den = pairs(np.random.default_rng(1), 64, 0.9, den_mean=5.0, den_sd=1.0, noise=1.0)
    supported = evaluate_ratio_of_means(num, den, Comparison(">=", 0.8), n_resamples=1999)
    refuted = evaluate_ratio_of_means(num, den, Comparison(">=", 0.99), n_resamples=1999)
    assert supported.p_value < 1e-3 and supported.ci[0] > 0.8
    assert refuted.p_value_refute < 1e-3 and refuted.ci[1] < 0.99
    assert "Fieller" in supported.test and "BCa" in supported.ci_method
    assert supported.effect_size == pytest.approx(supported.estimate)  # the ratio is its own (normalised) effect size


def test_the_test_is_fiellers_t_test_of_numerator_minus_threshold_times_denominator():
    num, den = pairs(np.random.default_rng(2), 50, 0.9)
    evaluation = evaluate_ratio_of_means(num, den, Comparison(">=", 0.8), n_resamples=199)
    expected = stats.ttest_1samp(num - 0.8 * den, 0.0, alternative="greater").pvalue
    assert evaluation.p_value == pytest.approx(expected)
    assert evaluation.estimate == pytest.approx(num.mean() / den.mean())


def test_a_downward_gap_gives_the_same_share_and_the_same_verdict():
    """Noising lowers the metric (or the metric is a loss): numerator and denominator both negative.
    R is the same number, so the verdict must be too, not 'undefined'."""
    num, den = pairs(np.random.default_rng(3), 40, 0.7)
    up = evaluate_ratio_of_means(num, den, Comparison(">=", 0.5), n_resamples=999)
    down = evaluate_ratio_of_means(-num, -den, Comparison(">=", 0.5), n_resamples=999)
    assert up.p_value < 1e-3
    assert down.estimate == pytest.approx(up.estimate) and down.p_value == pytest.approx(up.p_value)
    assert down.ci == pytest.approx(up.ci)


@pytest.mark.parametrize("comparison", [Comparison(">=", 0.5), Comparison("<=", 0.5)])
def test_no_gap_means_no_verdict_either_way(comparison):
    rng = np.random.default_rng(4)  # a random-weights model: no gap to share
    ev = evaluate_ratio_of_means(rng.normal(0, 1, 64), rng.normal(0, 1, 64), comparison, n_resamples=999)
    assert (ev.p_value, ev.p_value_refute) == (1.0, 1.0)
    assert "not reliably different from 0" in ev.note


def test_the_gap_must_be_away_from_0_two_sided_because_its_side_is_read_from_the_data():
    """A gap whose one-sided p is below alpha but whose two-sided p is not: orienting by the sign of
    the mean and then testing one side would double the error rate, so no verdict."""
    rng = np.random.default_rng(5)
    den = rng.normal(0, 1, 50)
    den = den - den.mean() + 1.8 * den.std(ddof=1) / math.sqrt(50)  # t = 1.8: one-sided p ~0.04, two-sided ~0.08
    assert 0.025 < stats.ttest_1samp(den, 0.0, alternative="greater").pvalue < 0.05
    ev = evaluate_ratio_of_means(0.9 * den, den, Comparison(">=", 0.5), n_resamples=199)
    assert (ev.p_value, ev.p_value_refute) == (1.0, 1.0)


def test_the_linearised_test_is_calibrated_at_the_threshold():
    """At R exactly equal to the threshold, the claim's p-value is uniform: ~alpha rejections."""
    rejections = 0
    for seed in range(400):
        num, den = pairs(np.random.default_rng(100 + seed), 30, 0.5, den_mean=5.0, den_sd=2.0, noise=2.0)
        rejections += evaluate_ratio_of_means(num, den, Comparison(">=", 0.5), n_resamples=9).p_value < 0.05
    assert 0.02 <= rejections / 400 <= 0.085


def test_the_interval_covers_and_the_test_holds_its_level_at_the_threshold():
    """At the true ratio = the threshold, the claim ">= t" is a true null: support must come at most
    about alpha of the time; the 90% interval must cover the truth about 90% of the time."""
    rng = np.random.default_rng(1)
    truth, reps, supported, covered = 0.7, 300, 0, 0
    for rep in range(reps):
        num, den = pairs(rng, 40, truth, den_sd=2.0, noise=1.5)
        evaluation = evaluate_ratio_of_means(num, den, Comparison(">=", truth), n_resamples=299, seed=rep)
        supported += evaluation.p_value < 0.05
        covered += evaluation.ci[0] <= truth <= evaluation.ci[1]
    assert supported / reps <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / reps)
    assert abs(covered / reps - 0.9) <= 2.5 * math.sqrt(0.09 / reps) + 0.02


def test_a_between_claim_uses_both_bounds():
    num, den = pairs(np.random.default_rng(5), 64, 0.5, den_mean=5.0, den_sd=0.5, noise=0.5)
    inside = evaluate_ratio_of_means(num, den, Comparison("between", 0.4, 0.6), n_resamples=999)
    outside = evaluate_ratio_of_means(num, den, Comparison("between", 0.6, 0.9), n_resamples=999)
    above = evaluate_ratio_of_means(num, den, Comparison("between", 0.2, 0.4), n_resamples=999)
    assert inside.p_value < 0.01 and outside.p_value_refute < 0.01
    assert above.p_value > 0.5 and above.p_value_refute < 0.01  # the upper bound counts too


def test_an_exact_share_on_every_sequence_collapses_the_interval_instead_of_losing_it():
    """A component that carries the whole gap on every sequence (a hand-built circuit): BCa's
    jackknife has no spread, the percentile interval is the point, and the verdict is still reached."""
    den = np.random.default_rng(6).uniform(2, 8, 32)
    ev = evaluate_ratio_of_means(den.copy(), den, Comparison(">=", 0.8), n_resamples=999)
    assert ev.ci == pytest.approx((1.0, 1.0)) and ev.p_value < 1e-6
    assert "percentile" in ev.ci_method


def test_shares_average_to_the_estimate():
    num, den = pairs(np.random.default_rng(8), 20, 0.6)
    assert np.mean(ratio_shares(num, den)) == pytest.approx(np.mean(num) / np.mean(den))


def test_the_registry_judges_patching_and_faithfulness_ratios_with_the_same_function():
    """The engine passes every estimator the null's samples; a ratio drops them (its gap is about 0
    on the null) and names the null in its note instead."""
    num, den = pairs(np.random.default_rng(9), 40, 0.8)
    common = dict(statistic="normalized", alpha=0.05, seed=3, n_resamples=499, null_kind="random-weights model")
    via_registry = evaluate_with("ratio_of_means", np.stack([num, den], axis=1), Comparison(">=", 0.6), null_samples=np.zeros((40, 1)), **common)
    direct = evaluate_ratio_of_means(num, den, Comparison(">=", 0.6), **common)
    assert (via_registry.estimate, via_registry.ci, via_registry.p_value) == (direct.estimate, direct.ci, direct.p_value)
    assert "random-weights model" in via_registry.note
    assert set(ESTIMATORS) == {"rank", "ratio_of_means", "share_beaten_of_ratios", "curve_area", "curve_gap_area"}
    with pytest.raises(ValueError, match="known: rank, ratio_of_means"):
        evaluate_with("gap_share", np.stack([num, den], axis=1), Comparison(">=", 0.6))


def test_the_share_beaten_is_an_exact_binomial_test_with_ties_counted_against():
    draws = np.array([0.1] * 90 + [0.5] * 10)
    evaluation = evaluate_share_beaten(0.5, draws, Comparison(">=", 0.8))  # ties with 10 draws
    assert evaluation.estimate == 0.9
    assert evaluation.p_value == pytest.approx(stats.binomtest(90, 100, 0.8, alternative="greater").pvalue)
    assert "(1 + 10) / (100 + 1)" in evaluation.note  # the permutation p against "one more draw"
    worse = evaluate_share_beaten(0.05, draws, Comparison(">=", 0.8))
    assert worse.estimate == 0.0 and worse.p_value_refute < 1e-10


def test_estimators_built_on_the_ratio_give_no_verdict_without_a_gap_and_one_with_a_downward_gap():
    """share_beaten_of_ratios and the curve areas share the ratio's 'no gap, no verdict' rule; a
    gap reliably below 0 leaves every ratio (hence the share beaten and the areas) as it is."""
    rng = np.random.default_rng(10)
    den = rng.normal(4.0, 1.0, 40)
    observed = 0.9 * den + rng.normal(0, 0.3, 40)
    draws = [0.2 * den + rng.normal(0, 0.3, 40) for _ in range(30)]
    beaten = np.stack([den, observed, *draws], axis=1)
    curve = np.stack([den, np.zeros(40), 0.5 * den + rng.normal(0, 0.2, 40), den], axis=1)
    for estimator, x, comparison in (("share_beaten_of_ratios", beaten, Comparison(">=", 0.5)), ("curve_area", curve, Comparison(">=", 0.3))):
        up = evaluate_with(estimator, x, comparison, n_resamples=199)
        down = evaluate_with(estimator, -x, comparison, n_resamples=199)
        assert up.p_value < 0.01 and (down.estimate, down.p_value) == pytest.approx((up.estimate, up.p_value)), estimator
        no_gap = x.copy()
        no_gap[:, 0] = rng.normal(0, 1, 40)
        undefined = evaluate_with(estimator, no_gap, comparison, n_resamples=199)
        assert (undefined.p_value, undefined.p_value_refute) == (1.0, 1.0), estimator
        assert "not reliably different from 0" in undefined.note, estimator


def test_curve_areas_of_a_straight_line_and_of_the_model_itself():
    cpr, cmd = curve_areas(np.linspace(0, 1, 5))
    assert (cpr, cmd) == (pytest.approx(0.5), pytest.approx(0.5))
    cpr, cmd = curve_areas(np.array([0.0, 1.0, 1.0, 1.0, 1.0]))
    assert (cpr, cmd) == (pytest.approx(0.875), pytest.approx(0.125))


def test_displayed_values_average_to_the_estimate():
    rng = np.random.default_rng(4)
    num, den = pairs(rng, 30, 0.6)
    assert display_values("ratio_of_means", np.stack([num, den], axis=1)).mean() == pytest.approx(ratio_of_means(num, den))
    curve = np.stack([den, np.zeros(30), 0.5 * den + rng.normal(0, 0.2, 30), den], axis=1)
    cpr = evaluate_with("curve_area", curve, Comparison(">=", 0.1), n_resamples=199)
    assert display_values("curve_area", curve).mean() == pytest.approx(cpr.estimate)
    cmd = evaluate_with("curve_gap_area", curve, Comparison("<=", 0.9), n_resamples=199)
    assert display_values("curve_gap_area", curve).mean() == pytest.approx(cmd.estimate, abs=0.02)
    assert display_values("rank", np.zeros((30, 3))) is None
