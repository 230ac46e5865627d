"""The structure of an MLP layer over a streamed corpus, SoLU's above all: does the extra layer norm
let small activations through as large ones (``ln_smuggling``), do some neurons move together
(``neuron_family``), and does one neuron of a small model split into several of a larger one
(``feature_splitting``)?

What is read: a layer's neuron activations on every token of the claim's corpus streams (``inputs:
{kind: corpus_stream, ...}``, as for ``neuron_regex``; the document is the unit of resampling). For
SoLU (``act_fn: solu_ln``) TransformerLens 4.x has ``blocks.L.mlp.ln.hook_in``, SoLU's output
before its extra layer norm (where the SoLU paper and Neuroscope read neurons), and
``blocks.L.mlp.hook_post`` after it; ``read:`` chooses as in ``checks.neurons`` (``pre_ln`` by
default for SoLU). BOS and padding are no tokens.

``ln_smuggling`` (``neuron: L0N12``, ``top_pct``: default 1). The SoLU paper's worry: the layer norm
divides every neuron of a token by the same scale, so on a token where the whole layer is quiet a
small pre-LN activation can come out as large as a strong one (superposition "smuggled" through
small activations). It reads both hooks.

* ``smuggled_share``: among the tokens whose post-LN activation is in the neuron's top
  ``top_pct``% (the cut is the observed quantile), the share whose pre-LN activation is below the
  pre-LN firing threshold (half its largest pre-LN activation, Neuron2Graph's rule): top activations
  after the norm that were not large before it. Both cuts are fixed from the observed sample.
  Read it against its nulls: the half-max threshold is set by the neuron's single largest
  activation, so on heavy-tailed neurons most of the top 1% is below it whatever the layer norm
  does. Measured on zoo:solu-1l (20,000 discovery tokens, top 1%): the median neuron 0.905 trained
  and 0.925 with random weights (the best random neuron 0.995); ``smuggled_share >= 0.1`` holds
  for almost any neuron, random ones included.
* ``displaced_share``: among the same top tokens, the share whose pre-LN activation is below its
  own top ``top_pct``% cut: top after the norm, not top before it. This one separates: on the same
  tokens the median neuron is 0.10 trained and 0.08 random, the 95th percentile 0.17 and 0.11.
* ``rank_agreement``: Spearman's rho of the pre- and post-LN activation over tokens.

``neuron_family`` (``neurons: [L0N3, L0N5, ...]``, one layer). Neurons whose activation profiles
on the same text cluster (as equivariant families do):

* ``mean_correlation``: the mean pairwise Pearson r of the listed neurons' activations;
* ``separation``: that mean minus the mean r of a member with a non-member of the layer (the
  members move together more than with the rest, not only with everything).

``feature_splitting`` (``neuron: L0N1``, ``larger: zoo:solu-1l-wide``, ``min_correlation``: c,
default 0.5, ``larger_layer``: default the neuron's layer). Both models read the same token rows
(the engine requires one vocabulary); each neuron of the larger model's layer is correlated with the
small model's neuron:

* ``best_correlation``: the largest of those r;
* ``matches``: the number of larger-model neurons with r >= c. A count of neurons above a cut is
  not a mean: resampling documents moves neurons whose r is near c in and out, so the count has a
  bootstrap distribution of a few integers, on which intervals and "count >= 2 versus count > 2"
  tests are ill-defined. The claim is restated, exactly: at least m neurons reach c if and only if
  the m-th largest r is >= c (``stats.ranked_correlation_statistic``; re-ranked on each resample,
  so which neuron is m-th may change), and at most m do if and only if the (m+1)-th largest is < c.
  ``matches: ">= 2"`` is judged as "2nd largest r >= c", ``between 2 3`` as both "2nd largest
  >= c" and "4th largest < c"; the report names the order statistic and notes the observed count.

Nulls, reported beside every statistic (the largest gives the effect size), on the first
``null_tokens`` tokens of the stream: for ``ln_smuggling`` the best of all neurons of a
random-weights model (the claimed neuron was found by looking at all of them) and this model's
median neuron; for ``neuron_family`` as many random neurons of this model (the mean over
``RANDOM_SETS`` sets) and the listed neurons in a random-weights model; for ``feature_splitting``
the same order statistic against a random-weights twin of the larger model (the small model's
neuron unchanged).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping

import numpy as np

from interp_checks.checks.base import (
    MODEL,
    NULL,
    Activations,
    CheckError,
    CorpusMeasurement,
    CorpusPass,
    ModelShape,
    Needs,
    Prepared,
    register,
)
from interp_checks.checks.neurons import DEFAULT_INPUTS, READS, _Growing, neuron_name, parse_neuron, reading
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch
from interp_checks.stats import Comparison

LARGER = "larger"  # feature_splitting's second model role
DEFAULT_TOP_PCT = 1.0
DEFAULT_MIN_CORRELATION = 0.5
RANDOM_SETS = 8  # random neuron sets averaged for neuron_family's null
STRIP_POINTS = 300  # pre-LN values pictured per smuggling claim
BARS_SHOWN = 16  # larger-model neurons pictured per splitting claim


# -- reading a batch -------------------------------------------------------------------------------


def _scored(rows: InputBatch) -> np.ndarray:
    """[rows, positions] tokens that count: valid, and not the BOS that starts every row."""
    scored = rows.valid.copy()
    scored[:, 0] = False
    return scored


class _Documents:
    """Document names -> indices 0, 1, ... in the order the stream meets them."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def of_tokens(self, rows: InputBatch, scored: np.ndarray) -> np.ndarray:
        ids = np.array([self.index.setdefault(name, len(self.index)) for name in rows.sources or []], dtype=np.int32)
        return np.broadcast_to(ids[:, None], scored.shape)[scored]


