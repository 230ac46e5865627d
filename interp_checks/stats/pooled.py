"""Token statistics pooled over documents, judged with the document as the unit of sampling.

A neuron claim ("L0N123 mimics the regex ``\\d``") is read from a corpus pass that keeps, per token,
the neuron's activation, whether the token matches the pattern in context, and the document it came
from. The statistics are *pooled over tokens* (one AUROC over every token, not a mean of
per-document AUROCs), but tokens of one document are not independent (a document about prices is
full of digits and of whatever the neuron also likes there), so every interval and p-value comes
from resampling *documents*: a cluster bootstrap.

How one statistic is represented (:class:`PooledStatistic`): a vectorised function of document
weights. A bootstrap resample draws documents with replacement; a document drawn w times is the
document's tokens w times, so each statistic is a function of a weights matrix [B, documents]
(all ones: the observed sample), computed from per-document sufficient sums (histograms, counts,
moments) with one matrix product per batch. Where the exact statistic has no such form (the AUROC,
a rank statistic), ``value`` is a close approximation used only for resampling and ``exact`` is the
observed value; the bootstrap values are shifted by ``exact - value(ones)``.

How it is judged (:func:`evaluate_pooled`):

* interval: ``scipy.stats.bootstrap`` over the document indices, BCa (acceleration from the
  jackknife over documents), at level 1 - 2*alpha like every interval here; the percentile interval
  where BCa is undefined (some resamples have no defined value, e.g. no matching token; the
  jackknife has no spread), with a note;
* p-values: by inverting that interval. The one-sided p for "statistic > t" is the smallest alpha
  at which the one-sided (1 - alpha) lower bound excludes t. For BCa the bound is the bootstrap
  quantile at Phi(z0 + u / (1 - a u)) with u = z0 + z_alpha; solving for the level where that
  quantile equals t gives u = (w - z0) / (1 + a (w - z0)) with w = Phi^-1(share of resamples <= t),
  and p = Phi(u - z0) (:func:`interp_checks.stats.evaluate._bca_p_below`). For the percentile
  interval it is the share of resamples on the other side of t, floored at 1 / (B + 1). ``between``
  is TOST (p = the larger); its refutation either opposite (p = 2 x the smaller, Bonferroni);
* effect size: the estimate minus the largest (most demanding) named null, e.g. "the best of all
  neurons of a random-weights model" or "the best neuron for a random token class of the same size
  and frequency" (:func:`best_over_columns`, :func:`frequency_matched_class` compute those).

Thresholds and band edges read from the data (Neuron2Graph's half-max firing threshold, activation
percentiles) are fixed at their observed values and not re-estimated per resample; each estimand
says so. Degenerate inputs (fewer than 2 documents, no matching or no non-matching token, constant
activations) give a NaN statistic with a note and an inconclusive evaluation, never an exception.

Statistics of directions (``checks.features``) follow the same scheme with vectors: a feature's
mean-difference direction and the share of it one neuron carries are exact functions of
per-document sums of vectors (:func:`mean_difference_cosine_statistic`, :func:`max_share_statistic`);
a top principal component is re-estimated per resample within the observed top components, and a
logistic probe is linearised (one Newton step from the observed fit) rather than refitted
(:func:`top_component_cosine_statistic`, :func:`probe_cosine_statistic`): their estimands say so.

Pure numpy/scipy: arrays in, :class:`Evaluation` out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse, special, stats

from interp_checks.stats.comparison import Comparison, _format_number
from interp_checks.stats.evaluate import (
    _MAX_BATCH_ELEMENTS,
    Evaluation,
    _bca_constants,
    _bca_p_below,
    _check_common_arguments,
    _margin,
)

__all__ = [
    "PooledStatistic",
    "CorrelationSums",
    "auroc_statistic",
    "background_centred_top_component",
    "band_share_statistic",
    "best_abs_cosine_over_columns",
    "best_aurocs_over_columns",
    "best_over_columns",
    "correlation_statistic",
    "correlation_sums",
    "evaluate_pooled",
    "expected_abs_cosine_of_random_direction",
    "expected_max_share_of_random_direction",
    "family_separation_statistic",
    "firing_precision_statistic",
    "firing_recall_statistic",
    "firing_threshold",
    "frequency_matched_class",
    "logistic_probe",
    "max_share_statistic",
    "mean_difference",
    "mean_difference_cosine_statistic",
    "mean_pairwise_correlation_statistic",
    "pooled_correlations",
    "probe_cosine_statistic",
    "rank_correlation_statistic",
    "ranked_correlation_statistic",
    "share_statistic",
    "top_component_cosine_statistic",
    "top_share_statistic",
    "undefined_statistic",
]

WeightsFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PooledStatistic:
    """A statistic pooled over the tokens of ``n_documents`` documents, as a function of document weights.

    Attributes:
        value: [B, n_documents] document weights (a document's multiplicity in a resample; all ones
            is the observed sample) -> [B] values, vectorised; NaN where undefined on a resample.
        n_documents: the number of documents, the unit of sampling.
        estimand: what the statistic estimates, in words (and what was fixed from the observed sample).
        nulls: the same statistic under named nulls (name -> value); the largest is the effect's baseline.
        exact: the exact observed value when ``value`` is an approximation used for resampling speed.
        unit: what the values are, for reports.
        note: why the statistic is undefined on these tokens, or anything else its evaluation should say.
        sampled: what one unit of resampling is, in words ("documents"; "evaluation samples" for a curve).
        strata: sizes of blocks resampled apart (in order; they sum to ``n_documents``): a resample draws
            each block's units from that block only (a stratified bootstrap). A curve statistic that
            reads two evaluation sets (a model's train and test pairs) keeps each set's size; None: one block.
    """

    value: WeightsFunction
    n_documents: int
    estimand: str
    nulls: Mapping[str, float] = field(default_factory=dict)
    exact: float | None = None
    unit: str | None = None
    note: str | None = None
    sampled: str = "documents"
    strata: tuple[int, ...] | None = None

    def at_unit_weights(self) -> float:
        """``value`` on the observed sample (every document once)."""
        if self.n_documents < 1:
            return math.nan
        return float(np.asarray(self.value(np.ones((1, self.n_documents))), dtype=float).reshape(-1)[0])

    def observed(self) -> float:
        """The point estimate: ``exact`` when given, else ``value`` at unit weights."""
        return float(self.exact) if self.exact is not None else self.at_unit_weights()


# --------------------------------------------------------------------------------------------------
# judging a pooled statistic


def _rowwise_bincount(indices: np.ndarray, n: int) -> np.ndarray:
    """[rows, m] document indices -> [rows, n] multiplicities (a resample of indices as weights)."""
    rows = indices.shape[0]
    offsets = (np.arange(rows) * n)[:, None]
    return np.bincount((indices + offsets).ravel(), minlength=rows * n).reshape(rows, n).astype(float)


def _statistic_of_indices(stat: PooledStatistic) -> Callable[..., np.ndarray]:
    """The vectorised statistic scipy.stats.bootstrap resamples: document indices -> weights -> value.
    With strata, scipy resamples one index array per block (its jackknife leaves out one unit of one
    block, the others whole, so the arrays' leading shapes broadcast)."""
    sizes = _strata(stat)

    def statistic(*indices: np.ndarray, axis: int = -1) -> np.ndarray:
        blocks = [np.moveaxis(np.asarray(idx), axis, -1) for idx in indices]
        lead = np.broadcast_shapes(*(block.shape[:-1] for block in blocks))
        weights = []
        for block, size in zip(blocks, sizes):
            flat = _rowwise_bincount(block.reshape(-1, block.shape[-1]).astype(np.intp), size)
            weights.append(np.broadcast_to(flat.reshape(block.shape[:-1] + (size,)), lead + (size,)).reshape(-1, size))
        return np.asarray(stat.value(np.concatenate(weights, axis=1)), dtype=float).reshape(lead)

    return statistic


def _strata(stat: PooledStatistic) -> tuple[int, ...]:
    sizes = stat.strata if stat.strata is not None else (stat.n_documents,)
    if sum(sizes) != stat.n_documents or min(sizes) < 1:
        raise ValueError(f"strata {sizes} must be positive and sum to n_documents = {stat.n_documents}")
    return tuple(int(size) for size in sizes)


def _jackknife_values(stat: PooledStatistic) -> np.ndarray:
    """The statistic with each document left out in turn ([n]): BCa's acceleration."""
    n = stat.n_documents
    rows = max(1, _MAX_BATCH_ELEMENTS // n)
    out = []
    for begin in range(0, n, rows):
        weights = np.ones((min(rows, n - begin), n))
        weights[np.arange(weights.shape[0]), begin + np.arange(weights.shape[0])] = 0.0
        out.append(np.asarray(stat.value(weights), dtype=float).reshape(-1))
    return np.concatenate(out)


@dataclass(frozen=True)
class _Bootstrap:
    """Bootstrap values (shifted to the exact estimate), scipy's BCa interval, and the jackknife."""

    values: np.ndarray
    bca: tuple[float, float]
    jackknife: np.ndarray


def _cluster_bootstrap(stat: PooledStatistic, level: float, n_resamples: int, seed: int, shift: float) -> _Bootstrap:
    n = stat.n_documents
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.bootstrap(
            tuple(np.arange(size) for size in _strata(stat)), _statistic_of_indices(stat), vectorized=True, confidence_level=level, method="BCa",
            n_resamples=n_resamples, rng=np.random.default_rng(seed), batch=max(1, _MAX_BATCH_ELEMENTS // n), axis=-1,
        )
    values = np.asarray(result.bootstrap_distribution, dtype=float).reshape(-1) + shift
    bca = (float(result.confidence_interval.low) + shift, float(result.confidence_interval.high) + shift)
    return _Bootstrap(values, bca, _jackknife_values(stat) + shift)


# A bootstrap over at least this many units whose every resample gives the same value (a located step
# that no resample of 4,096 test points moves off its checkpoint) is a point mass: its p beyond t is 0.
POINT_MASS_MIN_UNITS = 20


def _one_sided_p_functions(boot: _Bootstrap, estimate: float, use_bca: bool, n_units: int = 0) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """(p for "statistic > t", p for "statistic < t") as functions of t, by inverting the interval."""
    values = boot.values[np.isfinite(boot.values)]
    size = values.size
    spread = float(np.std(values)) if size > 1 else 0.0

    def share(count: int) -> float:
        return (1 + count) / (size + 1)

    def beyond(t: float) -> float:
        """Where no resample lies on the far side of t the bootstrap can only say p < 1 / (B + 1):
        then the normal tail of the bootstrap distribution at t (its standard deviation as the
        standard error), capped at that resolution. Without it every claim decided by a bootstrap
        would have p >= 1 / (B + 1), which no family of more than (B + 1) * alpha claims survives
        under Holm (0.0005 at B = 1,999: over 100 claims). With no spread at all the normal tail is
        0: so it is taken when the bootstrap had at least POINT_MASS_MIN_UNITS units to resample
        (a statistic that resampling cannot move), and the resolution floor below that (two
        identical documents are no evidence)."""
        if not math.isfinite(estimate):
            return share(0)
        if spread == 0.0:
            return 0.0 if n_units >= POINT_MASS_MIN_UNITS and estimate != t else share(0)
        return min(share(0), float(stats.norm.sf(abs(estimate - t) / spread)))

    if use_bca:
        # BCa's correction extrapolates past the data where no resample lies beyond t: with a strong
        # bias correction and acceleration it maps the resolution floor to a p of 0.01-0.02 for a
        # threshold far outside the interval (measured: every one of 9,999 resamples above 0.69,
        # threshold 0.5, p 0.016).
        z0, acceleration = _bca_constants(estimate, values, boot.jackknife)
        return (
            lambda t: beyond(t) if not np.any(values <= t) else _bca_p_below(values, t, z0, acceleration),
            lambda t: beyond(t) if not np.any(values >= t) else _bca_p_below(-values, -t, -z0, -acceleration),
        )
    return (
        lambda t: beyond(t) if not np.any(values <= t) else share(int(np.count_nonzero(values <= t))),
        lambda t: beyond(t) if not np.any(values >= t) else share(int(np.count_nonzero(values >= t))),
    )


def _p_values(above: Callable[[float], float], below: Callable[[float], float], comparison: Comparison) -> tuple[float, float]:
    """(p for the claim, p for its refutation) from the two one-sided p-functions."""
    t = comparison.threshold
    if comparison.op in (">=", ">"):
        return above(t), below(t)
    if comparison.op in ("<=", "<"):
        return below(t), above(t)
    assert comparison.upper is not None
    return max(above(t), below(comparison.upper)), min(1.0, 2 * min(below(t), above(comparison.upper)))


def _test_words(comparison: Comparison, method: str, n: int, sampled: str = "documents") -> str:
    t = _format_number(comparison.threshold)
    inversion = (
        f"bootstrap test over {n} {sampled} by inverting the {method} interval: p = the smallest alpha at which the "
        "one-sided (1 - alpha) bound excludes the threshold (beyond every resample: the normal tail of the bootstrap "
        "distribution, at most 1 / (resamples + 1))"
    )
    if comparison.op == "between":
        assert comparison.upper is not None
        u = _format_number(comparison.upper)
        return (
            f"{inversion}; TOST: H0: statistic <= {t} or statistic >= {u} (p = larger of the two one-sided p); "
            f"refutation H0: {t} <= statistic <= {u}, tested as statistic < {t} or > {u} (p = 2 x smaller, Bonferroni)"
        )
    if comparison.op in (">=", ">"):
        return f"{inversion}; H0: statistic <= {t} (vs > {t}); refutation H0: statistic >= {t} (vs < {t})"
    return f"{inversion}; H0: statistic >= {t} (vs < {t}); refutation H0: statistic <= {t} (vs > {t})"


def _effect_against_nulls(estimate: float, nulls: Mapping[str, float], notes: list[str]) -> tuple[float | None, str | None, float | None]:
    """(estimate minus the largest null, which null that is, the largest null); Nones without nulls."""
    finite = {name: float(v) for name, v in nulls.items() if math.isfinite(float(v))}
    if nulls:
        notes.append("nulls: " + "; ".join(f"{name} = {float(v):.4g}" for name, v in nulls.items()))
    if not finite:
        return None, None, None
    name = max(finite, key=finite.__getitem__)
    effect = estimate - finite[name] if math.isfinite(estimate) else None
    return effect, f"estimate minus the largest (most demanding) null value: {name}", finite[name]


def _why_no_inference(n: int, estimate: float, sampled: str = "documents") -> str | None:
    if n < 2:
        return f"{sampled}: {n}; a bootstrap over {sampled} needs at least 2"
    if not math.isfinite(estimate):
        return "the statistic is undefined on these tokens (NaN)"
    return None


def evaluate_pooled(
    stat: PooledStatistic,
    comparison: Comparison,
    *,
    statistic: str,
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 9999,
) -> Evaluation:
    """Estimate, cluster-bootstrap interval and p-values for a claim about a pooled token statistic.

    The document is the unit of sampling (see the module doc): resamples draw documents, never
    tokens. Fewer than 2 documents or an undefined statistic give a NaN interval and p = 1 both ways
    (inconclusive) with a note; nothing here raises on degenerate data.
    """
    alpha, n_resamples = _check_common_arguments(comparison, alpha, n_resamples)
    n, level = int(stat.n_documents), 1.0 - 2.0 * alpha
    notes = [stat.note] if stat.note else []
    estimate = stat.observed()
    effect, effect_kind, null_estimate = _effect_against_nulls(estimate, stat.nulls, notes)
    common = dict(
        statistic=statistic, comparison=comparison, n=n, estimate=estimate, ci_level=level, effect_size=effect,
        effect_size_kind=effect_kind, null_estimate=null_estimate, estimand=stat.estimand,
        margin=_margin(estimate, comparison) if math.isfinite(estimate) else None,
    )
    reason = _why_no_inference(n, estimate, stat.sampled)
    if reason is None:
        shift = estimate - stat.at_unit_weights() if stat.exact is not None else 0.0
        if stat.exact is not None:
            notes.append(f"resampled values shifted by {shift:.3g} (exact value minus its fast approximation at unit weights)")
        boot = _cluster_bootstrap(stat, level, n_resamples, seed, shift)
        undefined = int(np.count_nonzero(~np.isfinite(boot.values)))
        if undefined == boot.values.size:
            reason = f"the statistic is undefined on every resample of {stat.sampled}"
    if reason is not None:
        return Evaluation(
            ci=(math.nan, math.nan), ci_method="none: " + reason, test="none: " + reason, p_value=1.0, p_value_refute=1.0,
            note="; ".join([reason + ": no inference possible", *notes]), **common,
        )
    use_bca = undefined == 0 and all(math.isfinite(v) for v in boot.bca)
    if use_bca:
        ci, method = boot.bca, "BCa"
    else:
        finite = boot.values[np.isfinite(boot.values)]
        ci, method = (float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))), "percentile"
        why = f"{undefined} of {n_resamples} resamples had no defined value and were left out" if undefined else "its acceleration or bias correction is undefined (degenerate bootstrap or jackknife)"
        notes.append(f"BCa undefined ({why}): percentile interval and percentile p-values instead")
    above, below = _one_sided_p_functions(boot, estimate, use_bca, n)
    p_claim, p_refute = _p_values(above, below, comparison)
    return Evaluation(
        ci=ci, ci_method=f"{method} bootstrap over {n} {stat.sampled}{_strata_words(stat)}, {n_resamples} resamples",
        test=_test_words(comparison, method, n, stat.sampled), p_value=float(p_claim), p_value_refute=float(p_refute),
        note="; ".join(notes) if notes else None, **common,
    )


def _strata_words(stat: PooledStatistic) -> str:
    if stat.strata is None or len(stat.strata) < 2:
        return ""
    return f" (stratified: blocks of {', '.join(str(size) for size in stat.strata)} resampled apart)"


# --------------------------------------------------------------------------------------------------
# constructors from per-token arrays


@dataclass(frozen=True)
class _Tokens:
    """Validated per-token arrays: activation float[T], match bool[T], document int[T] in 0..n-1."""

    activation: np.ndarray
    match: np.ndarray
    document: np.ndarray
    n_documents: int


def _tokens(activation: npt.ArrayLike, match: npt.ArrayLike, document: npt.ArrayLike, n_documents: int | None) -> _Tokens:
    act = np.asarray(activation, dtype=float)
    hit = np.asarray(match)
    doc = np.asarray(document)
    if act.ndim != 1 or hit.shape != act.shape or doc.shape != act.shape:
        raise ValueError(f"activation, match and document must be 1-D of one length, got shapes {act.shape}, {hit.shape}, {doc.shape}")
    if hit.dtype != bool:
        raise ValueError(f"match must be boolean (whether each token matches), got dtype {hit.dtype}")
    if doc.size and not np.issubdtype(doc.dtype, np.integer):
        raise ValueError(f"document must hold integer document indices, got dtype {doc.dtype}")
    if not np.all(np.isfinite(act)):
        raise ValueError(f"activation has {int(np.count_nonzero(~np.isfinite(act)))} non-finite value(s)")
    n = int(doc.max()) + 1 if n_documents is None and doc.size else int(n_documents or 0)
    if doc.size and (doc.min() < 0 or doc.max() >= n):
        raise ValueError(f"document indices must lie in 0..{n - 1}, got {doc.min()}..{doc.max()}")
    return _Tokens(act, hit, doc.astype(np.intp), n)


def _undefined_because(tokens: _Tokens) -> str | None:
    """Why no statistic of the activation can tell matching tokens apart on these tokens, if so."""
    if tokens.activation.size == 0:
        return "no tokens"
    matching = int(np.count_nonzero(tokens.match))
    if matching == 0:
        return "no token matches: the corpus does not test the claim"
    if matching == tokens.match.size:
        return "every token matches: nothing to tell them apart from"
    if np.all(tokens.activation == tokens.activation[0]):
        return f"every activation equals {tokens.activation[0]:.4g}: a constant neuron tells no tokens apart"
    return None


def _undefined(tokens: _Tokens, estimand: str, reason: str, nulls: Mapping[str, float], unit: str | None) -> PooledStatistic:
    def value(weights: np.ndarray) -> np.ndarray:
        return np.full(np.shape(weights)[0], math.nan)

    return PooledStatistic(value, tokens.n_documents, estimand, dict(nulls), math.nan, unit, f"undefined: {reason}")


def _per_document(tokens: _Tokens, columns: np.ndarray) -> np.ndarray:
    """[n_documents, k] per-document sums of per-token ``columns`` ([T, k])."""
    out = np.zeros((tokens.n_documents, columns.shape[1]))
    np.add.at(out, tokens.document, columns)
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), math.nan)


