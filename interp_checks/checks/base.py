"""The Check protocol and the registry of claim families.

A check is the only place that knows what a claim family means. It declares

* which claim keys it accepts (``params``), and validates them against the model's shape;
* which activations it needs (TransformerLens hook names) and whether it needs logits, so the
  engine can share one forward pass between claims and cache nothing else;
* which statistics it produces, one value per input sequence (the unit of sampling);
* its default inputs (``default_inputs``, an ``inputs:`` mapping), used when a claim gives none:
  large enough for a meaningful test, small enough to run in seconds on a CPU;
* the statistic of the statistical null, measured on a random-weights twin of the model;
* optionally, pictures of what it measured (``figures``: plot-ready ``interp_checks.figures.Figure``
  data such as a head's attention pattern), drawn by ``interp_checks.report``.

It never loads models, computes p-values or writes reports: those belong to ``models/``,
``stats/`` and ``report/``. Adding a claim family is one new module that calls ``register``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Protocol, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

    from interp_checks.figures import Figure
    from interp_checks.inputs.generators import InputBatch
    from interp_checks.interventions import Intervention, Site
    from interp_checks.stats import Comparison


class CheckError(ValueError):
    """A claim asks something of a check that the check (or the model) cannot do.

    The message says what is wrong and how to fix it; the schema layer adds the file and claim id.
    """


@dataclass(frozen=True)
class ModelShape:
    """What a check may know about a model before running it."""

    n_layers: int
    n_heads: int
    d_vocab: int
    n_ctx: int
    # TransformerLens's ``cfg.normalization_type`` ("LN", "LNPre", "RMS", "RMSPre" or None): what a
    # check that reads through a layer norm must ask for (its weights exist only for LN and RMS, its
    # hook_scale only when there is a norm). The default is TransformerLens's config default.
    normalization: str | None = "LN"
    # The MLP's width and activation (TransformerLens's ``cfg.d_mlp`` and ``cfg.act_fn``); None for an
    # attention-only model. A neuron check needs them to name neurons and to choose its hook (SoLU's
    # ``solu_ln`` is read before its extra layer norm, at ``blocks.L.mlp.ln.hook_in``).
    d_mlp: int | None = None
    act_fn: str | None = None


@dataclass(frozen=True)
class Needs:
    """What a prepared claim reads from one model, as data; the engine gets it and shares it.

    * ``hooks``: activations of the clean run (TransformerLens hook names), keyed by hook name;
    * ``logits``: the clean run's logits, under ``"logits"``;
    * ``weights``: parameters (TransformerLens names: ``W_Q``, ``W_K``, ``W_V``, ``W_O`` stacked
      [layer, head, ...] as the bridge's properties give them, or a state-dict name such as
      ``blocks.0.attn.W_Q``), keyed by that name; read once, not per chunk;
    * ``interventions``: changed runs (``interp_checks.interventions.Intervention``), each read as
      a [sequences, positions] metric under ``intervention.key``, with the clean run's metric under
      ``interventions.clean_key(metric)``.
    """

    hooks: frozenset[str]
    logits: bool = False
    weights: frozenset[str] = frozenset()
    interventions: tuple["Intervention", ...] = ()

    @property
    def last_layer(self) -> int | None:
        """The deepest block any hook lives in (None when no block hook is needed)."""
        layers = [int(name.split(".")[1]) for name in self.hooks if name.startswith("blocks.")]
        return max(layers) if layers else None


@dataclass(frozen=True)
class CorpusPass:
    """A stream over a corpus that a claim reads with bounded memory (``Prepared.sampling == "corpus"``).

    The engine cuts the documents of ``source`` (``stdlib``, ``stdlib-docs``, ``stdlib-code`` or a path:
    ``interp_checks.inputs.corpora``), split ``split``, into rows of BOS + ``seq_len - 1`` tokens, one
    document per row, until ``max_tokens`` tokens; it runs the model once per batch for every claim on
    the same model and pass (hooks merged), and hands each batch's activations to the claim's
    aggregates (``AggregatesCorpus.aggregate``). Each random-weights twin streams only the first
    ``null_tokens`` tokens: a null is a reference value, not the claim's own estimate. Rows come as an
    ``InputBatch`` with ``texts``, ``offsets`` and ``sources`` (the document of each row), so ``where:``
    patterns and regexes select tokens in context, as everywhere else.
    """

    source: str
    split: str = "heldout"
    max_tokens: int = 100_000
    seq_len: int = 128
    null_tokens: int = 8_192
    rows_per_document: int | None = None  # only each document's first rows (None: all of them)

    @property
    def label(self) -> str:
        """How statistics and reports name this corpus: the source, with its split unless ``all``."""
        return self.source if self.split == "all" else f"{self.source}/{self.split}"

    @property
    def key(self) -> tuple[str, str, int, int, int | None]:
        """Claims whose passes share this key share one stream (``null_tokens`` only bounds the twins')."""
        return (self.source, self.split, self.max_tokens, self.seq_len, self.rows_per_document)


class CorpusAggregate(Protocol):
    """A claim's bounded running state over one corpus pass on one model (the subject or a twin)."""

    def update(self, activations: "Activations | Mapping[str, Activations]", rows: "InputBatch") -> None:
        """Fold in one batch: the hooks the claim asked for, and the rows they were read on (keyed by
        role when the claim reads several models: ``AggregatesCorpus``)."""


@dataclass
class CorpusMeasurement:
    """What a corpus claim concluded from one pass: each statistic (named as in
    ``Prepared.statistics``) as a ``stats.pooled.PooledStatistic`` (tokens pooled over documents, the
    document the unit of resampling, its nulls' values attached), plus pictures and notes."""

    statistics: dict[str, Any]
    figures: list["Figure"] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_component(text: Any, shape: ModelShape, kinds: tuple[str, ...], what: str, positions: tuple[int, ...] | None = None) -> "Site":
    """A component name (``L1H0``, ``L0N123``, ``L2.mlp``, ...) of one of ``kinds`` as a
    ``interventions.Site``, checked against the model: ``Site.parse``, its errors as CheckError (what
    the claim called it, the forms accepted, the model's range)."""
    from interp_checks.interventions import Site, SiteNameError

    try:
        return Site.parse(text, shape, kinds=kinds, what=what, positions=positions)
    except SiteNameError as error:
        raise CheckError(str(error)) from None


@dataclass(frozen=True)
class SeriesReading:
    """What a series claim reads at every checkpoint: one statistic of an existing per-sequence (or
    weights) check on fixed inputs, e.g. ``induction_head``'s ``max_score`` on repeated random
    tokens, or ``loss``'s ``accuracy`` on the test pairs. The engine prepares ``check`` with
    ``params`` against the series' model, generates ``inputs`` once (seed ``seed``) and runs them
    through every checkpoint; the reading's values are [checkpoints, samples] (or [checkpoints,
    samples, members] for a statistic with members, such as per-token losses).

    ``name`` is how the series check refers to it (``train``, ``test``, ``score``); readings with
    equal ``inputs`` and ``seed`` are measured on the same samples and resampled together."""

    name: str
    check: str
    statistic: str
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] | None = None  # None: the reading check's default inputs
    seed: int | None = None  # the inputs' seed; None: the claim's ``seed:``

    def describe(self) -> str:
        keys = ", ".join(f"{k}: {v}" for k, v in self.params.items())
        return f"{self.check}.{self.statistic}" + (f" ({keys})" if keys else "")


