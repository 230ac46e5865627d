"""Features and neurons: is a neuron polysemantic, is a feature's direction a neuron's, is a feature
spread over many neurons?

A **feature** here is a regex over text (``\\(``, ``\\bself\\b``): a token has it when its
characters overlap a match in its row's text (``inputs.token_sets.regex_mask``, as in ``neurons``).
Four claim families:

* ``neuron_polysemantic`` -- "neuron L0N79 responds to ``)``, to ``,`` and to ``:``":
  ``features: {close: '\\)', comma: ',', colon: ':'}`` (2 to 16). Statistic ``auroc``, judged per
  feature as ``auroc[<name>]``: the AUROC of the neuron's activation for tokens of that feature
  against tokens of **none** of the features (so one feature's tokens are not another's negatives;
  a token with two features is a positive of both). The claim holds only if every feature's does.
  Nulls as in ``neurons``, per feature: the best neuron of a random-weights model, and the best
  neuron of this model for a random token class of the feature's size and frequency.
* ``feature_direction`` -- "the direction of ``\\bself\\b`` has cosine >= 0.6 with L0N160's
  input direction". The feature's direction lives in the space the MLP reads: its input
  ``blocks.L.mlp.hook_in`` (= ``ln2.hook_out``, after the layer norm's weight and bias: what ``W_in``
  multiplies; checked on a real bridge: ``hook_in @ W_in + b_in == hook_pre``, while
  ``ln2.hook_normalized`` is before the weight and bias). The neuron's input direction is its
  column ``W_in[:, N]`` (read as weights). ``method``:

  - ``mean_diff`` (default): the feature tokens' mean minus the other tokens' mean;
  - ``probe``: the weights of an L2-regularised logistic regression (``l2``, default 0.01; scipy's
    L-BFGS) of the feature on the vector, fitted on the feature's tokens (at most
    ``FEATURE_TOKENS_KEPT``, the first ones) and a seeded uniform sample of about
    ``BACKGROUND_TOKENS_KEPT`` other tokens (case-control sampling: under a logistic model it
    changes the intercept, not the weights);
  - ``pca``: the top principal component of the feature tokens' vectors taken about the *other*
    tokens' mean, oriented towards the feature (about its own mean a PCA describes how the feature's
    tokens vary among themselves, not where they lie).

  Statistic ``cosine`` (signed: the direction points towards the feature; a neuron reading it
  positively has a positive cosine), resampled by document: ``mean_diff`` recomputed exactly per
  resample; ``pca`` re-estimated per resample within the observed top 16 components;
  ``probe`` linearised (one Newton step from the observed fit), not refitted -- each estimand says so.
  Two nulls: the best ``|cosine|`` of any neuron's input direction of a random-weights model with
  that model's own feature direction (same method; the claimed neuron was found by searching), and
  ``E|cos|`` of a random direction in ``d_model`` dimensions (about sqrt(2 / (pi d))).
* ``feature_spread`` -- "no single neuron carries more than 30% of ``=``": statistic
  ``max_share``, the largest share of the squared norm of the feature's neuron-space mean
  difference (the feature tokens' mean activation minus the other tokens', per neuron of ``layer``,
  read as ``neurons`` reads them: before SoLU's layer norm by default) carried by one neuron. Nulls
  (references, not thresholds): the same feature's max share in a random-weights model, and the
  expected max share of a direction with no preferred neuron (about 2 ln(d) / d). Its notes list the
  ``top`` neurons (default 8) with the largest shares, as a list a ``feature_ablation`` claim takes.
* ``feature_ablation`` -- "ablating the whole MLP matters for the feature while ablating any one
  neuron does not": per sequence of text (``kind: corpus``), over the positions right after a
  feature token (the prediction the MLP makes *at* the feature token), the drop in the
  log-probability of the actual next token when the ``layer``'s MLP output (``mlp_effect``) or one
  neuron's ``hook_post`` column (``max_neuron_effect``: the largest mean over ``neurons``, each
  ablated alone; the search over them is paid for) is ablated by ``method`` (``mean``, default;
  ``zero``; ``resample``), through the circuits family's interventions (a ``neuron`` site). Which
  neurons to try is the claim's, fixed before any data is seen: the top ``m`` by share (``top:``,
  default 8) that a ``feature_spread`` claim listed on another split (find on ``discovery``,
  confirm on ``confirmation``), or ``neurons: all`` with ``layer:``. Each neuron is one more run of
  the model per chunk: measured on ``zoo:solu-1l`` (512 neurons, 2 random twins, 1 CPU thread), the
  MLP and 8 listed neurons on 64 windows took 33 s, ``neurons: all`` on 16 windows 455 s. The null
  is the random-weights twin's MLP effect (or, without ``mlp_effect``, its largest single-neuron
  effect). ``max_share`` and the ablation effects are two claims, not one: they stream a corpus
  and run windows of text respectively (one unit of sampling and one default input per check).

An AUROC needs activations that differ somewhere: a ReLU neuron that is exactly 0 on a feature's
tokens and on the tokens of none of the features has an undefined AUROC for it (``stats.pooled``),
so "it responds to that feature" is inconclusive, not refuted.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Mapping

import numpy as np

from interp_checks.checks._interventions import LOSS_UNIT, loss_increase
from interp_checks.checks.base import (
    MODEL,
    Activations,
    CheckError,
    CorpusMeasurement,
    CorpusPass,
    ModelShape,
    Needs,
    Prepared,
    register,
)
from interp_checks.checks.neurons import (
    DEFAULT_INPUTS,
    RANDOM_CLASSES,
    NeuronAggregate,
    _Growing,
    _NeuronCorpusCheck,
    _with_nulls,
    compile_regex,
    neuron_name,
    parse_neuron,
    positive_int,
    reading,
)
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import regex_mask
from interp_checks.interventions import Intervention, Site

MAX_FEATURES = 16  # features of one polysemantic claim (a bit each in a uint16 per token)
FEATURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MLP_INPUT = "blocks.{layer}.mlp.hook_in"  # ln2's output, after its weight and bias: what W_in multiplies
DIRECTION_METHODS = ("mean_diff", "probe", "pca")
DEFAULT_L2 = 1e-2
FEATURE_TOKENS_KEPT = 50_000  # feature tokens kept (the first ones) for probe and pca
BACKGROUND_TOKENS_KEPT = 20_000  # other tokens kept (a seeded uniform sample) for probe
PCA_RANK = 16  # resamples re-estimate the component within the observed top PCA_RANK components
SAMPLE_SEED = 0
DEFAULT_TOP = 8
ABLATION_METHODS = ("mean", "zero", "resample")
RESAMPLE_SEED = 0
TEXT_INPUTS: Mapping[str, Any] = {"kind": "corpus", "source": "stdlib", "split": "heldout", "n": 64, "chars": 700}


# -- shared pieces ---------------------------------------------------------------------------------


def parse_features(value: Any) -> dict[str, str]:
    """``{name: regex}`` with 2 to 16 features, names usable inside ``auroc[<name>]``."""
    if not isinstance(value, Mapping) or not 2 <= len(value) <= MAX_FEATURES:
        raise CheckError(f"features must map 2 to {MAX_FEATURES} names to regexes, e.g. {{close: '\\\\)', comma: ','}}; got {value!r}")
    out = {}
    for name, pattern in value.items():
        if not isinstance(name, str) or not FEATURE_NAME.match(name):
            raise CheckError(f"feature name {name!r} must start with a letter or _ and hold only letters, digits, _, . or -")
        out[name] = compile_regex(pattern)
    return out


def scored_positions(rows: InputBatch) -> np.ndarray:
    """[rows, pos]: the tokens a corpus claim counts (valid, not BOS, which has no text)."""
    scored = rows.valid.copy()
    scored[:, 0] = False
    return scored


def row_documents(rows: InputBatch, documents: dict[str, int]) -> np.ndarray:
    """[rows]: each row's document index, numbering documents in the order they first appear."""
    return np.array([documents.setdefault(name, len(documents)) for name in rows.sources or []], dtype=np.int32)


