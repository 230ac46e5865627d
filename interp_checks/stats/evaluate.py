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

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from interp_checks.numbers import finite_or_none
from interp_checks.stats.comparison import Comparison, _format_number

__all__ = ["Evaluation", "evaluate", "evaluate_against_draws", "evaluate_largest_mean", "evaluate_many"]

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
        estimand: what the estimate estimates, in words (the mean over sequences, or the largest
            of several members' means).
        null_draws: how many independent draws of the null (e.g. random initialisations) were
            pooled per sequence before the effect size was computed (0: no null).
        effect_size_range: the effect size against each single null draw (min, max), showing how
            much one draw of the null would have moved it; None with fewer than 2 draws.
        margin: how far the estimate lies inside the claimed region (negative: outside), in the
            statistic's units: ``estimate - t`` for ``>``/``>=``, ``t - estimate`` for ``<``/``<=``,
            the distance to the nearer bound for ``between``.
        margin_sd: ``margin`` in standard deviations of the per-sequence values (a standardised
            distance from the threshold, oriented so that positive favours the claim).
        members: for a statistic over several members (heads), each member's estimate, interval
            and p-values; None for a plain mean.
        deciding_member: the member with the largest mean (the one the claim is about).
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
    estimand: str = "mean over sequences"
    null_draws: int = 0
    effect_size_range: tuple[float, float] | None = None
    margin: float | None = None
    margin_sd: float | None = None
    members: tuple[dict[str, Any], ...] | None = None
    deciding_member: str | None = None

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
            "estimand": self.estimand,
            "null_draws": self.null_draws,
            "effect_size_range": None
            if self.effect_size_range is None
            else [finite_or_none(self.effect_size_range[0]), finite_or_none(self.effect_size_range[1])],
            "margin": finite_or_none(self.margin),
            "margin_sd": finite_or_none(self.margin_sd),
            "members": None if self.members is None else [dict(m) for m in self.members],
            "deciding_member": self.deciding_member,
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


def _t_test_p_values(samples: np.ndarray, comparison: Comparison) -> tuple[np.ndarray, np.ndarray, str]:
    """(p for the claim, p for its refutation, description naming the nulls), one p per row.

    ``samples`` is [rows, n]: each row is one independent set of per-sequence values. The tests run
    along the last axis, so calibration studies can judge thousands of repetitions in one call.
    """

    def p(alternative: str, popmean: float) -> np.ndarray:
        return np.asarray(stats.ttest_1samp(samples, popmean=popmean, alternative=alternative, axis=-1).pvalue, dtype=float)

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
    p_claim = np.maximum(p("greater", lo), p("less", hi))
    # The claim is refuted if the mean is significantly outside on *either*
    # side; two chances to reject, so Bonferroni-double the smaller p.
    p_refute = np.minimum(1.0, 2.0 * np.minimum(p("less", lo), p("greater", hi)))
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


def _bca_intervals(samples: np.ndarray, level: float, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """BCa bootstrap intervals of the mean, one per row of ``samples`` ([rows, n]); NaN where undefined."""
    rows, n = samples.shape
    batch = max(1, _MAX_BATCH_ELEMENTS // (rows * n))
    with warnings.catch_warnings():
        # Raised when BCa cannot be computed (e.g. a degenerate bootstrap
        # distribution); the NaN interval is reported via the note instead.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.bootstrap(
            (samples,),
            np.mean,
            confidence_level=level,
            method="BCa",
            n_resamples=n_resamples,
            rng=np.random.default_rng(seed),
            vectorized=True,
            batch=batch,
            axis=-1,
        )
    low = np.atleast_1d(np.asarray(result.confidence_interval.low, dtype=float))
    high = np.atleast_1d(np.asarray(result.confidence_interval.high, dtype=float))
    bad = ~(np.isfinite(low) & np.isfinite(high))
    low[bad] = high[bad] = np.nan
    return low, high


def _margin(estimate: float, comparison: Comparison) -> float:
    """Signed distance of ``estimate`` inside the claimed region (negative: outside)."""
    t = comparison.threshold
    if comparison.op in (">=", ">"):
        return estimate - t
    if comparison.op in ("<=", "<"):
        return t - estimate
    assert comparison.upper is not None
    return min(estimate - t, comparison.upper - estimate)


def _standardised_margin(margin: float, samples: np.ndarray) -> float | None:
    if samples.size < 2 or not math.isfinite(margin):
        return None
    sd = float(np.std(samples, ddof=1))
    if sd == 0:
        return None if margin == 0 else math.copysign(math.inf, margin)
    return margin / sd


def _check_common_arguments(comparison: Any, alpha: float, n_resamples: Any) -> tuple[float, int]:
    if not isinstance(comparison, Comparison):
        raise TypeError(f"comparison must be a Comparison, got {type(comparison).__name__}")
    alpha = float(alpha)
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5) so that the 1 - 2*alpha interval exists, got {alpha}")
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    return alpha, int(n_resamples)


def _null_effect(
    x: np.ndarray, null_samples: npt.ArrayLike | None, null_kind: str, notes: list[str]
) -> tuple[float | None, str | None, float | None, int, tuple[float, float] | None]:
    """(effect size, its kind, null mean, number of null draws, effect range over single draws).

    ``null_samples`` is one value per sequence ([n]) or one per sequence and independent null draw
    ([n, draws], e.g. several random initialisations on the same inputs). One draw of random
    weights is one sample of the null, so with several the paired effect size is computed against
    all of them: the mean difference over every (sequence, draw) pair divided by the root mean
    square of the per-draw standard deviations of the differences. That estimates the effect size
    against one typical draw (it does not grow with the number of draws, as averaging the draws per
    sequence first would, by removing the null's own noise), with less luck than any single draw;
    the effect against each single draw is kept as a range.
    """
    if null_samples is None:
        return None, None, None, 0, None
    null = np.asarray(null_samples, dtype=float)
    if null.ndim == 1:
        null = null[:, None]
    if null.ndim != 2 or null.size == 0:
        raise ValueError("null_samples is empty; pass None when no null model was run")
    draws = [_as_samples(column, "null_samples") for column in null.T]
    null_mean = float(np.mean(null))
    if len(draws) == 1:
        effect, kind = _effect_size(x, draws[0], null_kind, notes)
        return effect, kind, null_mean, 1, None
    singles = [_effect_size(x, draw, null_kind, [])[0] for draw in draws]
    finite = [d for d in singles if d is not None and math.isfinite(d)]
    spread = (min(finite), max(finite)) if finite else None
    if null.shape[0] != x.size:
        effect, kind = _effect_size(x, null.ravel(), f"{null_kind} ({len(draws)} draws pooled)", notes)
        return effect, kind, null_mean, len(draws), spread
    kind = (
        f"Cohen's d_z, paired by sequence, against {len(draws)} independent draws of the null: claim statistic "
        f"minus {null_kind}; mean difference over all draws / root-mean-square of the per-draw SDs of the differences"
    )
    if x.size < 2:
        notes.append("effect size undefined with fewer than 2 paired samples")
        return None, kind, null_mean, len(draws), spread
    differences = x[:, None] - null
    rms_sd = math.sqrt(float(np.mean(np.var(differences, axis=0, ddof=1))))
    effect = _effect_size_ratio(float(np.mean(differences)), rms_sd, "paired differences", notes)
    return effect, kind, null_mean, len(draws), spread


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
            weights): [n] or [n, draws] for several independent null draws
            (pooled per sequence, see :func:`_null_effect`). If it has as many
            rows as ``samples`` it is assumed to come from the *same sequences in
            the same order* and the effect size is paired (Cohen's d_z);
            otherwise unpaired (Hedges' g).
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
    alpha, n_resamples = _check_common_arguments(comparison, alpha, n_resamples)
    x = _as_samples(samples, "samples")
    notes: list[str] = []
    effect_size, effect_size_kind, null_estimate, null_draws, effect_range = _null_effect(x, null_samples, null_kind, notes)
    if x.size >= 2 and not np.all(x == x[0]):
        base = evaluate_many(x[None, :], comparison, statistic=statistic, alpha=alpha, seed=seed, n_resamples=n_resamples)[0]
    else:
        base = _degenerate(x, comparison, statistic, alpha)
    notes = ([base.note] if base.note else []) + notes
    return dataclasses.replace(
        base,
        effect_size=effect_size,
        effect_size_kind=effect_size_kind,
        null_estimate=null_estimate,
        null_draws=null_draws,
        effect_size_range=effect_range,
        note="; ".join(notes) if notes else None,
    )


def _degenerate(x: np.ndarray, comparison: Comparison, statistic: str, alpha: float) -> Evaluation:
    """Fewer than two samples, or all equal: defined answers instead of NaN p-values."""
    n = int(x.size)
    level = 1.0 - 2.0 * alpha
    if n < 2:
        estimate = float(x[0]) if n == 1 else math.nan
        return Evaluation(
            statistic=statistic,
            comparison=comparison,
            n=n,
            estimate=estimate,
            ci=(math.nan, math.nan),
            ci_level=level,
            ci_method=f"none: {n} sample(s), a bootstrap interval needs at least 2",
            test=f"none: {n} sample(s), a t-test needs at least 2",
            p_value=1.0,
            p_value_refute=1.0,
            effect_size=None,
            effect_size_kind=None,
            null_estimate=None,
            note="fewer than 2 samples: no inference possible",
            margin=_margin(estimate, comparison) if n == 1 else None,
        )
    value = float(x[0])
    p_value, p_value_refute = _constant_p_values(value, comparison)
    margin = _margin(value, comparison)
    return Evaluation(
        statistic=statistic,
        comparison=comparison,
        n=n,
        estimate=value,
        ci=(value, value),
        ci_level=level,
        ci_method=f"none: all {n} sequences gave the same value, so every resample mean equals it",
        test=(
            f"exact comparison of the common value with {comparison} (t-test undefined at zero variance); "
            "p = 0 strictly on a side, 1 otherwise"
        ),
        p_value=p_value,
        p_value_refute=p_value_refute,
        effect_size=None,
        effect_size_kind=None,
        null_estimate=None,
        note=(
            f"all {n} samples equal {_format_number(value)} (zero variance): "
            "interval collapses to that value and p-values are exact (0 or 1)"
        ),
        margin=margin,
        margin_sd=_standardised_margin(margin, x),
    )


def evaluate_many(
    samples: npt.ArrayLike,
    comparison: Comparison,
    *,
    statistic: str = "score",
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 9999,
) -> list[Evaluation]:
    """:func:`evaluate` (without a null) for each row of ``samples`` ([rows, n]), vectorised.

    This is the code path every evaluation takes: :func:`evaluate` calls it with one row. It exists
    so that calibration can be shown on thousands of seeded repetitions in seconds (the intervals
    and t-tests run along the last axis in one call). Rows with fewer than 2 values or zero variance
    get the exact degenerate answers of :func:`evaluate`. One bootstrap generator, seeded by
    ``seed``, serves all rows.
    """
    alpha, n_resamples = _check_common_arguments(comparison, alpha, n_resamples)
    try:
        x = np.asarray(samples, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"samples must be a 2-D array of numbers: {exc}") from None
    if x.ndim != 2:
        raise ValueError(f"evaluate_many takes [rows, n] samples, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"samples contain {int(np.count_nonzero(~np.isfinite(x)))} non-finite value(s)")
    rows, n = x.shape
    level = 1.0 - 2.0 * alpha
    regular = np.array([n >= 2 and not np.all(row == row[0]) for row in x], dtype=bool)
    out: list[Evaluation | None] = [None] * rows
    if regular.any():
        data = x[regular]
        low, high = _bca_intervals(data, level, n_resamples, seed)
        p_claim, p_refute, test = _t_test_p_values(data, comparison)
        estimates = data.mean(axis=1)
        sds = data.std(axis=1, ddof=1)
        ci_method = f"BCa bootstrap of the mean over {n} sequences, {n_resamples} resamples"
        for k, index in enumerate(np.flatnonzero(regular)):
            estimate = float(estimates[k])
            margin = _margin(estimate, comparison)
            undefined = math.isnan(low[k])
            out[index] = Evaluation(
                statistic=statistic,
                comparison=comparison,
                n=n,
                estimate=estimate,
                ci=(float(low[k]), float(high[k])),
                ci_level=level,
                ci_method=ci_method,
                test=test,
                p_value=float(p_claim[k]),
                p_value_refute=float(p_refute[k]),
                effect_size=None,
                effect_size_kind=None,
                null_estimate=None,
                note="BCa bootstrap interval could not be computed (degenerate bootstrap distribution)" if undefined else None,
                margin=margin,
                margin_sd=margin / float(sds[k]),
            )
    for index in np.flatnonzero(~regular):
        out[index] = _degenerate(x[index], comparison, statistic, alpha)
    return [e for e in out if e is not None]


def evaluate_largest_mean(
    samples: npt.ArrayLike,
    comparison: Comparison,
    members: list[str],
    *,
    statistic: str = "max_score",
    alpha: float = 0.05,
    seed: int = 0,
    null_samples: npt.ArrayLike | None = None,
    null_kind: str = "random-weights model",
    n_resamples: int = 9999,
) -> Evaluation:
    """A claim about the largest of several members' means ("some head of layer 1 scores >= 0.5",
    "no head of layer 0 scores >= 0.2"), from per-sequence values of each member ([n, members]).

    Why not the mean of per-sequence maxima: that is at least the largest member mean, and larger
    still when different members win on different sequences, so "some head has the role" would be
    supported with no head averaging the threshold. Here the estimand is max_j mean_j, and:

    * interval: the lower end is the largest member lower bound at one-sided level 1 - alpha/k
      (Bonferroni: all k bounds hold at once with probability >= 1 - alpha, so their maximum is a
      valid lower bound of the maximum, whichever member it is); the upper end is the largest
      member upper bound at 1 - alpha (the maximum's own member is below its bound with 1 - alpha);
    * ``>``/``>=`` (some member on the claimed side): H0 is "every member mean <= t", rejected by
      Bonferroni over members (p = min(1, k * smallest member p): the selection of the best member
      is paid for); refuted only if every member is significantly below (p = the largest member p);
    * ``<``/``<=`` (every member on the claimed side): an intersection-union test (p = the largest
      member p, no correction needed); refuted if some member is significantly above (Bonferroni).

    ``between`` is refused: write two claims. The effect size is the largest-mean member's, paired
    against the null.
    """
    alpha, n_resamples = _check_common_arguments(comparison, alpha, n_resamples)
    if comparison.op == "between":
        raise ValueError(f"{statistic} takes a one-sided expectation ('>= t' or '< t'); for a band write two claims")
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(members) or not members:
        raise ValueError(f"{statistic} needs [sequences, members] values for members {members}, got shape {x.shape}")
    k = len(members)
    columns = [_as_samples(x[:, j], f"{statistic}[{members[j]}]") for j in range(k)]
    # every member in one vectorised call per level (members are the rows)
    narrow = evaluate_many(x.T, comparison, statistic=statistic, alpha=alpha, seed=seed, n_resamples=n_resamples)
    wide = narrow if k == 1 else evaluate_many(x.T, comparison, statistic=statistic, alpha=alpha / k, seed=seed, n_resamples=n_resamples)
    best = int(np.argmax([e.estimate for e in narrow]))
    lows, highs = [e.ci[0] for e in wide], [e.ci[1] for e in narrow]
    ci = (math.nan, math.nan) if any(math.isnan(v) for v in lows + highs) else (max(lows), max(highs))
    claim_p = [e.p_value for e in narrow]
    refute_p = [e.p_value_refute for e in narrow]
    t = _format_number(comparison.threshold)
    if comparison.op in (">=", ">"):
        p_value, p_value_refute = min(1.0, k * min(claim_p)), max(refute_p)
        test = (
            f"largest of {k} member means: one-sided one-sample t-test per member over sequences; "
            f"H0: every member mean <= {t}, p = min(1, {k} x smallest member p) (Bonferroni over members); "
            f"refutation H0: some member mean >= {t}, p = largest member p (intersection-union)"
        )
    else:
        p_value, p_value_refute = max(claim_p), min(1.0, k * min(refute_p))
        test = (
            f"largest of {k} member means: one-sided one-sample t-test per member over sequences; "
            f"H0: some member mean >= {t}, p = largest member p (intersection-union); "
            f"refutation H0: every member mean <= {t}, p = min(1, {k} x smallest member p) (Bonferroni over members)"
        )
    notes: list[str] = []
    effect_size, effect_kind, null_estimate, null_draws, effect_range = _null_effect(columns[best], null_samples, null_kind, notes)
    notes += [f"{members[j]}: {e.note}" for j, e in enumerate(narrow) if e.note]
    estimate = narrow[best].estimate
    margin = _margin(estimate, comparison)
    member_rows = tuple(
        {
            "member": name,
            "estimate": finite_or_none(e.estimate),
            "ci": [finite_or_none(e.ci[0]), finite_or_none(e.ci[1])],
            "p_value": finite_or_none(e.p_value),
            "p_value_refute": finite_or_none(e.p_value_refute),
        }
        for name, e in zip(members, narrow)
    )
    return Evaluation(
        statistic=statistic,
        comparison=comparison,
        n=int(x.shape[0]),
        estimate=estimate,
        ci=ci,
        ci_level=1.0 - 2.0 * alpha,
        ci_method=(
            f"largest of {k} members' BCa bootstrap intervals of the mean over {x.shape[0]} sequences "
            f"({n_resamples} resamples): lower end at one-sided 1 - alpha/{k} per member (Bonferroni), "
            "upper end at one-sided 1 - alpha"
        ),
        test=test,
        p_value=p_value,
        p_value_refute=p_value_refute,
        effect_size=effect_size,
        effect_size_kind=effect_kind,
        null_estimate=null_estimate,
        note="; ".join(notes) if notes else None,
        estimand=f"largest of {k} member means (members: {', '.join(members)})",
        null_draws=null_draws,
        effect_size_range=effect_range,
        margin=margin,
        margin_sd=_standardised_margin(margin, columns[best]),
        members=member_rows,
        deciding_member=members[best],
    )


def _draw_moments(null: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per draw (row of ``null``), the sum and sum of squares of its values, and the values per draw:
    what a bootstrap over draws needs to recompute the pooled mean and sd of any resample."""
    return null.sum(axis=1), (null**2).sum(axis=1), null.shape[1]


def _bootstrap_z_over_draws(
    observed: float, null: np.ndarray, n_resamples: int, seed: int
) -> np.ndarray:
    """z of ``observed`` against each bootstrap resample of the null's draws (rows resampled with
    replacement, all of a draw's pooled values kept together), from per-draw moments so that memory
    is [resamples, draws] whatever the number of values per draw."""
    sums, squares, per_draw = _draw_moments(null)
    draws = null.shape[0]
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    batch = max(1, _MAX_BATCH_ELEMENTS // draws)
    for begin in range(0, n_resamples, batch):
        index = rng.integers(0, draws, size=(min(batch, n_resamples - begin), draws))
        count = draws * per_draw
        total, total_sq = sums[index].sum(axis=1), squares[index].sum(axis=1)
        mean = total / count
        variance = np.maximum(total_sq - count * mean**2, 0.0) / (count - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[begin : begin + len(index)] = (observed - mean) / np.sqrt(variance)
    return out


def _jackknife_z_over_draws(observed: float, null: np.ndarray) -> np.ndarray:
    """z of ``observed`` against the null with each draw (row) left out in turn."""
    sums, squares, per_draw = _draw_moments(null)
    count = (null.shape[0] - 1) * per_draw
    total, total_sq = sums.sum() - sums, squares.sum() - squares
    mean = total / count
    variance = np.maximum(total_sq - count * mean**2, 0.0) / (count - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (observed - mean) / np.sqrt(variance)


def _bca_constants(z: float, boot: np.ndarray, jackknife: np.ndarray) -> tuple[float, float]:
    """BCa's bias correction z0 (from the share of resamples below the estimate) and acceleration
    (from the jackknife's skewness): Efron & Tibshirani (1993), ch. 14."""
    below = (np.count_nonzero(boot < z) + 0.5 * np.count_nonzero(boot == z)) / boot.size
    z0 = float(stats.norm.ppf(np.clip(below, 1 / (boot.size + 1), boot.size / (boot.size + 1))))
    jackknife = jackknife[np.isfinite(jackknife)]
    spread = jackknife.mean() - jackknife
    denominator = 6 * float(np.sum(spread**2)) ** 1.5
    return z0, (float(np.sum(spread**3)) / denominator if denominator > 0 else 0.0)


def _bca_quantile(boot: np.ndarray, level: float, z0: float, acceleration: float) -> float:
    """The BCa bound: the bootstrap quantile at the level adjusted for bias and skewness."""
    u = z0 + stats.norm.ppf(level)
    return float(np.quantile(boot, stats.norm.cdf(z0 + u / (1 - acceleration * u))))


def _bca_p_below(boot: np.ndarray, t: float, z0: float, acceleration: float) -> float:
    """One-sided p for "z > t": the level at which the BCa lower bound equals t (the inversion of
    :func:`_bca_quantile`); its mirror (``-boot``, ``-t``, ``-z0``, ``-acceleration``) is the p for
    "z < t"."""
    share = (1 + np.count_nonzero(boot <= t)) / (boot.size + 1)
    w = float(stats.norm.ppf(min(share, boot.size / (boot.size + 1))))
    u = (w - z0) / (1 + acceleration * (w - z0))
    return float(stats.norm.cdf(u - z0))


def evaluate_against_draws(
    observed: float,
    null_draws: npt.ArrayLike,
    comparison: Comparison,
    *,
    statistic: str = "z",
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 9999,
    null_kind: str = "random-weights twins",
    unit: str = "score",
) -> Evaluation:
    """Judge a statistic of the weights (no input sequences, so nothing to resample) by where it
    stands in a null distribution of draws (the same statistic on random-weights twins).

    ``null_draws`` is [draws] (one value per independent draw) or [draws, values]: several values of
    one draw pooled (e.g. the composition score of every head pair of one random twin, which share
    that twin's weights and so are not independent of each other). The draw is the unit of
    resampling either way.

    The claim is about ``z = (observed - mean(null)) / sd(null)`` (mean and sd over every pooled
    value). The observed value is a fixed function of the weights; the only randomness is the finite
    sample of null draws, so the interval of z is a BCa bootstrap over the draws (mean and sd
    re-estimated in each resample, a draw's values kept together; jackknife over draws for the
    acceleration), at level 1 - 2*alpha like every other interval here, and each one-sided p-value
    is the level at which that BCa bound reaches the threshold. BCa rather than percentile: z's
    sampling error is mostly the sd's, whose bootstrap distribution is skewed; with a heavy-tailed
    null (t with 5 df) the percentile version supported a claim at the true z in 13% of runs at
    alpha 0.05, BCa in 7%. The empirical upper-tail p-value
    of the raw value among the pooled values, (1 + #{null >= observed}) / (values + 1), is reported
    in the note: with 200 values it cannot go below 1/201, which is why claims are stated on z.

    Calibration (``tests/unit/test_stats_draws.py``): with a normal null and the threshold at the
    true z, a claim is supported in about alpha of seeded repetitions for z from 0 to 20, and the
    interval covers the true z at about its level; z 3 and z 20 are told apart with 200 draws.
    """
    alpha, n_resamples = _check_common_arguments(comparison, alpha, n_resamples)
    null = _draws_matrix(null_draws)
    draws, values = null.shape[0], null.size
    if draws < 2:
        raise ValueError(f"a null of draws needs at least 2 independent draws, got {draws}")
    observed = float(observed)
    if not math.isfinite(observed):
        raise ValueError(f"the observed {unit} is not finite ({observed}): it is undefined for this model, so the claim cannot be judged")
    mean, sd = float(null.mean()), float(null.std(ddof=1))
    if sd == 0:
        raise ValueError(f"the null's {values} values are all equal ({mean}); z is undefined")
    z = (observed - mean) / sd
    level = 1 - 2 * alpha
    boot = _bootstrap_z_over_draws(observed, null, n_resamples, seed)
    boot = boot[np.isfinite(boot)]  # a resample of one repeated constant draw has sd 0
    z0, acceleration = _bca_constants(z, boot, _jackknife_z_over_draws(observed, null))
    low, high = _bca_quantile(boot, alpha, z0, acceleration), _bca_quantile(boot, 1 - alpha, z0, acceleration)
    t = comparison.threshold

    def above(threshold: float) -> float:  # p for "z > threshold"
        return _bca_p_below(boot, threshold, z0, acceleration)

    def below(threshold: float) -> float:  # p for "z < threshold"
        return _bca_p_below(-boot, -threshold, -z0, -acceleration)

    if comparison.op in (">=", ">"):
        p_claim, p_refute = above(t), below(t)
    elif comparison.op in ("<=", "<"):
        p_claim, p_refute = below(t), above(t)
    else:
        assert comparison.upper is not None
        p_claim = max(above(t), below(comparison.upper))
        p_refute = min(1.0, 2 * min(below(t), above(comparison.upper)))
    tail_p = (1 + int(np.count_nonzero(null >= observed))) / (values + 1)
    pooled = "" if values == draws else f" ({values} values pooled: {values // draws} per draw)"
    margin = _margin(z, comparison)
    return Evaluation(
        statistic=statistic,
        comparison=comparison,
        n=draws,
        estimate=float(z),
        ci=(low, high),
        ci_level=level,
        ci_method=(
            f"BCa bootstrap over the {draws} null draws{pooled}, a draw's values resampled together "
            f"({n_resamples} resamples; the observed {unit} is fixed)"
        ),
        test=(
            f"bootstrap test of z against {_format_number(t)} over the null draws; "
            f"z = ({unit} - mean of {null_kind}) / their sd"
        ),
        p_value=p_claim,
        p_value_refute=p_refute,
        effect_size=float(z),
        effect_size_kind=f"z of the {unit} against {draws} draws of {null_kind}",
        null_estimate=mean,
        note=(
            f"observed {unit} {observed:.4g}; null mean {mean:.4g}, sd {sd:.3g} over {draws} draws{pooled}; "
            f"empirical upper-tail p = {tail_p:.3g}"
        ),
        estimand=f"z of the {unit} against the null of draws (a statistic of the weights: no input sequences)",
        null_draws=draws,
        margin=margin,
        margin_sd=margin,
    )


def _draws_matrix(null_draws: npt.ArrayLike) -> np.ndarray:
    """[draws, values per draw] from [draws] or [draws, values]; finite numbers only."""
    null = np.asarray(null_draws, dtype=float)
    if null.ndim == 1:
        null = null[:, None]
    if null.ndim != 2 or null.shape[1] == 0:
        raise ValueError(f"null_draws must be [draws] or [draws, values per draw], got shape {null.shape}")
    bad = int(np.count_nonzero(~np.isfinite(null)))
    if bad:
        raise ValueError(f"null_draws contains {bad} non-finite value(s) (NaN or inf) out of {null.size}")
    return null
