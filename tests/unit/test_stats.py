"""Unit tests for interp_checks.stats: pure numpy/scipy, no model, a few seconds."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import interp_checks.stats as ic_stats
from interp_checks.stats import (
    Comparison,
    Evaluation,
    Outcome,
    adjust_p_values,
    combine,
    decide,
    evaluate,
)

ALPHA = 0.05


def verdict(ev: Evaluation, alpha: float = ALPHA) -> Outcome:
    """Single-claim verdict: no multiplicity adjustment."""
    return decide(ev, p_adjusted=ev.p_value, p_adjusted_refute=ev.p_value_refute, alpha=alpha)


def centred_normal(mean: float, sd: float, n: int = 64, seed: int = 0) -> np.ndarray:
    """Normal draws shifted so the *sample* mean is exactly ``mean`` (up to rounding).

    Fixing the sample mean makes "threshold within noise" cases deterministic
    instead of depending on where one draw happened to land.
    """
    x = np.random.default_rng(seed).normal(0.0, sd, n)
    return x - x.mean() + mean


# --------------------------------------------------------------------------- package hygiene


def test_stats_package_imports_only_numpy_scipy_and_itself() -> None:
    """The statistical core must stay importable without torch / models / pytest."""
    allowed_roots = {"numpy", "scipy", "math", "warnings", "dataclasses", "typing", "enum", "collections", "__future__"}
    package_dir = Path(ic_stats.__file__).parent
    # interp_checks.numbers (finite_or_none) is pure Python too: checked with the package.
    for path in sorted(package_dir.glob("*.py")) + [package_dir.parent / "numbers.py"]:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: use absolute imports"
                names = [node.module or ""]
            else:
                continue
            for name in names:
                ok = name.split(".")[0] in allowed_roots or name.startswith("interp_checks.stats") or name == "interp_checks.numbers"
                assert ok, f"{path.name} imports {name}"


def test_public_api_is_exported() -> None:
    for name in ["Comparison", "Evaluation", "evaluate", "adjust_p_values", "Outcome", "decide", "combine"]:
        assert name in ic_stats.__all__
        assert hasattr(ic_stats, name)


# --------------------------------------------------------------------------- Comparison


@pytest.mark.parametrize(
    ("comparison", "text"),
    [
        (Comparison(">=", 0.4), ">= 0.4"),
        (Comparison(">", 1), "> 1"),
        (Comparison("<=", -0.25), "<= -0.25"),
        (Comparison("<", 1e-5), "< 1e-05"),
        (Comparison("between", 0.2, 0.5), "between 0.2 0.5"),
        (Comparison(">=", 0.123456789012), ">= 0.123456789012"),  # no rounding to 6 digits
    ],
)
def test_comparison_str(comparison: Comparison, text: str) -> None:
    assert str(comparison) == text


def test_comparison_normalises_numbers_to_float() -> None:
    c = Comparison("between", np.int64(1), np.float32(2.0))
    assert type(c.threshold) is float and type(c.upper) is float
    assert c == Comparison("between", 1.0, 2.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("=>", 0.4), "unknown comparison operator"),
        ((">=", math.nan), "finite"),
        ((">=", math.inf), "finite"),
        ((">=", "abc"), "must be a number"),
        ((">=", True), "must be a number"),
        (("between", 0.2), "needs an upper bound"),
        (("between", 0.5, 0.5), "lower < upper"),
        (("between", 0.6, 0.5), "lower < upper"),
        (("between", 0.1, math.inf), "finite"),
        ((">=", 0.2, 0.5), "only 'between' takes an upper bound"),
    ],
)
def test_comparison_validation(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Comparison(*args)


@pytest.mark.parametrize(
    ("comparison", "value", "expected"),
    [
        (Comparison(">=", 0.4), 0.4, True),
        (Comparison(">=", 0.4), 0.39, False),
        (Comparison(">", 0.4), 0.4, False),
        (Comparison(">", 0.4), 0.41, True),
        (Comparison("<=", 0.4), 0.4, True),
        (Comparison("<=", 0.4), 0.41, False),
        (Comparison("<", 0.4), 0.4, False),
        (Comparison("<", 0.4), 0.39, True),
        (Comparison("between", 0.2, 0.5), 0.2, True),
        (Comparison("between", 0.2, 0.5), 0.5, True),
        (Comparison("between", 0.2, 0.5), 0.51, False),
        (Comparison("between", 0.2, 0.5), 0.19, False),
        (Comparison(">=", 0.4), math.nan, False),
        (Comparison("between", 0.2, 0.5), math.nan, False),
    ],
)
def test_comparison_holds(comparison: Comparison, value: float, expected: bool) -> None:
    assert comparison.holds(value) is expected


# --------------------------------------------------------------------------- calibration


def _binomial_band(p0: float, runs: int, z: float = 3.0) -> tuple[float, float]:
    """p0 +- z binomial standard deviations of a rate estimated from ``runs`` runs.

    z = 3 was fixed before looking at results: a correctly calibrated
    procedure falls outside with probability ~0.3%.
    """
    half = z * math.sqrt(p0 * (1 - p0) / runs)
    return p0 - half, p0 + half


# Calibration runs every repetition through ``evaluate_many``, the code path ``evaluate`` itself
# takes (``test_evaluate_is_evaluate_many_on_one_row``), so thousands of seeded repetitions cost
# seconds. Bands are chosen to catch the bugs they are named after with high probability, not
# at 3 sigma of a rate that a halved or doubled alpha would also pass:
# with 6,000 runs the supported rate's standard error at alpha = 0.05 is 0.0028, so the band
# [0.032, 0.068] is 6 SE from both alpha/2 = 0.025 (a two-sided p or a 95% interval) and 2 alpha = 0.1.
CALIBRATION_RUNS = 6000


def _supported_rate(x: np.ndarray, comparison: Comparison, seed: int) -> tuple[float, float, float]:
    """(supported rate, refuted rate, share of intervals covering ``truth``) over the rows of x."""
    evaluations = ic_stats.evaluate_many(x, comparison, alpha=ALPHA, seed=seed, n_resamples=499)
    outcomes = [verdict(e) for e in evaluations]
    supported = sum(o is Outcome.SUPPORTED for o in outcomes) / len(outcomes)
    refuted = sum(o is Outcome.REFUTED for o in outcomes) / len(outcomes)
    lows = np.array([e.ci[0] for e in evaluations])
    highs = np.array([e.ci[1] for e in evaluations])
    return supported, refuted, (lows, highs)


@pytest.mark.parametrize("op", [">=", ">", "<=", "<"])
def test_one_sided_claims_at_their_threshold_are_supported_about_alpha_of_the_time(op: str) -> None:
    """Threshold = true mean (normal data, where the t-test is exact): a false-at-the-boundary claim."""
    x = np.random.default_rng(20_000).normal(0.3, 0.1, (CALIBRATION_RUNS, 32))
    supported, refuted, _ = _supported_rate(x, Comparison(op, 0.3), seed=1)  # type: ignore[arg-type]
    assert 0.032 <= supported <= 0.068, supported
    assert 0.032 <= refuted <= 0.068, refuted


def test_between_at_its_lower_bound_is_supported_about_alpha_and_refuted_at_most_alpha() -> None:
    """TOST at the boundary: the claim "between 0.3 and 10" with true mean 0.3 errs on the lower test
    alone, so it is supported about alpha of the time; its refutation is Bonferroni-doubled over the
    two sides, so it is refuted about alpha/2 of the time (at most alpha)."""
    x = np.random.default_rng(20_001).normal(0.3, 0.1, (CALIBRATION_RUNS, 32))
    supported, refuted, _ = _supported_rate(x, Comparison("between", 0.3, 10.0), seed=2)
    assert 0.032 <= supported <= 0.068, supported
    assert 0.015 <= refuted <= 0.035, refuted


@pytest.mark.parametrize("data", ["normal", "skewed"])
def test_intervals_cover_the_true_mean_at_their_level_and_each_end_at_one_minus_alpha(data: str) -> None:
    """The interval actually built, not its ``ci_level`` field: a 95% interval would cover 95%
    (12 SE away), and each end is a one-sided 95% bound.

    On right-skewed Beta(2, 5) data with 64 sequences, BCa's upper end covers less than its 95%:
    measured here 0.9375 in 6,000 runs (and the lower end correspondingly more), which is why the
    per-end band is wider for skewed data; the two-sided coverage stays at 90%.
    """
    rng = np.random.default_rng(20_002)
    if data == "normal":
        true_mean, x, end_band = 0.3, rng.normal(0.3, 0.1, (CALIBRATION_RUNS, 64)), 0.012
    else:
        true_mean, x, end_band = 2 / 7, rng.beta(2, 5, (CALIBRATION_RUNS, 64)), 0.02
    _, _, (lows, highs) = _supported_rate(x, Comparison(">=", true_mean), seed=3)
    se = math.sqrt(0.9 * 0.1 / CALIBRATION_RUNS)  # 0.0039
    assert abs(np.mean((lows <= true_mean) & (true_mean <= highs)) - 0.90) < 4 * se
    assert abs(np.mean(lows <= true_mean) - 0.95) < end_band
    assert abs(np.mean(true_mean <= highs) - 0.95) < end_band


def test_skewed_data_stay_near_alpha_in_both_tails() -> None:
    """Beta(2, 5) is right-skewed, so the t-test's two tails err differently; both stay near alpha.

    Reference (not used to set the band): 0.041 (">=") and 0.055 ("<=") in 10,000 runs.
    """
    x = np.random.default_rng(20_003).beta(2, 5, (4000, 64))
    for op in (">=", "<="):
        supported, _, _ = _supported_rate(x, Comparison(op, 2 / 7), seed=4)  # type: ignore[arg-type]
        assert 0.025 <= supported <= 0.075, (op, supported)


def test_evaluate_is_evaluate_many_on_one_row() -> None:
    x = np.random.default_rng(3).normal(0.4, 0.2, 40)
    single = evaluate(x, Comparison(">", 0.35), seed=11, n_resamples=999)
    (row,) = ic_stats.evaluate_many(x[None, :], Comparison(">", 0.35), seed=11, n_resamples=999)
    assert single == row


# --------------------------------------------------------------------------- power / refutation

# Mean 0.5, sd 0.1, n = 64: standard error 0.0125. "Clear" cases are 8 SE away,
# "within noise" cases are at most ~0.8 SE away (or exactly on the mean).
POWER_CASES = [
    (Comparison(">=", 0.4), Outcome.SUPPORTED),
    (Comparison(">", 0.4), Outcome.SUPPORTED),
    (Comparison(">=", 0.6), Outcome.REFUTED),
    (Comparison(">", 0.6), Outcome.REFUTED),
    (Comparison(">=", 0.5), Outcome.INCONCLUSIVE),
    (Comparison(">", 0.51), Outcome.INCONCLUSIVE),
    (Comparison(">=", 0.49), Outcome.INCONCLUSIVE),
    (Comparison("<=", 0.6), Outcome.SUPPORTED),
    (Comparison("<", 0.6), Outcome.SUPPORTED),
    (Comparison("<=", 0.4), Outcome.REFUTED),
    (Comparison("<", 0.4), Outcome.REFUTED),
    (Comparison("<=", 0.5), Outcome.INCONCLUSIVE),
    (Comparison("<", 0.49), Outcome.INCONCLUSIVE),
    (Comparison("between", 0.4, 0.6), Outcome.SUPPORTED),
    (Comparison("between", 0.6, 0.8), Outcome.REFUTED),  # mean clearly below
    (Comparison("between", 0.2, 0.4), Outcome.REFUTED),  # mean clearly above
    (Comparison("between", 0.5, 0.8), Outcome.INCONCLUSIVE),  # mean on the lower bound
    (Comparison("between", 0.45, 0.51), Outcome.INCONCLUSIVE),  # upper bound within noise
    (Comparison("between", 0.2, 0.49), Outcome.INCONCLUSIVE),  # outside, but not significantly
]


@pytest.mark.parametrize(("comparison", "expected"), POWER_CASES, ids=[str(c) for c, _ in POWER_CASES])
def test_power_and_refutation(comparison: Comparison, expected: Outcome) -> None:
    x = centred_normal(0.5, 0.1)
    ev = evaluate(x, comparison, n_resamples=1999)
    assert verdict(ev) is expected, ev
    assert ev.estimate == pytest.approx(0.5)
    assert ev.ci[0] < 0.5 < ev.ci[1]


def test_between_is_inconclusive_when_too_noisy_even_if_centred() -> None:
    ev = evaluate(centred_normal(0.5, 1.0), Comparison("between", 0.45, 0.55), n_resamples=1999)
    assert verdict(ev) is Outcome.INCONCLUSIVE
    assert ev.p_value > ALPHA


@pytest.mark.parametrize(("op", "mirror_op"), [(">", "<"), (">=", "<=")])
@pytest.mark.parametrize("threshold", [0.3, 0.45, 0.5, 0.55, 0.7])
def test_less_than_mirrors_greater_than(op: str, mirror_op: str, threshold: float) -> None:
    x = np.random.default_rng(7).normal(0.5, 0.1, 48)
    a = evaluate(x, Comparison(op, threshold), n_resamples=999)  # type: ignore[arg-type]
    b = evaluate(-x, Comparison(mirror_op, -threshold), n_resamples=999)  # type: ignore[arg-type]
    assert b.p_value == pytest.approx(a.p_value, rel=1e-12, abs=1e-300)
    assert b.p_value_refute == pytest.approx(a.p_value_refute, rel=1e-12, abs=1e-300)
    assert b.ci == pytest.approx((-a.ci[1], -a.ci[0]), rel=1e-12)
    assert verdict(a) is verdict(b)


def test_one_sided_p_values_are_complementary_and_test_names_h0() -> None:
    x = np.random.default_rng(1).normal(0.5, 0.1, 32)
    ev = evaluate(x, Comparison(">=", 0.48), n_resamples=999)
    assert ev.p_value + ev.p_value_refute == pytest.approx(1.0)
    assert ev.p_value == pytest.approx(sps.ttest_1samp(x, 0.48, alternative="greater").pvalue)
    assert "t-test" in ev.test and "H0: mean <= 0.48" in ev.test
    assert ev.ci_method == "BCa bootstrap of the mean over 32 sequences, 999 resamples"
    assert ev.n == 32 and ev.ci_level == pytest.approx(0.9)


def test_between_needs_both_sides_and_refutes_on_either() -> None:
    """TOST's behaviour, not its formula: inside a band only when *both* one-sided tests reject;
    refuted when the mean is clearly outside on either side, with the two chances paid for."""
    x = centred_normal(0.5, 0.1, n=40, seed=2)
    inside = evaluate(x, Comparison("between", 0.45, 0.55), n_resamples=999)
    near_top = evaluate(x, Comparison("between", 0.3, 0.505), n_resamples=999)
    near_bottom = evaluate(x, Comparison("between", 0.495, 0.7), n_resamples=999)
    assert verdict(inside) is Outcome.SUPPORTED
    # one bound within noise is enough to withhold support, whichever bound it is
    assert verdict(near_top) is Outcome.INCONCLUSIVE and verdict(near_bottom) is Outcome.INCONCLUSIVE
    assert near_top.p_value > 0.2 and near_bottom.p_value > 0.2
    # clearly below the band and clearly above it are both refutations
    below = evaluate(x, Comparison("between", 0.6, 0.9), n_resamples=999)
    above = evaluate(x, Comparison("between", 0.1, 0.4), n_resamples=999)
    assert verdict(below) is Outcome.REFUTED and verdict(above) is Outcome.REFUTED
    # the refutation p of a two-sided band is twice the one-sided p of the side it falls on
    one_sided = evaluate(x, Comparison(">=", 0.6), n_resamples=999)
    assert below.p_value_refute == pytest.approx(min(1.0, 2 * one_sided.p_value_refute))


# --------------------------------------------------------------------------- largest of several means


def _heads_that_take_turns(n: int = 400, seed: int = 0) -> np.ndarray:
    """Four heads, each with mean 0.45, where a different head scores high on each sequence:
    every per-head mean is 0.45 but the per-sequence maximum averages about 0.55."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.4167, 0.02, (n, 4))
    winner = rng.integers(0, 4, n)
    base[np.arange(n), winner] += 0.1333
    return base - base.mean(axis=0) + 0.45  # every head's sample mean exactly 0.45