def feature_bits(rows: InputBatch, features: Mapping[str, str]) -> np.ndarray:
    """[rows, pos] uint16: bit j set where the token has feature j (in the order of ``features``)."""
    bits = np.zeros(rows.tokens.shape, dtype=np.uint16)
    for j, pattern in enumerate(features.values()):
        bits |= regex_mask(rows, pattern).astype(np.uint16) << j
    return bits


class SplitSums:
    """Per-document sums of vectors and token counts, apart for a feature's tokens and the other
    tokens: what a mean difference (and its resamples over documents) needs, with memory of
    [documents, width] whatever the number of tokens."""

    def __init__(self) -> None:
        self.feature = np.zeros((0, 0))
        self.background = np.zeros((0, 0))
        self.feature_count = np.zeros(0)
        self.background_count = np.zeros(0)
        self.n_documents = 0

    def _grow(self, documents: int, width: int) -> None:
        if self.feature.shape[1] != width and self.n_documents == 0:
            self.feature, self.background = np.zeros((0, width)), np.zeros((0, width))
        if documents > self.feature.shape[0]:
            size = max(documents, 2 * self.feature.shape[0], 16)
            for name in ("feature", "background"):
                grown = np.zeros((size, width))
                grown[: self.n_documents] = getattr(self, name)[: self.n_documents]
                setattr(self, name, grown)
            for name in ("feature_count", "background_count"):
                grown = np.zeros(size)
                grown[: self.n_documents] = getattr(self, name)[: self.n_documents]
                setattr(self, name, grown)
        self.n_documents = max(self.n_documents, documents)

    def add(self, vectors: np.ndarray, document: np.ndarray, feature: np.ndarray, n_documents: int) -> None:
        """Fold in tokens: ``vectors`` [T, width], their ``document`` [T] and whether each has the feature."""
        from scipy import sparse

        self._grow(n_documents, vectors.shape[1])
        for mask, sums, counts in ((feature, self.feature, self.feature_count), (~feature, self.background, self.background_count)):
            ids, local = np.unique(document[mask], return_inverse=True)
            if ids.size:  # one sparse product per batch: a batch holds few documents
                onehot = sparse.csr_array((np.ones(local.size), (local, np.arange(local.size))), shape=(ids.size, local.size))
                sums[ids] += onehot @ vectors[mask].astype(float)
                counts[ids] += np.bincount(local, minlength=ids.size)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(feature sums, feature counts, other sums, other counts), one row per document."""
        n = self.n_documents
        return self.feature[:n], self.feature_count[:n], self.background[:n], self.background_count[:n]

    def background_mean(self) -> np.ndarray:
        _, _, sums, counts = self.arrays()
        return sums.sum(axis=0) / max(1.0, counts.sum())


def _mean_of(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


# -- neuron_polysemantic ---------------------------------------------------------------------------


class FeatureBitsAggregate(NeuronAggregate):
    """``NeuronAggregate`` (the neuron's activation, document and token per token, the all-neuron
    sample for the nulls, the top contexts) plus, per token, which of several features it has."""

    def __init__(self, hook: str, neuron: int, features: Mapping[str, str], null_tokens: int, role: str):
        union = "|".join(f"(?:{pattern})" for pattern in features.values())
        super().__init__(hook, neuron, union, null_tokens, role)
        self.features = dict(features)
        self.bits = _Growing(np.uint16)
        self.sample_bits: list[np.ndarray] = []

    def update(self, activations: Activations, rows: InputBatch) -> None:
        sampled_before = self.sampled
        super().update(activations, rows)
        scored = scored_positions(rows)
        bits = feature_bits(rows, self.features)[scored]
        if self.sampled > sampled_before:
            self.sample_bits.append(bits[: self.sampled - sampled_before])
        if self.role == MODEL:
            self.bits.extend(bits)

    def sample_feature_bits(self) -> np.ndarray:
        return np.concatenate(self.sample_bits) if self.sample_bits else np.zeros(0, dtype=np.uint16)


def feature_versus_none(bits: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    """(tokens kept, whether each kept token has feature j): tokens of feature j against tokens of
    none of the features; tokens of only other features are left out."""
    has = ((bits >> j) & 1).astype(bool)
    keep = has | (bits == 0)
    return keep, has[keep]


class NeuronPolysemanticCheck(_NeuronCorpusCheck):
    """``check: neuron_polysemantic``: ``neuron: L0N79``, ``features: {name: regex, ...}`` (2 to 16),
    optional ``read``; statistic ``auroc`` judged per feature as ``auroc[<name>]``."""

    name: ClassVar[str] = "neuron_polysemantic"
    description: ClassVar[str] = (
        "does a neuron respond to each of several features? per feature, the AUROC of its activation for that "
        "feature's tokens against tokens of none of the features; pooled over a streamed corpus, the document the unit"
    )
    statistics: ClassVar[tuple[str, ...]] = ("auroc",)
    params: ClassVar[tuple[str, ...]] = ("neuron", "features", "read")

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        layer, index = parse_neuron(params.get("neuron"), shape)
        hook, read_words = reading(params.get("read"), layer, shape)
        features = parse_features(params.get("features"))
        statistics = [f"auroc[{name}]" for name in features] if "auroc" in expect else []
        needs = Needs(frozenset({hook}))
        union = "|".join(f"(?:{pattern})" for pattern in features.values())
        return Prepared(
            needs={MODEL: needs},
            null_needs=needs,
            statistics=statistics,
            expectation_source={stat: "auroc" for stat in statistics},
            sampling="corpus",
            state={"hook": hook, "neuron": index, "name": neuron_name(layer, index), "features": features, "regex": union},
            notes=[
                read_words,
                "per feature, tokens of that feature against tokens of none of the features (tokens of only other "
                "features are left out; a token with two features is a positive of both): "
                + ", ".join(f"{name} = {pattern!r}" for name, pattern in features.items()),
            ],
            units={stat: "AUROC" for stat in statistics},
        )

    def aggregate(self, prepared: Prepared, corpus: CorpusPass, role: str) -> FeatureBitsAggregate:
        state = prepared.state
        return FeatureBitsAggregate(state["hook"], state["neuron"], state["features"], corpus.null_tokens, role)

    def conclude(self, prepared: Prepared, corpus: CorpusPass, model: FeatureBitsAggregate, nulls: list[FeatureBitsAggregate]) -> CorpusMeasurement:
        from interp_checks.stats.pooled import auroc_statistic, best_aurocs_over_columns, frequency_matched_class

        features: dict[str, str] = prepared.state["features"]
        activation, document, bits = model.activation.array(), model.document.array(), model.bits.array()
        sample, _, sample_token = model.all_neuron_sample()
        sample_bits = model.sample_feature_bits()
        rng = np.random.default_rng(SAMPLE_SEED)
        d_mlp = sample.shape[1] if sample.ndim == 2 else 0
        statistics, counts = {}, []
        # each twin's all-neuron sample and feature bits, concatenated once for every feature
        twins = [(twin.all_neuron_sample()[0], twin.sample_feature_bits()) for twin in nulls]
        for j, name in enumerate(features):
            keep, has = feature_versus_none(bits, j)
            counts.append(f"{name} {int(has.sum()):,}")
            named_nulls = {}
            random_best = []
            for twin_sample, twin_bits in twins:
                twin_keep, twin_has = feature_versus_none(twin_bits, j)
                random_best.append(best_aurocs_over_columns(twin_sample[twin_keep], [twin_has])[0][0])
            if random_best:
                named_nulls[f"best of all {d_mlp} neurons of a random-weights model (mean of {len(random_best)})"] = _mean_of(random_best)
            keep_s, has_s = feature_versus_none(sample_bits, j)
            if has_s.any() and (~has_s).any():
                try:
                    classes = [frequency_matched_class(sample_token[keep_s], has_s, rng) for _ in range(RANDOM_CLASSES)]
                except ValueError:  # fewer never-matching token types than the feature has: no such class
                    classes = []
                if classes:
                    named_nulls[f"best neuron for a random token class of the same size and frequency (mean of {len(classes)})"] = _mean_of(
                        [best for best, _ in best_aurocs_over_columns(sample[keep_s], classes)]
                    )
            pooled = auroc_statistic(activation[keep], has, document[keep], n_documents=len(model.documents))
            statistics[f"auroc[{name}]"] = _with_nulls(pooled, named_nulls)
        notes = [f"{activation.size:,} tokens of {len(model.documents)} documents ({corpus.label}); tokens per feature: {', '.join(counts)}; "
                 f"of none: {int((bits == 0).sum()):,}"]
        if sample_bits.size:
            notes.append(f"nulls on the first {sample_bits.size:,} tokens of the stream")
        return CorpusMeasurement(statistics, self._figures(prepared, corpus, model, activation, bits != 0), notes)

    def null_description(self, prepared: Prepared) -> str:
        return (
            "per feature, two nulls, the larger giving the effect size: the best neuron of a random-weights model of the "
            "same shape (max over the layer's neurons), and the best neuron of this model for a random token class of the "
            "feature's size and frequency"
        )


# -- feature_direction -----------------------------------------------------------------------------


class DirectionAggregate:
    """What a feature's direction in the MLP's input needs, streamed: per-document sums of the input
    vectors of the feature's tokens and of the others (mean difference), the first feature tokens'
    vectors (``pca``, ``probe``), a seeded uniform sample of the other tokens' vectors (``probe``),
    and the layer's ``W_in`` (read once)."""

    def __init__(self, hook: str, layer: int, regex: str, method: str, expected_tokens: int):
        self.hook, self.layer, self.regex, self.method = hook, layer, regex, method
        self.sums = SplitSums()
        self.documents: dict[str, int] = {}
        self.w_in: np.ndarray | None = None
        self.feature_vectors: list[np.ndarray] = []
        self.feature_documents: list[np.ndarray] = []
        self.feature_kept = 0
        self.feature_seen = 0
        self.background_vectors: list[np.ndarray] = []
        self.background_documents: list[np.ndarray] = []
        self.background_rate = min(1.0, BACKGROUND_TOKENS_KEPT / max(1, expected_tokens))
        self.rng = np.random.default_rng(SAMPLE_SEED)

    def update(self, activations: Activations, rows: InputBatch) -> None:
        if self.w_in is None:
            self.w_in = activations["W_in"][self.layer].float().cpu().numpy().astype(float)  # [d_model, d_mlp]
        vectors = activations[self.hook].float().cpu().numpy()  # [rows, pos, d_model]
        scored = scored_positions(rows)
        has = regex_mask(rows, self.regex)[scored]
        document = np.broadcast_to(row_documents(rows, self.documents)[:, None], scored.shape)[scored]
        x = vectors[scored]
        self.sums.add(x, document, has, len(self.documents))
        self.feature_seen += int(has.sum())
        if self.method in ("pca", "probe") and self.feature_kept < FEATURE_TOKENS_KEPT:
            take = np.flatnonzero(has)[: FEATURE_TOKENS_KEPT - self.feature_kept]
            self.feature_vectors.append(x[take].astype(np.float32))
            self.feature_documents.append(document[take])
            self.feature_kept += take.size
        if self.method == "probe":
            chosen = np.flatnonzero(~has)
            chosen = chosen[self.rng.random(chosen.size) < self.background_rate]
            self.background_vectors.append(x[chosen].astype(np.float32))
            self.background_documents.append(document[chosen])

    def feature_tokens(self) -> tuple[np.ndarray, np.ndarray]:
        width = self.sums.feature.shape[1]
        if not self.feature_vectors:
            return np.zeros((0, width)), np.zeros(0, dtype=np.int32)
        return np.concatenate(self.feature_vectors).astype(float), np.concatenate(self.feature_documents)

    def probe_tokens(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vectors, has the feature, document) of the kept feature tokens and the sampled others."""
        fx, fd = self.feature_tokens()
        bx = np.concatenate(self.background_vectors).astype(float) if self.background_vectors else np.zeros((0, fx.shape[1]))
        bd = np.concatenate(self.background_documents) if self.background_documents else np.zeros(0, dtype=np.int32)
        return np.concatenate([fx, bx]), np.r_[np.ones(len(fx), bool), np.zeros(len(bx), bool)], np.concatenate([fd, bd]).astype(np.int64)

    def direction(self, l2: float) -> np.ndarray:
        """The feature's direction by this aggregate's method (NaN where it is undefined)."""
        from interp_checks.stats import pooled as P

        fs, fc, bs, bc = self.sums.arrays()
        if fc.sum() == 0 or bc.sum() == 0:
            return np.full(fs.shape[1] if fs.ndim == 2 else 0, np.nan)
        if self.method == "mean_diff":
            return P.mean_difference(fs, fc, bs, bc)
        if self.method == "pca":
            return P.background_centred_top_component(self.feature_tokens()[0], self.sums.background_mean())
        x, y, _ = self.probe_tokens()
        return P.logistic_probe(x, y, l2)[:-1]

    def statistic(self, reference: np.ndarray, l2: float) -> Any:
        """The pooled cosine of this aggregate's feature direction with ``reference``."""
        from interp_checks.stats import pooled as P

        fs, fc, bs, bc = self.sums.arrays()
        if self.method == "mean_diff":
            return P.mean_difference_cosine_statistic(fs, fc, bs, bc, reference)
        if self.method == "pca":
            fx, fd = self.feature_tokens()
            return P.top_component_cosine_statistic(fx, fd, bs, bc, reference, rank=PCA_RANK)
        x, y, document = self.probe_tokens()
        return P.probe_cosine_statistic(x, y, document, reference, l2=l2, n_documents=self.sums.n_documents)


