"""Ratios of two means over sequences, and an observed ratio against draws of the same ratio: the
statistics of a normalised effect (a patching effect's share of the clean-corrupted gap, a
circuit's faithfulness f and its curve over circuit sizes).

Why a ratio of means and not a mean of per-sequence ratios. A normalised effect such as
(m(patched) - m(corrupted)) / (m(clean) - m(corrupted)), or MIB's faithfulness
f = (m(C) - m(empty)) / (m(model) - m(empty)), divides by a gap that is small on some sequences (the
corruption hardly changed them; text the model does no better on than its fully ablated self).
A per-sequence ratio then explodes (a gap of 0.01 nats and a change of 1 nat contribute 100), the
mean of such ratios is dominated by those sequences and has no finite variance, so a t-test or
bootstrap of it means nothing. The estimand here is instead

    R = mean_i(numerator_i) / mean_i(denominator_i),

the share of the *average* gap, which weights each sequence by its gap: a smooth function of two
means, so the sequence stays the unit of sampling. It is what TransformerLens's
``PatchingResult.normalized`` estimates when its per-example effects are averaged before dividing,
and MIB's f on a batch.

* interval: paired bootstrap of R over sequences (a sequence's numerator and denominator resampled
  together), BCa, or the percentile interval where BCa's jackknife has no spread (every sequence
  has the same ratio), at level 1 - 2*alpha like every interval here;
* test (Fieller's linearisation): with mean(denominator) > 0, R >= t exactly when
  mean(numerator - t * denominator) >= 0, so the p-values are one-sided one-sample t-tests over
  sequences of g_i = numerator_i - t * denominator_i against 0 (exact where g is the same on every
  sequence); no ratio is formed per sequence and no delta-method variance is needed;
* sign: R is unchanged when numerator and denominator both change sign, so a gap whose mean is
  negative (noising lowers the metric; a loss-like metric) is turned round with its numerator and
  the test above applies. Because the side is chosen from the data, the gap's own test is
  two-sided: it must differ from 0 at alpha;
* no gap, no verdict: where the gap does not reliably differ from 0 (a random-weights model, a
  corruption that changes nothing) "what share of the gap" has no answer (Fieller's interval is
  unbounded): both p-values are 1 (never supported, never refuted) and the note says why;
* effect size: the ratio itself, a normalised effect (0: none of the gap, 1: all of it); it is
  never compared with a random-weights null, where the gap is about 0 and the share undefined.
  ``margin_sd`` is Cohen's d_z of g: how many standard deviations of the linearised per-sequence
  values the ratio lies inside the claim.

:func:`evaluate_share_beaten` judges one ratio against the same ratio of other draws (random
circuits of the same size, all on the same sequences): the statistic is the share of draws whose
ratio the observed one strictly exceeds, and the claim ("beats at least a share t of random
circuits") is an exact one-sided binomial test over the draws with a Clopper-Pearson interval. The
classical permutation p-value against "the observed circuit is one more random one",
(1 + #{draw >= observed}) / (draws + 1), is in the note. Both are conditional on the inputs.

The estimators that read these from a check's per-sequence arrays are in :mod:`stats.estimators`.
Pure numpy/scipy: arrays in, :class:`Evaluation` out.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import numpy.typing as npt
from scipy import stats

from interp_checks.stats.comparison import Comparison, _format_number
from interp_checks.stats.evaluate import (
    Evaluation,
    _as_samples,
    _check_common_arguments,
    _constant_p_values,
    _margin,
    _standardised_margin,
    _t_test_p_values,
)

__all__ = [
    "curve_areas",
    "evaluate_curve_area",
    "evaluate_ratio_of_means",
    "evaluate_share_beaten",
    "evaluate_share_beaten_of_ratios",
    "gap_is_reliably_nonzero",
    "ratio_of_means",
    "ratio_shares",
]


def ratio_of_means(numerator: npt.ArrayLike, denominator: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """mean(numerator) / mean(denominator) along ``axis`` (NaN where the mean denominator is 0);
    vectorised so that the bootstrap can call it on a batch of resamples."""
    den = np.mean(denominator, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.nan, np.mean(numerator, axis=axis) / np.where(den == 0, 1.0, den))


def ratio_shares(numerators: np.ndarray, denominators: np.ndarray) -> np.ndarray:
    """Each sequence's numerator over the mean denominator: values whose mean is R, for a picture of
    the per-sequence spread (never a per-sequence ratio, see the module doc); NaN with no gap."""
    scale = float(np.mean(denominators)) if np.size(denominators) else math.nan
    return np.asarray(numerators, dtype=float) / scale if scale != 0 else np.full(np.shape(numerators), math.nan)


def gap_is_reliably_nonzero(denominators: np.ndarray, alpha: float) -> tuple[bool, float]:
    """(whether mean(denominator) differs from 0 at two-sided level alpha, that p). Two-sided
    because the ratio's orientation is taken from the data (see the module doc); a constant
    denominator is exact (p 0 unless it is 0). Fewer than 2 sequences: never reliable."""
    den = np.asarray(denominators, dtype=float)
    if den.size < 2:
        return False, 1.0
    if np.all(den == den[0]):
        return bool(den[0] != 0), 0.0 if den[0] != 0 else 1.0
    p = float(stats.ttest_1samp(den, 0.0).pvalue)
    return p < alpha, p


def _no_gap_reason(den: np.ndarray, p: float) -> str:
    return (
        f"the denominator (the gap the ratio is a share of) is not reliably different from 0 on these inputs "
        f"(mean {float(np.mean(den)) if den.size else math.nan:.3g}, two-sided t-test p = {p:.3g}): the ratio has no "
        "bounded interval (Fieller), so the claim can be neither supported nor refuted"
    )


def _fieller_p_values(num: np.ndarray, den: np.ndarray, comparison: Comparison) -> tuple[float, float]:
    """(p for the claim, p for its refutation) of a ratio of means with mean(den) > 0, via
    g = num - t * den; ``between`` is two one-sided tests (TOST: p = larger; refutation: either
    opposite, p = 2 x smaller, Bonferroni)."""

    def one_sided(threshold: float, op: str) -> tuple[float, float]:
        g = num - threshold * den
        if np.all(g == g[0]):
            return _constant_p_values(float(g[0]), Comparison(op, 0.0))
        p_claim, p_refute, _ = _t_test_p_values(g[None, :], Comparison(op, 0.0))
        return float(p_claim[0]), float(p_refute[0])

    if comparison.op != "between":
        return one_sided(comparison.threshold, comparison.op)
    assert comparison.upper is not None
    low_claim, low_refute = one_sided(comparison.threshold, ">=")
    high_claim, high_refute = one_sided(comparison.upper, "<=")
    return max(low_claim, high_claim), min(1.0, 2 * min(low_refute, high_refute))


def _fieller_test_words(comparison: Comparison) -> str:
    t = _format_number(comparison.threshold)
    if comparison.op == "between":
        assert comparison.upper is not None
        u = _format_number(comparison.upper)
        return (
            f"TOST on Fieller-linearised values: one-sided one-sample t-tests over sequences of numerator - {t} x "
            f"denominator > 0 and numerator - {u} x denominator < 0 (p = larger); refutation: either opposite "
            "(p = 2 x smaller, Bonferroni)"
        )
    side = ">" if comparison.op in (">=", ">") else "<"
    return (
        f"Fieller-linearised one-sided one-sample t-test over sequences of g = numerator - {t} x denominator "
        f"(R {side} {t} exactly when mean(g) {side} 0, given mean(denominator) > 0; exact where g is constant); "
        f"H0: R {'<=' if side == '>' else '>='} {t}; refutation H0: R {'>=' if side == '>' else '<='} {t}"
    )


def _ratio_interval(num: np.ndarray, den: np.ndarray, level: float, n_resamples: int, seed: int) -> tuple[tuple[float, float], str]:
    """Paired bootstrap interval of the ratio of means, and its method in words: BCa, or the
    percentile interval where BCa is undefined (e.g. every sequence has the same ratio, so the
    jackknife has no spread; the percentile interval then collapses to that ratio, as it should)."""
    n = num.size
    if np.all(num == num[0]) and np.all(den == den[0]):
        ratio = float(num[0] / den[0])
        return (ratio, ratio), f"none: all {n} sequences gave the same pair, so every resample gives the same ratio"
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.bootstrap(
                (num, den), ratio_of_means, paired=True, vectorized=True, confidence_level=level, method=method,
                n_resamples=n_resamples, rng=np.random.default_rng(seed), axis=-1,
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            why = "" if method == "BCa" else " (BCa undefined on these values)"
            return (low, high), f"paired {method} bootstrap of the ratio of means over {n} sequences, {n_resamples} resamples{why}"
    return (math.nan, math.nan), "none: the bootstrap of the ratio is undefined on these values"


def evaluate_ratio_of_means(
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
    one pair per sequence (see the module doc for the interval, the test, the sign and why).

    ``null_kind``: the null the claim's other statistics are compared with, named in the note; the
    ratio itself is not compared with it (there the gap is about 0, so its share is undefined).
    """
    alpha, n_resamples = _check_common_arguments(comparison, alpha, n_resamples)
    num, den = _as_samples(numerators, "numerators"), _as_samples(denominators, "denominators")
    if num.size != den.size:
        raise ValueError(f"{num.size} numerators but {den.size} denominators: one pair per sequence")
    n, level = int(num.size), 1.0 - 2.0 * alpha
    estimate = float(ratio_of_means(num, den)) if n else math.nan
    gap_ok, gap_p = gap_is_reliably_nonzero(den, alpha)
    notes = [
        f"mean numerator {np.mean(num) if n else math.nan:.4g}, mean denominator {np.mean(den) if n else math.nan:.4g} "
        f"(two-sided p that it differs from 0: {gap_p:.2g})"
    ]
    if null_kind:
        notes.append(f"the ratio is not compared with the null ({null_kind}): its gap is about 0 there")
    common = dict(
        statistic=statistic, comparison=comparison, n=n, estimate=estimate, ci_level=level,
        effect_size=estimate if math.isfinite(estimate) else None,
        effect_size_kind="the ratio itself: a normalised effect (0: none of the gap, 1: all of it)",
        null_estimate=None, estimand="ratio of means over sequences: mean(numerator) / mean(denominator)",
    )
    if not gap_ok:
        reason = _no_gap_reason(den, gap_p)
        return Evaluation(
            ci=(math.nan, math.nan), ci_method="none: the denominator is not reliably different from 0",
            test="none: " + reason, p_value=1.0, p_value_refute=1.0, note="; ".join([reason, *notes]), **common,
        )
    if np.mean(den) < 0:  # a gap that runs downwards: the same ratio, oriented up (see the module doc)
        num, den = -num, -den
    ci, ci_method = _ratio_interval(num, den, level, n_resamples, seed)
    p_claim, p_refute = _fieller_p_values(num, den, comparison)
    margin_sd = None
    if comparison.op != "between":
        margin_sd = _standardised_margin(float(np.mean(num - comparison.threshold * den)), num - comparison.threshold * den)
        if margin_sd is not None and comparison.op in ("<=", "<"):
            margin_sd = -margin_sd  # oriented like margin: positive favours the claim
    return Evaluation(
        ci=ci, ci_method=ci_method, test=_fieller_test_words(comparison), p_value=p_claim, p_value_refute=p_refute,
        note="; ".join(notes), margin=_margin(estimate, comparison), margin_sd=margin_sd, **common,
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


def evaluate_share_beaten_of_ratios(
    samples: np.ndarray, comparison: Comparison, *, statistic: str = "share_beaten", alpha: float = 0.05
) -> Evaluation:
    """[n, 2 + draws] per-sequence values: column 0 the common denominator, column 1 the observed
    numerator, the rest the draws' numerators. Each ratio of means, then :func:`evaluate_share_beaten`;
    no verdict where the common gap is not reliably different from 0 (every ratio is undefined)."""
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[1] < 3:
        raise ValueError(f"{statistic} needs [sequences, 2 + draws] values, got shape {x.shape}")
    ratios = ratio_of_means(x[:, 1:].T, np.broadcast_to(x[:, 0], x[:, 1:].T.shape))
    evaluation = evaluate_share_beaten(float(ratios[0]), ratios[1:], comparison, statistic=statistic, alpha=alpha, what="random circuits of the same size")
    gap_ok, gap_p = gap_is_reliably_nonzero(x[:, 0], alpha)
    if gap_ok:
        return evaluation
    return dataclasses.replace(evaluation, p_value=1.0, p_value_refute=1.0, note=f"{_no_gap_reason(x[:, 0], gap_p)}; {evaluation.note}")


def curve_areas(ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(area under the curve, area of |1 - curve|) of ratios at equally spaced x = k/K, k = 0..K
    (trapezoid rule; ``ratios`` [..., K + 1]): MIB's CPR and CMD over circuit sizes."""
    x = np.linspace(0.0, 1.0, ratios.shape[-1])
    return np.trapezoid(ratios, x, axis=-1), np.trapezoid(np.abs(1.0 - ratios), x, axis=-1)


def evaluate_curve_area(
    samples: np.ndarray, comparison: Comparison, *, gap: bool, statistic: str = "area",
    alpha: float = 0.05, seed: int = 0, n_resamples: int = 9999,
) -> Evaluation:
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
    gap_ok, gap_p = gap_is_reliably_nonzero(x[:, 0], alpha)
    name = "CMD, the area of |1 - f|" if gap else "CPR, the area under f"
    notes = [f"{name} over {x.shape[1] - 1} circuit sizes at x = k/{x.shape[1] - 2} (trapezoid rule)"]
    ci: tuple[float, float] = (math.nan, math.nan)
    p_claim = p_refute = 1.0
    if gap_ok:
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
        notes.insert(0, _no_gap_reason(x[:, 0], gap_p))
    return Evaluation(
        statistic=statistic, comparison=comparison, n=n, estimate=estimate, ci=ci, ci_level=level,
        ci_method=f"BCa bootstrap over {n} sequences, each sequence's numerators and denominator resampled together ({n_resamples} resamples)",
        test="bootstrap test: p = share of resampled areas on the other side of the threshold",
        p_value=p_claim, p_value_refute=p_refute, effect_size=estimate, effect_size_kind=name, null_estimate=None,
        note="; ".join(notes), estimand=f"{name} of the ratio-of-means curve over circuit sizes",
        margin=_margin(estimate, comparison) if math.isfinite(estimate) else None,
    )
