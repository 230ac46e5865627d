"""Calibration of ``stats.evaluate_against_draws``, the judge of weight statistics (composition
scores) against draws of random-weights twins, on synthetic nulls whose true z is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from interp_checks.stats import Comparison, evaluate_against_draws

ALPHA = 0.05
REPEATS = 200
RESAMPLES = 999


def normal_null(rng: np.random.Generator, draws: int) -> np.ndarray:
    return rng.normal(size=draws)


def clustered_null(rng: np.random.Generator, draws: int, per_draw: int = 16) -> np.ndarray:
    """[draws, per_draw] values sharing a per-draw effect (intra-draw correlation 0.5), marginal
    mean 0 and sd 1: like the composition scores of every head pair of one random twin."""
    shared = rng.normal(size=(draws, 1)) * np.sqrt(0.5)
    return shared + rng.normal(size=(draws, per_draw)) * np.sqrt(0.5)


def repeated(make_null, true_z: float, comparison: Comparison, draws: int = 200) -> list:
    rng = np.random.default_rng(12345)
    return [
        evaluate_against_draws(true_z, make_null(rng, draws), comparison, alpha=ALPHA, seed=r, n_resamples=RESAMPLES)
        for r in range(REPEATS)
    ]


def rate_interval(hits: int) -> tuple[float, float]:
    """99.9% Clopper-Pearson interval of a rate over REPEATS runs: what "about" means below."""
    ci = stats.binomtest(hits, REPEATS).proportion_ci(confidence_level=0.999)
    return ci.low, ci.high


@pytest.mark.parametrize("make_null", [normal_null, clustered_null], ids=["independent draws", "pooled values per draw"])
@pytest.mark.parametrize("true_z", [0.0, 3.0, 20.0])
def test_a_claim_at_the_true_z_is_supported_in_about_alpha_of_runs(make_null, true_z):
    runs = repeated(make_null, true_z, Comparison(">=", true_z))
    supported = sum(e.p_value < ALPHA for e in runs)
    refuted = sum(e.p_value_refute < ALPHA for e in runs)
    for hits in (supported, refuted):  # at the boundary both directions are false-positive rates
        low, high = rate_interval(hits)
        assert low <= ALPHA <= high, (hits, REPEATS)


@pytest.mark.parametrize("make_null", [normal_null, clustered_null], ids=["independent draws", "pooled values per draw"])
@pytest.mark.parametrize("true_z", [0.0, 3.0, 20.0])
def test_the_interval_covers_the_true_z_at_its_level(make_null, true_z):
    runs = repeated(make_null, true_z, Comparison(">=", true_z))
    covered = sum(e.ci[0] <= true_z <= e.ci[1] for e in runs)
    low, high = rate_interval(covered)
    assert low <= 1 - 2 * ALPHA <= high, (covered, REPEATS)


def test_z_3_and_z_20_are_told_apart_with_200_draws():
    rng = np.random.default_rng(7)
    null = rng.normal(size=200)
    mean, sd = null.mean(), null.std(ddof=1)
    at_20 = evaluate_against_draws(mean + 20 * sd, null, Comparison(">=", 3), n_resamples=RESAMPLES)
    at_3 = evaluate_against_draws(mean + 3 * sd, null, Comparison(">=", 20), n_resamples=RESAMPLES)
    assert at_20.estimate == pytest.approx(20) and at_20.p_value < 0.01 and at_20.ci[0] > 10
    assert at_3.estimate == pytest.approx(3) and at_3.p_value_refute < 0.01 and at_3.ci[1] < 10


def test_values_of_one_draw_are_resampled_together():
    """Pooled values of one draw are not independent: the interval must be as wide as the number of
    draws allows, not as narrow as the number of values would suggest."""
    rng = np.random.default_rng(3)
    null = clustered_null(rng, 20, per_draw=50)
    pooled = evaluate_against_draws(5.0, null, Comparison(">=", 3), n_resamples=RESAMPLES)
    flat = evaluate_against_draws(5.0, null.ravel(), Comparison(">=", 3), n_resamples=RESAMPLES)
    assert pooled.n == 20 and flat.n == 1000
    assert pooled.estimate == pytest.approx(flat.estimate)
    assert (pooled.ci[1] - pooled.ci[0]) > 2 * (flat.ci[1] - flat.ci[0])
    assert "1000 values pooled: 50 per draw" in pooled.note


def test_undefined_scores_and_degenerate_nulls_are_errors_not_verdicts():
    null = np.random.default_rng(0).normal(size=50)
    with pytest.raises(ValueError, match="not finite"):
        evaluate_against_draws(float("nan"), null, Comparison(">=", 3))
    with pytest.raises(ValueError, match="non-finite"):
        evaluate_against_draws(1.0, np.append(null, np.nan), Comparison(">=", 3))
    with pytest.raises(ValueError, match="all equal"):
        evaluate_against_draws(1.0, np.ones(10), Comparison(">=", 3))
    with pytest.raises(ValueError, match="at least 2 independent draws"):
        evaluate_against_draws(1.0, np.ones((1, 30)), Comparison(">=", 3))


def test_the_note_reports_the_raw_score_null_and_empirical_tail_p():
    null = np.arange(199, dtype=float)  # observed above every draw: tail p = 1 / 200
    evaluation = evaluate_against_draws(1000.0, null, Comparison(">=", 3), n_resamples=RESAMPLES)
    assert "observed score 1000" in evaluation.note and "empirical upper-tail p = 0.005" in evaluation.note
    assert evaluation.null_estimate == pytest.approx(99.0)