class FeatureDirectionCheck:
    """``check: feature_direction``: ``feature: regex``, ``neuron: L0N160``, ``method:
    mean_diff|probe|pca`` (default mean_diff), ``l2`` (probe only); statistic ``cosine``."""

    name: ClassVar[str] = "feature_direction"
    description: ClassVar[str] = (
        "cosine of a feature's direction in the MLP's input (mean difference, logistic probe or top principal "
        "component) with a neuron's input weights W_in[:, N]; pooled over a streamed corpus, the document the unit"
    )
    statistics: ClassVar[tuple[str, ...]] = ("cosine",)
    params: ClassVar[tuple[str, ...]] = ("feature", "neuron", "method", "l2")
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any]] = DEFAULT_INPUTS

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        layer, index = parse_neuron(params.get("neuron"), shape)
        regex = compile_regex(params.get("feature"))
        method = params.get("method", "mean_diff")
        if method not in DIRECTION_METHODS:
            raise CheckError(f"method must be one of {', '.join(DIRECTION_METHODS)}, got {method!r}")
        l2 = params.get("l2", DEFAULT_L2)
        if method != "probe" and "l2" in params:
            raise CheckError("l2 is the logistic probe's regularisation; it goes with method: probe")
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not l2 > 0:
            raise CheckError(f"l2 must be a number > 0, got {l2!r}")
        hook = MLP_INPUT.format(layer=layer)
        needs = Needs(frozenset({hook}), weights=frozenset({"W_in"}))
        statistics = ["cosine"] if "cosine" in expect else []
        return Prepared(
            needs={MODEL: needs},
            null_needs=needs,
            statistics=statistics,
            expectation_source={stat: stat for stat in statistics},
            sampling="corpus",
            state={"hook": hook, "layer": layer, "neuron": index, "name": neuron_name(layer, index), "regex": regex, "method": method, "l2": float(l2)},
            notes=[
                f"feature direction: {_METHOD_WORDS[method].format(l2=float(l2))}, in the MLP's input {hook} (after the layer "
                f"norm's weight and bias: what W_in multiplies); neuron {neuron_name(layer, index)}'s input direction: W_in[:, {index}]",
                f"a token has the feature when its characters overlap a match of {regex!r} in its row's text",
            ],
            units={stat: "cosine" for stat in statistics},
        )

    def aggregate(self, prepared: Prepared, corpus: CorpusPass, role: str) -> DirectionAggregate:
        state = prepared.state
        expected = corpus.max_tokens if role == MODEL else corpus.null_tokens
        return DirectionAggregate(state["hook"], state["layer"], state["regex"], state["method"], expected)

    def conclude(self, prepared: Prepared, corpus: CorpusPass, model: DirectionAggregate, nulls: list[DirectionAggregate]) -> CorpusMeasurement:
        from interp_checks.stats.pooled import best_abs_cosine_over_columns, expected_abs_cosine_of_random_direction

        state = prepared.state
        l2 = state["l2"]
        assert model.w_in is not None, "the stream gave no batch"
        reference = model.w_in[:, state["neuron"]]
        d_model, d_mlp = model.w_in.shape
        named_nulls = {}
        twins = [best_abs_cosine_over_columns(twin.direction(l2), twin.w_in)[0] for twin in nulls if twin.w_in is not None]
        if twins:
            named_nulls[f"best |cosine| of all {d_mlp} neurons' input directions of a random-weights model with its own feature direction (mean of {len(twins)})"] = _mean_of(twins)
        named_nulls[f"E|cosine| of a random direction in {d_model} dimensions"] = expected_abs_cosine_of_random_direction(d_model)
        statistic = _with_nulls(model.statistic(reference, l2), named_nulls)
        direction = model.direction(l2)
        fs, fc, bs, bc = model.sums.arrays()
        notes = [f"{int(fc.sum() + bc.sum()):,} tokens of {model.sums.n_documents} documents ({corpus.label}); {int(fc.sum()):,} have the feature"]
        figures = []
        if np.all(np.isfinite(direction)) and direction.size:
            cosines = (model.w_in.T @ direction) / (np.linalg.norm(model.w_in, axis=0) * np.linalg.norm(direction) + 1e-30)
            order = np.argsort(-np.abs(cosines), kind="stable")
            notes.append(
                "this model's neurons best aligned with the feature direction: "
                + ", ".join(f"{neuron_name(state['layer'], int(i))} ({cosines[i]:+.3f})" for i in order[:3])
            )
            figures.append(_cosine_bars(state, cosines, order, named_nulls))
        if state["method"] in ("pca", "probe") and model.feature_seen > model.feature_kept:
            notes.append(f"{state['method']} used the first {model.feature_kept:,} of {model.feature_seen:,} feature tokens")
        if nulls:
            notes.append(f"random-weights null on the first {corpus.null_tokens:,} tokens of the stream")
        return CorpusMeasurement({"cosine": statistic} if "cosine" in prepared.statistics else {}, figures, notes)

    def null_description(self, prepared: Prepared) -> str:
        return (
            "two nulls, the larger giving the effect size: the best |cosine| of any neuron's input direction of a "
            "random-weights model of the same shape with that model's own feature direction (same method), and the "
            "expected |cosine| of a random direction"
        )


