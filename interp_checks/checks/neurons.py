"""Neuron claims over a streamed corpus: "neuron L0N123 mimics the regex ``\\d``" (``neuron_regex``)
and "most of its top activations, and of each band below them, match" (``top_examples``).

What is read: one MLP layer's neuron activations on every token of the claim's corpus streams
(``inputs: {kind: corpus_stream, ...}``, ``checks.base.CorpusPass``). For SoLU models
(``act_fn: solu_ln``) the default reading is **before** SoLU's extra layer norm,
``blocks.L.mlp.ln.hook_in`` -- where the SoLU paper and Neuroscope read neurons, since the layer
norm rescales every neuron of a token together; ``read: post`` reads ``blocks.L.mlp.hook_post``
(after it), the only reading for other activations. The report says which.

A token *matches* when its characters overlap a match of the regex in its row's text (the
``where: {regex}`` rule, ``inputs.token_sets.regex_mask``): in context, so ``\\bdef\\b`` matches the
token ``def`` in ``def f():`` and not in ``undefined``. Rows are BOS + up to 127 tokens of one
document; a match that crosses a row boundary is seen only in part. BOS and padding are no tokens.

Statistics, pooled over the corpus's tokens with **the document as the unit of resampling**
(``stats.pooled``; tokens of one document are not independent):

* ``auroc``: P(activation on a matching token > on a non-matching one), ties 1/2;
* ``precision`` / ``recall`` when the neuron *fires*: activation >= half its largest activation in
  the sample (Neuron2Graph's rule); precision = P(match | fires), recall = P(fires | match);
* ``top_share``: the share of the ``k`` largest activations whose token matches;
* ``correlation``: Pearson's r of activation with the 0/1 match (Towards Monosemanticity's proxy);
* ``band_share`` (``top_examples``): per band of the activation range, ranked from the top (top 1%,
  1-5%, 5-20%, 20-50%), the share of its tokens that match: a neuron can look monosemantic at its
  top and not below it (the SoLU paper; Towards Monosemanticity shows examples per interval).

AUROC alone misleads both ways (measured in a 1-layer SoLU model: a ``def`` neuron at AUROC 0.9995
had only 53% ``def`` among its top 1%; a quote neuron with 98% quotes at the top had AUROC 0.835),
so a claim should state more than one.

Two nulls, both reported beside every statistic (``PooledStatistic.nulls``), the larger one giving
the effect size: the **best neuron of a random-weights model** of the same shape (the maximum over
all neurons of the layer, because the claimed neuron was found by searching them), averaged over
the random twins; and, in the trained model, the **best neuron for a random token class** of the
same number of token types and about the same frequency (``stats.frequency_matched_class``;
averaged over ``RANDOM_CLASSES`` classes): what searching all neurons finds for a class that means
nothing. Both are computed on the first ``null_tokens`` tokens of the stream (8,192 by default):
fewer tokens than the claim's estimate, which makes a best-of-N null higher, not lower.
"""

from __future__ import annotations

import heapq
import re
import weakref
from dataclasses import dataclass
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
    parse_component,
    register,
)
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import regex_mask

READS = {
    "pre_ln": "blocks.{layer}.mlp.ln.hook_in",  # SoLU's output before its extra layer norm
    "post": "blocks.{layer}.mlp.hook_post",  # the MLP's activation as the output matrix reads it
}
DEFAULT_K = 100
RANDOM_CLASSES = 3  # random token classes averaged for the random-class null
EXAMPLES_SHOWN = 12  # top contexts pictured per claim
TOKENS_BEFORE, TOKENS_AFTER = 12, 3
BANDS: dict[str, tuple[float, float]] = {"top 1%": (0.0, 1.0), "1-5%": (1.0, 5.0), "5-20%": (5.0, 20.0), "20-50%": (20.0, 50.0)}
DEFAULT_INPUTS: Mapping[str, Any] = {"kind": "corpus_stream", "source": "stdlib", "split": "heldout", "max_tokens": 100_000}