def _of_role(activations: Any, role: str, multi: bool) -> Activations:
    """The hooks of ``role``: the engine passes role -> hooks only to claims that read several models."""
    return activations[role] if multi else activations


def _sample_rows(sample: list[np.ndarray], sampled: int, limit: int, values: np.ndarray) -> int:
    """Append the first rows of ``values`` that fit under ``limit`` sampled tokens; the new count."""
    take = min(limit - sampled, values.shape[0])
    if take > 0:
        sample.append(values[:take].astype(np.float32))
    return sampled + max(take, 0)


# -- the aggregates --------------------------------------------------------------------------------


class SmugglingAggregate:
    """One neuron before and after SoLU's layer norm, with its document, for every token (12 bytes a
    token), and the whole layer both ways on the first ``null_tokens`` tokens (for the nulls).
    ``role`` NULL (a random-weights twin) keeps only that sample."""

    def __init__(self, pre_hook: str, post_hook: str, neuron: int, null_tokens: int, role: str):
        self.pre_hook, self.post_hook, self.neuron, self.role = pre_hook, post_hook, neuron, role
        self.null_tokens = null_tokens
        self.pre, self.post, self.document = _Growing(np.float32), _Growing(np.float32), _Growing(np.int32)
        self.documents = _Documents()
        self.sample_pre: list[np.ndarray] = []
        self.sample_post: list[np.ndarray] = []
        self.sampled = 0

    def update(self, activations: Activations, rows: InputBatch) -> None:
        scored = _scored(rows)
        pre = activations[self.pre_hook].float().cpu().numpy()[scored]  # [tokens, d_mlp]
        post = activations[self.post_hook].float().cpu().numpy()[scored]
        if self.sampled < self.null_tokens:
            _sample_rows(self.sample_post, self.sampled, self.null_tokens, post)
            self.sampled = _sample_rows(self.sample_pre, self.sampled, self.null_tokens, pre)
        if self.role != MODEL:
            return
        self.pre.extend(pre[:, self.neuron])
        self.post.extend(post[:, self.neuron])
        self.document.extend(self.documents.of_tokens(rows, scored))

    def layer_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """([tokens, d_mlp] pre-LN, [tokens, d_mlp] post-LN) of the first ``null_tokens`` tokens."""
        if not self.sample_pre:
            return np.zeros((0, 0)), np.zeros((0, 0))
        return np.concatenate(self.sample_pre), np.concatenate(self.sample_post)


class _DocumentSums:
    """Growing per-document sums of a [tokens, columns] stream (``stats.CorrelationSums``): count,
    each column's sum and sum of squares, and the products of the ``rows`` columns with every column.
    Memory: documents x (2 + rows) x columns floats, whatever the number of tokens."""

    def __init__(self, n_columns: int, rows: tuple[int, ...]):
        self.rows = rows
        self.count = np.zeros(8)
        self.total = np.zeros((8, n_columns))
        self.square = np.zeros((8, n_columns))
        self.cross = np.zeros((8, len(rows), n_columns))
        self.size = 0

    def _reserve(self, documents: int) -> None:
        if documents <= self.count.shape[0]:
            return
        grow = max(documents, 2 * self.count.shape[0])
        for name in ("count", "total", "square", "cross"):
            old = getattr(self, name)
            new = np.zeros((grow, *old.shape[1:]))
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def add(self, values: np.ndarray, document: np.ndarray) -> None:
        if not document.size:
            return
        self._reserve(int(document.max()) + 1)
        self.size = max(self.size, int(document.max()) + 1)
        rows = list(self.rows)
        for d in np.unique(document):
            block = values[document == d]
            self.count[d] += block.shape[0]
            self.total[d] += block.sum(axis=0)
            self.square[d] += (block * block).sum(axis=0)
            self.cross[d] += block[:, rows].T @ block

    def sums(self) -> Any:
        from interp_checks.stats.pooled import CorrelationSums

        n = self.size
        return CorrelationSums(self.count[:n], self.total[:n], self.square[:n], self.cross[:n], self.rows)