FIGURE_NEURONS = 8  # neurons shown in a direction's or a spread's bars


def _cosine_bars(state: Mapping[str, Any], cosines: np.ndarray, order: np.ndarray, nulls: Mapping[str, float]) -> Figure:
    """``bars``: the claimed neuron's cosine with the feature direction beside the best-aligned ones."""
    claimed = state["neuron"]
    shown = [int(i) for i in order[:FIGURE_NEURONS]]
    shown = shown if claimed in shown else shown[:-1] + [claimed]
    labels = [neuron_name(state["layer"], i) for i in shown]
    return Figure(
        "bars",
        f"cosine of each neuron's input direction with the direction of {state['regex']}",
        rounded({
            "labels": labels,
            "values": [float(cosines[i]) for i in shown],
            "highlight": [neuron_name(state["layer"], claimed)],
            "value_label": f"cosine with the feature direction ({state['method']})",
            "lines": [{"value": float(v), "label": name} for name, v in nulls.items() if np.isfinite(v)],
        }),
        f"The {len(shown)} neurons whose input weights W_in[:, N] are best aligned (largest |cosine|) with the feature's "
        f"direction by {state['method']} on the whole stream (the claimed neuron highlighted, added if not among them); "
        "lines mark the nulls' |cosine| (point estimates; the claim's interval is in the table).",
    )