@dataclass
class SeriesCurves:
    """What a series check concludes from, for one run: the checkpoints' positions on the axis, and
    per reading its values [checkpoints, samples, members] (members 1 for a per-sequence statistic;
    samples 1 for a statistic of the weights alone), the samples' input key (equal keys: the same
    samples), and how each was measured (for notes)."""

    run: str
    axis: str
    positions: np.ndarray
    values: dict[str, np.ndarray]
    sample_keys: dict[str, str]
    notes: list[str] = field(default_factory=list)
    record: Mapping[str, Any] = field(default_factory=dict)  # the run's series.json


MODEL = "model"  # the role of the claim's subject; checks may declare more roles (e.g. "baseline")
# For a weight statistic's ``figures`` only: the null's values ([draws, values per draw] numpy array)
# next to the weights, so a picture can show where a random-weights twin's value falls.
WEIGHT_NULL = "weight_null"


@dataclass
class Prepared:
    """A claim's parameters after validation against its models: what to measure and how to name it.

    ``needs`` maps each model role (``"model"``, plus the check's ``model_roles``) to the activations
    needed from that model. ``null_needs`` is what the random-weights twin of the subject must give
    for the null statistic, or None when the check's null needs no model (``measure_null`` is then
    not called and the null statistic is zero, e.g. "no gain over the baseline").

    ``expectations`` maps each statistic the claim will be judged on (e.g. ``score[L1H0]``) to the
    name of the statistic the user wrote in ``expect`` (e.g. ``score``) and, where the claim
    inverts it, the comparison to use instead (``other heads < t`` for "exactly these heads").

    ``members`` names the statistics that are about the *largest of several members' means* ("some
    head of layer 1 is an induction head", "no head of layer 0 is"): for those, ``measure`` returns
    a [sequences, members] array instead of one value per sequence, and the statistics layer judges
    the largest member mean with the selection of the member paid for
    (``stats.evaluate_largest_mean``). Never reduce members to a per-sequence maximum: its mean is
    at least the largest member mean, biased towards "some member has it". A statistic with an
    estimator (``estimators``, e.g. ``rank``) uses ``members`` only to name its columns.
    """

    needs: dict[str, Needs]
    null_needs: Needs | None
    statistics: list[str]
    expectation_source: dict[str, str] = field(default_factory=dict)
    negated: frozenset[str] = frozenset()
    state: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the report should say about how it was measured
    members: dict[str, list[str]] = field(default_factory=dict)  # statistic -> member names (see above)
    units: dict[str, str] = field(default_factory=dict)  # statistic -> its unit, shown beside every estimate
    # "sequence": statistics are per input sequence (or document), as above. "weights": they are
    # functions of the weights alone (composition scores): ``measure`` is called once with the
    # weights it asked for and returns one value per statistic, and the null is the same statistic
    # on ``weight_null_draws`` random-weights twins (``measure_null`` once per twin, on its weights),
    # judged by ``stats.evaluate_against_draws``: there is no sequence to resample. "corpus": they are
    # pooled over the tokens of streamed corpora (``corpora``; the check is ``AggregatesCorpus``).
    sampling: str = "sequence"
    weight_null_draws: int = 0
    # statistic -> a named estimator of ``stats.estimators.ESTIMATORS`` for statistics that are not a
    # mean of per-sequence values (``rank``, ``ratio_of_means``, ``share_beaten_of_ratios``,
    # ``curve_area``, ``curve_gap_area``); ``measure`` returns arrays in the layout that module's
    # docstring gives for each (e.g. [sequences, 2]: numerator, denominator for a ratio of means).
    estimators: dict[str, str] = field(default_factory=dict)
    # For ``sampling == "corpus"``: the streams the claim reads (``CorpusPass``), each judged on its own;
    # the check implements ``AggregatesCorpus`` instead of ``measure``.
    corpora: tuple[CorpusPass, ...] = ()
    # For ``sampling == "corpus"``: the role whose model the null streams replace by its random-weights
    # twins (``null_needs`` is what each twin gives); the claim's other roles keep their real models
    # there. MODEL unless the null is about another role (a larger model's neurons vs random ones).
    null_role: str = MODEL
    # For ``sampling == "corpus"``: statistic -> the comparison it is judged by, where the check restates
    # the user's expectation as an equivalent one about another statistic ("at least 2 neurons have
    # r >= 0.5" is "the 2nd largest r is >= 0.5": a count judged through a continuous order statistic).
    restated: dict[str, "Comparison"] = field(default_factory=dict)
    # For ``sampling == "corpus"``: statistic -> the name of its evaluator in
    # ``stats.universal.CORPUS_EVALUATORS``: "pooled" (the default: ``stats.evaluate_pooled`` on a
    # ``PooledStatistic``) or "universal" (a deterministic verdict from a counterexample search on a
    # ``stats.universal.UniversalEvidence``, for "no token violates" claims; see ``SearchesCounterexamples``).
    evaluators: dict[str, str] = field(default_factory=dict)
    # For ``sampling == "series"``: the readings taken at every checkpoint of the claim's series
    # (``SeriesReading``), and how to thin the series (``models.series.thin``: ``every``, ``steps``).
    # The check implements ``SummarisesSeries``; each statistic is judged per run.
    readings: tuple[SeriesReading, ...] = ()
    thinning: dict[str, Any] = field(default_factory=dict)


