"""Turn per-sequence values of a statistic into an estimate, an interval and p-values.

The unit of analysis is the *input sequence*: a check produces one number per
sequence (e.g. a head's mean attention score on that sequence), and those
numbers are treated as independent draws. Token positions within a sequence
are not independent, so they are never used as samples here; averaging them
into one value per sequence first is the caller's job.

Two things are reported for every claim and both must agree before a claim is
called supported (see :mod:`interp_checks.stats.verdict`):

* a **BCa bootstrap interval of the mean at level 1 - 2*alpha**. The odd level
  is deliberate: each end of a two-sided (1 - 2*alpha) interval is a one-sided
  (1 - alpha) confidence bound, so "the whole interval lies on the claimed side
  of the threshold" is a one-sided test at level alpha. For ``between A B``
  requiring the interval to sit inside [A, B] is exactly the interval form of
  TOST (two one-sided tests) equivalence testing at level alpha.
* **one-sided one-sample t-test p-values** against the threshold, in both
  directions: ``p_value`` tests the claim (H0: the claim is false) and
  ``p_value_refute`` tests its opposite (H0: the claim is true). Having both is
  what lets a verdict be three-valued: supported, refuted, or inconclusive.
  The p-values (not the interval) are what multiplicity correction adjusts.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from interp_checks.numbers import finite_or_none
from interp_checks.stats.comparison import Comparison, _format_number

__all__ = ["Evaluation", "evaluate"]

# Bootstrap resamples and BCa's jackknife are materialised as (batch, n)
# arrays; capping batch * n keeps memory near 32 MiB whatever the sample size.
_MAX_BATCH_ELEMENTS = 2**22


@dataclass(frozen=True)
class Evaluation:
    """Everything the statistics layer concluded about one claimed comparison.

    The verdict itself is not stored here: it depends on the multiplicity
    adjustment across all claims in a run, which is decided later by
    :func:`interp_checks.stats.verdict.decide`.

    Attributes:
        statistic: name of the statistic (as given to :func:`evaluate`).
        comparison: the claimed comparison.
        n: number of independent samples (sequences).
        estimate: mean of the samples (NaN only when ``n == 0``).
        ci: two-sided interval at ``ci_level``; ``(nan, nan)`` when undefined.
        ci_level: ``1 - 2*alpha``; each end is a one-sided (1 - alpha) bound.
        ci_method: how the interval was obtained, in words.
        test: which test produced the p-values and what its null hypotheses are.
        p_value: one-sided p for the claim (H0: the claim is false).
        p_value_refute: one-sided p for the opposite (H0: the claim is true).
        effect_size: standardised difference from the null model, if one was run.
        effect_size_kind: which effect size ``effect_size`` is, in words.
        null_estimate: mean of the null samples, if any.
        note: why a degenerate case was handled specially, if it was.
    """

    statistic: str
    comparison: Comparison
    n: int
    estimate: float
    ci: tuple[float, float]
    ci_level: float
    ci_method: str
    test: str
    p_value: float
    p_value_refute: float
    effect_size: float | None
    effect_size_kind: str | None
    null_estimate: float | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: plain floats and lists, non-finite numbers as ``None``.

        Infinite effect sizes (zero-variance differences) also become ``None``;
        ``note`` then records the sign.
        """
        comparison = self.comparison
        return {
            "statistic": self.statistic,
            "comparison": {
                "op": comparison.op,
                "threshold": comparison.threshold,
                "upper": comparison.upper,
                "text": str(comparison),
            },
            "n": int(self.n),
            "estimate": finite_or_none(self.estimate),
            "ci": [finite_or_none(self.ci[0]), finite_or_none(self.ci[1])],
            "ci_level": finite_or_none(self.ci_level),
            "ci_method": self.ci_method,
            "test": self.test,
            "p_value": finite_or_none(self.p_value),
            "p_value_refute": finite_or_none(self.p_value_refute),
            "effect_size": finite_or_none(self.effect_size),
            "effect_size_kind": self.effect_size_kind,
            "null_estimate": finite_or_none(self.null_estimate),
            "note": self.note,
        }


def _as_samples(values: npt.ArrayLike, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of numbers: {exc}") from None
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one value per sequence), got shape {array.shape}; "
            "reduce token positions to one value per sequence first"
        )
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf) out of {array.size}")
    return array


def _effect_size_ratio(diff: float, sd: float, what: str, notes: list[str]) -> float:
    """``diff / sd`` with the zero-variance case defined instead of NaN."""
    if sd > 0:
        return diff / sd
    value = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    notes.append(f"{what}: standard deviation is 0, effect size set to {value}")
    return value