def _share_bars(state: Mapping[str, Any], shares: np.ndarray, order: np.ndarray, reference: float) -> Figure:
    """``bars``: the largest shares of the feature's squared mean difference, one bar per neuron."""
    shown = [int(i) for i in order[:FIGURE_NEURONS]]
    return Figure(
        "bars",
        f"share of the mean difference of {state['regex']} carried by each neuron",
        rounded({
            "labels": [neuron_name(state["layer"], i) for i in shown],
            "values": [float(shares[i]) for i in shown],
            "value_label": "share of the squared mean difference",
            "lines": [{"value": float(reference), "label": "expected max share of a direction with no preferred neuron"}],
        }),
        f"The {len(shown)} neurons with the largest shares of the feature's neuron-space mean difference (its tokens' mean "
        "activation minus the other tokens', squared, over the sum), on the whole stream; the first bar is max_share.",
    )


_METHOD_WORDS = {
    "mean_diff": "mean of the feature's tokens minus the mean of the other tokens",
    "probe": (
        "weights of an L2-regularised logistic probe (l2 = {l2:g}) fitted on the feature's tokens (at most "
        f"{FEATURE_TOKENS_KEPT:,}, the first) and a seeded uniform sample of about {BACKGROUND_TOKENS_KEPT:,} other tokens"
    ),
    "pca": "top principal component of the feature tokens' vectors about the other tokens' mean, oriented towards the feature",
}