def test_some_head_claim_is_not_fooled_by_heads_taking_turns() -> None:
    scores = _heads_that_take_turns()
    assert np.allclose(scores.mean(axis=0), 0.45) and scores.max(axis=1).mean() > 0.54
    # the biased statistic (mean of per-sequence maxima) would call "some head >= 0.5" supported ...
    biased = evaluate(scores.max(axis=1), Comparison(">=", 0.5), n_resamples=999)
    assert verdict(biased) is Outcome.SUPPORTED
    # ... the largest head mean does not; with 400 sequences it refutes it
    fair = ic_stats.evaluate_largest_mean(scores, Comparison(">=", 0.5), ["H0", "H1", "H2", "H3"], n_resamples=999)
    assert fair.estimate == pytest.approx(0.45)
    assert verdict(fair) is Outcome.REFUTED
    assert fair.estimand.startswith("largest of 4 member means") and len(fair.members) == 4


def test_largest_mean_pays_for_choosing_the_best_member() -> None:
    """k members with the same true mean at the threshold: "some member >= t" must be supported in
    about alpha of runs or fewer (Bonferroni), not k times alpha as picking the best member's own
    one-sided test would."""
    rng = np.random.default_rng(5)
    runs, k = 400, 6
    names = [f"H{j}" for j in range(k)]
    scores = rng.normal(0.5, 0.1, (runs, 32, k))
    supported = sum(
        verdict(ic_stats.evaluate_largest_mean(scores[run], Comparison(">=", 0.5), names, seed=run, n_resamples=199))
        is Outcome.SUPPORTED
        for run in range(runs)
    )
    best = scores[np.arange(runs), :, scores.mean(axis=1).argmax(axis=1)]  # [runs, 32]: each run's best member
    naive = sum(verdict(e) is Outcome.SUPPORTED for e in ic_stats.evaluate_many(best, Comparison(">=", 0.5), n_resamples=199))
    assert supported / runs <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    assert naive / runs > 2 * ALPHA  # what the correction is for


