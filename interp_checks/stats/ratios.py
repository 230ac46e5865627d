"""Ratios of means, and an observed ratio against draws of the same ratio: the statistics of a
normalised effect such as a circuit's faithfulness.

Why a ratio of means and not a mean of per-sequence ratios. Faithfulness (MIB) is
f = (m(C) - m(empty)) / (m(model) - m(empty)). Per sequence, the denominator is how much better the
model does than the empty circuit on that sequence; where it is near 0 (a sequence the model gets
no better than its fully ablated self: text without repeats, an untrained model) a per-sequence f
is 0/0-like, its mean is dominated by those sequences and has no finite variance, so a t-test or
bootstrap of it means nothing. The ratio of the mean numerator to the mean denominator is the share
of the model's total gain (over these inputs) that the circuit recovers: defined whenever the model
beats the empty circuit on average, and a smooth function of two means, so the sequence stays the
unit of sampling:

* interval: BCa bootstrap over sequences, each resample taking a sequence's numerator and
  denominator together (paired), at level 1 - 2*alpha like every interval here;
* test (Fieller's linearisation): with a positive mean denominator, R >= t exactly when
  mean(num - t * den) >= 0, so the p-values are one-sample t-tests of the per-sequence
  g = num - t * den against 0 (no delta-method approximation of the ratio's variance);
* a denominator that is not reliably positive (its own one-sided t-test at alpha) leaves the ratio
  undefined on these inputs: both p-values are 1 and the note says why (never supported, never
  refuted);
* the effect size is the ratio itself (a normalised effect: 0 is the empty circuit, 1 the model).

:func:`evaluate_share_beaten` judges one ratio against the same ratio of other draws (random
circuits of the same size, all on the same sequences): the statistic is the share of draws whose
ratio the observed one strictly exceeds, and the claim ("beats at least a share t of random
circuits") is an exact one-sided binomial test over the draws with a Clopper-Pearson interval. The
classical permutation p-value against "the observed circuit is one more random one",
(1 + #{draw >= observed}) / (draws + 1), is in the note. Both are conditional on the inputs.

Pure numpy/scipy: arrays in, :class:`Evaluation` out.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Callable

import numpy as np
import numpy.typing as npt
from scipy import stats

from interp_checks.stats.comparison import Comparison, _format_number
from interp_checks.stats.evaluate import Evaluation, _check_common_arguments, _margin, _t_test_p_values

__all__ = ["ESTIMATORS", "curve_areas", "display_unit", "display_values", "evaluate_ratio_of_means", "evaluate_share_beaten", "evaluate_with", "ratio_of_means"]


def ratio_of_means(numerator: np.ndarray, denominator: np.ndarray, axis: int = -1) -> np.ndarray:
    """mean(numerator) / mean(denominator) along ``axis`` (NaN where the mean denominator is 0)."""
    den = np.mean(denominator, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.nan, np.mean(numerator, axis=axis) / np.where(den == 0, 1.0, den))


def _pairs(samples: npt.ArrayLike, statistic: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{statistic} needs [sequences, 2] (numerator, denominator) values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{statistic}: {int(np.count_nonzero(~np.isfinite(x)))} non-finite value(s)")
    return x[:, 0], x[:, 1]


def _denominator_reliably_positive(den: np.ndarray, alpha: float) -> tuple[bool, float]:
    """(whether mean(den) > 0 at one-sided level alpha, that p)."""
    if den.size < 2 or np.all(den == den[0]):
        return bool(den.size >= 1 and den[0] > 0), 0.0 if den.size >= 1 and den[0] > 0 else 1.0
    p = float(stats.ttest_1samp(den, 0.0, alternative="greater").pvalue)
    return p < alpha, p


def _fieller_p_values(num: np.ndarray, den: np.ndarray, comparison: Comparison) -> tuple[float, float]:
    """(p for the claim, p for its refutation) of a ratio of means, via g = num - t * den."""

    def one_sided(threshold: float, op: str) -> tuple[float, float]:
        g = num - threshold * den
        if np.all(g == g[0]):
            from interp_checks.stats.evaluate import _constant_p_values

            return _constant_p_values(float(g[0]), Comparison(op, 0.0))
        p_claim, p_refute, _ = _t_test_p_values(g[None, :], Comparison(op, 0.0))
        return float(p_claim[0]), float(p_refute[0])

    if comparison.op != "between":
        return one_sided(comparison.threshold, comparison.op)
    assert comparison.upper is not None
    low_claim, low_refute = one_sided(comparison.threshold, ">=")
    high_claim, high_refute = one_sided(comparison.upper, "<=")
    return max(low_claim, high_claim), min(1.0, 2 * min(low_refute, high_refute))


def _ratio_interval(num: np.ndarray, den: np.ndarray, level: float, n_resamples: int, seed: int) -> tuple[float, float]:
    """Paired BCa bootstrap interval of mean(num) / mean(den) over sequences (NaN if undefined)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.bootstrap(
            (num, den), ratio_of_means, paired=True, vectorized=True, confidence_level=level, method="BCa",
            n_resamples=n_resamples, rng=np.random.default_rng(seed), axis=-1,
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if math.isfinite(low) and math.isfinite(high):
        return low, high
    boot = np.asarray(result.bootstrap_distribution, dtype=float)
    if np.all(np.isfinite(boot)) and np.ptp(boot) <= 1e-12 * max(1.0, abs(float(boot.mean()))):
        return float(boot.mean()), float(boot.mean())  # every sequence has the same ratio: no sampling spread
    return math.nan, math.nan


def evaluate_ratio_of_means(
    samples: npt.ArrayLike,
    comparison: Comparison,
    *,
    statistic: str = "ratio",
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 9999,
    null_kind: str = "",
    **_: Any,
) -> Evaluation:
    """A claim about R = mean(numerator) / mean(denominator) from per-sequence [n, 2] pairs (see the
    module docstring for why the ratio of means, the paired bootstrap and Fieller's test)."""
    alpha, n_resamples = _check_common_arguments(comparison, alpha, n_resamples)
    num, den = _pairs(samples, statistic)
    n = int(num.size)
    estimate = float(ratio_of_means(num, den))
    level = 1 - 2 * alpha
    positive, den_p = _denominator_reliably_positive(den, alpha)
    test = (
        f"Fieller: one-sided one-sample t-tests over sequences of g = numerator - t x denominator against 0 "
        f"(R {comparison} exactly when mean(g) is on that side, given mean(denominator) > 0)"
    )
    notes = [f"mean numerator {np.mean(num):.4g}, mean denominator {np.mean(den):.4g} (one-sided p that it is > 0: {den_p:.2g})"]
    if n < 2 or not positive:
        p_claim = p_refute = 1.0
        ci = (math.nan, math.nan)
        notes.insert(0, "the denominator (model minus empty circuit) is not reliably positive on these inputs: the ratio is undefined, so the claim can be neither supported nor refuted")
    else:
        p_claim, p_refute = _fieller_p_values(num, den, comparison)
        ci = _ratio_interval(num, den, level, n_resamples, seed)
    margin = _margin(estimate, comparison) if math.isfinite(estimate) else None
    g = num - comparison.threshold * den
    sd = float(np.std(g, ddof=1)) if n >= 2 else 0.0
    return Evaluation(
        statistic=statistic,
        comparison=comparison,
        n=n,
        estimate=estimate,
        ci=ci,
        ci_level=level,
        ci_method=f"BCa bootstrap over {n} sequences of the ratio of means, numerator and denominator resampled together ({n_resamples} resamples)",
        test=test,
        p_value=p_claim,
        p_value_refute=p_refute,
        effect_size=estimate if math.isfinite(estimate) else None,
        effect_size_kind="the ratio itself: a normalised effect (0 = the empty circuit's metric, 1 = the model's)",
        null_estimate=0.0,
        note="; ".join(notes),
        estimand="ratio of the mean numerator to the mean denominator over sequences",
        margin=margin,
        margin_sd=None if margin is None or sd == 0 else float(np.mean(g)) / sd * (1 if comparison.op in (">=", ">", "between") else -1),
    )


def evaluate_share_beaten(
    observed: float,
    draws: npt.ArrayLike,
    comparison: Comparison,
    *,
    statistic: str = "share_beaten",
    alpha: float = 0.05,
    what: str = "draws",
) -> Evaluation:
    """Observed value against draws of the same statistic: the share of draws it strictly exceeds.

    The claim is about S, the share of the population the draws come from that the observed value
    beats. The draws are i.i.d. from that population, so #{beaten} ~ Binomial(draws, S): exact
    one-sided binomial tests and a Clopper-Pearson interval at level 1 - 2*alpha. A draw that
    ties counts as not beaten. The permutation p-value (1 + #{draw >= observed}) / (draws + 1)
    against "the observed value is one more draw" is in the note."""
    alpha, _ = _check_common_arguments(comparison, alpha, 1)
    values = np.asarray(draws, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 1:
        raise ValueError(f"{statistic} needs at least one finite draw")
    if not math.isfinite(float(observed)):
        raise ValueError(f"{statistic}: the observed value is not finite ({observed}); nothing to compare with the draws")
    m, k = int(values.size), int(np.count_nonzero(float(observed) > values))
    share = k / m
    result = stats.binomtest(k, m, p=min(max(comparison.threshold, 0.0), 1.0))
    level = 1 - 2 * alpha
    ci = result.proportion_ci(confidence_level=level, method="exact")

    def binom_p(threshold: float, alternative: str) -> float:
        return float(stats.binomtest(k, m, p=min(max(threshold, 0.0), 1.0), alternative=alternative).pvalue)

    t = comparison.threshold
    if comparison.op in (">=", ">"):
        p_claim, p_refute = binom_p(t, "greater"), binom_p(t, "less")
    elif comparison.op in ("<=", "<"):
        p_claim, p_refute = binom_p(t, "less"), binom_p(t, "greater")
    else:
        assert comparison.upper is not None
        p_claim = max(binom_p(t, "greater"), binom_p(comparison.upper, "less"))
        p_refute = min(1.0, 2 * min(binom_p(t, "less"), binom_p(comparison.upper, "greater")))
    permutation_p = (1 + int(np.count_nonzero(values >= float(observed)))) / (m + 1)
    return Evaluation(
        statistic=statistic,
        comparison=comparison,
        n=m,
        estimate=share,
        ci=(float(ci.low), float(ci.high)),
        ci_level=level,
        ci_method=f"Clopper-Pearson interval of a binomial share over {m} {what}",
        test=(
            f"exact one-sided binomial test over {m} {what} of the share they are beaten by the observed value; "
            f"H0: share {'<=' if comparison.op != '<' and comparison.op != '<=' else '>='} {_format_number(t)}"
        ),
        p_value=p_claim,
        p_value_refute=p_refute,
        effect_size=share,
        effect_size_kind=f"the share of {what} beaten",
        null_estimate=float(np.mean(values)),
        note=(
            f"observed {float(observed):.4g}; {what}: mean {np.mean(values):.4g}, max {np.max(values):.4g}; beats {k} of {m}; "
            f"permutation p against 'one more draw' = (1 + {m - k}) / ({m} + 1) = {permutation_p:.3g}"
        ),
        estimand=f"share of {what} (of the population they are drawn from) whose value the observed one exceeds",
        null_draws=m,
        margin=_margin(share, comparison),
    )


def _share_beaten_of_ratios(samples: npt.ArrayLike, comparison: Comparison, *, statistic: str = "share_beaten", alpha: float = 0.05, **_: Any) -> Evaluation:
    """[n, 2 + draws] per-sequence values: column 0 the common denominator, column 1 the observed
    numerator, the rest the draws' numerators. Each ratio of means, then :func:`evaluate_share_beaten`."""
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[1] < 3:
        raise ValueError(f"{statistic} needs [sequences, 2 + draws] values, got shape {x.shape}")
    ratios = ratio_of_means(x[:, 1:].T, np.broadcast_to(x[:, 0], x[:, 1:].T.shape))
    evaluation = evaluate_share_beaten(float(ratios[0]), ratios[1:], comparison, statistic=statistic, alpha=alpha, what="random circuits of the same size")
    positive, den_p = _denominator_reliably_positive(x[:, 0], alpha)
    if positive:
        return evaluation
    why = (
        f"the common denominator is not reliably positive on these inputs (one-sided p {den_p:.2g}): every ratio is "
        "undefined, so the claim can be neither supported nor refuted"
    )
    return dataclasses.replace(evaluation, p_value=1.0, p_value_refute=1.0, note=f"{why}; {evaluation.note}")


def curve_areas(ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(area under the curve, area of |1 - curve|) of ratios at equally spaced x = k/K, k = 0..K
    (trapezoid rule; ``ratios`` [..., K + 1]): MIB's CPR and CMD over circuit sizes."""
    x = np.linspace(0.0, 1.0, ratios.shape[-1])
    return np.trapezoid(ratios, x, axis=-1), np.trapezoid(np.abs(1.0 - ratios), x, axis=-1)


def _evaluate_curve_area(samples: npt.ArrayLike, comparison: Comparison, *, gap: bool, statistic: str = "area", alpha: float = 0.05, seed: int = 0, n_resamples: int = 9999, **_: Any) -> Evaluation:
    """[n, 1 + (K + 1)] per-sequence values: column 0 the common denominator, then the numerators of
    the curve's K + 1 points (sizes 0..K). The area (CPR, or CMD with ``gap``) of the ratio-of-means
    curve; BCa bootstrap over sequences (each sequence's whole row resampled together) for the
    interval, and bootstrap p-values: the share of resampled areas on the wrong side of t."""
    alpha, n_resamples = _check_common_arguments(comparison, alpha, n_resamples)
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[1] < 3:
        raise ValueError(f"{statistic} needs [sequences, 1 + curve points] values, got shape {x.shape}")
    n, level = int(x.shape[0]), 1 - 2 * alpha

    def area(*columns: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = np.stack([np.moveaxis(c, axis, -1) for c in columns], axis=-2)  # [..., columns, n]
        ratios = ratio_of_means(rows[..., 1:, :], rows[..., :1, :])
        return curve_areas(ratios)[1 if gap else 0]

    estimate = float(area(*x.T))
    positive, den_p = _denominator_reliably_positive(x[:, 0], alpha)
    name = "CMD, the area of |1 - f|" if gap else "CPR, the area under f"
    notes = [f"{name} over {x.shape[1] - 1} circuit sizes at x = k/{x.shape[1] - 2} (trapezoid rule)"]
    ci: tuple[float, float] = (math.nan, math.nan)
    p_claim = p_refute = 1.0
    if n >= 2 and positive:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.bootstrap(
                tuple(x.T), area, paired=True, vectorized=True,
                confidence_level=level, method="BCa", n_resamples=n_resamples, rng=np.random.default_rng(seed), axis=-1,
            )
        boot = np.asarray(result.bootstrap_distribution, dtype=float).ravel()
        ci = (float(result.confidence_interval.low), float(result.confidence_interval.high))

        def share(mask: np.ndarray) -> float:
            return float((1 + np.count_nonzero(mask)) / (boot.size + 1))

        t = comparison.threshold
        if comparison.op in (">=", ">"):
            p_claim, p_refute = share(boot <= t), share(boot >= t)
        elif comparison.op in ("<=", "<"):
            p_claim, p_refute = share(boot >= t), share(boot <= t)
        else:
            assert comparison.upper is not None
            p_claim = max(share(boot <= t), share(boot >= comparison.upper))
            p_refute = min(1.0, 2 * min(share(boot >= t), share(boot <= comparison.upper)))
    else:
        notes.insert(0, f"the denominator is not reliably positive (one-sided p {den_p:.2g}): the curve is undefined, so the claim can be neither supported nor refuted")
    return Evaluation(
        statistic=statistic, comparison=comparison, n=n, estimate=estimate, ci=ci, ci_level=level,
        ci_method=f"BCa bootstrap over {n} sequences, each sequence's numerators and denominator resampled together ({n_resamples} resamples)",
        test="bootstrap test: p = share of resampled areas on the other side of the threshold",
        p_value=p_claim, p_value_refute=p_refute, effect_size=estimate, effect_size_kind=name, null_estimate=None,
        note="; ".join(notes), estimand=f"{name} of the ratio-of-means curve over circuit sizes",
        margin=_margin(estimate, comparison) if math.isfinite(estimate) else None,
    )


def _evaluate_rank(samples: npt.ArrayLike, comparison: Comparison, members: list[str], **common: Any) -> Evaluation:
    from interp_checks.stats.rank import evaluate_rank

    return evaluate_rank(samples, comparison, members, **common)


def _evaluate_gap_share(samples: npt.ArrayLike, comparison: Comparison, **common: Any) -> Evaluation:
    from interp_checks.stats.ratio import evaluate_ratio

    pairs = np.asarray(samples, dtype=float)
    common.pop("null_samples", None)  # a share of the clean-corrupted gap has no random-weights null (see stats.ratio)
    return evaluate_ratio(pairs[:, 0], pairs[:, 1], comparison, **common)


_OVER_MEMBERS = frozenset({"rank"})

ESTIMATORS: dict[str, Callable[..., Evaluation]] = {
    "rank": _evaluate_rank,
    "gap_share": _evaluate_gap_share,  # a patching effect's share of the clean-corrupted gap (stats.ratio)  # "the claimed member is among the k largest means" (stats.rank)
    "ratio_of_means": evaluate_ratio_of_means,
    "share_beaten_of_ratios": _share_beaten_of_ratios,
    "curve_area": lambda samples, comparison, **common: _evaluate_curve_area(samples, comparison, gap=False, **common),
    "curve_gap_area": lambda samples, comparison, **common: _evaluate_curve_area(samples, comparison, gap=True, **common),
}


def display_values(estimator: str, samples: npt.ArrayLike) -> np.ndarray | None:
    """One value per sampled unit for a picture of an estimator's statistic (the engine's strip),
    chosen so that their mean is the estimate (or, for CMD, its jackknife bias-corrected value):

    * ``ratio_of_means``: each sequence's numerator over the mean denominator;
    * ``share_beaten_of_ratios``: per draw, 1 if the observed ratio beats it, else 0;
    * ``curve_area`` (CPR, linear in the numerators): each sequence's weighted numerators over the
      mean denominator; ``curve_gap_area`` (CMD): the jackknife pseudo-values over sequences."""
    if estimator in _OVER_MEMBERS:  # a rank has no threshold on the values' axis: no strip
        return None
    if estimator == "gap_share":
        from interp_checks.stats.ratio import ratio_shares

        pairs = np.asarray(samples, dtype=float)
        return ratio_shares(pairs[:, 0], pairs[:, 1])
    x = np.asarray(samples, dtype=float)
    if estimator == "ratio_of_means":
        return x[:, 0] / np.mean(x[:, 1])
    if estimator == "share_beaten_of_ratios":
        ratios = ratio_of_means(x[:, 1:].T, np.broadcast_to(x[:, 0], x[:, 1:].T.shape))
        return (ratios[0] > ratios[1:]).astype(float)
    points = x.shape[1] - 1
    weights = np.full(points, 1.0 / (points - 1))
    weights[[0, -1]] /= 2
    if estimator == "curve_area":
        return (x[:, 1:] @ weights) / np.mean(x[:, 0])
    if estimator == "curve_gap_area":
        n = x.shape[0]
        full = curve_areas(ratio_of_means(x[:, 1:].T, np.broadcast_to(x[:, 0], x[:, 1:].T.shape)))[1]
        leave_one_out = np.array([
            curve_areas(ratio_of_means(np.delete(x, i, 0)[:, 1:].T, np.broadcast_to(np.delete(x, i, 0)[:, 0], (points, n - 1))))[1]
            for i in range(n)
        ])
        return n * full - (n - 1) * leave_one_out
    raise ValueError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")


def display_unit(estimator: str | None, default: str) -> str:
    """What one value of :func:`display_values` is: a random circuit for a share of draws beaten,
    else ``default`` (the sequence or document)."""
    return "random circuit" if estimator == "share_beaten_of_ratios" else default


def evaluate_with(
    estimator: str, samples: npt.ArrayLike, comparison: Comparison, *, members: list[str] | None = None, **common: Any
) -> Evaluation:
    """Judge per-sequence ``samples`` with a named estimator (``Prepared.estimators``). ``members``
    names the columns for estimators over several members (``rank``: the claimed member first)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    if estimator in _OVER_MEMBERS:
        if not members:
            raise ValueError(f"estimator {estimator!r} needs the member names (Prepared.members)")
        return ESTIMATORS[estimator](samples, comparison, members, **common)
    return ESTIMATORS[estimator](samples, comparison, **common)