# -- feature_spread ----------------------------------------------------------------------------------


class SpreadAggregate:
    """Per-document sums of every neuron's activation of one layer, apart for the feature's tokens
    and the other tokens: the feature's neuron-space mean difference and its resamples."""

    def __init__(self, hook: str, regex: str):
        self.hook, self.regex = hook, regex
        self.sums = SplitSums()
        self.documents: dict[str, int] = {}

    def update(self, activations: Activations, rows: InputBatch) -> None:
        acts = activations[self.hook].float().cpu().numpy()
        scored = scored_positions(rows)
        has = regex_mask(rows, self.regex)[scored]
        document = np.broadcast_to(row_documents(rows, self.documents)[:, None], scored.shape)[scored]
        self.sums.add(acts[scored], document, has, len(self.documents))


class FeatureSpreadCheck:
    """``check: feature_spread``: ``feature: regex``, ``layer: 0``, optional ``read`` and ``top``;
    statistic ``max_share``."""

    name: ClassVar[str] = "feature_spread"
    description: ClassVar[str] = (
        "is a feature spread over a layer's neurons? the largest share of its neuron-space mean difference "
        "(squared norm) carried by one neuron; pooled over a streamed corpus, the document the unit"
    )
    statistics: ClassVar[tuple[str, ...]] = ("max_share",)
    params: ClassVar[tuple[str, ...]] = ("feature", "layer", "read", "top")
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any]] = DEFAULT_INPUTS

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        layer = mlp_layer(params.get("layer"), shape)
        hook, read_words = reading(params.get("read"), layer, shape)
        regex = compile_regex(params.get("feature"))
        top = positive_int(params, "top", DEFAULT_TOP, int(shape.d_mlp or 1))
        needs = Needs(frozenset({hook}))
        statistics = ["max_share"] if "max_share" in expect else []
        return Prepared(
            needs={MODEL: needs},
            null_needs=needs,
            statistics=statistics,
            expectation_source={stat: stat for stat in statistics},
            sampling="corpus",
            state={"hook": hook, "layer": layer, "regex": regex, "top": top},
            notes=[
                read_words,
                f"a token has the feature when its characters overlap a match of {regex!r} in its row's text; the feature's "
                "mean difference: its tokens' mean activation minus the other tokens', per neuron",
            ],
            units={stat: "share of squared norm" for stat in statistics},
        )

    def aggregate(self, prepared: Prepared, corpus: CorpusPass, role: str) -> SpreadAggregate:
        return SpreadAggregate(prepared.state["hook"], prepared.state["regex"])

    def conclude(self, prepared: Prepared, corpus: CorpusPass, model: SpreadAggregate, nulls: list[SpreadAggregate]) -> CorpusMeasurement:
        from interp_checks.stats.pooled import expected_max_share_of_random_direction, max_share_statistic, mean_difference

        state = prepared.state
        fs, fc, bs, bc = model.sums.arrays()
        d_mlp = fs.shape[1]
        named_nulls = {}
        twin_shares = []
        for twin in nulls:
            pooled = max_share_statistic(*twin.sums.arrays())
            twin_shares.append(pooled.observed())
        if twin_shares:
            named_nulls[f"the feature's max share in a random-weights model (mean of {len(twin_shares)})"] = _mean_of(twin_shares)
        no_preference = expected_max_share_of_random_direction(d_mlp)
        named_nulls[f"expected max share of a direction with no preferred neuron ({d_mlp} neurons)"] = no_preference
        statistic = _with_nulls(max_share_statistic(fs, fc, bs, bc), named_nulls)
        notes = [f"{int(fc.sum() + bc.sum()):,} tokens of {model.sums.n_documents} documents ({corpus.label}); {int(fc.sum()):,} have the feature"]
        figures = []
        if fc.sum() and bc.sum():
            difference = mean_difference(fs, fc, bs, bc)
            shares = difference**2 / max(float(difference @ difference), 1e-300)
            order = np.argsort(-shares, kind="stable")[: state["top"]]
            names = [neuron_name(state["layer"], int(i)) for i in order]
            figures.append(_share_bars(state, shares, np.argsort(-shares, kind="stable"), no_preference))
            notes.append(
                f"the {len(order)} neurons with the largest shares: "
                + ", ".join(f"{name} ({shares[i]:.3f}, mean difference {difference[i]:+.3g})" for name, i in zip(names, order))
                + f"; together {shares[order].sum():.3f}; as a feature_ablation list: neurons: [{', '.join(names)}]"
            )
        if nulls:
            notes.append(f"random-weights null on the first {corpus.null_tokens:,} tokens of the stream")
        return CorpusMeasurement({"max_share": statistic} if "max_share" in prepared.statistics else {}, figures, notes)

    def null_description(self, prepared: Prepared) -> str:
        return (
            "references rather than a bar to clear: the feature's max share in a random-weights model of the same shape, "
            "and the expected max share of a direction with no preferred neuron"
        )


