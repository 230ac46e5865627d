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


def test_calibration_at_the_true_mean_on_skewed_data() -> None:
    """Threshold = true mean: a claim on either side is false-at-the-boundary.

    The rate of SUPPORTED verdicts is the type-I error and must be about alpha
    (for both tails, since Beta(2, 5) is right-skewed and the t-test's two
    tails err differently on skewed data), and the 1 - 2*alpha BCa interval
    must cover the true mean about 90% of the time.

    Reference (not used to set the bands): a 10,000-run version of this
    simulation gave 0.041 (">="), 0.055 ("<=") and 0.890 coverage.
    """
    runs, n = 400, 64
    true_mean = 2 / 7  # mean of Beta(2, 5)
    supported_ge = supported_le = covered = 0
    for i in range(runs):
        x = np.random.default_rng(10_000 + i).beta(2, 5, n)
        ge = evaluate(x, Comparison(">=", true_mean), alpha=ALPHA, seed=i, n_resamples=999)
        le = evaluate(x, Comparison("<=", true_mean), alpha=ALPHA, seed=i, n_resamples=999)
        supported_ge += verdict(ge) is Outcome.SUPPORTED
        supported_le += verdict(le) is Outcome.SUPPORTED
        covered += ge.ci[0] <= true_mean <= ge.ci[1]
        assert ge.ci_level == pytest.approx(1 - 2 * ALPHA)

    lo, hi = _binomial_band(ALPHA, runs)
    assert lo <= supported_ge / runs <= hi, supported_ge / runs
    assert lo <= supported_le / runs <= hi, supported_le / runs
    lo, hi = _binomial_band(1 - 2 * ALPHA, runs)
    assert lo <= covered / runs <= hi, covered / runs


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


def test_between_p_values_are_tost() -> None:
    x = np.random.default_rng(2).normal(0.5, 0.1, 40)
    ev = evaluate(x, Comparison("between", 0.45, 0.52), n_resamples=999)

    def p(alt: str, m: float) -> float:
        return float(sps.ttest_1samp(x, m, alternative=alt).pvalue)

    assert ev.p_value == pytest.approx(max(p("greater", 0.45), p("less", 0.52)))
    assert ev.p_value_refute == pytest.approx(min(1.0, 2 * min(p("less", 0.45), p("greater", 0.52))))
    assert "TOST" in ev.test


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


def test_two_samples_do_not_crash() -> None:
    ev = evaluate([0.1, 0.3], Comparison(">=", 0.0), n_resamples=999)
    assert ev.n == 2 and verdict(ev) in set(Outcome)


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