class CorrelationAggregate:
    """Columns read from one or more models (``readers``: role, hook, neuron indices or None for the
    whole layer), concatenated per token: their per-document sums for pooled correlations of the
    ``rows`` columns with every column, and, where ``keep_sample``, all columns of the first
    ``null_tokens`` tokens (for the nulls). ``role`` NULL keeps only the sample.

    Values are shifted by the first batch's column means before summing (correlations do not change;
    raw moments of uncentred activations lose precision)."""

    def __init__(self, readers: list[tuple[str, str, list[int] | None]], rows: tuple[int, ...], null_tokens: int, role: str, keep_sample: bool):
        self.readers, self.rows, self.role = readers, rows, role
        self.multi = len({reader[0] for reader in readers}) > 1
        self.null_tokens, self.keep_sample = null_tokens, keep_sample
        self.documents = _Documents()
        self.moments: _DocumentSums | None = None
        self.reference: np.ndarray | None = None
        self.sample: list[np.ndarray] = []
        self.sampled = 0

    def update(self, activations: Any, rows: InputBatch) -> None:
        scored = _scored(rows)
        parts = []
        for role, hook, columns in self.readers:
            acts = _of_role(activations, role, self.multi)[hook].float().cpu().numpy()[scored]
            parts.append(acts if columns is None else acts[:, columns])
        values = np.concatenate(parts, axis=1).astype(np.float64)
        if self.keep_sample and self.sampled < self.null_tokens:
            self.sampled = _sample_rows(self.sample, self.sampled, self.null_tokens, values)
        if self.role != MODEL or not values.shape[0]:
            return
        if self.moments is None:
            self.reference = values.mean(axis=0)
            self.moments = _DocumentSums(values.shape[1], self.rows)
        self.moments.add(values - self.reference, self.documents.of_tokens(rows, scored))

    def column_sample(self) -> np.ndarray:
        """[tokens, columns] of the first ``null_tokens`` tokens."""
        return np.concatenate(self.sample) if self.sample else np.zeros((0, 0))

    def sums(self) -> Any:
        if self.moments is None:
            raise CheckError("the corpus stream gave no tokens: nothing to correlate")
        return self.moments.sums()


# -- shared helpers --------------------------------------------------------------------------------


def _chosen(statistics: tuple[str, ...], expect: Mapping[str, Any]) -> list[str]:
    return [stat for stat in statistics if stat in expect]


def _number(params: Mapping[str, Any], key: str, default: float, low: float, high: float, *, open_low: bool = True) -> float:
    value = params.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not ((low < value) if open_low else (low <= value)) or not value <= high:
        raise CheckError(f"{key} must be a number in {'(' if open_low else '['}{low:g}, {high:g}], got {value!r}")
    return float(value)


def _with_nulls(pooled: Any, nulls: Mapping[str, float]) -> Any:
    from dataclasses import replace

    return replace(pooled, nulls={**pooled.nulls, **{name: float(v) for name, v in nulls.items() if math.isfinite(float(v))}})


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _tokens_of_documents(corpus: CorpusPass, documents: int, tokens: int) -> str:
    return f"{tokens:,} tokens of {documents} documents ({corpus.label})"


class _CorpusCheck:
    """What the three checks share: a corpus stream as inputs, by default the neuron checks' own."""

    name: ClassVar[str]
    description: ClassVar[str]
    statistics: ClassVar[tuple[str, ...]]
    params: ClassVar[tuple[str, ...]]
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any]] = DEFAULT_INPUTS


# -- ln_smuggling ------------------------------------------------------------------------------------