def test_no_member_claim_needs_every_member_below() -> None:
    scores = np.column_stack([centred_normal(0.05, 0.02, seed=1), centred_normal(0.12, 0.02, seed=2)])
    names = ["L0H0", "L0H1"]
    assert verdict(ic_stats.evaluate_largest_mean(scores, Comparison("<", 0.2), names, n_resamples=999)) is Outcome.SUPPORTED
    # one member at the threshold is enough to withhold support
    scores[:, 1] = centred_normal(0.2, 0.02, seed=3)
    at_bar = ic_stats.evaluate_largest_mean(scores, Comparison("<", 0.2), names, n_resamples=999)
    assert verdict(at_bar) is Outcome.INCONCLUSIVE and at_bar.deciding_member == "L0H1"
    with pytest.raises(ValueError, match="one-sided"):
        ic_stats.evaluate_largest_mean(scores, Comparison("between", 0.1, 0.2), names)


def test_largest_mean_of_one_member_is_the_plain_mean() -> None:
    x = np.random.default_rng(4).normal(0.3, 0.1, 30)
    one = ic_stats.evaluate_largest_mean(x[:, None], Comparison(">=", 0.25), ["H0"], n_resamples=999)
    plain = evaluate(x, Comparison(">=", 0.25), n_resamples=999)
    assert (one.estimate, one.ci, one.p_value, one.p_value_refute) == (plain.estimate, plain.ci, plain.p_value, plain.p_value_refute)