def parse_neuron(text: Any, shape: ModelShape) -> tuple[int, int]:
    """``"L0N123"`` -> (0, 123), checked against the model's layers and MLP width (``Site.parse``)."""
    site = parse_component(text, shape, ("neuron",), "neuron")
    return site.layer, int(site.neuron)  # type: ignore[arg-type]


def neuron_name(layer: int, index: int) -> str:
    return f"L{layer}N{index}"


def reading(read: Any, layer: int, shape: ModelShape) -> tuple[str, str]:
    """(hook name, words for the report) of ``read`` (None: before SoLU's layer norm where there is one)."""
    solu = shape.act_fn == "solu_ln"
    read = read if read is not None else ("pre_ln" if solu else "post")
    if read not in READS:
        raise CheckError(f"read must be one of {', '.join(READS)}, got {read!r}")
    if read == "pre_ln" and not solu:
        raise CheckError(f"read: pre_ln reads SoLU's output before its layer norm, but this model's act_fn is {shape.act_fn!r}: use read: post")
    hook = READS[read].format(layer=layer)
    words = (
        f"activations read at {hook}: SoLU's output before its extra layer norm (as the SoLU paper and Neuroscope read neurons)"
        if read == "pre_ln"
        else f"activations read at {hook}: the MLP activation after the nonlinearity{' and its layer norm' if solu else ''}"
    )
    return hook, words


def compile_regex(pattern: Any) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise CheckError(f"regex must be a non-empty string (a Python regular expression), got {pattern!r}")
    try:
        re.compile(pattern)
    except re.error as error:
        raise CheckError(f"regex {pattern!r} does not compile: {error}") from None
    return pattern