def smuggling_by_column(pre: np.ndarray, post: np.ndarray, top_pct: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column (neuron) of [tokens, neurons] readings: (smuggled share, displaced share, Spearman
    rho), as the claimed neuron's statistics are defined; NaN where undefined (a neuron whose largest
    pre-LN activation is not positive has no firing threshold; a constant reading has no ranks)."""
    from scipy import stats

    if pre.shape[0] < 2:
        return tuple(np.full(pre.shape[1], math.nan) for _ in range(3))  # type: ignore[return-value]
    top = post >= np.quantile(post, 1 - top_pct / 100, axis=0)
    peak = pre.max(axis=0)
    quiet = pre < 0.5 * peak
    below_top = pre < np.quantile(pre, 1 - top_pct / 100, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(peak > 0, (top & quiet).sum(axis=0) / top.sum(axis=0), math.nan)
        displaced = (top & below_top).sum(axis=0) / top.sum(axis=0)
        rx = stats.rankdata(pre, axis=0)
        ry = stats.rankdata(post, axis=0)
        rx, ry = rx - rx.mean(axis=0), ry - ry.mean(axis=0)
        rho = (rx * ry).sum(axis=0) / np.sqrt((rx * rx).sum(axis=0) * (ry * ry).sum(axis=0))
    return share, displaced, np.where(np.isfinite(rho), rho, math.nan)


class LnSmugglingCheck(_CorpusCheck):
    """``check: ln_smuggling``: ``neuron: L0N12``, optional ``top_pct`` (percent, default 1)."""

    name: ClassVar[str] = "ln_smuggling"
    description: ClassVar[str] = (
        "does SoLU's extra layer norm let small activations through as large ones? Among a neuron's top post-LN "
        "activations, the share below its pre-LN firing threshold (smuggled) or its pre-LN top cut (displaced); "
        "Spearman rho of pre vs post"
    )
    statistics: ClassVar[tuple[str, ...]] = ("smuggled_share", "displaced_share", "rank_agreement")
    params: ClassVar[tuple[str, ...]] = ("neuron", "top_pct")

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        layer, index = parse_neuron(params.get("neuron"), shape)
        if shape.act_fn != "solu_ln":
            raise CheckError(
                f"ln_smuggling compares a neuron before and after SoLU's extra layer norm, but this model's act_fn is "
                f"{shape.act_fn!r}, not 'solu_ln': it has no such layer norm"
            )
        top_pct = _number(params, "top_pct", DEFAULT_TOP_PCT, 0.0, 50.0)
        pre, post = READS["pre_ln"].format(layer=layer), READS["post"].format(layer=layer)
        needs = Needs(frozenset({pre, post}))
        statistics = _chosen(self.statistics, expect)
        return Prepared(
            needs={MODEL: needs}, null_needs=needs, statistics=statistics,
            expectation_source={stat: stat for stat in statistics}, sampling="corpus",
            units={"smuggled_share": "share of tokens", "displaced_share": "share of tokens", "rank_agreement": "Spearman rho"},
            state={"pre": pre, "post": post, "neuron": index, "name": neuron_name(layer, index), "top_pct": top_pct},
            notes=[
                f"pre-LN: {pre} (SoLU's output before its extra layer norm); post-LN: {post} (after it)",
                f"smuggled: a token in the top {top_pct:g}% of post-LN activations whose pre-LN activation is below half "
                f"the largest pre-LN activation; displaced: one whose pre-LN activation is not in its own top {top_pct:g}% "
                "(every cut fixed from the observed sample)",
            ],
        )

    def aggregate(self, prepared: Prepared, corpus: CorpusPass, role: str) -> SmugglingAggregate:
        state = prepared.state
        return SmugglingAggregate(state["pre"], state["post"], state["neuron"], corpus.null_tokens, role)

    def conclude(self, prepared: Prepared, corpus: CorpusPass, model: SmugglingAggregate, nulls: list[SmugglingAggregate]) -> CorpusMeasurement:
        from interp_checks.stats import pooled as P

        state = prepared.state
        name, top_pct = state["name"], state["top_pct"]
        pre, post, document = model.pre.array(), model.post.array(), model.document.array()
        n_documents = len(model.documents.index)
        peak = float(pre.max()) if pre.size else math.nan
        threshold = 0.5 * peak
        cut = float(np.quantile(post, 1 - top_pct / 100)) if post.size else math.nan
        top = post >= cut
        quiet = pre < threshold
        pre_cut = float(np.quantile(pre, 1 - top_pct / 100)) if pre.size else math.nan
        displaced = pre < pre_cut
        notes = [
            _tokens_of_documents(corpus, n_documents, pre.size),
            f"post-LN top {top_pct:g}%: activation >= {cut:.4g} ({int(top.sum()):,} tokens); pre-LN firing threshold "
            f"{threshold:.4g} (half of {peak:.4g}); {int((top & quiet).sum()):,} of the top tokens were below it and "
            f"{int((top & displaced).sum()):,} below the pre-LN top {top_pct:g}% cut ({pre_cut:.4g})",
        ]
        estimands = {
            "smuggled_share": (
                f"share of {name}'s top {top_pct:g}% post-LN activations (>= {cut:.4g}) whose pre-LN activation is below "
                f"{threshold:.4g} (half its largest), tokens pooled over documents; both cuts fixed from the observed sample"
            ),
            "displaced_share": (
                f"share of {name}'s top {top_pct:g}% post-LN activations (>= {cut:.4g}) whose pre-LN activation is below its "
                f"own top {top_pct:g}% cut ({pre_cut:.4g}), tokens pooled over documents; both cuts fixed from the observed sample"
            ),
            "rank_agreement": f"Spearman correlation of {name}'s pre-LN and post-LN activations",
        }
        layer_nulls = self._nulls(model, nulls, top_pct)
        statistics = {}
        for stat in prepared.statistics:
            if stat == "smuggled_share":
                if not peak > 0:
                    pooled = P.undefined_statistic(n_documents, estimands[stat], f"{name} never has a positive pre-LN activation: no firing threshold", unit="share of tokens")
                else:
                    pooled = P.share_statistic(quiet, document, among=top, estimand=estimands[stat], n_documents=n_documents)
            elif stat == "displaced_share":
                pooled = P.share_statistic(displaced, document, among=top, estimand=estimands[stat], n_documents=n_documents)
            else:
                pooled = P.rank_correlation_statistic(pre, post, document, estimand=estimands[stat], n_documents=n_documents)
            statistics[stat] = _with_nulls(pooled, layer_nulls[stat])
        if model.sampled:
            notes.append(f"nulls on the first {model.sampled:,} tokens of the stream")
        return CorpusMeasurement(statistics, self._figures(name, corpus, pre, post, top, threshold, top_pct), notes)

    @staticmethod
    def _nulls(model: SmugglingAggregate, twins: list[SmugglingAggregate], top_pct: float) -> dict[str, dict[str, float]]:
        """Per statistic: the best neuron of a random-weights model (mean over twins) and this model's median neuron."""
        out: dict[str, dict[str, float]] = {"smuggled_share": {}, "displaced_share": {}, "rank_agreement": {}}
        best: dict[str, list[float]] = {stat: [] for stat in out}
        width = 0
        for twin in twins:
            pre, post = twin.layer_sample()
            if pre.size:
                width = pre.shape[1]
                for stat, values in zip(out, smuggling_by_column(pre, post, top_pct)):
                    best[stat].append(float(np.nanmax(values)) if np.isfinite(values).any() else math.nan)
        pre, post = model.layer_sample()
        own = smuggling_by_column(pre, post, top_pct) if pre.size else None
        for i, stat in enumerate(out):
            if best[stat]:
                out[stat][f"best of all {width} neurons of a random-weights model (mean of {len(best[stat])})"] = _mean(best[stat])
            if own is not None and np.isfinite(own[i]).any():
                out[stat][f"median of this model's {pre.shape[1]} neurons"] = float(np.nanmedian(own[i]))
        return out

    @staticmethod
    def _figures(name: str, corpus: CorpusPass, pre: np.ndarray, post: np.ndarray, top: np.ndarray, threshold: float, top_pct: float) -> list[Figure]:
        if not top.any():
            return []
        chosen = np.sort(pre[top])
        every = np.sort(pre)
        pick = lambda values: values[np.linspace(0, values.size - 1, min(STRIP_POINTS, values.size)).round().astype(int)]  # noqa: E731
        return [Figure(
            "strip",
            f"{name}: pre-LN activations of its top {top_pct:g}% post-LN tokens",
            {
                "groups": [
                    {"label": f"top {top_pct:g}% post-LN", "values": rounded(pick(chosen).tolist())},
                    {"label": "all tokens", "values": rounded(pick(every).tolist())},
                ],
                "lines": [{"value": rounded(threshold), "label": "pre-LN firing threshold (half max)"}],
                "value_label": f"{name} pre-LN activation",
            },
            f"Each point is a token of {corpus.label}: {name}'s activation before SoLU's layer norm, for the tokens in its "
            f"top {top_pct:g}% after the norm and for all tokens (at most {STRIP_POINTS} of each, evenly spaced in rank). "
            "Points of the first group below the line were smuggled: large after the norm, small before it.",
        )]

    def null_description(self, prepared: Prepared) -> str:
        return (
            "the best neuron of a random-weights model of the same shape (max over the layer's neurons) and this model's "
            "median neuron, each on the first null_tokens tokens of the stream"
        )