# --------------------------------------------------------------------------- claims made of several expectations


def test_a_claim_is_supported_only_if_every_expectation_is_and_reports_the_weakest() -> None:
    strong = _fake(Comparison(">=", 0.4), (0.5, 0.6), p=1e-9, p_ref=1.0)
    weak = _fake(Comparison(">=", 0.4), (0.41, 0.6), p=0.01, p_ref=0.99)
    support, refute = ic_stats.claim_p_values([strong, weak])
    assert support == 0.01  # intersection-union: the largest p, no correction
    decision = ic_stats.decide_claim([strong, weak], p_adjusted=support, p_adjusted_refute=refute, alpha=ALPHA)
    assert decision.outcome is Outcome.SUPPORTED and decision.deciding == 1 and decision.p_value == 0.01
    # the family's adjustment multiplies every expectation alike: at 10x, the weak one fails
    decision = ic_stats.decide_claim([strong, weak], p_adjusted=0.1, p_adjusted_refute=refute, alpha=ALPHA)
    assert decision.outcome is Outcome.INCONCLUSIVE and decision.outcomes == (Outcome.SUPPORTED, Outcome.INCONCLUSIVE)
    assert decision.deciding == 1


def test_a_claim_is_refuted_by_its_strongest_refutation_paid_for_over_its_expectations() -> None:
    fine = _fake(Comparison(">=", 0.4), (0.5, 0.6), p=1e-6, p_ref=1.0)
    barely = _fake(Comparison(">=", 0.4), (0.3, 0.39), p=0.99, p_ref=0.02)
    clearly = _fake(Comparison(">=", 0.4), (0.1, 0.2), p=1.0, p_ref=1e-8)
    support, refute = ic_stats.claim_p_values([fine, barely, clearly])
    assert refute == pytest.approx(3e-8)  # Bonferroni over the three chances to refute
    decision = ic_stats.decide_claim([fine, barely, clearly], p_adjusted=support, p_adjusted_refute=refute, alpha=ALPHA)
    assert decision.outcome is Outcome.REFUTED
    assert decision.deciding == 2 and decision.p_value == pytest.approx(3e-8)
    # 0.02 alone would refute, but not once its three chances are paid for
    assert decision.outcomes[1] is Outcome.INCONCLUSIVE and decision.p_adjusted_refute[1] == pytest.approx(0.06)


# --------------------------------------------------------------------------- decide / combine


def _fake(comparison: Comparison, ci: tuple[float, float], p: float = 0.001, p_ref: float = 0.999) -> Evaluation:
    return Evaluation(
        statistic="score",
        comparison=comparison,
        n=64,
        estimate=(ci[0] + ci[1]) / 2,
        ci=ci,
        ci_level=0.9,
        ci_method="test",
        test="test",
        p_value=p,
        p_value_refute=p_ref,
        effect_size=None,
        effect_size_kind=None,
        null_estimate=None,
    )


