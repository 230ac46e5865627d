"""A ratio of two means over sequences: normalised patching effects, faithfulness.

Why not a mean of per-sequence ratios: a normalised effect such as (m(patched) - m(corrupted)) /
(m(clean) - m(corrupted)) divides by a gap that is small on some sequences (the corruption hardly
changed them), and a per-sequence ratio then explodes: one sequence with a gap of 0.01 nats and a
change of 1 nat contributes 100 to the mean. The estimand here is instead

    R = mean_i(numerator_i) / mean_i(denominator_i),

the share of the *average* gap that the intervention moves, which gives each sequence weight in
proportion to its gap. It is the estimand TransformerLens's ``PatchingResult.normalized`` has when
its per-example effects are averaged before dividing, and MIB's faithfulness f(C) on a batch.

* interval: paired BCa bootstrap of R over sequences (numerator and denominator resampled
  together), at level 1 - 2*alpha like :func:`stats.evaluate`;
* test: Fieller's linearisation. With mean(denominator) > 0, "R >= t" holds exactly when
  mean(numerator - t * denominator) >= 0, so the claim is tested by a one-sided one-sample t-test
  of d_i = numerator_i - t * denominator_i over sequences; no ratio is ever formed per sequence;
* a denominator whose mean is negative (noising lowers the metric) is turned round with its
  numerator (same ratio), and must then differ significantly from 0 (a two-sided t-test at alpha): where the
  clean and corrupted runs do not differ, "what share of the gap" has no answer (Fieller's
  interval is unbounded), and both p-values are 1 (inconclusive) with a note saying why;
* no effect size against a null (on a random-weights model the gap is about 0, so its share is
  undefined); the standardised margin (``margin_sd``) is Cohen's d_z of d_i against 0: how many
  standard deviations of the linearised per-sequence values the ratio lies inside the claim.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
from scipy import stats

from interp_checks.stats.comparison import Comparison, _format_number
from interp_checks.stats.evaluate import Evaluation, _as_samples, _check_common_arguments, _margin, _t_test_p_values

__all__ = ["evaluate_ratio", "ratio_shares"]


def ratio_shares(numerators: npt.ArrayLike, denominators: npt.ArrayLike) -> np.ndarray:
    """Each sequence's numerator over the mean denominator: values whose mean is R, for pictures of
    the per-sequence spread (never a per-sequence ratio, see the module doc)."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    scale = float(np.mean(den)) if den.size else math.nan
    return num / scale if scale != 0 else np.full_like(num, math.nan)