def mlp_layer(value: Any, shape: ModelShape) -> int:
    """``layer: 0`` checked against the model (it must have MLPs)."""
    if shape.d_mlp is None:
        raise CheckError("this claim is about an MLP layer, but the model is attention-only (it has no MLP)")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < shape.n_layers:
        raise CheckError(f"layer must be an integer from 0 to {shape.n_layers - 1}, got {value!r}")
    return value


# -- feature_ablation --------------------------------------------------------------------------------


def _neurons_of(params: Mapping[str, Any], shape: ModelShape) -> tuple[int, list[int]]:
    """(layer, neurons to ablate one at a time) from ``layer`` and ``neurons`` (a list or ``all``)."""
    value = params.get("neurons")
    if value is None:
        return mlp_layer(params.get("layer"), shape), []
    if value == "all":
        return mlp_layer(params.get("layer"), shape), list(range(int(shape.d_mlp or 0)))
    if not isinstance(value, list) or not value:
        raise CheckError(f"neurons must be a non-empty list like [L0N3, L0N17], or all (with layer:); got {value!r}")
    parsed = [parse_neuron(item, shape) for item in value]
    layers = {layer for layer, _ in parsed}
    if len(layers) != 1:
        raise CheckError(f"neurons must all be in one layer (the MLP being ablated), got layers {sorted(layers)}")
    layer = layers.pop()
    if params.get("layer") is not None and mlp_layer(params.get("layer"), shape) != layer:
        raise CheckError(f"layer {params.get('layer')} disagrees with the neurons' layer {layer}")
    indices = [index for _, index in parsed]
    if len(set(indices)) != len(indices):
        raise CheckError(f"neurons lists a neuron twice: {value}")
    return layer, indices


def after_feature_tokens(batch: InputBatch, regex: str) -> np.ndarray:
    """[n, pos]: positions whose token comes right after a feature token (the metric at p + 1 is the
    prediction made at the feature token p), both valid."""
    has = regex_mask(batch, regex)
    selected = np.zeros_like(has)
    selected[:, 1:] = has[:, :-1] & batch.valid[:, 1:]
    return selected