def _effect_size(
    samples: np.ndarray, null: np.ndarray, null_kind: str, notes: list[str]
) -> tuple[float | None, str | None]:
    n, m = samples.size, null.size
    if n == m:
        # Same length: the null model saw the same input sequences in the same
        # order, so pairing removes the per-sequence variation shared by both.
        kind = f"Cohen's d_z, paired by sequence: claim statistic minus {null_kind}"
        if n < 2:
            notes.append("effect size undefined with fewer than 2 paired samples")
            return None, kind
        diff = samples - null
        return _effect_size_ratio(float(np.mean(diff)), float(np.std(diff, ddof=1)), "paired differences", notes), kind
    kind = (
        f"Hedges' g, unpaired ({n} vs {m} samples), pooled SD with small-sample correction: "
        f"claim statistic minus {null_kind}"
    )
    df = n + m - 2
    if n < 1 or df < 2:
        notes.append("effect size undefined: Hedges' g needs n_claim + n_null >= 4")
        return None, kind
    mean_x, mean_y = float(np.mean(samples)), float(np.mean(null))
    # Sums of squares rather than ddof=1 variances so that a group of size 1
    # contributes 0 instead of NaN.
    ss = float(np.sum((samples - mean_x) ** 2) + np.sum((null - mean_y) ** 2))
    d = _effect_size_ratio(mean_x - mean_y, math.sqrt(ss / df), "pooled", notes)
    # Exact small-sample correction J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2));
    # 1 - 3/(4 df - 1) is its usual approximation.
    correction = math.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(df / 2)
    return correction * d, kind


def _t_test_p_values(samples: np.ndarray, comparison: Comparison) -> tuple[float, float, str]:
    """(p for the claim, p for its refutation, description naming the nulls)."""

    def p(alternative: str, popmean: float) -> float:
        return float(stats.ttest_1samp(samples, popmean=popmean, alternative=alternative).pvalue)

    t = comparison.threshold
    ts = _format_number(t)
    if comparison.op in (">=", ">"):
        return (
            p("greater", t),
            p("less", t),
            f"one-sided one-sample t-test over sequences; H0: mean <= {ts} (vs mean > {ts}); "
            f"refutation H0: mean >= {ts} (vs mean < {ts})",
        )
    if comparison.op in ("<=", "<"):
        return (
            p("less", t),
            p("greater", t),
            f"one-sided one-sample t-test over sequences; H0: mean >= {ts} (vs mean < {ts}); "
            f"refutation H0: mean <= {ts} (vs mean > {ts})",
        )
    assert comparison.upper is not None
    lo, hi = t, comparison.upper
    ls, hs = ts, _format_number(hi)
    # TOST: the claim needs *both* one-sided tests to reject, so its p is the max.
    p_claim = max(p("greater", lo), p("less", hi))
    # The claim is refuted if the mean is significantly outside on *either*
    # side; two chances to reject, so Bonferroni-double the smaller p.
    p_refute = min(1.0, 2.0 * min(p("less", lo), p("greater", hi)))
    return (
        p_claim,
        p_refute,
        f"TOST equivalence, two one-sided one-sample t-tests over sequences; "
        f"H0: mean <= {ls} or mean >= {hs} (p = larger of the two); "
        f"refutation H0: {ls} <= mean <= {hs}, tested as mean < {ls} or mean > {hs} "
        f"(p = 2 x smaller, Bonferroni)",
    )


def _constant_p_values(value: float, comparison: Comparison) -> tuple[float, float]:
    """Exact p-values when every sample equals ``value`` (no sampling variance).

    With zero variance the t statistic is +-inf or 0/0, so the decision is made
    from the common value: strictly on the claimed side -> (0, 1); strictly on
    the other side -> (1, 0); exactly on a boundary -> (1, 1), i.e.
    inconclusive, because a value sitting on the threshold can neither support
    nor refute a claim about which side the mean lies on.
    """
    t = comparison.threshold
    if comparison.op in (">=", ">"):
        above, below = value > t, value < t
        return (0.0 if above else 1.0, 0.0 if below else 1.0)
    if comparison.op in ("<=", "<"):
        above, below = value > t, value < t
        return (0.0 if below else 1.0, 0.0 if above else 1.0)
    assert comparison.upper is not None
    inside = t < value < comparison.upper
    outside = value < t or value > comparison.upper
    return (0.0 if inside else 1.0, 0.0 if outside else 1.0)