def _ratio_interval(num: np.ndarray, den: np.ndarray, level: float, n_resamples: int, seed: int) -> tuple[tuple[float, float], str]:
    """Paired bootstrap interval of the ratio of means, and its method in words: BCa, or the
    percentile interval where BCa is undefined (e.g. every sequence has the same ratio, so the
    jackknife has no spread; the percentile interval then collapses to that ratio, as it should)."""

    def ratio(n: np.ndarray, d: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(n, axis=axis) / np.mean(d, axis=axis)

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.bootstrap(
                (num, den), ratio, paired=True, vectorized=True, confidence_level=level, method=method,
                n_resamples=n_resamples, rng=np.random.default_rng(seed),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            why = "" if method == "BCa" else " (BCa undefined on these values)"
            return (low, high), f"paired {method} bootstrap of the ratio of means over {num.size} sequences, {n_resamples} resamples{why}"
    return (math.nan, math.nan), "none: the bootstrap of the ratio is undefined on these values"


def _linearised_p_values(num: np.ndarray, den: np.ndarray, comparison: Comparison) -> tuple[float, float, str]:
    """(p for the claim, p for its refutation, the test in words) from d = num - t * den."""
    t = comparison.threshold
    if comparison.op != "between":
        d = num - t * den
        p_claim, p_refute, _ = _t_test_p_values(d[None, :], Comparison(comparison.op, 0.0))
        ts = _format_number(t)
        side = ">" if comparison.op in (">=", ">") else "<"
        test = (
            f"Fieller-linearised one-sided one-sample t-test over sequences of d = numerator - {ts} x denominator "
            f"(R {side} {ts} exactly when mean(d) {side} 0, given mean(denominator) > 0); "
            f"H0: R {'<=' if side == '>' else '>='} {ts}; refutation H0: R {'>=' if side == '>' else '<='} {ts}"
        )
        return float(p_claim[0]), float(p_refute[0]), test
    assert comparison.upper is not None
    low, high = num - t * den, num - comparison.upper * den

    def p(x: np.ndarray, alternative: str) -> float:
        return float(stats.ttest_1samp(x, 0.0, alternative=alternative).pvalue)

    p_claim = max(p(low, "greater"), p(high, "less"))
    p_refute = min(1.0, 2.0 * min(p(low, "less"), p(high, "greater")))
    test = (
        f"TOST on Fieller-linearised values: one-sided t-tests of numerator - {_format_number(t)} x denominator > 0 "
        f"and numerator - {_format_number(comparison.upper)} x denominator < 0 (p = larger); refutation: either "
        "opposite (p = 2 x smaller, Bonferroni)"
    )
    return p_claim, p_refute, test


def evaluate_ratio(
    numerators: npt.ArrayLike,
    denominators: npt.ArrayLike,
    comparison: Comparison,
    *,
    statistic: str = "ratio",
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 9999,
    null_kind: str | None = None,
) -> Evaluation:
    """Estimate, interval and p-values for a claim about R = mean(numerators) / mean(denominators),
    one pair per sequence (see the module doc for the interval, the test and why).

    ``null_kind``: the null the claim's other statistics are compared with, named in the note; the
    ratio itself gets no effect size against it (on a random-weights model the gap is about zero,
    so its ratio is undefined).
    """
    alpha, n_resamples = _check_common_arguments(comparison, alpha, n_resamples)
    num, den = _as_samples(numerators, "numerators"), _as_samples(denominators, "denominators")
    if num.size != den.size:
        raise ValueError(f"{num.size} numerators but {den.size} denominators: one pair per sequence")
    n = int(num.size)
    level = 1.0 - 2.0 * alpha
    if n and np.mean(den) < 0:  # a gap that runs downwards (noising lowers the metric): same ratio, oriented up
        num, den = -num, -den
    estimand = "ratio of means over sequences: mean(numerator) / mean(denominator)"
    notes = [] if null_kind is None else [f"no effect size against the null ({null_kind}): the ratio's gap is about 0 there"]
    gap_p = float(stats.ttest_1samp(den, 0.0).pvalue) if n >= 2 and np.std(den) > 0 else math.nan
    estimate = float(np.mean(num) / np.mean(den)) if n and np.mean(den) != 0 else math.nan
    gap_ok = n >= 2 and (gap_p < alpha or (np.std(den) == 0 and den[0] > 0))
    if not gap_ok:
        reason = (
            f"the denominator (the gap the ratio is a share of) is not significantly different from 0 "
            f"(|mean| {float(np.mean(den)) if n else math.nan:.3g}, two-sided t-test p = "
            f"{f'{gap_p:.3g}' if math.isfinite(gap_p) else 'undefined'}): the share has no bounded interval "
            "(Fieller), so the claim is neither supported nor refuted"
        )
        return Evaluation(
            statistic=statistic, comparison=comparison, n=n, estimate=estimate, ci=(math.nan, math.nan), ci_level=level,
            ci_method="none: the denominator is not significantly different from 0", test="none: " + reason,
            p_value=1.0, p_value_refute=1.0, effect_size=None, effect_size_kind=None, null_estimate=None,
            note="; ".join([reason, *notes]), estimand=estimand,
        )
    if np.all(num == num[0]) and np.all(den == den[0]):
        ci = (estimate, estimate)
        ci_method = f"none: all {n} sequences gave the same pair, so every resample gives the same ratio"
    else:
        ci, ci_method = _ratio_interval(num, den, level, n_resamples, seed)
    bound = comparison.threshold
    linear = num - bound * den
    if np.std(linear) == 0:
        value = float(linear[0])
        above, below = value > 0, value < 0
        claims_above = comparison.op in (">=", ">")
        p_claim = 0.0 if (above if claims_above else below) else 1.0
        p_refute = 0.0 if (below if claims_above else above) else 1.0
        test = "exact: numerator - t x denominator is the same on every sequence (zero variance)"
        margin_sd = None if value == 0 else math.copysign(math.inf, value)
    else:
        p_claim, p_refute, test = _linearised_p_values(num, den, comparison)
        margin_sd = float(np.mean(linear) / np.std(linear, ddof=1))
    if comparison.op in ("<=", "<") and margin_sd is not None:
        margin_sd = -margin_sd  # oriented like margin: positive favours the claim
    margin = _margin(estimate, comparison)
    return Evaluation(
        statistic=statistic, comparison=comparison, n=n, estimate=estimate, ci=ci, ci_level=level, ci_method=ci_method,
        test=test, p_value=p_claim, p_value_refute=p_refute, effect_size=None, effect_size_kind=None,
        null_estimate=None, note="; ".join(notes) if notes else None, estimand=estimand, margin=margin,
        margin_sd=None if comparison.op == "between" else margin_sd,
    )