# -- neuron_family -----------------------------------------------------------------------------------


def family_values(sample: np.ndarray, members: list[int]) -> tuple[float, float]:
    """(mean pairwise r, separation) of ``members`` columns of a [tokens, neurons] sample, as the claim's
    statistics define them (one document: the observed values)."""
    from interp_checks.stats import pooled as P

    if sample.shape[0] < 2:
        return math.nan, math.nan
    sums = P.correlation_sums(sample, np.zeros(sample.shape[0], dtype=np.int64), members)
    separation = P.family_separation_statistic(sums).observed() if sample.shape[1] > len(members) else math.nan
    return P.mean_pairwise_correlation_statistic(sums).observed(), separation


def _parse_family(params: Mapping[str, Any], shape: ModelShape) -> tuple[int, list[int]]:
    listed = params.get("neurons")
    if not isinstance(listed, list) or len(listed) < 2:
        raise CheckError(f"neurons must list at least two neurons of one layer, e.g. [L0N3, L0N5], got {listed!r}")
    parsed = [parse_neuron(text, shape) for text in listed]
    layers = {layer for layer, _ in parsed}
    if len(layers) != 1:
        raise CheckError(f"a family's neurons must share one layer, got layers {sorted(layers)}")
    indices = [index for _, index in parsed]
    if len(set(indices)) != len(indices):
        raise CheckError(f"neurons lists a neuron twice: {listed}")
    assert shape.d_mlp is not None  # parse_neuron checked
    if len(indices) >= shape.d_mlp:
        raise CheckError(f"a family of all {shape.d_mlp} neurons of the layer has no outside to separate from")
    return layers.pop(), indices