@pytest.mark.parametrize(
    ("comparison", "ci", "expected"),
    [
        (Comparison(">=", 0.4), (0.4, 0.6), Outcome.SUPPORTED),  # non-strict: touching is fine
        (Comparison(">", 0.4), (0.4, 0.6), Outcome.INCONCLUSIVE),  # strict: touching is not
        (Comparison("<=", 0.6), (0.4, 0.6), Outcome.SUPPORTED),
        (Comparison("<", 0.6), (0.4, 0.6), Outcome.INCONCLUSIVE),
        (Comparison("between", 0.4, 0.6), (0.4, 0.6), Outcome.SUPPORTED),
        (Comparison("between", 0.4, 0.6), (0.39, 0.6), Outcome.INCONCLUSIVE),
    ],
)
def test_decide_support_boundaries(comparison: Comparison, ci: tuple[float, float], expected: Outcome) -> None:
    ev = _fake(comparison, ci)
    assert decide(ev, p_adjusted=0.001, p_adjusted_refute=0.999, alpha=ALPHA) is expected


@pytest.mark.parametrize(
    ("comparison", "ci", "expected"),
    [
        (Comparison(">=", 0.4), (0.2, 0.4), Outcome.INCONCLUSIVE),  # mean = 0.4 is not "< 0.4"
        (Comparison(">", 0.4), (0.2, 0.4), Outcome.REFUTED),  # mean <= 0.4 refutes "> 0.4"
        (Comparison("<=", 0.4), (0.4, 0.6), Outcome.INCONCLUSIVE),
        (Comparison("<", 0.4), (0.4, 0.6), Outcome.REFUTED),
        (Comparison("between", 0.4, 0.6), (0.1, 0.39), Outcome.REFUTED),
        (Comparison("between", 0.4, 0.6), (0.61, 0.7), Outcome.REFUTED),
        (Comparison("between", 0.4, 0.6), (0.3, 0.4), Outcome.INCONCLUSIVE),
    ],
)
def test_decide_refute_boundaries(comparison: Comparison, ci: tuple[float, float], expected: Outcome) -> None:
    ev = _fake(comparison, ci, p=0.999, p_ref=0.001)
    assert decide(ev, p_adjusted=0.999, p_adjusted_refute=0.001, alpha=ALPHA) is expected


def test_decide_needs_both_p_and_interval() -> None:
    inside = _fake(Comparison(">=", 0.4), (0.45, 0.6))
    # Interval on the claimed side, but the multiplicity-adjusted p is too large.
    assert decide(inside, p_adjusted=0.2, p_adjusted_refute=0.999, alpha=ALPHA) is Outcome.INCONCLUSIVE
    # Significant p, but the interval straddles the threshold.
    straddle = _fake(Comparison(">=", 0.4), (0.35, 0.6))
    assert decide(straddle, p_adjusted=0.001, p_adjusted_refute=0.999, alpha=ALPHA) is Outcome.INCONCLUSIVE
    below = _fake(Comparison(">=", 0.4), (0.1, 0.3))
    assert decide(below, p_adjusted=0.999, p_adjusted_refute=0.2, alpha=ALPHA) is Outcome.INCONCLUSIVE
    assert decide(below, p_adjusted=0.999, p_adjusted_refute=0.01, alpha=ALPHA) is Outcome.REFUTED


@pytest.mark.parametrize("where", ["p", "p_ref", "ci", "estimate"])
def test_decide_nan_anywhere_is_inconclusive(where: str) -> None:
    ev = _fake(Comparison(">=", 0.4), (0.45, 0.6))
    p, p_ref = 0.001, 0.999
    if where == "p":
        p = math.nan
    elif where == "p_ref":
        p_ref = math.nan
    elif where == "ci":
        ev = dataclasses.replace(ev, ci=(0.45, math.nan))
    else:
        ev = dataclasses.replace(ev, estimate=math.nan)
    assert decide(ev, p_adjusted=p, p_adjusted_refute=p_ref, alpha=ALPHA) is Outcome.INCONCLUSIVE


def test_outcome_is_a_string_enum() -> None:
    assert Outcome.SUPPORTED == "supported" and str(Outcome.REFUTED) == "refuted"
    assert json.dumps({"v": Outcome.INCONCLUSIVE}) == '{"v": "inconclusive"}'


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([Outcome.SUPPORTED], Outcome.SUPPORTED),
        ([Outcome.SUPPORTED, Outcome.SUPPORTED], Outcome.SUPPORTED),
        ([Outcome.SUPPORTED, Outcome.INCONCLUSIVE], Outcome.INCONCLUSIVE),
        ([Outcome.SUPPORTED, Outcome.REFUTED], Outcome.REFUTED),
        ([Outcome.INCONCLUSIVE, Outcome.REFUTED, Outcome.SUPPORTED], Outcome.REFUTED),
        ([Outcome.INCONCLUSIVE], Outcome.INCONCLUSIVE),
    ],
)
def test_combine(outcomes: list[Outcome], expected: Outcome) -> None:
    assert combine(outcomes) is expected
    assert combine(iter(outcomes)) is expected  # any iterable, consumed once


def test_combine_empty_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one outcome"):
        combine([])


# --------------------------------------------------------------------------- multiplicity


def test_holm_hand_worked_example() -> None:
    # p = [0.01, 0.04, 0.03, 0.005], m = 4. Sorted ascending with multipliers m, m-1, ...:
    #   0.005 (index 3) * 4 = 0.02
    #   0.01  (index 0) * 3 = 0.03
    #   0.03  (index 2) * 2 = 0.06
    #   0.04  (index 1) * 1 = 0.04 -> running max keeps 0.06 (monotonicity)
    # Back in input order: [0.03, 0.06, 0.06, 0.02].
    adjusted = adjust_p_values([0.01, 0.04, 0.03, 0.005], "holm")
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)


def test_holm_caps_at_one() -> None:
    # Sorted: 0.3*3 = 0.9, 0.5*2 = 1.0, 0.6*1 = 0.6 -> running max [0.9, 1.0, 1.0].
    np.testing.assert_allclose(adjust_p_values([0.5, 0.3, 0.6]), [1.0, 0.9, 1.0])
    # 0.5*3 = 1.5 -> capped at 1 everywhere.
    np.testing.assert_array_equal(adjust_p_values([0.5, 0.6, 0.7]), [1.0, 1.0, 1.0])