def _share_statistic(tokens: _Tokens, numerator: np.ndarray, denominator: np.ndarray, estimand: str, nulls: Mapping[str, float], unit: str, note: str | None = None) -> PooledStatistic:
    """A ratio of two token counts pooled over documents: per-document counts, one product a resample."""
    sums = _per_document(tokens, np.stack([numerator, denominator], axis=1).astype(float))

    def value(weights: np.ndarray) -> np.ndarray:
        pooled = np.asarray(weights, dtype=float) @ sums
        return _ratio(pooled[:, 0], pooled[:, 1])

    return PooledStatistic(value, tokens.n_documents, estimand, dict(nulls), None, unit, note)


def _exact_auroc(activation: np.ndarray, match: np.ndarray) -> float:
    """P(matching > non-matching) + P(tie) / 2 over all token pairs: Mann-Whitney U / (n1 n0)."""
    n1 = int(np.count_nonzero(match))
    n0 = match.size - n1
    ranks = stats.rankdata(activation)
    return float((ranks[match].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _activation_bins(activation: np.ndarray, n_bins: int) -> tuple[np.ndarray, int]:
    """(bin of each token, number of bins): the distinct values when there are at most ``n_bins``
    (then the binned AUROC is exact), else ~``n_bins`` quantile bins of the pooled activations."""
    distinct, inverse = np.unique(activation, return_inverse=True)
    if distinct.size <= n_bins:
        return inverse.reshape(-1), int(distinct.size)
    edges = np.unique(np.quantile(activation, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, activation, side="right"), int(edges.size + 1)


def _binned_auroc(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """AUROC from [B, bins] weighted histograms (bins ascending; a pair inside one bin counts 1/2)."""
    below = np.cumsum(negatives, axis=1) - negatives
    wins = np.sum(positives * (below + 0.5 * negatives), axis=1)
    return _ratio(wins, positives.sum(axis=1) * negatives.sum(axis=1))


def _in_row_chunks(function: WeightsFunction, weights: np.ndarray, width: int) -> np.ndarray:
    """``function`` over chunks of rows so that an intermediate [rows, width] stays ~32 MiB."""
    weights = np.asarray(weights, dtype=float)
    rows = max(1, _MAX_BATCH_ELEMENTS // max(width, 1))
    if weights.shape[0] <= rows:
        return function(weights)
    return np.concatenate([function(weights[i : i + rows]) for i in range(0, weights.shape[0], rows)])


def auroc_statistic(
    activation: npt.ArrayLike, match: npt.ArrayLike, document: npt.ArrayLike, *, n_documents: int | None = None,
    nulls: Mapping[str, float] | None = None, n_bins: int = 1024,
) -> PooledStatistic:
    """AUROC of the activation for matching vs non-matching tokens, tokens pooled over documents.

    ``exact`` is the rank AUROC (ties 1/2); resamples use per-document histograms over ~``n_bins``
    quantile bins of the pooled activations (a pair inside one bin counts 1/2), so a resample is
    ``weights @ counts``: exact when there are at most ``n_bins`` distinct activations.
    """
    tokens = _tokens(activation, match, document, n_documents)
    estimand = "AUROC of the activation for matching vs non-matching tokens, tokens pooled over documents"
    reason = _undefined_because(tokens)
    if reason:
        return _undefined(tokens, estimand, reason, nulls or {}, "AUROC")
    bins, k = _activation_bins(tokens.activation, n_bins)
    shape = (tokens.n_documents, k)
    positives = sparse.csr_array((tokens.match.astype(float), (tokens.document, bins)), shape=shape)
    negatives = sparse.csr_array(((~tokens.match).astype(float), (tokens.document, bins)), shape=shape)

    def binned(weights: np.ndarray) -> np.ndarray:
        return _binned_auroc((positives.T @ weights.T).T, (negatives.T @ weights.T).T)

    def value(weights: np.ndarray) -> np.ndarray:
        return _in_row_chunks(binned, weights, 3 * k)

    return PooledStatistic(value, tokens.n_documents, estimand, dict(nulls or {}), _exact_auroc(tokens.activation, tokens.match), "AUROC")


def firing_threshold(activation: npt.ArrayLike) -> float:
    """Half the largest activation (Neuron2Graph's rule for when a neuron fires)."""
    return 0.5 * float(np.max(np.asarray(activation, dtype=float)))


def _firing(tokens: _Tokens, threshold: float | None) -> tuple[np.ndarray, float, str]:
    t = firing_threshold(tokens.activation) if threshold is None else float(threshold)
    how = "half the largest observed activation, Neuron2Graph's rule" if threshold is None else "given"
    return tokens.activation >= t, t, f"firing = activation >= {t:.4g} ({how}; fixed from the observed sample, not re-estimated per resample)"


def firing_precision_statistic(
    activation: npt.ArrayLike, match: npt.ArrayLike, document: npt.ArrayLike, threshold: float | None = None, *,
    n_documents: int | None = None, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """P(match | the neuron fires), tokens pooled over documents; ``threshold`` defaults to :func:`firing_threshold`."""
    tokens = _tokens(activation, match, document, n_documents)
    reason = _undefined_because(tokens)
    if reason:
        return _undefined(tokens, "precision: share of firing tokens that match", reason, nulls or {}, "share of tokens")
    fires, _, words = _firing(tokens, threshold)
    estimand = f"precision: share of firing tokens that match, tokens pooled over documents; {words}"
    note = None if fires.any() else "no token reaches the firing threshold: precision is undefined"
    return _share_statistic(tokens, fires & tokens.match, fires, estimand, nulls or {}, "share of tokens", note)


def firing_recall_statistic(
    activation: npt.ArrayLike, match: npt.ArrayLike, document: npt.ArrayLike, threshold: float | None = None, *,
    n_documents: int | None = None, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """P(the neuron fires | match), tokens pooled over documents; ``threshold`` defaults to :func:`firing_threshold`."""
    tokens = _tokens(activation, match, document, n_documents)
    reason = _undefined_because(tokens)
    if reason:
        return _undefined(tokens, "recall: share of matching tokens on which the neuron fires", reason, nulls or {}, "share of tokens")
    fires, _, words = _firing(tokens, threshold)
    estimand = f"recall: share of matching tokens on which the neuron fires, tokens pooled over documents; {words}"
    return _share_statistic(tokens, fires & tokens.match, tokens.match, estimand, nulls or {}, "share of tokens")


def _top_share_of_groups(token_weights: np.ndarray, matching: np.ndarray, starts: np.ndarray, k: int) -> np.ndarray:
    """Share matching among the top k of a weighted sample, from tokens sorted by activation
    (descending) and grouped by equal activation: a group straddling the k-th place contributes the
    places left, at its own matching share (the average over every order of its ties)."""
    weight = np.add.reduceat(token_weights, starts, axis=1)
    matched = np.add.reduceat(token_weights * matching, starts, axis=1)
    before = np.cumsum(weight, axis=1) - weight
    taken = np.clip(k - before, 0.0, weight)
    share = np.nan_to_num(_ratio(matched, weight))  # a group of weight 0 is never taken
    return _ratio(np.sum(taken * share, axis=1), taken.sum(axis=1))


def top_share_statistic(
    activation: npt.ArrayLike, match: npt.ArrayLike, document: npt.ArrayLike, k: int, *,
    n_documents: int | None = None, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """The share of the k largest activations whose token matches, tokens pooled over documents.

    Under resampling a document of weight w contributes its tokens w times: the top k of the
    weighted sample, fractional at the boundary; tied activations at the boundary share the places
    left in proportion (the average over tie orders).
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    tokens = _tokens(activation, match, document, n_documents)
    estimand = f"share of the {k} largest activations whose token matches, tokens pooled over documents"
    reason = _undefined_because(tokens)
    if reason:
        return _undefined(tokens, estimand, reason, nulls or {}, "share of tokens")
    order = np.argsort(-tokens.activation, kind="stable")
    sorted_act, sorted_doc, sorted_match = tokens.activation[order], tokens.document[order], tokens.match[order].astype(float)
    starts = np.flatnonzero(np.r_[True, sorted_act[1:] != sorted_act[:-1]])
    # candidates: the first groups holding 4k tokens; rows whose candidates weigh less than k use all tokens
    cut = int(np.searchsorted(starts, min(4 * k, sorted_act.size), side="left"))
    head_starts = starts[: max(cut, 1)]
    head = int(starts[cut]) if cut < starts.size else sorted_act.size

    def share(weights: np.ndarray, size: int, group_starts: np.ndarray) -> np.ndarray:
        return _top_share_of_groups(weights[:, sorted_doc[:size]], sorted_match[:size], group_starts, k)

    def value(weights: np.ndarray) -> np.ndarray:
        weights = np.asarray(weights, dtype=float)
        out = _in_row_chunks(lambda w: share(w, head, head_starts), weights, 3 * head)
        short = weights[:, sorted_doc[:head]].sum(axis=1) < k if head < sorted_act.size else np.zeros(weights.shape[0], bool)
        if short.any():
            out[short] = _in_row_chunks(lambda w: share(w, sorted_act.size, starts), weights[short], 3 * sorted_act.size)
        return out

    return PooledStatistic(value, tokens.n_documents, estimand, dict(nulls or {}), None, "share of tokens")


def correlation_statistic(
    activation: npt.ArrayLike, match: npt.ArrayLike, document: npt.ArrayLike, *,
    n_documents: int | None = None, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """Pearson correlation of the activation with the 0/1 match indicator, tokens pooled over
    documents, from per-document sums (activations centred first, for numerical stability)."""
    tokens = _tokens(activation, match, document, n_documents)
    estimand = "Pearson correlation of the activation with the match indicator (0/1), tokens pooled over documents"
    reason = _undefined_because(tokens)
    if reason:
        return _undefined(tokens, estimand, reason, nulls or {}, "Pearson r")
    x = tokens.activation - tokens.activation.mean()
    y = tokens.match.astype(float)
    sums = _per_document(tokens, np.stack([np.ones_like(x), x, y, x * x, x * y], axis=1))

    def value(weights: np.ndarray) -> np.ndarray:
        n, sx, sy, sxx, sxy = (np.asarray(weights, dtype=float) @ sums).T
        with np.errstate(divide="ignore", invalid="ignore"):
            mx, my = sx / n, sy / n
            covariance = sxy / n - mx * my
            variance = (sxx / n - mx * mx) * (my - my * my)
            return np.where(variance > 0, covariance / np.sqrt(np.where(variance > 0, variance, 1.0)), math.nan)

    return PooledStatistic(value, tokens.n_documents, estimand, dict(nulls or {}), None, "Pearson r")


def band_share_statistic(
    activation: npt.ArrayLike, match: npt.ArrayLike, document: npt.ArrayLike, lower_pct: float, upper_pct: float, *,
    n_documents: int | None = None, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """Among tokens whose activation lies in a band given by percentiles from the top ((0, 1): the
    top 1%; (1, 5), (5, 20), (20, 50)), the share that match, tokens pooled over documents.

    The band is [quantile 1 - upper_pct/100, quantile 1 - lower_pct/100) of the observed activations
    (closed above for the top band), edges fixed from the observed sample, not re-estimated per resample.
    """
    if not 0.0 <= lower_pct < upper_pct <= 100.0:
        raise ValueError(f"need 0 <= lower_pct < upper_pct <= 100 (percent from the top), got {lower_pct}, {upper_pct}")
    tokens = _tokens(activation, match, document, n_documents)
    what = f"share of matching tokens among those in the activation band {lower_pct:g}-{upper_pct:g}% from the top"
    reason = _undefined_because(tokens)
    if reason:
        return _undefined(tokens, what, reason, nulls or {}, "share of tokens")
    low = float(np.quantile(tokens.activation, 1 - upper_pct / 100))
    high = float(np.quantile(tokens.activation, 1 - lower_pct / 100))
    inside = (tokens.activation >= low) & ((tokens.activation < high) if lower_pct > 0 else True)
    estimand = (
        f"{what}, tokens pooled over documents; band [{low:.4g}, {high:.4g}{']' if lower_pct == 0 else ')'} "
        "(edges: quantiles of the observed activations, fixed, not re-estimated per resample)"
    )
    note = None if inside.any() else "no token lies in the band: its share is undefined"
    return _share_statistic(tokens, inside & tokens.match, inside, estimand, nulls or {}, "share of tokens", note)


def share_statistic(
    indicator: npt.ArrayLike, document: npt.ArrayLike, *, estimand: str, among: npt.ArrayLike | None = None,
    n_documents: int | None = None, nulls: Mapping[str, float] | None = None, unit: str = "share of tokens",
) -> PooledStatistic:
    """The share of tokens for which ``indicator`` holds, among the tokens ``among`` selects (every
    token by default), tokens pooled over documents: e.g. the share of a regex's matches on which a
    neuron does not fire. Per-document counts, one matrix product per resample. Undefined (NaN,
    with a note) when no token is selected; 0 or 1 on every token is a share like any other.
    """
    hit = np.asarray(indicator)
    if hit.dtype != bool:
        raise ValueError(f"indicator must be boolean, got dtype {hit.dtype}")
    selected = np.ones(hit.shape, dtype=bool) if among is None else np.asarray(among)
    if selected.dtype != bool or selected.shape != hit.shape:
        raise ValueError(f"among must be boolean of the indicator's shape {hit.shape}, got {selected.dtype} {selected.shape}")
    # the indicator doubles as the (finite) activation that the shared validation wants
    tokens = _tokens(hit.astype(float), hit, document, n_documents)
    note = None if selected.any() else "no token is selected: the share is undefined"
    return _share_statistic(tokens, hit & selected, selected, estimand, nulls or {}, unit, note)


# --------------------------------------------------------------------------------------------------
# nulls: the best column (neuron) of a matrix, and a random token class of the same size and frequency


def _best(values: np.ndarray) -> tuple[float, int]:
    if not np.any(np.isfinite(values)):
        return math.nan, -1
    column = int(np.nanargmax(values))
    return float(values[column]), column


def _column_aurocs(activations: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Exact AUROC of every column (ties count 1/2): each column's non-matching values sorted once
    (one C sort for all columns), then, per column, how many of them lie below and at each matching
    value (two binary searches). The same number as the rank-sum formula with average ranks, several
    times faster than ranking every column (the best-of-N nulls run it on [8192, 2048])."""
    n1 = int(np.count_nonzero(match))
    n0 = match.size - n1
    if n1 == 0 or n0 == 0:
        return np.full(activations.shape[1], math.nan)
    negatives = np.sort(activations[~match], axis=0)
    positives = activations[match]
    out = np.empty(activations.shape[1])
    for j in range(activations.shape[1]):
        below = np.searchsorted(negatives[:, j], positives[:, j], side="left")
        at_or_below = np.searchsorted(negatives[:, j], positives[:, j], side="right")
        out[j] = (below.sum() + 0.5 * (at_or_below - below).sum()) / (n1 * n0)
    return out


def _column_top_shares(activations: np.ndarray, match: np.ndarray, k: int) -> np.ndarray:
    """Share matching among each column's k largest values (ties at the k-th value share the places left)."""
    k = min(k, activations.shape[0])
    kth = np.partition(activations, activations.shape[0] - k, axis=0)[activations.shape[0] - k]
    above, tied = activations > kth, activations == kth
    hit = match[:, None]
    left = k - above.sum(axis=0)
    return ((above & hit).sum(axis=0) + left * (tied & hit).sum(axis=0) / tied.sum(axis=0)) / k


def _column_correlations(activations: np.ndarray, match: np.ndarray) -> np.ndarray:
    x = activations - activations.mean(axis=0)
    y = match.astype(float) - match.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (y @ x) / np.sqrt((x * x).sum(axis=0) * (y @ y))
    return np.where(np.isfinite(r), r, math.nan)


def column_statistics(activations: npt.ArrayLike, match: npt.ArrayLike, k: int) -> dict[str, np.ndarray]:
    """Each statistic ("auroc", "precision", "recall", "top_share", "correlation") of every column
    (neuron) of ``activations`` [T, N] against ``match`` [T], tokens pooled: [N] values each
    (precision and recall at each column's own half-max threshold; NaN where undefined). For sweeps
    over a layer's neurons (``hypotheses/explore_neurons.py``) and the best-of-N nulls."""
    x = np.asarray(activations)
    x = x if x.dtype in (np.float32, np.float64) else x.astype(float)
    hit = np.asarray(match, dtype=bool)
    if x.ndim != 2 or hit.shape != (x.shape[0],):
        raise ValueError(f"need activations [T, N] and match [T], got shapes {x.shape} and {hit.shape}")
    fires = x >= 0.5 * x.max(axis=0)
    firing_hits = (fires & hit[:, None]).sum(axis=0).astype(float)
    return {
        "auroc": _column_aurocs(x, hit),
        "precision": _ratio(firing_hits, fires.sum(axis=0).astype(float)),
        "recall": _ratio(firing_hits, np.full(x.shape[1], float(hit.sum()))),
        "top_share": _column_top_shares(x, hit, int(k)),
        "correlation": _column_correlations(x, hit),
    }


def best_over_columns(activations: npt.ArrayLike, match: npt.ArrayLike, k: int) -> dict[str, tuple[float, int]]:
    """For each statistic of :func:`column_statistics`, the best value over the columns (neurons) and
    its column: the value a claimed neuron must beat when the null is "the best of N neurons".
    Column -1 and NaN where no column is defined."""
    return {name: _best(values) for name, values in column_statistics(activations, match, k).items()}


def frequency_matched_class(tokens: npt.ArrayLike, match: npt.ArrayLike, rng: np.random.Generator, *, nearest: int = 3) -> np.ndarray:
    """A random token class like the matching one: as many token types, about the same total frequency.

    Each matching type (most frequent first) is paired with a random type, never matching, among the
    ``nearest`` unused ones closest in log count to the type's matching count; the class is every
    occurrence of the chosen types. So "the best neuron for this class" is what selection alone
    buys for a class of that size and frequency. At the head of a Zipf vocabulary the nearest
    never-matching types can differ in count by a factor of 2 or more (there is no type of similar
    count), so report the class's own frequency next to the null.
    """
    ids = np.asarray(tokens)
    hit = np.asarray(match, dtype=bool)
    if ids.shape != hit.shape or ids.ndim != 1:
        raise ValueError(f"tokens and match must be 1-D of one length, got {ids.shape} and {hit.shape}")
    targets, target_counts = np.unique(ids[hit], return_counts=True)
    types, counts = np.unique(ids, return_counts=True)
    candidates = ~np.isin(types, targets)
    if candidates.sum() < targets.size:
        raise ValueError(f"{targets.size} matching token types but only {int(candidates.sum())} never-matching types to pair them with")
    pool, pool_log = types[candidates], np.log(counts[candidates])
    free = np.ones(pool.size, dtype=bool)
    chosen = []
    for count in np.sort(target_counts)[::-1]:
        distance = np.where(free, np.abs(pool_log - math.log(count)), np.inf)
        closest = np.argsort(distance, kind="stable")[: min(nearest, int(free.sum()))]
        pick = int(rng.choice(closest))
        free[pick] = False
        chosen.append(pool[pick])
    return np.isin(ids, np.asarray(chosen))

# --------------------------------------------------------------------------------------------------
# feature directions: a feature's tokens against the other tokens, as vectors


def _document_sums(sums: npt.ArrayLike, counts: npt.ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated per-document sums [n_documents, width] and token counts [n_documents]."""
    s = np.asarray(sums, dtype=float)
    c = np.asarray(counts, dtype=float)
    if s.ndim != 2 or c.shape != (s.shape[0],):
        raise ValueError(f"{what}: need sums [documents, width] and counts [documents], got shapes {s.shape} and {c.shape}")
    if np.any(c < 0) or not np.all(np.isfinite(s)):
        raise ValueError(f"{what}: token counts must be >= 0 and sums finite")
    return s, c


def _weighted_mean_difference(feature: tuple[np.ndarray, np.ndarray], background: tuple[np.ndarray, np.ndarray], weights: np.ndarray) -> np.ndarray:
    """[B, width]: the feature tokens' mean minus the other tokens' mean, tokens pooled over documents
    weighted by ``weights`` [B, documents] (NaN rows where a side has no token)."""
    w = np.asarray(weights, dtype=float)
    (fs, fc), (bs, bc) = feature, background
    return _ratio(w @ fs, (w @ fc)[:, None]) - _ratio(w @ bs, (w @ bc)[:, None])


def mean_difference(
    feature_sums: npt.ArrayLike, feature_counts: npt.ArrayLike, background_sums: npt.ArrayLike, background_counts: npt.ArrayLike
) -> np.ndarray:
    """The feature tokens' mean vector minus the other tokens' mean vector [width], tokens pooled over
    documents, from per-document sums [documents, width] and token counts [documents]."""
    feature = _document_sums(feature_sums, feature_counts, "feature")
    background = _document_sums(background_sums, background_counts, "background")
    return _weighted_mean_difference(feature, background, np.ones((1, feature[0].shape[0])))[0]


def _cosines(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``vectors`` [B, d] with ``reference`` [d] (NaN for a zero or NaN row)."""
    return _ratio(vectors @ reference, np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference))


def _sides_undefined(feature_tokens: float, background_tokens: float) -> str | None:
    if feature_tokens == 0:
        return "no token has the feature: the corpus does not test the claim"
    if background_tokens == 0:
        return "every token has the feature: nothing to tell it apart from"
    return None


def mean_difference_cosine_statistic(
    feature_sums: npt.ArrayLike, feature_counts: npt.ArrayLike, background_sums: npt.ArrayLike, background_counts: npt.ArrayLike,
    reference: npt.ArrayLike, *, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """Cosine of the feature's mean-difference direction (feature tokens' mean vector minus the other
    tokens') with a ``reference`` direction (e.g. a neuron's input weights), tokens pooled over
    documents; resampled exactly from the per-document sums (a resample's direction is recomputed)."""
    feature = _document_sums(feature_sums, feature_counts, "feature")
    background = _document_sums(background_sums, background_counts, "background")
    ref = np.asarray(reference, dtype=float)
    if ref.shape != (feature[0].shape[1],) or feature[0].shape != background[0].shape:
        raise ValueError(f"need feature and background sums of one shape and a reference of their width, got {feature[0].shape}, {background[0].shape}, {ref.shape}")
    estimand = "cosine of the feature's mean-difference direction (its tokens' mean minus the other tokens') with the reference direction, tokens pooled over documents"
    n = feature[0].shape[0]
    reason = _sides_undefined(feature[1].sum(), background[1].sum())
    if reason:
        return undefined_statistic(n, estimand, reason, unit="cosine", nulls=nulls)

    def value(weights: np.ndarray) -> np.ndarray:
        return _cosines(_weighted_mean_difference(feature, background, weights), ref)

    return PooledStatistic(value, n, estimand, dict(nulls or {}), None, "cosine")


def max_share_statistic(
    feature_sums: npt.ArrayLike, feature_counts: npt.ArrayLike, background_sums: npt.ArrayLike, background_counts: npt.ArrayLike,
    *, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """The largest share of the squared norm of the feature's mean difference (feature tokens' mean
    minus the other tokens', per coordinate: per neuron) carried by one coordinate, tokens pooled over
    documents: 1 when one neuron carries all of it, 1/width when every neuron carries the same.
    Resampled exactly from per-document sums; the coordinate is re-chosen in each resample."""
    feature = _document_sums(feature_sums, feature_counts, "feature")
    background = _document_sums(background_sums, background_counts, "background")
    if feature[0].shape != background[0].shape:
        raise ValueError(f"feature and background sums must have one shape, got {feature[0].shape} and {background[0].shape}")
    estimand = (
        "largest share of the squared norm of the feature's mean difference (its tokens' mean minus the other tokens', "
        "per neuron) carried by one neuron, tokens pooled over documents; the neuron is re-chosen in each resample"
    )
    n, width = feature[0].shape
    reason = _sides_undefined(feature[1].sum(), background[1].sum())
    if reason:
        return undefined_statistic(n, estimand, reason, unit="share of squared norm", nulls=nulls)

    def share(weights: np.ndarray) -> np.ndarray:
        squared = _weighted_mean_difference(feature, background, weights) ** 2
        return _ratio(squared.max(axis=1), squared.sum(axis=1))

    def value(weights: np.ndarray) -> np.ndarray:
        return _in_row_chunks(share, weights, 4 * width)

    return PooledStatistic(value, n, estimand, dict(nulls or {}), None, "share of squared norm")


def _top_eigenvectors(matrix: np.ndarray, k: int) -> np.ndarray:
    """[d, k] eigenvectors of a symmetric matrix, largest eigenvalue first."""
    _, vectors = np.linalg.eigh(matrix)
    return vectors[:, ::-1][:, :k]


def _oriented(direction: np.ndarray, along: np.ndarray) -> np.ndarray:
    """``direction`` (rows [B, d] or one [d]) with its sign chosen so that it points along ``along``
    (an eigenvector has no sign of its own; the feature's side does)."""
    sign = np.where(np.sum(direction * along, axis=-1) < 0, -1.0, 1.0)
    return direction * (sign[..., None] if direction.ndim > 1 else sign)


def background_centred_top_component(feature_vectors: npt.ArrayLike, background_mean: npt.ArrayLike) -> np.ndarray:
    """The top principal component of the feature tokens' vectors taken about the *other* tokens'
    mean (the top eigenvector of mean (x - m0)(x - m0)^T over feature tokens), oriented towards the
    feature's mean: where the feature's tokens lie seen from the rest, not how they vary among
    themselves (a PCA centred on the feature's own mean describes only the latter)."""
    x = np.asarray(feature_vectors, dtype=float)
    m0 = np.asarray(background_mean, dtype=float)
    y = x - m0
    second = y.T @ y / max(1, y.shape[0])
    return _oriented(_top_eigenvectors(second, 1)[:, 0], y.mean(axis=0))


def top_component_cosine_statistic(
    feature_vectors: npt.ArrayLike, feature_document: npt.ArrayLike, background_sums: npt.ArrayLike, background_counts: npt.ArrayLike,
    reference: npt.ArrayLike, *, rank: int = 16, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """Cosine of the feature's background-centred top principal component
    (:func:`background_centred_top_component`) with a ``reference`` direction, tokens pooled over documents.

    ``exact`` is the observed component. A resample re-estimates the background mean and the feature
    tokens' second moment about it from per-document sums, and takes the top eigenvector within the
    span of the observed top ``rank`` eigenvectors (Rayleigh-Ritz): exact when the resample's top
    component stays in that span, an approximation otherwise (the estimand says so).
    """
    x = np.asarray(feature_vectors, dtype=float)
    doc = np.asarray(feature_document)
    background = _document_sums(background_sums, background_counts, "background")
    ref = np.asarray(reference, dtype=float)
    n, d = background[0].shape
    if x.ndim != 2 or x.shape[1] != d or doc.shape != (x.shape[0],) or ref.shape != (d,):
        raise ValueError(f"need feature vectors [T, {d}], their documents [T] and a reference [{d}], got {x.shape}, {doc.shape}, {ref.shape}")
    if doc.size and (doc.min() < 0 or doc.max() >= n):
        raise ValueError(f"feature documents must lie in 0..{n - 1}")
    r = max(1, min(int(rank), d))
    estimand = (
        "cosine of the feature's top principal component (its tokens' vectors about the other tokens' mean, oriented "
        "towards the feature) with the reference direction, tokens pooled over documents; resamples re-estimate the "
        f"background mean and second moment and take the top eigenvector within the observed top {r} components"
    )
    reason = _sides_undefined(x.shape[0], background[1].sum())
    if reason:
        return undefined_statistic(n, estimand, reason, unit="cosine", nulls=nulls)
    m0 = background[0].sum(axis=0) / background[1].sum()
    y = x - m0
    basis = _top_eigenvectors(y.T @ y / y.shape[0], r)  # [d, r]
    exact = float(_cosines(background_centred_top_component(x, m0)[None, :], ref)[0])
    z = y @ basis  # [T, r], coordinates in the observed top-r span
    second = np.zeros((n, r * r))
    np.add.at(second, doc, np.einsum("ti,tj->tij", z, z).reshape(-1, r * r))
    first = np.zeros((n, r))
    np.add.at(first, doc, z)
    counts = np.bincount(doc, minlength=n).astype(float)
    back = (background[0] - background[1][:, None] * m0) @ basis  # [n, r] background sums about m0
    ref_in_basis = basis.T @ ref / np.linalg.norm(ref)

    def cosine(weights: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, dtype=float)
        n1, n0 = w @ counts, w @ background[1]
        m1 = _ratio(w @ first, n1[:, None])
        b = _ratio(w @ back, n0[:, None])
        moment = _ratio(w @ second, n1[:, None]).reshape(-1, r, r)
        moment = moment - m1[:, :, None] * b[:, None, :] - b[:, :, None] * m1[:, None, :] + b[:, :, None] * b[:, None, :]
        ok = np.all(np.isfinite(moment), axis=(1, 2))
        out = np.full(w.shape[0], math.nan)
        if ok.any():
            vectors = np.linalg.eigh(moment[ok])[1][:, :, -1]
            out[ok] = _oriented(vectors, m1[ok] - b[ok]) @ ref_in_basis
        return out

    def value(weights: np.ndarray) -> np.ndarray:
        return _in_row_chunks(cosine, weights, 4 * r * r)

    return PooledStatistic(value, n, estimand, dict(nulls or {}), exact, "cosine")


def _probe_loss(theta: np.ndarray, x: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """Mean logistic loss + l2/2 |beta|^2 (intercept unpenalised) and its gradient."""
    beta, intercept = theta[:-1], theta[-1]
    z = x @ beta + intercept
    loss = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * beta @ beta
    residual = special.expit(z) - y
    gradient = np.concatenate([x.T @ residual / y.size + l2 * beta, [residual.mean()]])
    return float(loss), gradient


def logistic_probe(x: npt.ArrayLike, y: npt.ArrayLike, l2: float) -> np.ndarray:
    """Weights and intercept [d + 1] of an L2-regularised logistic regression of ``y`` (bool [T]) on
    ``x`` [T, d] (the mean logistic loss plus l2/2 |weights|^2; the intercept is not penalised),
    fitted with L-BFGS. The weights are the probe's direction."""
    features = np.asarray(x, dtype=float)
    target = np.asarray(y, dtype=float)
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0 (without it a separable feature has no finite probe), got {l2}")
    start = np.zeros(features.shape[1] + 1)
    result = optimize.minimize(_probe_loss, start, args=(features, target, l2), jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-10})
    return result.x


def probe_cosine_statistic(
    x: npt.ArrayLike, y: npt.ArrayLike, document: npt.ArrayLike, reference: npt.ArrayLike, *, l2: float,
    n_documents: int | None = None, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """Cosine of an L2-regularised logistic probe's weights (:func:`logistic_probe`, feature tokens
    ``y`` against the others) with a ``reference`` direction, tokens pooled over documents.

    ``exact`` is the fitted probe. A resample is not refitted: its weights are one Newton step from
    the observed fit under the resample's document weights, with the observed Hessian (the
    linearisation behind the infinitesimal jackknife), so each resample costs one matrix product. The
    estimand says so; its interval is that of the linearised probe.
    """
    features = np.asarray(x, dtype=float)
    target = np.asarray(y, dtype=bool)
    doc = np.asarray(document)
    ref = np.asarray(reference, dtype=float)
    if features.ndim != 2 or target.shape != (features.shape[0],) or doc.shape != target.shape or ref.shape != (features.shape[1],):
        raise ValueError(f"need x [T, d], y [T], document [T] and a reference [d], got {features.shape}, {target.shape}, {doc.shape}, {ref.shape}")
    n = int(doc.max()) + 1 if n_documents is None and doc.size else int(n_documents or 0)
    estimand = (
        f"cosine of an L2-regularised (l2 = {l2:g}) logistic probe's weights for the feature's tokens against the others "
        "with the reference direction, tokens pooled over documents; resamples are one Newton step from the observed "
        "fit with the observed Hessian (linearised), not refits"
    )
    reason = _sides_undefined(float(target.sum()), float((~target).sum()))
    if reason:
        return undefined_statistic(n, estimand, reason, unit="cosine", nulls=nulls)
    theta = logistic_probe(features, target, l2)
    d = features.shape[1]
    augmented = np.concatenate([features, np.ones((features.shape[0], 1))], axis=1)
    p = special.expit(augmented @ theta)
    penalty = np.r_[np.full(d, l2), 0.0]
    hessian = (augmented * (p * (1 - p))[:, None]).T @ augmented / target.size + np.diag(penalty)
    inverse = np.linalg.pinv(hessian)[:, :d]  # [d + 1, d]: the weights' rows of H^-1
    residual = np.zeros((n, d + 1))
    np.add.at(residual, doc, augmented * (p - target)[:, None])
    counts = np.bincount(doc, minlength=n).astype(float)
    step = residual @ inverse  # [n, d]
    shift = (penalty * theta) @ inverse  # [d]
    beta = theta[:d]
    exact = float(_cosines(beta[None, :], ref)[0])

    def cosine(weights: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, dtype=float)
        moved = beta - _ratio(w @ step, (w @ counts)[:, None]) - shift
        return _cosines(moved, ref)

    def value(weights: np.ndarray) -> np.ndarray:
        return _in_row_chunks(cosine, weights, 4 * d)

    return PooledStatistic(value, n, estimand, dict(nulls or {}), exact, "cosine")


# --------------------------------------------------------------------------------------------------
# reference values for directions


def expected_abs_cosine_of_random_direction(dimensions: int) -> float:
    """E|cos| between a fixed direction and a uniformly random one in ``dimensions`` dimensions:
    Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)), about sqrt(2 / (pi d)) for large d."""
    d = int(dimensions)
    if d < 1:
        raise ValueError(f"dimensions must be >= 1, got {dimensions}")
    return float(math.exp(special.gammaln(d / 2) - special.gammaln((d + 1) / 2)) / math.sqrt(math.pi))


def expected_max_share_of_random_direction(dimensions: int, *, draws: int = 4000, seed: int = 0) -> float:
    """E[max_i g_i^2 / |g|^2] for a Gaussian vector g in ``dimensions`` dimensions (a direction with
    no preferred coordinate), by seeded Monte Carlo: about 2 ln(d) / d for large d."""
    d = int(dimensions)
    if d < 1:
        raise ValueError(f"dimensions must be >= 1, got {dimensions}")
    g = np.random.default_rng(seed).standard_normal((int(draws), d)) ** 2
    return float(np.mean(g.max(axis=1) / g.sum(axis=1)))


def best_abs_cosine_over_columns(direction: npt.ArrayLike, columns: npt.ArrayLike) -> tuple[float, int]:
    """The largest |cosine| of ``direction`` [d] with a column of ``columns`` [d, N] and its column:
    what the best of N directions (e.g. a random model's neurons) reaches by selection alone."""
    v = np.asarray(direction, dtype=float)
    m = np.asarray(columns, dtype=float)
    if m.ndim != 2 or v.shape != (m.shape[0],):
        raise ValueError(f"need a direction [d] and columns [d, N], got {v.shape} and {m.shape}")
    cos = np.abs(_cosines(m.T, v))
    if not np.any(np.isfinite(cos)):
        return math.nan, -1
    best = int(np.nanargmax(cos))
    return float(cos[best]), best


def best_aurocs_over_columns(activations: npt.ArrayLike, matches: list[npt.ArrayLike]) -> list[tuple[float, int]]:
    """:func:`best_over_columns`' AUROC for several token classes of the same tokens (a polysemantic
    claim's nulls: several random classes per feature), each by the one column-AUROC routine
    (:func:`_column_aurocs`: a sort and two binary searches per column, exact with ties 1/2). One
    (best AUROC, column) per class; NaN and -1 where a class is empty or full."""
    x = np.asarray(activations)
    x = x if x.dtype in (np.float32, np.float64) else x.astype(float)
    hits = [np.asarray(m, dtype=bool) for m in matches]
    if x.ndim != 2 or any(hit.shape != (x.shape[0],) for hit in hits):
        raise ValueError(f"need activations [T, N] and matches of shape [T], got {x.shape} and {[h.shape for h in hits]}")
    return [_best(_column_aurocs(x, hit)) for hit in hits]


# --------------------------------------------------------------------------------------------------
# two readings of one neuron, and correlations between neurons pooled from per-document sums


def undefined_statistic(n_documents: int, estimand: str, reason: str, *, unit: str | None = None, nulls: Mapping[str, float] | None = None) -> PooledStatistic:
    """A statistic that the data cannot define (NaN, judged inconclusive), with the reason as its note:
    for a check that finds the reason before any constructor could (e.g. a neuron that never fires)."""
    def value(weights: np.ndarray) -> np.ndarray:
        return np.full(np.shape(weights)[0], math.nan)

    return PooledStatistic(value, int(n_documents), estimand, dict(nulls or {}), math.nan, unit, f"undefined: {reason}")


def _document_index(document: npt.ArrayLike, size: int, n_documents: int | None) -> tuple[np.ndarray, int]:
    """Validated document indices of ``size`` tokens and the number of documents."""
    doc = np.asarray(document)
    if doc.shape != (size,):
        raise ValueError(f"document must be 1-D with one index per token ({size}), got shape {doc.shape}")
    if doc.size and not np.issubdtype(doc.dtype, np.integer):
        raise ValueError(f"document must hold integer document indices, got dtype {doc.dtype}")
    n = int(doc.max()) + 1 if n_documents is None and doc.size else int(n_documents or 0)
    if doc.size and (doc.min() < 0 or doc.max() >= n):
        raise ValueError(f"document indices must lie in 0..{n - 1}, got {doc.min()}..{doc.max()}")
    return doc.astype(np.intp), n


def rank_correlation_statistic(
    x: npt.ArrayLike, y: npt.ArrayLike, document: npt.ArrayLike, *, estimand: str = "Spearman correlation",
    n_documents: int | None = None, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """Spearman's rank correlation of two per-token values, tokens pooled over documents.

    The ranks (average ranks for ties) are taken once over the pooled observed tokens; a resample is
    Pearson's r of those fixed ranks under document weights, so the value at unit weights is exactly
    Spearman's rho, and a resample's value approximates the rho it would give if re-ranked."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.ndim != 1 or b.shape != a.shape:
        raise ValueError(f"x and y must be 1-D of one length, got shapes {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("x and y must be finite")
    doc, n = _document_index(document, a.size, n_documents)
    words = f"{estimand}, tokens pooled over documents (ranks fixed from the pooled observed tokens; resamples weight them)"
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return undefined_statistic(n, words, "a constant reading has no ranks to correlate", unit="Spearman rho", nulls=nulls)
    rx, ry = stats.rankdata(a), stats.rankdata(b)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    sums = np.zeros((n, 6))
    np.add.at(sums, doc, np.stack([np.ones_like(rx), rx, ry, rx * rx, ry * ry, rx * ry], axis=1))

    def value(weights: np.ndarray) -> np.ndarray:
        count, sx, sy, sxx, syy, sxy = (np.asarray(weights, dtype=float) @ sums).T
        with np.errstate(divide="ignore", invalid="ignore"):
            mx, my = sx / count, sy / count
            variance = (sxx / count - mx * mx) * (syy / count - my * my)
            return np.where(variance > 0, (sxy / count - mx * my) / np.sqrt(np.where(variance > 0, variance, 1.0)), math.nan)

    return PooledStatistic(value, n, words, dict(nulls or {}), None, "Spearman rho")


@dataclass(frozen=True)
class CorrelationSums:
    """Per-document sums from which the Pearson correlations of some columns (``rows``) with every
    column of a [tokens, columns] matrix (neurons' activations) are pooled under any document weights:
    a resample's correlations come from ``weights @ sums``, whatever the number of tokens, so a stream
    keeps these sums instead of its tokens.

    count [D]; total [D, n] and square [D, n]: each column's sum and sum of squares per document;
    cross [D, r, n]: cross[d, a, j] = the sum over document d's tokens of x[:, rows[a]] * x[:, j].
    Sum values that are roughly centred (subtract a fixed per-column reference, e.g. a first batch's
    means): correlations do not change, and raw moments lose precision when |mean| >> spread.
    """

    count: np.ndarray
    total: np.ndarray
    square: np.ndarray
    cross: np.ndarray
    rows: tuple[int, ...]

    def __post_init__(self) -> None:
        d, n, r = self.count.shape[0], self.total.shape[-1], len(self.rows)
        if self.total.shape != (d, n) or self.square.shape != (d, n) or self.cross.shape != (d, r, n):
            raise ValueError(f"inconsistent sums: count {self.count.shape}, total {self.total.shape}, square {self.square.shape}, cross {self.cross.shape}, {r} rows")
        if any(not 0 <= row < n for row in self.rows) or len(set(self.rows)) != r:
            raise ValueError(f"rows must be distinct columns in 0..{n - 1}, got {self.rows}")

    @property
    def n_documents(self) -> int:
        return int(self.count.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.total.shape[-1])


def correlation_sums(values: npt.ArrayLike, document: npt.ArrayLike, rows: tuple[int, ...] | list[int], *, n_documents: int | None = None) -> CorrelationSums:
    """:class:`CorrelationSums` of per-token ``values`` [T, n] (centred here by their mean)."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"values must be [tokens, columns], got shape {x.shape}")
    doc, n = _document_index(document, x.shape[0], n_documents)
    rows = tuple(int(r) for r in rows)
    count = np.bincount(doc, minlength=n).astype(float)
    total, square, cross = np.zeros((n, x.shape[1])), np.zeros((n, x.shape[1])), np.zeros((n, len(rows), x.shape[1]))
    if x.shape[0]:
        x = x - x.mean(axis=0)
        order = np.argsort(doc, kind="stable")
        x, doc = x[order], doc[order]
        starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
        present = doc[starts]
        total[present] = np.add.reduceat(x, starts, axis=0)
        square[present] = np.add.reduceat(x * x, starts, axis=0)
        for d, begin, end in zip(present, starts, np.r_[starts[1:], doc.size]):
            cross[d] = x[begin:end, list(rows)].T @ x[begin:end]
    return CorrelationSums(count, total, square, cross, rows)


_RELATIVE_VARIANCE_FLOOR = 1e-9  # a column whose variance is below this share of its mean square is constant


def pooled_correlations(sums: CorrelationSums, weights: npt.ArrayLike) -> np.ndarray:
    """[B, r, n]: Pearson's r of each row column with every column under each row of document
    ``weights`` [B, D]; NaN where a column is constant under those weights."""
    w = np.asarray(weights, dtype=float)
    count = w @ sums.count
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (w @ sums.total) / count[:, None]
        mean_square = (w @ sums.square) / count[:, None]
        variance = mean_square - mean * mean
        variance = np.where(variance > _RELATIVE_VARIANCE_FLOOR * mean_square, variance, math.nan)
        rows = list(sums.rows)
        cross = (w @ sums.cross.reshape(sums.n_documents, -1)).reshape(w.shape[0], len(rows), sums.n_columns) / count[:, None, None]
        covariance = cross - mean[:, rows, None] * mean[:, None, :]
        return covariance / np.sqrt(variance[:, rows, None] * variance[:, None, :])


def _correlation_statistic_of_sums(sums: CorrelationSums, reduce: Callable[[np.ndarray], np.ndarray], estimand: str, nulls: Mapping[str, float] | None) -> PooledStatistic:
    def value(weights: np.ndarray) -> np.ndarray:
        return _in_row_chunks(lambda w: reduce(pooled_correlations(sums, w)), weights, 3 * len(sums.rows) * sums.n_columns)

    stat = PooledStatistic(value, sums.n_documents, estimand, dict(nulls or {}), None, "Pearson r")
    if sums.n_documents and not math.isfinite(stat.at_unit_weights()):
        return undefined_statistic(sums.n_documents, estimand, "a column it needs is constant on these tokens", unit="Pearson r", nulls=nulls)
    return stat


def mean_pairwise_correlation_statistic(sums: CorrelationSums, *, nulls: Mapping[str, float] | None = None) -> PooledStatistic:
    """The mean of Pearson's r over every pair of the ``rows`` columns (a family of neurons), tokens
    pooled over documents; each resample recomputes every pair's r from its weighted sums."""
    rows = list(sums.rows)
    if len(rows) < 2:
        raise ValueError(f"a mean pairwise correlation needs at least 2 rows, got {len(rows)}")
    first, second = np.triu_indices(len(rows), k=1)
    columns = np.asarray(rows)[second]

    def reduce(r: np.ndarray) -> np.ndarray:
        return r[:, first, columns].mean(axis=1)

    estimand = f"mean Pearson correlation over the {first.size} pairs of {len(rows)} columns, tokens pooled over documents"
    return _correlation_statistic_of_sums(sums, reduce, estimand, nulls)


def family_separation_statistic(sums: CorrelationSums, *, nulls: Mapping[str, float] | None = None) -> PooledStatistic:
    """The mean pairwise r within the ``rows`` columns minus the mean r of a row column with a column
    outside ``rows``: how much more the family's members move together than with the rest."""
    rows = list(sums.rows)
    outside = np.setdiff1d(np.arange(sums.n_columns), rows)
    if len(rows) < 2 or outside.size == 0:
        raise ValueError(f"a separation needs at least 2 rows and 1 other column, got {len(rows)} rows of {sums.n_columns} columns")
    first, second = np.triu_indices(len(rows), k=1)
    columns = np.asarray(rows)[second]

    def reduce(r: np.ndarray) -> np.ndarray:
        others = r[:, :, outside].reshape(r.shape[0], -1)
        defined = np.isfinite(others)  # a constant (dead) other column has no correlation: left out
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_others = np.where(defined, others, 0.0).sum(axis=1) / defined.sum(axis=1)
        return r[:, first, columns].mean(axis=1) - mean_others

    estimand = (
        f"mean Pearson correlation within {len(rows)} columns minus their mean correlation with the {outside.size} other "
        "columns (those not constant), tokens pooled over documents"
    )
    return _correlation_statistic_of_sums(sums, reduce, estimand, nulls)


def ranked_correlation_statistic(
    sums: CorrelationSums, rank: int, *, row: int = 0, columns: npt.ArrayLike | None = None, nulls: Mapping[str, float] | None = None,
) -> PooledStatistic:
    """The ``rank``-th largest Pearson r of row column ``rows[row]`` with ``columns`` (default: every
    other column), tokens pooled over documents. Each resample recomputes every r and ranks them
    anew: which column is ``rank``-th may change, so the selection is inside the bootstrap.

    It restates a count: at least ``rank`` columns have r >= c exactly when the ``rank``-th largest
    r is >= c, so the bootstrap distribution of that count, read at c, is this statistic's."""
    if columns is None:
        columns = np.setdiff1d(np.arange(sums.n_columns), [sums.rows[row]])
    columns = np.asarray(columns, dtype=np.intp)
    if not 1 <= int(rank) <= columns.size:
        raise ValueError(f"rank must be 1..{columns.size} (the number of columns compared), got {rank}")
    rank = int(rank)

    def reduce(r: np.ndarray) -> np.ndarray:
        values = np.where(np.isfinite(r[:, row, columns]), r[:, row, columns], -np.inf)
        kth = -np.partition(-values, rank - 1, axis=1)[:, rank - 1]
        return np.where(np.isfinite(kth), kth, math.nan)

    estimand = (
        f"the {_ordinal(rank)} largest Pearson correlation of one column with {columns.size} others, tokens pooled over "
        "documents, recomputed and re-ranked on each resample of documents"
    )
    return _correlation_statistic_of_sums(sums, reduce, estimand, nulls)


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"