class NeuronFamilyCheck(_CorpusCheck):
    """``check: neuron_family``: ``neurons: [L0N3, L0N5, ...]``, optional ``read``."""

    name: ClassVar[str] = "neuron_family"
    description: ClassVar[str] = (
        "do these neurons form a family? Mean pairwise correlation of their activations over a streamed corpus, and its "
        "separation from their correlation with the rest of the layer"
    )
    statistics: ClassVar[tuple[str, ...]] = ("mean_correlation", "separation")
    params: ClassVar[tuple[str, ...]] = ("neurons", "read")

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        layer, members = _parse_family(params, shape)
        hook, read_words = reading(params.get("read"), layer, shape)
        needs = Needs(frozenset({hook}))
        statistics = _chosen(self.statistics, expect)
        names = [neuron_name(layer, index) for index in members]
        return Prepared(
            needs={MODEL: needs}, null_needs=needs, statistics=statistics,
            expectation_source={stat: stat for stat in statistics}, sampling="corpus",
            units={stat: "Pearson r" for stat in statistics},
            state={"hook": hook, "members": members, "names": names, "d_mlp": shape.d_mlp},
            notes=[read_words, f"family: {', '.join(names)}; the rest of the layer: its other {shape.d_mlp - len(members)} neurons"],
        )

    def aggregate(self, prepared: Prepared, corpus: CorpusPass, role: str) -> CorrelationAggregate:
        state = prepared.state
        return CorrelationAggregate([(MODEL, state["hook"], None)], tuple(state["members"]), corpus.null_tokens, role, keep_sample=True)

    def conclude(self, prepared: Prepared, corpus: CorpusPass, model: CorrelationAggregate, nulls: list[CorrelationAggregate]) -> CorpusMeasurement:
        from interp_checks.stats import pooled as P

        state = prepared.state
        members, k = state["members"], len(state["members"])
        sums = model.sums()
        null_values = self._nulls(model, nulls, members, state["d_mlp"])
        statistics = {}
        for stat in prepared.statistics:
            make = P.mean_pairwise_correlation_statistic if stat == "mean_correlation" else P.family_separation_statistic
            statistics[stat] = _with_nulls(make(sums), null_values[stat])
        notes = [_tokens_of_documents(corpus, sums.n_documents, int(sums.count.sum()))]
        if model.sampled:
            notes.append(f"nulls on the first {model.sampled:,} tokens of the stream; {RANDOM_SETS} random sets of {k} neurons")
        return CorpusMeasurement(statistics, self._figures(state["names"], corpus, sums), notes)

    @staticmethod
    def _nulls(model: CorrelationAggregate, twins: list[CorrelationAggregate], members: list[int], d_mlp: int) -> dict[str, dict[str, float]]:
        rng = np.random.default_rng(0)
        sample = model.column_sample()
        random_sets = [family_values(sample, sorted(rng.choice(d_mlp, len(members), replace=False).tolist())) for _ in range(RANDOM_SETS)] if sample.size else []
        listed = [family_values(twin.column_sample(), members) for twin in twins if twin.sampled]
        out: dict[str, dict[str, float]] = {}
        for i, stat in enumerate(("mean_correlation", "separation")):
            out[stat] = {}
            if random_sets:
                out[stat][f"{len(members)} random neurons of this model (mean of {len(random_sets)} sets)"] = _mean([v[i] for v in random_sets])
            if listed:
                out[stat][f"the listed neurons in a random-weights model (mean of {len(listed)})"] = _mean([v[i] for v in listed])
        return out

    @staticmethod
    def _figures(names: list[str], corpus: CorpusPass, sums: Any) -> list[Figure]:
        from interp_checks.stats.pooled import pooled_correlations

        r = pooled_correlations(sums, np.ones((1, sums.n_documents)))[0][:, list(sums.rows)]
        return [Figure(
            "heatmap",
            f"correlations within the family {', '.join(names)}",
            {"values": rounded(np.nan_to_num(r, nan=0.0).tolist()), "row_labels": names, "col_labels": names,
             "value_label": "Pearson r", "vmin": -1.0, "vmax": 1.0},
            f"Pearson correlation of each pair of the listed neurons' activations over every token of {corpus.label} "
            "(tokens pooled over documents).",
        )]

    def null_description(self, prepared: Prepared) -> str:
        return (
            "as many random neurons of this model (mean over random sets), and the listed neurons in a random-weights "
            "model of the same shape, each on the first null_tokens tokens of the stream"
        )