def test_bh_hand_worked_example_and_scipy() -> None:
    # BH on the same p: sorted p * m / rank = [0.02, 0.02, 0.04, 0.04]; cumulative min from
    # the top leaves them unchanged. Input order: [0.02, 0.04, 0.04, 0.02].
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(adjust_p_values(p, "bh"), [0.02, 0.04, 0.04, 0.02], rtol=1e-12)
    np.testing.assert_array_equal(adjust_p_values(p, "bh"), sps.false_discovery_control(p, method="bh"))


def test_adjust_none_and_empty() -> None:
    raw = np.array([0.2, 0.01])
    out = adjust_p_values(raw, "none")
    np.testing.assert_array_equal(out, raw)
    out[0] = 0.9
    assert raw[0] == 0.2  # a copy, not a view of the caller's array
    for method in ("holm", "bh", "none"):
        result = adjust_p_values([], method)  # type: ignore[arg-type]
        assert isinstance(result, np.ndarray) and result.shape == (0,)


@pytest.mark.parametrize(
    ("p", "method", "message"),
    [
        ([0.1, math.nan], "holm", "NaN"),
        ([0.1, 1.2], "holm", r"\[0, 1\]"),
        ([-0.1], "bh", r"\[0, 1\]"),
        ([[0.1, 0.2]], "holm", "1-D"),
        ([0.1], "bonferroni", "unknown p-value adjustment"),
    ],
)
def test_adjust_rejects_bad_input(p: list, method: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        adjust_p_values(p, method)  # type: ignore[arg-type]


p_lists = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(p_lists)
def test_property_adjusted_at_least_raw_and_holm_at_least_bh(p: list[float]) -> None:
    raw = np.array(p)
    holm = adjust_p_values(p, "holm")
    bh = adjust_p_values(p, "bh")
    slack = 1e-12  # BH divides m*p by the rank: allow rounding at the last bit
    assert np.all(holm >= raw)
    assert np.all(bh >= raw - slack)
    assert np.all(holm >= bh - slack)
    assert np.all((holm >= 0) & (holm <= 1)) and np.all((bh >= 0) & (bh <= 1))


@settings(max_examples=150, deadline=None)
@given(p_lists)
def test_property_holm_is_monotone_in_raw_p(p: list[float]) -> None:
    raw = np.array(p)
    holm = adjust_p_values(p, "holm")
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(holm[order]) >= 0)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_property_order_invariance(data: st.DataObject) -> None:
    p = data.draw(p_lists)
    perm = np.array(data.draw(st.permutations(range(len(p)))))
    raw = np.array(p)
    for method in ("holm", "bh", "none"):
        direct = adjust_p_values(raw, method)  # type: ignore[arg-type]
        permuted = adjust_p_values(raw[perm], method)  # type: ignore[arg-type]
        np.testing.assert_allclose(permuted, direct[perm], rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- effect size


def test_paired_cohens_dz_matches_hand_formula() -> None:
    samples = [0.9, 0.7, 0.8, 0.6, 0.75]
    null = [0.2, 0.3, 0.1, 0.25, 0.2]
    diffs = [a - b for a, b in zip(samples, null)]  # [0.7, 0.4, 0.7, 0.35, 0.55]
    mean = sum(diffs) / len(diffs)  # 0.54
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))  # sqrt(0.107 / 4)
    ev = evaluate(samples, Comparison(">=", 0.5), null_samples=null, null_kind="shuffled model", n_resamples=999)
    assert ev.effect_size == pytest.approx(mean / sd, rel=1e-12)
    assert ev.effect_size == pytest.approx(3.3017, abs=1e-4)
    assert ev.effect_size_kind == "Cohen's d_z, paired by sequence: claim statistic minus shuffled model"
    assert ev.null_estimate == pytest.approx(0.21)


def test_unpaired_hedges_g_matches_hand_formula() -> None:
    samples = [0.9, 0.7, 0.8, 0.6, 0.75]
    null = [0.2, 0.3, 0.1, 0.25]
    n1, n2 = len(samples), len(null)
    m1, m2 = sum(samples) / n1, sum(null) / n2
    ss = sum((v - m1) ** 2 for v in samples) + sum((v - m2) ** 2 for v in null)
    df = n1 + n2 - 2
    d = (m1 - m2) / math.sqrt(ss / df)
    j_exact = math.exp(math.lgamma(df / 2) - math.lgamma((df - 1) / 2)) / math.sqrt(df / 2)
    ev = evaluate(samples, Comparison(">=", 0.5), null_samples=null, n_resamples=999)
    assert ev.effect_size == pytest.approx(j_exact * d, rel=1e-12)
    # The common approximation J ~ 1 - 3 / (4 df - 1) agrees to within 1%.
    assert ev.effect_size == pytest.approx((1 - 3 / (4 * df - 1)) * d, rel=1e-2)
    assert ev.effect_size_kind is not None and ev.effect_size_kind.startswith("Hedges' g, unpaired")
    assert "random-weights model" in ev.effect_size_kind
    assert ev.null_estimate == pytest.approx(0.2125)


def test_no_null_means_no_effect_size() -> None:
    ev = evaluate([0.1, 0.2, 0.3], Comparison(">=", 0.0), n_resamples=999)
    assert ev.effect_size is None and ev.effect_size_kind is None and ev.null_estimate is None


# Shifts are powers of two so the paired differences are exactly constant in binary.
@pytest.mark.parametrize(("shift", "expected"), [(0.125, math.inf), (-0.125, -math.inf), (0.0, 0.0)])
def test_zero_sd_paired_effect_size(shift: float, expected: float) -> None:
    null = np.array([0.25, 0.5, 0.75, 0.125])
    samples = null + shift
    ev = evaluate(samples, Comparison(">=", 0.0), null_samples=null, n_resamples=999)
    assert ev.effect_size == expected
    assert ev.note is not None and "standard deviation is 0" in ev.note
    assert ev.to_dict()["effect_size"] == (0.0 if expected == 0.0 else None)


