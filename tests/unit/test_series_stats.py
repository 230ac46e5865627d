"""stats.series: curve functions with known answers, the resampling of curves, and calibration of a
located step (threshold at the true value: supported in about alpha of seeded runs; intervals cover)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interp_checks.stats import Comparison
from interp_checks.stats.pooled import evaluate_pooled
from interp_checks.stats.series import (
    SampleBlock,
    bump,
    curve_statistic,
    first_crossing,
    gram_contributions,
    half_rise_position,
    largest_rise,
    pca_trajectory,
    sharpest_turn,
)

STEPS = np.array([0.0, 100.0, 200.0, 300.0, 400.0, 500.0])


def test_first_crossing_interpolates_between_checkpoints_and_is_nan_when_never_reached():
    curves = np.array([[0.0, 0.2, 0.4, 0.6, 0.8, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.1], [0.9, 1.0, 1.0, 1.0, 1.0, 1.0]])
    out = first_crossing(curves, STEPS, 0.5)
    assert out[0] == pytest.approx(250.0)
    assert math.isnan(out[1])
    assert out[2] == 0.0
    falling = first_crossing(1.0 - curves[:1], STEPS, 0.5, rising=False)
    assert falling[0] == pytest.approx(250.0)


@given(st.floats(0.05, 0.95), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_first_crossing_of_a_ramp_is_its_inverse(level, start):
    ramp = np.clip((STEPS - STEPS[start - 1]) / (STEPS[-1] - STEPS[start - 1]), 0, 1)[None, :]
    expected = STEPS[start - 1] + level * (STEPS[-1] - STEPS[start - 1])
    assert first_crossing(ramp, STEPS, level)[0] == pytest.approx(expected)


def test_half_rise_largest_rise_and_bump():
    step = np.array([[0.1, 0.1, 0.1, 0.9, 0.9, 0.9]])
    assert half_rise_position(step, STEPS)[0] == pytest.approx(250.0)
    assert largest_rise(step, STEPS, 100)[0] == pytest.approx(0.8)
    assert largest_rise(np.array([[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]]), STEPS, 100)[0] == pytest.approx(0.2)
    assert math.isnan(half_rise_position(np.array([[1.0, 0.5, 0.2, 0.1, 0.1, 0.0]]), STEPS)[0])
    dd = bump(np.array([[1.0, 0.5, 0.8, 0.4, 0.3, 0.2], [1.0, 0.8, 0.6, 0.4, 0.3, 0.2]]), STEPS)
    assert dd["rise"][0] == pytest.approx(0.3) and dd["peak"][0] == 200.0 and dd["second_descent"][0] == pytest.approx(0.3)
    assert math.isnan(dd["rise"][1]) and math.isnan(dd["peak"][1])  # monotone: no bump


def test_sharpest_turn_finds_the_corner_and_ignores_tiny_steps():
    path = np.array([[[0, 0], [1, 0], [2, 0], [2, 1], [2, 2], [2, 2.001]]], dtype=float)
    plain = sharpest_turn(path, STEPS)
    assert plain["angle"][0] > 89  # the jitter at the end may win without min_share
    turn = sharpest_turn(path, STEPS, min_share=0.05)
    assert turn["angle"][0] == pytest.approx(90.0) and turn["position"][0] == 200.0


def test_pca_trajectory_recovers_distances_between_checkpoints():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(20, 6, 5))  # samples, checkpoints, tokens
    gram = gram_contributions(values).mean(axis=0).reshape(1, 6, 6)
    coords = pca_trajectory(gram, 5)[0]
    stacked = np.transpose(values, (1, 0, 2)).reshape(6, -1) / math.sqrt(20)
    direct = np.linalg.norm(stacked[:, None] - stacked[None], axis=-1)
    assert np.allclose(np.linalg.norm(coords[:, None] - coords[None], axis=-1), direct, atol=1e-8)


def _ramp_block(n: int, rng: np.random.Generator, spread: float = 0.2) -> SampleBlock:
    """Each sample's curve is the ramp 0..1 over the steps plus its own offset: the population's
    mean curve is the ramp, so it crosses 0.5 at step 250 exactly."""
    offsets = rng.normal(0.0, spread, size=(n, 1))
    ramp = STEPS / STEPS[-1]
    return SampleBlock({"curve": ramp[None, :] + offsets}, {"curve": (STEPS.size,)})


def _crossing(reduced):
    return first_crossing(reduced["curve"], STEPS, 0.5)


def test_curve_statistic_is_the_statistic_of_the_mean_curve_and_strata_keep_their_sizes():
    rng = np.random.default_rng(1)
    a, b = _ramp_block(30, rng), _ramp_block(50, rng)
    b = SampleBlock({"other": b.contributions["curve"]}, {"other": b.shapes["curve"]})
    stat = curve_statistic([a, b], lambda r: _crossing(r) - first_crossing(r["other"], STEPS, 0.5), estimand="difference")
    assert stat.n_documents == 80 and stat.strata == (30, 50)
    mean_a = a.contributions["curve"].mean(axis=0)[None]
    mean_b = b.contributions["other"].mean(axis=0)[None]
    assert stat.observed() == pytest.approx(first_crossing(mean_a, STEPS, 0.5)[0] - first_crossing(mean_b, STEPS, 0.5)[0])
    evaluation = evaluate_pooled(stat, Comparison(">=", -1000.0), statistic="d", n_resamples=199)
    assert "stratified" in evaluation.ci_method and "evaluation samples" in evaluation.ci_method


def test_a_fixed_block_is_not_resampled():
    fixed = SampleBlock({"norm": np.array([[3.0, 2.0, 1.0, 1.0, 1.0, 1.0]])}, {"norm": (STEPS.size,)})
    stat = curve_statistic([fixed], lambda r: r["norm"][:, 0], estimand="first norm")
    evaluation = evaluate_pooled(stat, Comparison(">=", 1.0), statistic="norm", n_resamples=99)
    assert stat.observed() == 3.0 and not math.isfinite(evaluation.ci[0])  # nothing to resample: no inference


def test_located_step_is_calibrated_at_its_true_value():
    """Threshold at the true crossing (250): "crossing >= 250" is supported in about alpha of runs,
    and the 90% BCa interval covers 250 in about 90% of runs."""
    runs, supported, covered = 150, 0, 0
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        stat = curve_statistic([_ramp_block(60, rng)], _crossing, estimand="crossing")
        evaluation = evaluate_pooled(stat, Comparison(">=", 250.0), statistic="step", alpha=0.05, seed=seed, n_resamples=499)
        supported += evaluation.p_value < 0.05
        covered += evaluation.ci[0] <= 250.0 <= evaluation.ci[1]
    assert supported <= 0.05 * runs + 3 * math.sqrt(0.05 * 0.95 * runs)  # about alpha (not wildly liberal)
    assert abs(covered / runs - 0.90) < 3 * math.sqrt(0.9 * 0.1 / runs)


def test_a_curve_that_never_reaches_the_level_gives_no_inference_not_a_verdict():
    flat = SampleBlock({"curve": np.random.default_rng(0).normal(0.1, 0.01, size=(40, STEPS.size))}, {"curve": (STEPS.size,)})
    stat = curve_statistic([flat], _crossing, estimand="crossing")
    evaluation = evaluate_pooled(stat, Comparison("<=", 300.0), statistic="step", n_resamples=99)
    assert evaluation.p_value == 1.0 and evaluation.p_value_refute == 1.0


def test_a_point_mass_bootstrap_decides_with_enough_samples_but_not_with_two():
    """A located position that no resample moves (every sample's curve crosses between the same two
    checkpoints at the same place) is determined: p 0 beyond it with 40 samples; with 2 samples the
    resolution floor stays (two identical samples are no evidence)."""
    def block(n: int) -> SampleBlock:
        return SampleBlock({"curve": np.tile(STEPS / STEPS[-1], (n, 1))}, {"curve": (STEPS.size,)})

    many = evaluate_pooled(curve_statistic([block(40)], _crossing, estimand="x"), Comparison("<=", 300.0), statistic="s", n_resamples=199)
    assert many.estimate == pytest.approx(250.0) and many.p_value == 0.0 and many.p_value_refute > 0.5
    two = evaluate_pooled(curve_statistic([block(2)], _crossing, estimand="x"), Comparison("<=", 300.0), statistic="s", n_resamples=199)
    assert two.p_value == pytest.approx(1 / 200)