# -- feature_splitting ---------------------------------------------------------------------------------


def ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def restate_count(comparison: Comparison, threshold: float, columns: int) -> list[tuple[int, Comparison]]:
    """A claim about how many of ``columns`` correlations reach ``threshold``, as the equivalent claims
    about order statistics: (rank, comparison of the rank-th largest r with ``threshold``).

    count >= m  <=>  r_(m) >= c;   count <= m  <=>  r_(m+1) < c  (m integer; a count is one), so
    ``> t`` is ``>= floor(t) + 1``, ``< t`` is ``<= ceil(t) - 1`` and ``between A B`` is both ends.
    A claim that every count satisfies (or none) says nothing and is refused."""
    op, t = comparison.op, comparison.threshold
    at_least = None if op in ("<=", "<") else (math.ceil(t) if op in (">=", "between") else math.floor(t) + 1)
    upper = comparison.upper if op == "between" else t
    at_most = None if op in (">=", ">") else (math.floor(upper) if op in ("<=", "between") else math.ceil(upper) - 1)
    if (at_least is not None and at_least > columns) or (at_most is not None and at_most < 0) or (
        at_least is not None and at_most is not None and at_least > at_most
    ):
        raise CheckError(f"matches {comparison} can never hold: there are {columns} larger-model neurons to count")
    out = []
    if at_least is not None and at_least >= 1:
        out.append((at_least, Comparison(">=", threshold)))
    if at_most is not None and at_most < columns:
        out.append((at_most + 1, Comparison("<", threshold)))
    if not out:
        raise CheckError(f"matches {comparison} always holds for a count of 0..{columns} neurons: it says nothing")
    return out