def test_bad_null_samples() -> None:
    with pytest.raises(ValueError, match="null_samples contains 1 non-finite"):
        evaluate([0.1, 0.2], Comparison(">=", 0.0), null_samples=[0.1, math.nan])
    with pytest.raises(ValueError, match="null_samples is empty"):
        evaluate([0.1, 0.2], Comparison(">=", 0.0), null_samples=[])


# --------------------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize("samples", [[0.7], []])
def test_fewer_than_two_samples(samples: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" etc.
        ev = evaluate(samples, Comparison(">=", 0.4))
    assert ev.n == len(samples)
    assert all(math.isnan(v) for v in ev.ci)
    assert ev.p_value == 1.0 and ev.p_value_refute == 1.0
    assert ev.note is not None and "fewer than 2 samples: no inference possible" in ev.note
    assert verdict(ev) is Outcome.INCONCLUSIVE
    if samples:
        assert ev.estimate == 0.7
    else:
        assert math.isnan(ev.estimate)
    payload = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert payload["ci"] == [None, None]


CONSTANT_CASES = [
    (Comparison(">=", 0.4), 0.7, (0.0, 1.0), Outcome.SUPPORTED),
    (Comparison(">=", 0.4), 0.1, (1.0, 0.0), Outcome.REFUTED),
    (Comparison(">=", 0.4), 0.4, (1.0, 1.0), Outcome.INCONCLUSIVE),
    (Comparison(">", 0.4), 0.4, (1.0, 1.0), Outcome.INCONCLUSIVE),
    (Comparison("<=", 0.4), 0.1, (0.0, 1.0), Outcome.SUPPORTED),
    (Comparison("<", 0.4), 0.7, (1.0, 0.0), Outcome.REFUTED),
    (Comparison("<=", 0.4), 0.4, (1.0, 1.0), Outcome.INCONCLUSIVE),
    (Comparison("between", 0.2, 0.5), 0.3, (0.0, 1.0), Outcome.SUPPORTED),
    (Comparison("between", 0.2, 0.5), 0.6, (1.0, 0.0), Outcome.REFUTED),
    (Comparison("between", 0.2, 0.5), 0.1, (1.0, 0.0), Outcome.REFUTED),
    (Comparison("between", 0.2, 0.5), 0.5, (1.0, 1.0), Outcome.INCONCLUSIVE),
]


@pytest.mark.parametrize(
    ("comparison", "value", "p_pair", "expected"),
    CONSTANT_CASES,
    ids=[f"{c} x={v}" for c, v, _, _ in CONSTANT_CASES],
)
def test_constant_samples(comparison: Comparison, value: float, p_pair: tuple[float, float], expected: Outcome) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's degenerate-data warnings must not be reached
        ev = evaluate(np.full(32, value), comparison)
    assert ev.ci == (value, value) and ev.estimate == value
    assert (ev.p_value, ev.p_value_refute) == p_pair
    assert ev.note is not None and "zero variance" in ev.note
    assert verdict(ev) is expected


@pytest.mark.parametrize("bad", [[0.1, math.nan, 0.2, math.inf, 0.3], [-math.inf, 0.1, 0.2, 0.3, math.nan]])
def test_non_finite_samples_raise(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="samples contains 2 non-finite value"):
        evaluate(bad, Comparison(">=", 0.0))


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="1-D"):
        evaluate(np.zeros((4, 3)), Comparison(">=", 0.0))
    for alpha in (0.0, 0.5, -0.1, 1.0):
        with pytest.raises(ValueError, match="alpha"):
            evaluate([0.1, 0.2], Comparison(">=", 0.0), alpha=alpha)
    with pytest.raises(ValueError, match="n_resamples"):
        evaluate([0.1, 0.2], Comparison(">=", 0.0), n_resamples=0)
    with pytest.raises(TypeError, match="Comparison"):
        evaluate([0.1, 0.2], ">= 0.0")  # type: ignore[arg-type]


def test_two_samples_give_a_defined_and_cautious_answer() -> None:
    """Two sequences cannot support a claim near its threshold, but they can when it is far off."""
    near = evaluate([0.1, 0.3], Comparison(">=", 0.15), n_resamples=999)
    assert near.n == 2 and near.estimate == pytest.approx(0.2)
    assert all(math.isfinite(v) for v in (*near.ci, near.p_value, near.p_value_refute))
    assert verdict(near) is Outcome.INCONCLUSIVE
    far = evaluate([0.1, 0.1001], Comparison(">=", -100.0), n_resamples=999)
    assert far.p_value < 0.01


# --------------------------------------------------------------------------- determinism / serialisation


def test_same_seed_gives_identical_evaluation() -> None:
    x = np.random.default_rng(5).gamma(2.0, 0.1, 50)
    null = np.random.default_rng(6).gamma(2.0, 0.05, 50)
    kwargs = dict(null_samples=null, n_resamples=999, seed=123)
    a = evaluate(x, Comparison("between", 0.1, 0.3), **kwargs)
    b = evaluate(x.copy(), Comparison("between", 0.1, 0.3), **kwargs)
    assert a == b
    assert a.to_dict() == b.to_dict()
    c = evaluate(x, Comparison("between", 0.1, 0.3), null_samples=null, n_resamples=999, seed=124)
    assert c.ci != a.ci  # the seed does drive the bootstrap ...
    assert c.p_value == a.p_value  # ... and nothing else