def _bca_interval(
    samples: np.ndarray, level: float, n_resamples: int, seed: int, notes: list[str]
) -> tuple[float, float]:
    batch = max(1, _MAX_BATCH_ELEMENTS // samples.size)
    with warnings.catch_warnings():
        # Raised when BCa cannot be computed (e.g. a degenerate bootstrap
        # distribution); the NaN interval is reported via the note instead.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (samples,),
            np.mean,
            confidence_level=level,
            method="BCa",
            n_resamples=n_resamples,
            rng=np.random.default_rng(seed),
            vectorized=True,
            batch=batch,
        )
    lo, hi = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        notes.append("BCa bootstrap interval could not be computed (degenerate bootstrap distribution)")
        return (math.nan, math.nan)
    return (lo, hi)


def evaluate(
    samples: npt.ArrayLike,
    comparison: Comparison,
    *,
    statistic: str = "score",
    alpha: float = 0.05,
    seed: int = 0,
    null_samples: npt.ArrayLike | None = None,
    null_kind: str = "random-weights model",
    n_resamples: int = 9999,
) -> Evaluation:
    """Estimate, interval, p-values and effect size for one claimed comparison.

    Args:
        samples: one value of the statistic per input sequence (1-D, finite).
        comparison: the claimed comparison of the population mean.
        statistic: name of the statistic, carried into the result for reports.
        alpha: one-sided error rate; the interval is at level ``1 - 2*alpha``
            so that each end is a one-sided (1 - alpha) bound (see module doc).
        seed: seeds the bootstrap, so the same inputs give the same result.
        null_samples: the same statistic from a null model (e.g. random
            weights). If it has the same length as ``samples`` it is assumed
            to come from the *same sequences in the same order* and the effect
            size is paired (Cohen's d_z); otherwise unpaired (Hedges' g).
        null_kind: what the null model is, for the effect-size description.
        n_resamples: bootstrap resamples.

    Degenerate inputs give a defined, inconclusive-leaning result instead of
    NaN p-values: fewer than 2 samples -> interval ``(nan, nan)`` and both
    p-values 1; all samples equal -> interval collapsed to the value and exact
    p-values (see :func:`_constant_p_values`). Each sets ``note``.

    Raises:
        ValueError: non-finite or non-1-D samples, empty ``null_samples``,
            ``alpha`` outside (0, 0.5), ``n_resamples < 1``.
        TypeError: ``comparison`` is not a :class:`Comparison`.
    """
    if not isinstance(comparison, Comparison):
        raise TypeError(f"comparison must be a Comparison, got {type(comparison).__name__}")
    alpha = float(alpha)
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5) so that the 1 - 2*alpha interval exists, got {alpha}")
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    n_resamples = int(n_resamples)

    x = _as_samples(samples, "samples")
    n = int(x.size)
    level = 1.0 - 2.0 * alpha
    notes: list[str] = []

    effect_size: float | None = None
    effect_size_kind: str | None = None
    null_estimate: float | None = None
    if null_samples is not None:
        null = _as_samples(null_samples, "null_samples")
        if null.size == 0:
            raise ValueError("null_samples is empty; pass None when no null model was run")
        null_estimate = float(np.mean(null))
        effect_size, effect_size_kind = _effect_size(x, null, null_kind, notes)

    if n < 2:
        estimate = float(x[0]) if n == 1 else math.nan
        notes.insert(0, "fewer than 2 samples: no inference possible")
        ci: tuple[float, float] = (math.nan, math.nan)
        ci_method = f"none: {n} sample(s), a bootstrap interval needs at least 2"
        test = f"none: {n} sample(s), a t-test needs at least 2"
        p_value = p_value_refute = 1.0
    elif np.all(x == x[0]):
        value = float(x[0])
        estimate = value
        notes.insert(
            0,
            f"all {n} samples equal {_format_number(value)} (zero variance): "
            "interval collapses to that value and p-values are exact (0 or 1)",
        )
        ci = (value, value)
        ci_method = f"none: all {n} sequences gave the same value, so every resample mean equals it"
        test = (
            f"exact comparison of the common value with {comparison} (t-test undefined at zero variance); "
            "p = 0 strictly on a side, 1 otherwise"
        )
        p_value, p_value_refute = _constant_p_values(value, comparison)
    else:
        estimate = float(np.mean(x))
        ci = _bca_interval(x, level, n_resamples, seed, notes)
        ci_method = f"BCa bootstrap of the mean over {n} sequences, {n_resamples} resamples"
        p_value, p_value_refute, test = _t_test_p_values(x, comparison)

    return Evaluation(
        statistic=statistic,
        comparison=comparison,
        n=n,
        estimate=estimate,
        ci=ci,
        ci_level=level,
        ci_method=ci_method,
        test=test,
        p_value=p_value,
        p_value_refute=p_value_refute,
        effect_size=effect_size,
        effect_size_kind=effect_size_kind,
        null_estimate=null_estimate,
        note="; ".join(notes) if notes else None,
    )