class FeatureSplittingCheck(_CorpusCheck):
    """``check: feature_splitting``: ``neuron: L0N1``, ``larger: <model spec>``, optional
    ``min_correlation`` (c, default 0.5), ``larger_layer`` (default the neuron's layer), ``read``."""

    name: ClassVar[str] = "feature_splitting"
    description: ClassVar[str] = (
        "does a neuron of this model split into several of a larger one? On the same streamed text, the correlation of "
        "each larger-model neuron with it: the best, and how many reach min_correlation"
    )
    statistics: ClassVar[tuple[str, ...]] = ("matches", "best_correlation")
    params: ClassVar[tuple[str, ...]] = ("neuron", "min_correlation", "larger_layer", "read")
    model_roles: ClassVar[tuple[str, ...]] = (LARGER,)

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        small, large = shapes[MODEL], shapes[LARGER]
        layer, index = parse_neuron(params.get("neuron"), small)
        larger_layer = params.get("larger_layer", layer)
        if not isinstance(larger_layer, int) or isinstance(larger_layer, bool) or not 0 <= larger_layer < large.n_layers:
            raise CheckError(f"larger_layer must be a layer of the larger model (0..{large.n_layers - 1}), got {larger_layer!r}")
        if large.d_mlp is None:
            raise CheckError("larger: the larger model is attention-only: it has no neurons to split into")
        c = _number(params, "min_correlation", DEFAULT_MIN_CORRELATION, -1.0, 1.0)
        hook, read_words = reading(params.get("read"), layer, small)
        larger_hook, larger_words = reading(params.get("read"), larger_layer, large)
        statistics, source, restated, ranks = [], {}, {}, {}
        if "best_correlation" in expect:
            statistics.append("best_correlation")
            source["best_correlation"] = "best_correlation"
            ranks["best_correlation"] = 1
        if "matches" in expect:
            for rank, comparison in restate_count(expect["matches"], c, large.d_mlp):
                stat = f"matches[{ordinal(rank)} largest r]"
                statistics.append(stat)
                source[stat], restated[stat], ranks[stat] = "matches", comparison, rank
        name = neuron_name(layer, index)
        notes = [f"{name}: {read_words}", f"larger model, layer {larger_layer}: {larger_words}"]
        if "matches" in expect:
            parts = [f"{ordinal(rank)} largest r {restated[stat].op} {c:g}" for stat, rank in ranks.items() if stat in restated]
            notes.append(
                f"matches {expect['matches']} (neurons with r >= {c:g}) is judged as: {' and '.join(parts)}. The same event: "
                f"at least m neurons reach {c:g} exactly when the m-th largest r does, so the count's bootstrap distribution "
                "over resampled documents is this order statistic's read at the cut; the order statistic is continuous, so "
                "its interval and p-value mean what they mean elsewhere"
            )
        return Prepared(
            needs={MODEL: Needs(frozenset({hook})), LARGER: Needs(frozenset({larger_hook}))},
            null_needs=Needs(frozenset({larger_hook})), null_role=LARGER, statistics=statistics,
            expectation_source=source, restated=restated, sampling="corpus", units={stat: "Pearson r" for stat in statistics},
            state={"hook": hook, "larger_hook": larger_hook, "neuron": index, "name": name, "c": c, "ranks": ranks,
                   "larger_layer": larger_layer},
            notes=notes,
        )

    def aggregate(self, prepared: Prepared, corpus: CorpusPass, role: str) -> CorrelationAggregate:
        state = prepared.state
        readers = [(MODEL, state["hook"], [state["neuron"]]), (LARGER, state["larger_hook"], None)]
        return CorrelationAggregate(readers, (0,), corpus.null_tokens, role, keep_sample=role == NULL)

    def conclude(self, prepared: Prepared, corpus: CorpusPass, model: CorrelationAggregate, nulls: list[CorrelationAggregate]) -> CorpusMeasurement:
        from interp_checks.stats import pooled as P

        state = prepared.state
        name, c, ranks = state["name"], state["c"], state["ranks"]
        sums = model.sums()
        observed = P.pooled_correlations(sums, np.ones((1, sums.n_documents)))[0, 0, 1:]
        twin_r = [P.pooled_correlations(P.correlation_sums(s, np.zeros(s.shape[0], dtype=np.int64), (0,)), np.ones((1, 1)))[0, 0, 1:]
                  for s in (twin.column_sample() for twin in nulls if twin.sampled) if s.shape[0] > 1]
        statistics = {}
        for stat in prepared.statistics:
            rank = ranks[stat]
            pooled = P.ranked_correlation_statistic(sums, rank)
            twin_values = [_kth_largest(r, rank) for r in twin_r]
            named = {f"the same against a random-weights twin of the larger model (mean of {len(twin_values)})": _mean(twin_values)} if twin_values else {}
            statistics[stat] = _with_nulls(pooled, named)
        larger = state["larger_layer"]
        matched = np.flatnonzero(np.nan_to_num(observed, nan=-np.inf) >= c)
        order = matched[np.argsort(-observed[matched], kind="stable")]
        listed = ", ".join(f"{neuron_name(larger, int(j))} {observed[j]:.3f}" for j in order[:8])
        notes = [
            _tokens_of_documents(corpus, sums.n_documents, int(sums.count.sum())),
            f"observed: {matched.size} of the larger model's {observed.size} neurons have r >= {c:g} with {name}"
            + (f" ({listed}{', ...' if matched.size > 8 else ''})" if matched.size else ""),
        ]
        if twin_r:
            counts = [int((np.nan_to_num(r, nan=-np.inf) >= c).sum()) for r in twin_r]
            notes.append(f"random-weights twins of the larger model: {counts} neurons with r >= {c:g} (on the first {nulls[0].sampled:,} tokens)")
        return CorpusMeasurement(statistics, self._figures(name, corpus, observed, c, larger, twin_r), notes)

    @staticmethod
    def _figures(name: str, corpus: CorpusPass, observed: np.ndarray, c: float, larger: int, twin_r: list[np.ndarray]) -> list[Figure]:
        ranked = np.argsort(-np.nan_to_num(observed, nan=-np.inf), kind="stable")[:BARS_SHOWN]
        labels = [neuron_name(larger, int(j)) for j in ranked]
        lines = [{"value": c, "label": f"min_correlation {c:g}"}]
        if twin_r:
            lines.append({"value": rounded(_mean([float(np.nanmax(r)) for r in twin_r])), "label": "best r, random-weights larger model"})
        return [Figure(
            "bars",
            f"{name}: its most correlated neurons of the larger model",
            {"labels": labels, "values": rounded(np.nan_to_num(observed[ranked]).tolist()),
             "highlight": [label for label, j in zip(labels, ranked) if observed[j] >= c], "value_label": f"Pearson r with {name}",
             "lines": lines},
            f"The {len(labels)} neurons of the larger model's layer {larger} whose activations correlate most with {name} over "
            f"every token of {corpus.label} (both models on the same rows); highlighted: r >= {c:g}.",
        )]

    def null_description(self, prepared: Prepared) -> str:
        return (
            "the same statistic with the larger model replaced by a random-weights twin of it (this model's neuron "
            "unchanged), on the first null_tokens tokens of the stream"
        )


def _kth_largest(values: np.ndarray, rank: int) -> float:
    finite = np.sort(values[np.isfinite(values)])[::-1]
    return float(finite[rank - 1]) if finite.size >= rank else math.nan


register(LnSmugglingCheck())
register(NeuronFamilyCheck())
register(FeatureSplittingCheck())