Activations = Mapping[str, "torch.Tensor"]


class Check(Protocol):
    """One claim family. Instances are stateless; per-claim state lives in ``Prepared``."""

    name: ClassVar[str]
    description: ClassVar[str]
    statistics: ClassVar[tuple[str, ...]]
    params: ClassVar[tuple[str, ...]]
    model_roles: ClassVar[tuple[str, ...]]  # claim keys, besides "model", whose values are model specs
    # The inputs of a claim that gives no ``inputs:`` (an ``inputs:`` mapping with a kind; the engine
    # records them in the result and notes that they were the default). None: claims must give inputs.
    default_inputs: ClassVar[Mapping[str, Any] | None]

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        """Validate ``params`` against the models (by role) and say what to run. Raises CheckError."""

    def measure(
        self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, "InputBatch"]
    ) -> dict[str, np.ndarray]:
        """Per-sequence values of every statistic in ``prepared.statistics`` (NaN where undefined);
        [sequences, members] for the statistics named in ``prepared.members``.

        ``activations`` and ``batches`` are keyed by model role; row i of every batch is the same
        input sequence (tokenized by that role's model).
        """

    def measure_null(self, prepared: Prepared, activations: Activations, batch: "InputBatch") -> np.ndarray:
        """Per-sequence value of the null statistic on the subject's random-weights twin."""

    def null_description(self, prepared: Prepared) -> str:
        """How the null is built, for the report (e.g. 'max over all heads, random-weights model')."""