class FeatureAblationCheck:
    """``check: feature_ablation``: ``feature: regex``, ``layer`` and/or ``neurons`` (a list or all),
    ``method`` (mean|zero|resample); statistics ``mlp_effect`` and ``max_neuron_effect``."""

    name: ClassVar[str] = "feature_ablation"
    description: ClassVar[str] = (
        f"per sequence of text, the drop in log-prob ({LOSS_UNIT}) of the next token after a feature's tokens when "
        "the MLP layer is ablated (mlp_effect) and the largest such drop over single neurons (max_neuron_effect)"
    )
    statistics: ClassVar[tuple[str, ...]] = ("mlp_effect", "max_neuron_effect")
    params: ClassVar[tuple[str, ...]] = ("feature", "layer", "neurons", "method")
    model_roles: ClassVar[tuple[str, ...]] = ()
    default_inputs: ClassVar[Mapping[str, Any]] = TEXT_INPUTS

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        regex = compile_regex(params.get("feature"))
        layer, neurons = _neurons_of(params, shape)
        method = params.get("method", "mean")
        if method not in ABLATION_METHODS:
            raise CheckError(f"method must be one of {', '.join(ABLATION_METHODS)}, got {method!r}")
        if "max_neuron_effect" in expect and not neurons:
            raise CheckError("max_neuron_effect ablates neurons one at a time: give neurons: [L0N3, ...] or neurons: all")
        if "max_neuron_effect" in expect and expect["max_neuron_effect"].op == "between":
            raise CheckError("max_neuron_effect takes a one-sided expectation; for a band write two claims")
        mlp = Intervention((Site("mlp", layer),), method, seed=RESAMPLE_SEED)
        single = {index: Intervention((Site("neuron", layer, neuron=index),), method, seed=RESAMPLE_SEED) for index in neurons}
        statistics = [stat for stat in self.statistics if stat in expect]
        members = {"max_neuron_effect": [neuron_name(layer, i) for i in neurons]} if "max_neuron_effect" in statistics else {}
        interventions = ((mlp,) if "mlp_effect" in statistics else ()) + (tuple(single.values()) if members else ())
        null_interventions = (mlp,) if "mlp_effect" in statistics else tuple(single.values())
        return Prepared(
            needs={MODEL: Needs(frozenset(), interventions=interventions)},
            null_needs=Needs(frozenset(), interventions=null_interventions),
            statistics=statistics,
            expectation_source={stat: stat for stat in statistics},
            state={"regex": regex, "layer": layer, "mlp": mlp, "single": single, "method": method},
            notes=[
                f"per sequence, the mean over positions right after a token matching {regex!r} of the clean run's log-prob "
                f"of the actual next token minus the ablated run's ({LOSS_UNIT}): the prediction made at the feature's tokens",
                f"ablation method: {method} (the whole MLP output blocks.{layer}.hook_mlp_out for mlp_effect; one neuron's "
                f"column of blocks.{layer}.mlp.hook_post at a time for max_neuron_effect), at every position",
            ]
            + ([f"max_neuron_effect over {len(neurons)} neuron(s) named by the claim, each ablated alone; the largest mean is "
                "judged with the search over them paid for"] if members else []),
            members=members,
            units={stat: LOSS_UNIT for stat in statistics},
        )

    def _effects(self, prepared: Prepared, readings: Activations, batch: InputBatch) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        selected = after_feature_tokens(batch, prepared.state["regex"])
        mlp = prepared.state["mlp"]
        whole = loss_increase(readings, mlp, selected) if mlp.key in readings else None
        single = {i: loss_increase(readings, iv, selected) for i, iv in prepared.state["single"].items() if iv.key in readings}
        return whole, single

    def measure(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> dict[str, np.ndarray]:
        whole, single = self._effects(prepared, activations[MODEL], batches[MODEL])
        out: dict[str, np.ndarray] = {}
        if "mlp_effect" in prepared.statistics:
            assert whole is not None
            out["mlp_effect"] = whole
        if "max_neuron_effect" in prepared.statistics:  # [sequences, neurons]: judged on the largest neuron mean
            out["max_neuron_effect"] = np.stack([single[i] for i in prepared.state["single"]], axis=1)
        return out

    def measure_null(self, prepared: Prepared, activations: Activations, batch: InputBatch) -> np.ndarray:
        whole, single = self._effects(prepared, activations, batch)
        if "mlp_effect" in prepared.statistics:
            assert whole is not None
            return whole
        stacked = np.stack(list(single.values()), axis=1)
        defined = np.isfinite(stacked).any(axis=1)  # a window with no feature token has no effect to take the largest of
        return np.where(defined, np.max(np.where(np.isfinite(stacked), stacked, -np.inf), axis=1), np.nan)

    def null_description(self, prepared: Prepared) -> str:
        what = "the MLP's" if "mlp_effect" in prepared.statistics else "the largest single neuron's (per sequence, over the same neurons)"
        return f"{what} effect on the same inputs with the same ablation, on the random-weights twin of the same architecture"


register(NeuronPolysemanticCheck())
register(FeatureDirectionCheck())
register(FeatureSpreadCheck())
register(FeatureAblationCheck())