def positive_int(params: Mapping[str, Any], key: str, default: int, limit: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise CheckError(f"{key} must be an integer from 1 to {limit:,}, got {value!r}")
    return value


# -- the aggregate ---------------------------------------------------------------------------------


class _Growing:
    """An append-only 1-D array that doubles its buffer (no per-batch list of arrays to concatenate)."""

    def __init__(self, dtype: Any):
        self.data = np.empty(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.size + len(values)
        if need > len(self.data):
            grown = np.empty(max(need, 2 * len(self.data)), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : need] = values
        self.size = need

    def array(self) -> np.ndarray:
        return self.data[: self.size]


@dataclass(order=True)
class _Example:
    activation: float
    order: int  # earlier first among equal activations (heap entries never compare contexts)
    row: dict = None  # type: ignore[assignment]


# The all-neuron sample of a batch, shared by every claim reading the same activations (the engine
# captures one tensor per batch and stream for all of them): a claim keeps a reference, not a copy,
# so memory does not grow with the number of claims. Keyed by the tensor's id while the tensor lives.
_BLOCKS: dict[int, tuple[Any, np.ndarray]] = {}


def scored_block(tensor: Any, acts: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """acts[scored] ([tokens, d_mlp] float32), computed once per activation tensor."""
    key = id(tensor)
    cached = _BLOCKS.get(key)
    if cached is not None and cached[0]() is tensor and cached[1].shape[0] == int(scored.sum()):
        return cached[1]
    block = np.ascontiguousarray(acts[scored], dtype=np.float32)
    if cached is None:
        weakref.finalize(tensor, _BLOCKS.pop, key, None)
    _BLOCKS[key] = (weakref.ref(tensor), block)
    return block


# The best-of-neurons statistics of one sample and one token class, shared by the claims that ask for
# the same (several claims about one regex, on one stream): keyed by the sample's blocks (alive while
# any claim holds them: checked by identity) and the class's bytes.
_BEST: dict[tuple, tuple[list, dict]] = {}
_BEST_KEPT = 64


def best_of_neurons(blocks: list[np.ndarray], match: np.ndarray, k: int) -> dict[str, tuple[float, int]]:
    """``stats.best_over_columns`` of the concatenated ``blocks`` against ``match``, computed once per
    (blocks, class, k)."""
    from interp_checks.stats.pooled import best_over_columns

    key = (tuple(id(block) for block in blocks), hash(np.packbits(match).tobytes()), int(match.size), k)
    cached = _BEST.get(key)
    if cached is not None and all(ref() is block for ref, block in zip(cached[0], blocks)):
        return cached[1]
    best = best_over_columns(np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32), match, k)
    if len(_BEST) >= _BEST_KEPT:
        _BEST.pop(next(iter(_BEST)))
    _BEST[key] = ([weakref.ref(block) for block in blocks], best)
    return best


def _has_other_types(tokens: np.ndarray, match: np.ndarray) -> bool:
    """Whether a random class like the matching one can be drawn (enough never-matching token types)."""
    matching = np.unique(tokens[match])
    return matching.size > 0 and np.setdiff1d(np.unique(tokens), matching).size >= matching.size


class NeuronAggregate:
    """One neuron's activation, whether the token matches, its document and id, for every token of a
    stream (13 bytes a token: 1M tokens is 13 MB); all neurons of the layer on the first
    ``null_tokens`` tokens (for the best-neuron nulls); and the top contexts for the pictures.

    ``role`` MODEL keeps everything; NULL (a random-weights twin) keeps only the all-neuron sample.
    """

    def __init__(self, hook: str, neuron: int, regex: str, null_tokens: int, role: str, examples: int = EXAMPLES_SHOWN):
        self.hook, self.neuron, self.regex, self.role = hook, neuron, regex, role
        self.null_tokens = null_tokens
        self.activation = _Growing(np.float32)
        self.match = _Growing(bool)
        self.document = _Growing(np.int32)
        self.token = _Growing(np.int32)
        self.documents: dict[str, int] = {}
        self.sample: list[np.ndarray] = []  # [tokens, d_mlp] blocks of the all-neuron sample
        self.sample_match: list[np.ndarray] = []
        self.sample_token: list[np.ndarray] = []
        self.sampled = 0
        self.examples: list[_Example] = []
        self.examples_kept = examples
        self.order = 0

    def update(self, activations: Activations, rows: InputBatch) -> None:
        tensor = activations[self.hook]
        acts = tensor.float().cpu().numpy()  # [rows, pos, d_mlp]
        scored = rows.valid.copy()
        scored[:, 0] = False  # BOS: no text
        match = regex_mask(rows, self.regex) & scored
        if self.sampled < self.null_tokens:
            take = min(self.null_tokens - self.sampled, int(scored.sum()))
            self.sample.append(scored_block(tensor, acts, scored)[:take])
            self.sample_match.append(match[scored][:take])
            self.sample_token.append(rows.tokens[scored][:take].astype(np.int32))
            self.sampled += take
        if self.role != MODEL:
            return
        neuron = acts[..., self.neuron]
        doc_ids = np.array([self.documents.setdefault(name, len(self.documents)) for name in rows.sources or []], dtype=np.int32)
        self.activation.extend(neuron[scored])
        self.match.extend(match[scored])
        self.document.extend(np.broadcast_to(doc_ids[:, None], scored.shape)[scored])
        self.token.extend(rows.tokens[scored].astype(np.int32))
        self._offer_examples(neuron, scored, match, rows)

    def _offer_examples(self, neuron: np.ndarray, scored: np.ndarray, match: np.ndarray, rows: InputBatch) -> None:
        """Keep the ``examples_kept`` largest activations with their context (at most one per row)."""
        masked = np.where(scored, neuron, -np.inf)
        best = masked.argmax(axis=1)
        for i in np.argsort(-masked[np.arange(len(best)), best], kind="stable")[: self.examples_kept]:
            p, value = int(best[i]), float(masked[i, best[i]])
            if not np.isfinite(value):
                break
            self.order += 1
            if len(self.examples) == self.examples_kept and value <= self.examples[0].activation:
                break
            valid = np.flatnonzero(scored[i])
            start, stop = max(int(valid[0]), p - TOKENS_BEFORE), min(int(valid[-1]) + 1, p + TOKENS_AFTER + 1)
            row = {
                "label": f"{value:.3g} ({'matches' if match[i, p] else 'does not match'}; {rows.sources[i] if rows.sources else ''})",
                "tokens": rows.token_strings(i, start, stop),
                "values": [float(v) for v in neuron[i, start:stop]],
                "focus": p - start,
            }
            entry = _Example(value, -self.order, row)
            (heapq.heappush if len(self.examples) < self.examples_kept else heapq.heapreplace)(self.examples, entry)

    def sample_labels(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(tokens in the all-neuron sample, [tokens] match, [tokens] token ids), without copying the sample."""
        if not self.sample:
            return 0, np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int32)
        return self.sampled, np.concatenate(self.sample_match), np.concatenate(self.sample_token)

    def all_neuron_sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """([tokens, d_mlp] activations, [tokens] match, [tokens] token ids) of the first ``null_tokens`` tokens."""
        if not self.sample:
            return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int32)
        return np.concatenate(self.sample), np.concatenate(self.sample_match), np.concatenate(self.sample_token)

    def top_examples(self) -> list[dict]:
        return [entry.row for entry in sorted(self.examples, reverse=True)]


# -- the checks ------------------------------------------------------------------------------------


class _NeuronCorpusCheck:
    """What ``neuron_regex`` and ``top_examples`` share: a neuron, a regex, a stream, two nulls."""

    name: ClassVar[str]
    description: ClassVar[str]
    statistics: ClassVar[tuple[str, ...]]
    params: ClassVar[tuple[str, ...]]
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any]] = DEFAULT_INPUTS
    max_k: ClassVar[int] = 1_000

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        layer, index = parse_neuron(params.get("neuron"), shape)
        hook, read_words = reading(params.get("read"), layer, shape)
        regex = compile_regex(params.get("regex"))
        k = positive_int(params, "k", DEFAULT_K, self.max_k)
        statistics, source, state = self._statistics(params, expect)
        needs = Needs(frozenset({hook}))
        return Prepared(
            needs={MODEL: needs},
            null_needs=needs,
            statistics=statistics,
            expectation_source=source,
            sampling="corpus",
            state={"hook": hook, "neuron": index, "name": neuron_name(layer, index), "regex": regex, "k": k, **state},
            notes=[read_words, f"a token matches when its characters overlap a match of {regex!r} in its row's text"],
        )

    def _statistics(self, params: Mapping[str, Any], expect: Mapping[str, Any]) -> tuple[list[str], dict[str, str], dict[str, Any]]:
        stats = [stat for stat in self.statistics if stat in expect]
        return stats, {stat: stat for stat in stats}, {}

    def aggregate(self, prepared: Prepared, corpus: CorpusPass, role: str) -> NeuronAggregate:
        state = prepared.state
        return NeuronAggregate(state["hook"], state["neuron"], state["regex"], corpus.null_tokens, role)

    def conclude(self, prepared: Prepared, corpus: CorpusPass, model: NeuronAggregate, nulls: list[NeuronAggregate]) -> CorpusMeasurement:
        from interp_checks.stats.pooled import frequency_matched_class

        state = prepared.state
        activation, match, document = model.activation.array(), model.match.array(), model.document.array()
        k = min(state["k"], max(1, activation.size))
        notes = [
            f"{activation.size:,} tokens of {len(model.documents)} documents ({corpus.label}); {int(match.sum()):,} match "
            f"({_share(match):.2%})"
        ]
        _, sample_match, sample_token = model.sample_labels()
        k_null = max(1, round(k * sample_match.size / max(1, activation.size)))
        random_best = [best_of_neurons(twin.sample, twin.sample_labels()[1], k_null) for twin in nulls if twin.sampled]
        rng = np.random.default_rng(0)
        class_best = [
            best_of_neurons(model.sample, frequency_matched_class(sample_token, sample_match, rng), k_null) for _ in range(RANDOM_CLASSES)
        ] if _has_other_types(sample_token, sample_match) else []
        d_mlp = model.sample[0].shape[1] if model.sample else 0
        statistics = {}
        for stat in prepared.statistics:
            pooled = self._pooled(stat, prepared, activation, match, document, k)
            base = stat.split("[")[0]
            named_nulls = dict(pooled.nulls)
            if random_best and base in random_best[0]:
                named_nulls[f"best of all {d_mlp} neurons of a random-weights model (mean of {len(random_best)})"] = float(
                    np.mean([best[base][0] for best in random_best])
                )
            if class_best and base in class_best[0]:
                named_nulls[f"best neuron for a random token class of the same size and frequency (mean of {len(class_best)})"] = float(
                    np.mean([best[base][0] for best in class_best])
                )
            statistics[stat] = _with_nulls(pooled, named_nulls)
        if sample_match.size:
            notes.append(f"nulls on the first {sample_match.size:,} tokens of the stream; top share of the nulls over their top {k_null}")
        return CorpusMeasurement(statistics, self._figures(prepared, corpus, model, activation, match), notes)

    def _pooled(self, stat: str, prepared: Prepared, activation: np.ndarray, match: np.ndarray, document: np.ndarray, k: int) -> Any:
        from interp_checks.stats import pooled as P

        if stat == "auroc":
            return P.auroc_statistic(activation, match, document)
        if stat in ("precision", "recall"):
            threshold = P.firing_threshold(activation)
            make = P.firing_precision_statistic if stat == "precision" else P.firing_recall_statistic
            return make(activation, match, document, threshold)
        if stat == "top_share":
            return P.top_share_statistic(activation, match, document, k)
        if stat == "correlation":
            return P.correlation_statistic(activation, match, document)
        band = prepared.state["bands"][stat]
        return P.band_share_statistic(activation, match, document, *BANDS[band])

    def _figures(self, prepared: Prepared, corpus: CorpusPass, model: NeuronAggregate, activation: np.ndarray, match: np.ndarray) -> list[Figure]:
        name, regex = prepared.state["name"], prepared.state["regex"]
        figures = []
        examples = model.top_examples()
        if examples:
            figures.append(Figure(
                "tokens",
                f"{name}: its largest activations on {corpus.label}",
                {"rows": rounded(examples), "value_label": f"{name} activation", "center": 0.0},
                f"The {len(examples)} largest activations of {name} on {corpus.label} (at most one per row of "
                f"{corpus.seq_len} tokens), each with up to {TOKENS_BEFORE} tokens before it and {TOKENS_AFTER} after, every "
                f"token shaded by the neuron's activation; the outlined token is the one ranked. Labels say whether it "
                f"matches {regex!r}.",
            ))
        if activation.size:
            figures.append(activation_histogram(name, regex, corpus, activation, match))
            figures.append(band_bars(name, regex, corpus, activation, match))
        return figures

    def null_description(self, prepared: Prepared) -> str:
        return (
            "two nulls, the larger giving the effect size: the best neuron of a random-weights model of the same shape "
            "(max over the layer's neurons), and the best neuron of this model for a random token class of the same size "
            "and frequency"
        )


HISTOGRAM_BINS = 40


def activation_histogram(name: str, regex: str, corpus: CorpusPass, activation: np.ndarray, match: np.ndarray) -> Figure:
    """A ``histogram`` of the neuron's activations on matching and other tokens, over shared bins."""
    edges = np.linspace(float(activation.min()), float(activation.max()), HISTOGRAM_BINS + 1)
    if edges[0] == edges[-1]:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    series = [
        {"label": f"matches {regex}", "counts": np.histogram(activation[match], edges)[0].tolist()},
        {"label": "other tokens", "counts": np.histogram(activation[~match], edges)[0].tolist()},
    ]
    data = {"edges": edges.tolist(), "series": series, "x_label": f"{name} activation", "log_y": True}
    return Figure(
        "histogram",
        f"{name}: activations on tokens that match and that do not",
        rounded(data),
        f"Every token of {corpus.label} (tokens pooled over documents), binned by {name}'s activation; each group "
        "is shown as a share of its own tokens, so a rare class is visible beside a common one.",
    )


def band_bars(name: str, regex: str, corpus: CorpusPass, activation: np.ndarray, match: np.ndarray) -> Figure:
    """``bars``: the share of matching tokens in each band of the activation range, ranked from the
    top, beside the share among all tokens (what a neuron unrelated to the regex would show)."""
    order = np.argsort(-activation, kind="stable")
    labels, values = [], []
    for band, (low, high) in BANDS.items():
        chosen = order[int(np.floor(order.size * low / 100)) : max(int(np.ceil(order.size * high / 100)), 1)]
        labels.append(band)
        values.append(float(match[chosen].mean()) if chosen.size else float("nan"))
    data = {
        "labels": labels,
        "values": values,
        "value_label": f"share matching {regex}",
        "lines": [{"value": float(match.mean()), "label": "share among all tokens"}],
    }
    return Figure(
        "bars",
        f"{name}: how much of each band of its activation range matches",
        rounded(data),
        f"Tokens of {corpus.label} ranked by {name}'s activation, cut into bands from the top (top 1%, 1-5%, 5-20%, "
        "20-50%); each bar is the share of the band's tokens that match (point estimates; the claims' intervals are "
        "in the table). A neuron monosemantic only at its top has a high first bar and low later ones.",
    )


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")


def _with_nulls(pooled: Any, nulls: dict[str, float]) -> Any:
    from dataclasses import replace

    return replace(pooled, nulls=nulls)


class NeuronRegexCheck(_NeuronCorpusCheck):
    """``check: neuron_regex``: ``neuron: L0N123``, ``regex: '\\d'``, optional ``read`` and ``k``."""

    name: ClassVar[str] = "neuron_regex"
    description: ClassVar[str] = (
        "does a neuron mimic a regex? AUROC, precision and recall when it fires, share of its top k, correlation; "
        "pooled over a streamed corpus's tokens, the document the unit"
    )
    statistics: ClassVar[tuple[str, ...]] = ("auroc", "precision", "recall", "top_share", "correlation")
    params: ClassVar[tuple[str, ...]] = ("neuron", "regex", "read", "k")


class TopExamplesCheck(_NeuronCorpusCheck):
    """``check: top_examples``: the share of a neuron's top ``k`` activations (``k`` up to 1,000) that
    match a regex, and the same share in bands of its activation range (``bands:``, default all of
    top 1%, 1-5%, 5-20%, 20-50%), each band judged as ``band_share[<band>]``."""

    name: ClassVar[str] = "top_examples"
    description: ClassVar[str] = (
        "the share of a neuron's top k activations that match a regex, and per band of its activation range "
        "(top 1%, 1-5%, 5-20%, 20-50%): monosemantic only at the top?"
    )
    statistics: ClassVar[tuple[str, ...]] = ("top_share", "band_share")
    params: ClassVar[tuple[str, ...]] = ("neuron", "regex", "read", "k", "bands")

    def _statistics(self, params: Mapping[str, Any], expect: Mapping[str, Any]) -> tuple[list[str], dict[str, str], dict[str, Any]]:
        bands = params.get("bands", list(BANDS))
        if not isinstance(bands, list) or not bands or any(band not in BANDS for band in bands) or len(set(bands)) != len(bands):
            raise CheckError(f"bands must be a list of distinct bands among {', '.join(repr(b) for b in BANDS)}, got {bands!r}")
        stats: list[str] = []
        source: dict[str, str] = {}
        named: dict[str, str] = {}
        if "top_share" in expect:
            stats.append("top_share")
            source["top_share"] = "top_share"
        if "band_share" in expect:
            for band in bands:
                stat = f"band_share[{band}]"
                stats.append(stat)
                source[stat] = "band_share"
                named[stat] = band
        return stats, source, {"bands": named}


register(NeuronRegexCheck())
register(TopExamplesCheck())