class DrawsFigures(Check, Protocol):
    """A check that also draws pictures of its claims. ``figures`` is optional: a check without it
    has no pictures of its own (every judged claim still gets the engine's strip of per-sequence
    values against the null, threshold and interval).

    The engine calls ``figures`` once per claim, on the **first chunk** of inputs it measures (at
    most ``--interp-batch-size`` sequences), with the same arguments as ``measure`` and only the
    activations the claim asked for in ``prepare`` (a picture must not cost a forward pass; a hook
    needed only for a picture goes into ``needs`` only if it is cheap). So pictures are of the first
    chunk, and each figure's caption must say how its example was chosen ("the mean over the first
    64 sequences", "the 4 tokens with the largest gain among the first 64 sequences").

    The call is guarded: an exception, or a figure that is not a ``Figure`` or not valid JSON data,
    never changes the claim's verdict or becomes an error; it becomes a note on the claim ("figure
    ... could not be drawn: ..."). Round the numbers (``figures.rounded``) and keep figures small:
    every claim's figures go into ``report.json``.
    """

    def figures(
        self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, "InputBatch"]
    ) -> list["Figure"]:
        """Plot-ready pictures of this claim on the first chunk of its inputs (keyed by model role)."""


class AggregatesCorpus(Check, Protocol):
    """A check whose claims stream a corpus (``Prepared.sampling == "corpus"``) instead of measuring
    per-sequence values: statistics pooled over tokens (an AUROC, the share of the top k), with the
    document as the unit of resampling, from bounded aggregates (top-k heaps, per-document sums).

    The engine streams ``prepared.corpora`` through the model (hooks: ``needs[MODEL]``), and the first
    ``null_tokens`` of each through each random-weights twin (hooks: ``null_needs``), calling
    ``aggregate`` once per (corpus, model) to get a fresh aggregate and its ``update`` per batch; then
    ``conclude`` once per corpus. It never calls ``measure``; the statistics layer judges each
    statistic with ``stats.evaluate_pooled`` (against ``prepared.restated[stat]`` where the check
    restated the user's comparison).

    Several models on the same text: ``needs`` may name other roles (``model_roles``, e.g. a larger
    model). Then every batch of rows (cut by the subject's tokenizer; the engine requires each role's
    tokenizer to have the same vocabulary) runs through each role's model, and ``update`` gets a
    mapping role -> that model's hooks instead of one model's hooks. In the null streams the model of
    ``prepared.null_role`` is replaced by each of its random-weights twins (hooks: ``null_needs``)
    while the other roles keep their real models, on the same rows; ``aggregate`` is then called with
    ``role == NULL``. A claim that reads only the subject gets exactly what it got before: one model's
    hooks, twins of the subject.
    """

    def aggregate(self, prepared: Prepared, corpus: CorpusPass, role: str) -> CorpusAggregate:
        """A fresh aggregate for ``corpus`` on the subject (``role == MODEL``) or a twin (``NULL``)."""

    def conclude(
        self, prepared: Prepared, corpus: CorpusPass, model: CorpusAggregate, nulls: list[CorpusAggregate]
    ) -> CorpusMeasurement:
        """The statistics of this corpus (keys among ``prepared.statistics``), their nulls, figures."""


NULL = "null"  # the role of a random-weights twin's aggregate in a corpus pass


# Runs texts through the claim's model: each text tokenized with the model's tokenizer as text inputs
# are (``inputs.generators.tokenize_texts``: BOS first, character offsets kept, right-padded), and the
# hooks of ``needs[MODEL]`` captured. Returns (the batch, with ``texts`` and ``offsets``; activations).
Probe = Callable[[Sequence[str]], "tuple[InputBatch, Activations]"]


@dataclass
class SearchOutcome:
    """What a counterexample search found, for ``conclude`` and the report.

    ``found``: some input violates the claim (generated, or a token of the corpus stream);
    ``tried``: generated inputs run through the model (generation and shrinking); the minimal
    counterexample (None when not found): its ``text``, ``tokens`` (as text), ``activations`` (the
    value judged, per token), ``position`` (the violating token's index in ``tokens``) and
    ``share`` (the share of the tokens it selects that violate); ``corpus_violations``: violating
    tokens in the corpus stream; ``notes``: how it searched.
    """

    found: bool
    tried: int
    text: str | None = None
    tokens: list[str] | None = None
    activations: list[float] | None = None
    position: int | None = None
    share: float | None = None
    corpus_violations: int = 0
    notes: list[str] = field(default_factory=list)