def test_to_dict_is_strict_json() -> None:
    ev = evaluate(
        np.random.default_rng(8).normal(0.5, 0.1, 20),
        Comparison("between", 0.4, 0.6),
        statistic="induction_score",
        null_samples=np.random.default_rng(9).normal(0.1, 0.1, 20),
        n_resamples=999,
    )
    d = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert d["statistic"] == "induction_score"
    assert d["comparison"] == {"op": "between", "threshold": 0.4, "upper": 0.6, "text": "between 0.4 0.6"}
    assert d["n"] == 20 and isinstance(d["ci"], list) and len(d["ci"]) == 2
    assert d["ci_level"] == pytest.approx(0.9)
    assert set(d) == {f.name for f in dataclasses.fields(Evaluation)}


# --------------------------------------------------------------------------- a family larger than what was run


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=12),
    st.data(),
    st.sampled_from(["holm", "bh"]),
)
def test_a_selection_is_never_judged_more_leniently_than_the_whole_family(p: list[float], data: st.DataObject, method: str) -> None:
    """Re-running some claims of a family (``-k``, ``--lf``) with the family's size: the missing
    claims count as p = 1, so every adjusted p is at least what the full run gives."""
    full = adjust_p_values(p, method)  # type: ignore[arg-type]
    chosen = data.draw(st.lists(st.integers(0, len(p) - 1), min_size=1, unique=True))
    subset = adjust_p_values([p[i] for i in chosen], method, family_size=len(p))  # type: ignore[arg-type]
    alone = adjust_p_values([p[i] for i in chosen], method)  # type: ignore[arg-type]
    for j, i in enumerate(chosen):
        assert subset[j] >= full[i] - 1e-12
        assert subset[j] >= alone[j] - 1e-12


def test_family_size_pads_with_ones_and_refuses_a_smaller_family() -> None:
    np.testing.assert_allclose(adjust_p_values([0.01], "holm", family_size=5), [0.05])
    np.testing.assert_allclose(adjust_p_values([0.01, 0.02], "holm", family_size=4), [0.04, 0.06])
    with pytest.raises(ValueError, match="smaller"):
        adjust_p_values([0.1, 0.2], "holm", family_size=1)


# --------------------------------------------------------------------------- nulls with several draws


def test_pooled_null_effect_estimates_a_single_draws_effect_and_reports_the_spread() -> None:
    """One random initialisation is one draw of the null. Pooling draws must not inflate the effect
    size (averaging draws per sequence first would shrink the null's noise and grow d with the
    number of draws); it should sit among the single-draw effects and report their spread."""
    rng = np.random.default_rng(12)
    n = 200
    shared = rng.normal(0, 0.05, n)  # what every model does on a given sequence
    claim = 0.6 + shared + rng.normal(0, 0.05, n)
    null = 0.1 + shared[:, None] + rng.normal(0, 0.3, (n, 8))  # 8 noisy initialisations
    pooled = evaluate(claim, Comparison(">=", 0.5), null_samples=null, n_resamples=199)
    singles = [evaluate(claim, Comparison(">=", 0.5), null_samples=null[:, d], n_resamples=199).effect_size for d in range(8)]
    assert pooled.null_draws == 8 and pooled.effect_size_range == pytest.approx((min(singles), max(singles)))
    assert min(singles) <= pooled.effect_size <= max(singles)
    averaged_first = evaluate(claim, Comparison(">=", 0.5), null_samples=null.mean(axis=1), n_resamples=199).effect_size
    assert averaged_first > 2 * max(singles)  # the inflation the pooled estimator avoids
    # identical draws: exactly the single-draw effect size
    same = evaluate(claim, Comparison(">=", 0.5), null_samples=np.repeat(null[:, :1], 3, axis=1), n_resamples=199)
    assert same.effect_size == pytest.approx(singles[0])


@pytest.mark.parametrize(("op", "threshold", "margin"), [(">=", 0.4, 0.1), ("<", 0.4, -0.1), ("<=", 0.7, 0.2), ("between", 0.3, 0.2)])
def test_margin_is_oriented_towards_the_claim(op: str, threshold: float, margin: float) -> None:
    x = centred_normal(0.5, 0.1)
    comparison = Comparison("between", threshold, 0.7) if op == "between" else Comparison(op, threshold)  # type: ignore[arg-type]
    ev = evaluate(x, comparison, n_resamples=199)
    assert ev.margin == pytest.approx(margin)
    assert ev.margin_sd == pytest.approx(margin / np.std(x, ddof=1))


# --------------------------------------------------------------------------- windows of one document


def test_cluster_means_average_each_documents_rows_in_order() -> None:
    values = np.array([[1.0, 10.0], [3.0, np.nan], [5.0, 50.0], [np.nan, np.nan]])
    means, names = ic_stats.cluster_means(values, ["b", "b", "a", "c"])
    assert names == ["b", "a", "c"]
    np.testing.assert_allclose(means[:2], [[2.0, 10.0], [5.0, 50.0]])
    assert np.isnan(means[2]).all()


def test_documents_not_windows_keep_a_claim_calibrated() -> None:
    """Windows of one document share its luck: 64 windows from 16 documents, no true effect.
    Treating windows as independent supports a false "gain > 0" far more often than alpha; the
    document-level test stays near alpha."""
    rng = np.random.default_rng(21)
    runs, documents, per_document = 2000, 16, 4
    per_doc = rng.normal(0, 1, (runs, documents, 1))
    windows = (per_doc + rng.normal(0, 0.2, (runs, documents, per_document))).reshape(runs, -1)
    names = [f"d{i}" for i in range(documents) for _ in range(per_document)]
    window_level = ic_stats.evaluate_many(windows, Comparison(">", 0.0), n_resamples=199)
    by_document = np.stack([ic_stats.cluster_means(row, names)[0] for row in windows])
    document_level = ic_stats.evaluate_many(by_document, Comparison(">", 0.0), n_resamples=199)
    rate = lambda evs: sum(verdict(e) is Outcome.SUPPORTED for e in evs) / runs  # noqa: E731
    assert rate(window_level) > 3 * ALPHA
    assert 0.025 <= rate(document_level) <= 0.075