class SearchesCounterexamples(AggregatesCorpus, Protocol):
    """A corpus check whose universal claims ("fires above t on every match of R") are refuted by a
    counterexample, which it searches for with the model after the stream. ``search`` is optional.

    The engine calls ``search`` once per (claim, corpus pass), after streaming the pass through the
    subject and its twins and before ``conclude``, with the subject's aggregate of that pass and a
    ``probe`` (see :data:`Probe`) bound to the subject model and the claim's hooks. The check keeps
    the outcome in that aggregate, its own object, where ``conclude`` finds it; the engine only
    times the search and turns an exception into the claim's error. A check that needs no search
    for a claim (a statistical form) returns None at once.
    """

    def search(self, prepared: Prepared, corpus: CorpusPass, model_aggregate: CorpusAggregate, probe: Probe) -> SearchOutcome | None:
        """Search for a counterexample to ``prepared``'s claim; record it in ``model_aggregate``."""


class SummarisesSeries(Check, Protocol):
    """A check whose claims are about a model's curve through training (``Prepared.sampling ==
    "series"``): a grokking delay, a phase change, a double-descent bump, a kink.

    The engine loads the claim's ``series:`` model one checkpoint at a time, takes every reading of
    ``prepared.readings`` at each (the reading checks' own ``measure``, on inputs generated once),
    and calls ``conclude`` once per run with the curves. ``conclude`` returns each statistic as a
    ``stats.pooled.PooledStatistic`` built with ``stats.series.curve_statistic`` (evaluation
    samples the unit of resampling), plus the curve as figures; the engine judges each with
    ``stats.evaluate_pooled``, per run (``stat[run]`` when the series has several runs). It never
    calls ``measure``."""

    def conclude(self, prepared: Prepared, curves: SeriesCurves) -> CorpusMeasurement:
        """The statistics of one run's curves (keys among ``prepared.statistics``), figures, notes."""


class MeasuresNullDraws(Check, Protocol):
    """A weight statistic (``Prepared.sampling == "weights"``) whose null is cheaper over all draws at
    once. ``measure_null_draws`` is optional: without it the engine calls ``measure_null`` once per
    draw on that draw's weights.

    The engine calls it once per claim with ``weights``: each name of ``null_needs.weights`` stacked
    [draws, ...] (draw d is the random-weights model of seed ``null_seed + d``; the same tensors for
    every claim on the model, so results computed from them may be cached by tensor identity). It
    returns [draws, values per draw]: row d is what ``measure_null`` would return on draw d.
    """

    def measure_null_draws(self, prepared: Prepared, weights: Activations) -> np.ndarray:
        """The null statistic of every draw, [draws, values per draw]."""


_REGISTRY: dict[str, Check] = {}


def register(check: Check) -> Check:
    """Make ``check`` available to claim files under ``check.name``."""
    def origin(obj: Check) -> tuple[str, str]:  # a re-imported module defines an equal, not identical, class
        return type(obj).__module__, type(obj).__qualname__

    if check.name in _REGISTRY and origin(_REGISTRY[check.name]) != origin(check):
        raise ValueError(f"check {check.name!r} is registered twice")
    _REGISTRY[check.name] = check
    return check


def _load_builtin_checks() -> None:
    from interp_checks.checks import ablation, compare, composition, composition_activations, faithfulness, features, heads, neurons, patching  # noqa: F401  (registers their checks)
    from interp_checks.checks import solu_structure, universal  # noqa: F401  (registers ln_smuggling, neuron_family, feature_splitting; neuron_universal)
    from interp_checks.checks import dynamics, loss, modular  # noqa: F401  (registers loss; grokking, phase_change, double_descent, logit_pca, coincide; modular_progress)
    from interp_checks.checks import superposition  # noqa: F401  (registers superposition, a toy model's reading)


def get_check(name: str) -> Check:
    """The registered check called ``name``, or a CheckError listing the names that exist."""
    _load_builtin_checks()
    if name not in _REGISTRY:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise CheckError(f"unknown check {name!r}.{hint} Known checks: {', '.join(known)}")
    return _REGISTRY[name]


def available_checks() -> dict[str, Check]:
    _load_builtin_checks()
    return dict(_REGISTRY)
