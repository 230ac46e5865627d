"""Plans claims into shared forward passes, measures, and turns measurements into verdicts.

    ClaimSpec --prepare--> PreparedClaim --group by (inputs, seed)--> per group, one chunked
    forward pass per distinct model (a claim's subject and any other role, e.g. a baseline) and one
    per random-weights twin, caching only the union of the hooks the group's claims need from that
    model and stopping as soon as the last of them has fired (no unembedding unless a claim needs
    logits) --> per-sequence measurements --> stats.evaluate (per expectation) --> claim-level
    p-values (stats.claim_p_values) adjusted over the family --> stats.decide_claim --> ClaimResult

Pictures: each claim gets the check's ``figures`` of the first chunk (guarded: a failing picture is
a note, never an error) and, once decided, the engine's strip of the deciding expectation's
per-sample values against the null (``figure_data.verdict_strip``).

The family is fixed before anything runs (``Family``): its size is the number of claims the
session collected, whatever ``-k`` or ``--lf`` selects, and claims judged in later calls (Python
claims) join the same ledger, so no re-run or selection judges a claim more leniently.

The engine knows no claim family: it talks to checks through ``checks.base.Check`` and to
statistics through ``interp_checks.stats``. Every failure is caught per claim (or per group,
when a shared forward pass fails) and becomes an ``error`` result naming the file and claim.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from interp_checks.checks.base import (
    MODEL,
    NULL,
    WEIGHT_NULL,
    Check,
    CheckError,
    CorpusMeasurement,
    CorpusPass,
    ModelShape,
    Needs,
    Prepared,
    get_check,
)
from interp_checks.claims.expect import negate
from interp_checks.claims.schema import ClaimFileError, ClaimSpec, Problem, Tier, problems_error
from interp_checks.inputs.streams import corpus_passes, corpus_rows
from interp_checks.runner import capture, read_weights
from interp_checks.inputs.generators import (
    DEFAULT_MAX_INPUT_TOKENS,
    InputBatch,
    InputSpecError,
    Vocabulary,
    check_input_size,
    describe_inputs,
    generate,
    input_key,
    input_size,
    normalise_input_spec,
)
from interp_checks.family import Family
from interp_checks.figure_data import validated, verdict_strip
from interp_checks.figures import Figure
from interp_checks.progress import GroupProgress, GroupStarted, ProgressCallback, ProgressEvent
from interp_checks.results import ERROR, ClaimResult, ExpectationResult
from interp_checks.stats import (
    Evaluation,
    Outcome,
    claim_p_values,
    cluster_means,
    decide_claim,
    evaluate,
    evaluate_against_draws,
    display_unit,
    display_values,
    evaluate_largest_mean,
    evaluate_with,
)

__all__ = ["ERROR", "ClaimResult", "Engine", "ExpectationResult", "Family", "Settings", "Share", "passes", "plan_shares"]


# A bootstrap p-value cannot go below 1 / (resamples + 1), and a claim of k expectations in a family
# of m claims needs p < alpha / (k m) to survive Holm: at 9,999 resamples a 4-pair composition claim
# in the bundled family of 106 claims came out inconclusive at z 8 against a threshold of 3 (raw p
# 0.0002). A weight statistic's bootstrap resamples null draws, not sequences ([resamples, draws]
# sums, about 0.3 s for 10^5 x 200), so it always gets at least this many.
WEIGHT_STATISTIC_RESAMPLES = 99_999


@dataclass
class Settings:
    """Run-wide settings; the pytest plugin fills them from ``--interp-*`` options."""

    device: str = "cpu"
    alpha: float = 0.05
    adjust: str = "holm"
    n_resamples: int = 9999
    batch_size: int = 64
    null_seed: int = 0
    null_draws: int = 5
    bindings: Mapping[str, str] = field(default_factory=dict)
    max_input_tokens: int | None = DEFAULT_MAX_INPUT_TOKENS  # per claim, checked before allocating; None: no limit


@dataclass
class PreparedClaim:
    spec: ClaimSpec
    check: Check
    prepared: Prepared
    models: dict[str, Any]  # role -> LoadedModel
    inputs: dict[str, Any]
    input_key: str
    load_s: float = 0.0
    measure_s: float = 0.0
    measurements: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    null_measurements: dict[int, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    sources: list[str] | None = None  # the document each input row was cut from (None: rows are independent)
    error: str | None = None  # set when this claim's own measurement failed; its group carries on
    default_inputs: bool = False  # the claim gave no inputs: these are its check's defaults
    figures: list[Figure] = field(default_factory=list)  # the check's pictures of the first chunk
    figure_notes: list[str] = field(default_factory=list)  # pictures that could not be drawn, and why
    # per expectation: the per-sample values it was judged on and the null's ([n, draws], None: zero)
    samples: list[tuple[np.ndarray, np.ndarray | None]] = field(default_factory=list)
    # corpus claims: per corpus pass (in ``prepared.corpora`` order), what the check concluded;
    # series claims: per run of the series (``series_labels``), the same
    corpus_measurements: list[CorpusMeasurement] = field(default_factory=list)
    series_plans: list[Any] = field(default_factory=list)  # series claims: their readings, prepared (series_runs.ReadingPlan)
    series_labels: list[str] = field(default_factory=list)

    @property
    def model_key(self) -> str:
        return str(self.models[MODEL].spec)

    def describe_models(self) -> str:
        """'zoo:a' or 'zoo:a vs baseline zoo:b' for reports."""
        extra = [f"{role} {loaded.spec}" for role, loaded in self.models.items() if role != MODEL]
        return " vs ".join([self.model_key, *extra])


def _shape_of(model: Any) -> ModelShape:
    """What a check may know of a loaded model before running it."""
    cfg = model.bridge.cfg
    with_mlp = not getattr(cfg, "attn_only", False) and getattr(cfg, "d_mlp", None)
    return ModelShape(
        model.n_layers, model.n_heads, model.d_vocab, model.n_ctx, cfg.normalization_type,
        d_mlp=int(cfg.d_mlp) if with_mlp else None, act_fn=getattr(cfg, "act_fn", None) if with_mlp else None,
    )


def _resolve_input_paths(inputs: Mapping[str, Any], base_dir: Any) -> dict[str, Any]:
    """A corpus ``source`` path resolves against the claim file's folder, like model paths (each of a
    corpus stream's comma-separated sources on its own)."""
    resolved = dict(inputs)
    if isinstance(resolved.get("source"), str):
        from interp_checks.inputs.corpora import resolve_source
        from interp_checks.inputs.streams import STREAM_KIND

        parts = resolved["source"].split(",") if resolved.get("kind") == STREAM_KIND else [resolved["source"]]
        resolved["source"] = ",".join(str(resolve_source(part.strip(), base_dir=base_dir)) for part in parts if part.strip())
    return resolved


@dataclass(frozen=True)
class Share:
    """Claims to measure in one process so that their forward passes stay shared (indices into the
    list of specs, in order), and an estimate of what measuring them costs: input tokens x forward
    passes, where a random-weights null counts ``null_draws`` passes. The estimate only balances
    work between processes (pytest-xdist workers); no number depends on it."""

    indices: tuple[int, ...]
    cost: float


def plan_shares(specs: Sequence[ClaimSpec], settings: Settings) -> list[Share]:
    """Split claims into shares that :meth:`Engine.measure` can measure apart with the same numbers.

    The engine shares one forward pass per model per input group (same inputs and seed), and a
    claim with several models (a baseline) ties those models' passes together. So two claims share
    when they have the same inputs and seed and a model in common, directly or through other claims;
    claims on the same inputs but other models share no pass and may go apart (the bundled suite's
    head claims, one input spec on four models, make four shares). A claim whose check, inputs or
    models do not resolve is a share of its own at cost 0: measuring it only reports its error.
    Nothing is loaded, and the result depends only on the specs and settings, so every pytest-xdist
    worker computes the same shares. Shares are ordered by their first claim."""
    from interp_checks.models.spec import parse_model_spec

    parent: dict[Any, Any] = {}

    def root(node: Any) -> Any:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    node_cost: dict[Any, float] = {}
    first_node: dict[int, Any] = {}
    for index, spec in enumerate(specs):
        try:
            if spec.error is not None:
                raise ValueError(spec.error)
            check = get_check(spec.check)
            inputs = normalise_input_spec(_resolve_input_paths(spec.inputs, spec.base_dir))
            key = input_key(inputs, spec.seed)
            texts = [spec.model] + [str(spec.params[role]) for role in check.model_roles]
            models = [str(parse_model_spec(t, base_dir=spec.base_dir, bindings=settings.bindings)) for t in texts]
        except Exception:  # measuring will report why; alone it costs nothing
            first_node[index] = ("claim", index)
            node_cost[("claim", index)] = 0.0
            continue
        tokens = float(input_size(inputs) or 1)
        nodes = [(key, model) for model in models]
        for node in nodes:
            node_cost[node] = max(node_cost.get(node, 0.0), tokens)
            parent[root(node)] = root(nodes[0])
        subject = nodes[0]
        twins = tokens * (1 + max(1, settings.null_draws))
        node_cost[subject] = max(node_cost[subject], twins)
        first_node[index] = subject
    members: dict[Any, list[int]] = defaultdict(list)
    for index in range(len(specs)):
        members[root(first_node[index])].append(index)
    cost: dict[Any, float] = defaultdict(float)
    for node, value in node_cost.items():
        cost[root(node)] += value
    return sorted((Share(tuple(indices), cost[group]) for group, indices in members.items()), key=lambda s: s.indices[0])


def _merge(needs: list[Needs]) -> Needs:
    """One model's needs for a group of claims: equal interventions asked for twice run once."""
    return Needs(
        frozenset().union(*(n.hooks for n in needs)),
        any(n.logits for n in needs),
        frozenset().union(*(n.weights for n in needs)),
        tuple(dict.fromkeys(i for n in needs for i in n.interventions)),
    )


def _reference_means(bridge: Any, batch: InputBatch, needs: Needs, chunk: int, device: str) -> dict[str, Any]:
    """Per position, the mean over the claim's inputs of every activation a ``mean`` ablation
    replaces (one clean pass over all the inputs, before any ablation: the reference set is the
    claim's inputs, not the chunk being changed). Padding positions are left out of the mean."""
    import torch

    hooks = frozenset(site.hook for i in needs.interventions if i.method == "mean" for site in i.sites)
    if not hooks:
        return {}
    sums: dict[str, Any] = {}
    counts = None
    for begin in range(0, batch.n, chunk):
        rows = batch.rows(begin, begin + chunk)
        valid = torch.as_tensor(rows.valid, device=device)
        acts = capture(bridge, torch.as_tensor(rows.tokens, device=device), Needs(hooks))
        for hook, value in acts.items():
            weight = valid.reshape(valid.shape + (1,) * (value.ndim - 2)).to(value.dtype)
            sums[hook] = sums.get(hook, 0) + (value * weight).sum(0)
        counts = (0 if counts is None else counts) + valid.sum(0)
    assert counts is not None
    return {hook: total / counts.clamp(min=1).reshape(counts.shape + (1,) * (total.ndim - 1)) for hook, total in sums.items()}


def _readings(bridge: Any, chunk: InputBatch, needs: Needs, weights: Mapping[str, Any], means: Mapping[str, Any], device: str) -> dict[str, Any]:
    """Everything one model gives its claims on one chunk: the clean run's hooks (and logits), the
    weights read once for the whole run, and each intervention's metric (``runner.run_interventions``).
    With interventions, their clean run is the one that gives the hooks: the chunk runs clean once."""
    import torch

    from interp_checks.runner import run_interventions

    tokens = torch.as_tensor(chunk.tokens, device=device)
    out: dict[str, Any] = dict(weights)
    if needs.interventions:
        corrupted = None if chunk.corrupted is None else torch.as_tensor(chunk.corrupted, device=device)
        out.update(run_interventions(
            bridge, tokens, needs.interventions, corrupted=corrupted, means=dict(means), hooks=needs.hooks, logits=needs.logits
        ))
    elif needs.hooks or needs.logits:
        out.update(capture(bridge, tokens, Needs(needs.hooks, needs.logits)))
    return out


class Engine:
    """Evaluates lists of claims. One engine per session keeps models loaded across calls."""

    def __init__(self, settings: Settings, models: Any | None = None, progress: ProgressCallback | None = None):
        """``progress``: called with plain-data events (``interp_checks.progress``) while claims are
        measured; the engine itself never writes to a terminal."""
        from interp_checks.models.cache import ModelCache

        self.settings = settings
        self.models = models if models is not None else ModelCache()
        self.progress = progress
        self._open_group: GroupProgress | None = None  # the group being run, for its progress events

    # -- preparing ---------------------------------------------------------------------------------

    def prepare(self, spec: ClaimSpec) -> PreparedClaim:
        """Resolve the model, validate the claim against the check and model. Raises ClaimFileError
        naming every problem found, the most basic first (``claims.schema.Tier``): the schema's, an
        unknown check, the check's keys (including what only the loaded model can tell, such as a
        head outside it), then the inputs. Later checks run where the earlier ones leave enough to
        check (no keys without a known check, no heads without a loaded model)."""
        problems: list[Problem] = list(spec.problems)
        check = self._check_of(spec, problems)
        if getattr(check, "reads_series", False):  # inputs belong to its readings (checks.base.SeriesReading)
            inputs, defaulted = {}, False
        else:
            inputs, defaulted = self._inputs_of(spec, check, problems)
        models, load_s = self._models_of(spec, check, problems) if check is not None else ({}, 0.0)
        prepared = None
        if check is not None and models and spec.expect:  # with no expectation parsed there is nothing to prepare
            shapes = {role: _shape_of(m) for role, m in models.items()}
            params = {key: value for key, value in spec.params.items() if key not in check.model_roles}
            try:
                prepared = check.prepare(params, shapes, spec.expect)
            except CheckError as error:
                problems.append(Problem(Tier.KEYS, str(error)))
            except Exception:
                if not problems:
                    raise  # a bug in the check: evaluate() reports it as an internal error
                # a check may trip over keys already reported as problems; those are what to fix first
        if prepared is not None and prepared.sampling == "corpus" and inputs is not None:
            try:
                prepared.corpora = corpus_passes(inputs, models[MODEL].n_ctx)
            except InputSpecError as error:
                problems.append(Problem(Tier.INPUTS, str(error)))
            for role in prepared.needs:
                if role != MODEL and not _same_vocabulary(models[MODEL], models[role]):
                    problems.append(Problem(Tier.KEYS, (
                        f"{role}: a corpus claim runs every model on the same token rows, but {models[role].spec} does not "
                        f"share {models[MODEL].spec}'s tokenizer (vocabulary and BOS)"
                    )))
        plans = self._series_plans(spec, prepared, models, problems) if prepared is not None and prepared.sampling == "series" else []
        if problems:
            raise problems_error(spec.path, spec.id, problems)
        assert check is not None and prepared is not None and inputs is not None  # no problem means all were made
        if defaulted:
            prepared.notes.append(f"default inputs of check {check.name}: {describe_inputs(inputs)} (the claim gives no inputs:)")
        claim = PreparedClaim(
            spec, check, prepared, models, inputs, input_key(inputs, spec.seed), load_s=load_s, default_inputs=defaulted
        )
        claim.series_plans = plans
        return claim

    @staticmethod
    def _series_plans(spec: ClaimSpec, prepared: Prepared, models: Mapping[str, Any], problems: list[Problem]) -> list[Any]:
        """A series claim's readings prepared against its series (``series_runs.plan_readings``)."""
        from interp_checks.series_runs import plan_readings

        subject = models[MODEL]
        if subject.spec.kind != "series":
            problems.append(Problem(Tier.KEYS, (
                f"check {spec.check} reads a checkpoint series: write model: series:PATH (a folder of step-NNNN checkpoints, "
                f"or a glob of such folders), not {subject.spec.describe()}"
            )))
            return []
        try:
            return plan_readings(prepared, _shape_of(subject), spec.base_dir, spec.seed)
        except CheckError as error:
            problems.append(Problem(Tier.KEYS, str(error)))
            return []

    @staticmethod
    def _check_of(spec: ClaimSpec, problems: list[Problem]) -> Check | None:
        """The claim's check, and the keys and statistics it does not know (as problems)."""
        if not spec.check:  # the schema reported it
            return None
        try:
            check = get_check(spec.check)
        except CheckError as error:
            problems.append(Problem(Tier.CHECK, str(error)))
            return None
        unknown_params = sorted(set(spec.params) - set(check.params) - set(check.model_roles))
        if unknown_params:
            from interp_checks.claims.schema import CLAIM_KEYS

            problems.append(Problem(Tier.KEYS, (
                f"unknown key {unknown_params[0]!r} for check {check.name}; it takes "
                f"{', '.join(check.model_roles + check.params)} besides {', '.join(CLAIM_KEYS)}"
            )))
        unknown_stats = sorted(set(spec.expect) - set(check.statistics))
        if unknown_stats:
            problems.append(Problem(Tier.KEYS, (
                f"check {check.name} does not produce statistic {unknown_stats[0]!r}; "
                f"it produces {', '.join(check.statistics)}"
            )))
        for role in check.model_roles:
            if spec.params.get(role) is None:
                problems.append(Problem(Tier.KEYS, f"check {check.name} needs '{role}:', a model spec such as zoo:attn-only-1l"))
        return check

    def _inputs_of(self, spec: ClaimSpec, check: Check | None, problems: list[Problem]) -> tuple[dict[str, Any] | None, bool]:
        """(normalised inputs, whether they are the check's defaults); None with a problem if unusable."""
        defaulted = not spec.inputs
        if defaulted:
            if check is None:  # which defaults depends on the check, which has a problem of its own
                return None, True
            given = getattr(check, "default_inputs", None)
            if not given:
                problems.append(Problem(Tier.INPUTS, (
                    f"check {check.name} has no default inputs: give 'inputs:', e.g. "
                    "{kind: repeated_random_tokens, seq_len: 32, n: 64} (interp-checks checks lists the kinds)"
                )))
                return None, True
        else:
            given = spec.inputs
        try:
            inputs = normalise_input_spec(_resolve_input_paths(given, spec.base_dir))
            check_input_size(inputs, self.settings.max_input_tokens)
        except (InputSpecError, ValueError) as error:
            where = f"the default inputs of check {check.name if check else spec.check} ({describe_inputs(given)}): " if defaulted else ""
            problems.append(Problem(Tier.INPUTS, where + str(error)))
            return None, defaulted
        return inputs, defaulted

    def _models_of(self, spec: ClaimSpec, check: Check, problems: list[Problem]) -> tuple[dict[str, Any], float]:
        """The claim's models by role, loaded (from the session cache); {} if any cannot be."""
        from interp_checks.models.spec import ModelSpecError, parse_model_spec

        texts = {MODEL: spec.model} if spec.model else {}
        texts.update({role: str(spec.params[role]) for role in check.model_roles if spec.params.get(role) is not None})
        models: dict[str, Any] = {}
        load_s = 0.0
        for role, text in texts.items():
            prefix = "" if role == MODEL else f"{role}: "
            try:
                model_spec = parse_model_spec(text, base_dir=spec.base_dir, bindings=self.settings.bindings)
                started = time.perf_counter()
                models[role] = self.models.get(model_spec, self.settings.device)
                load_s += time.perf_counter() - started  # ~0 when an earlier claim loaded it
            except ModelSpecError as error:
                problems.append(Problem(Tier.KEYS, prefix + str(error)))
            except Exception as error:  # a loader failure must not take the other claims down
                problems.append(Problem(Tier.KEYS, f"{prefix}loading {text} failed: {type(error).__name__}: {error}"))
        complete = MODEL in models and len(models) == 1 + len(check.model_roles)
        return (models if complete else {}), load_s

    # -- measuring ---------------------------------------------------------------------------------

    def _batch_for(self, model: Any, claim: PreparedClaim) -> InputBatch:
        vocab = Vocabulary(model.d_vocab, model.n_ctx, model.bos_token_id, frozenset(model.special_token_ids), model.tokenizer)
        return generate(claim.inputs, vocab, claim.spec.seed, max_tokens=self.settings.max_input_tokens)

    def _run_group(self, claims: list[PreparedClaim], position: tuple[int, int] = (1, 1)) -> None:
        """All claims on one input spec: one chunked forward pass per distinct model (the union of
        the hooks its claims need) and one per random-weights twin, every claim measuring each chunk.
        ``position`` (this group, groups) is for the progress events."""
        group_start = time.perf_counter()
        for claim in claims:
            if claim.prepared.sampling == "weights":
                self._measure_weights(claim)
        streamed = [claim for claim in claims if claim.prepared.sampling == "corpus"]
        if streamed:
            self._run_corpus_claims(streamed)
        series = [claim for claim in claims if claim.prepared.sampling == "series"]
        if series:
            from interp_checks.series_runs import run_series_claims

            run_series_claims(self, series)
        claims = [claim for claim in claims if claim.prepared.sampling == "sequence"]
        if not claims:
            return
        models: dict[str, Any] = {}
        needs: dict[str, list[Needs]] = defaultdict(list)
        twins: dict[str, list[Any]] = {}
        null_needs: dict[str, list[Needs]] = defaultdict(list)
        for claim in claims:
            for role, loaded in claim.models.items():
                models[str(loaded.spec)] = loaded
                needs[str(loaded.spec)].append(claim.prepared.needs.get(role, Needs(frozenset())))
            if claim.prepared.null_needs is not None:
                if claim.model_key not in twins:
                    started = time.perf_counter()
                    twins[claim.model_key] = self._random_twins(claim.models[MODEL].spec)
                    claim.load_s += time.perf_counter() - started
                null_needs[claim.model_key].append(claim.prepared.null_needs)
        start = time.perf_counter()
        batches = {key: self._batch_for(loaded, claims[0]) for key, loaded in models.items()}
        for claim in claims:
            claim.sources = batches[claim.model_key].sources
        sizes = {batch.n for batch in batches.values()}
        if len(sizes) != 1:
            raise ValueError(f"the models of these claims got different numbers of input sequences: {sizes}")
        merged = {key: _merge(n) for key, n in needs.items()}
        merged_null = {key: _merge(n) for key, n in null_needs.items()}
        size = self.settings.batch_size
        device = self.settings.device
        n = sizes.pop()
        progress = self._group_started(claims, position, list(models), sum(len(d) for d in twins.values()), n, group_start)
        weights = {key: read_weights(models[key].bridge, merged[key].weights) for key in models}
        means = {key: _reference_means(models[key].bridge, batches[key], merged[key], size, device) for key in models}
        twin_weights = {key: [read_weights(t.bridge, merged_null[key].weights) for t in draws] for key, draws in twins.items()}
        twin_means = {
            key: [_reference_means(t.bridge, batches[key], merged_null[key], size, device) for t in draws] for key, draws in twins.items()
        }
        for begin in range(0, n, size):
            chunks = {key: batch.rows(begin, begin + size) for key, batch in batches.items()}
            activations = {key: _readings(models[key].bridge, chunks[key], merged[key], weights[key], means[key], device) for key in models}
            progress.advance(min(size, n - begin) * len(models), ", ".join(models))
            for claim in claims:
                if claim.error is not None:
                    continue
                by_role = {role: str(loaded.spec) for role, loaded in claim.models.items()}
                values = _guarded(
                    claim,
                    "measuring",
                    lambda: claim.check.measure(
                        claim.prepared,
                        {role: activations[key] for role, key in by_role.items()},
                        {role: chunks[key] for role, key in by_role.items()},
                    ),
                )
                if values is None:
                    continue
                for stat, array in values.items():
                    claim.measurements[stat].append(np.asarray(array, dtype=float))
                if begin == 0:
                    _draw_check_figures(
                        claim,
                        {role: activations[key] for role, key in by_role.items()},
                        {role: chunks[key] for role, key in by_role.items()},
                    )
            del activations
            for key, draws in twins.items():
                for draw, twin in enumerate(draws):
                    null_activations = _readings(twin.bridge, chunks[key], merged_null[key], twin_weights[key][draw], twin_means[key][draw], device)
                    for claim in claims:
                        if claim.error is None and claim.prepared.null_needs is not None and claim.model_key == key:
                            null = _guarded(
                                claim,
                                "measuring the null",
                                lambda: claim.check.measure_null(claim.prepared, null_activations, chunks[key]),
                            )
                            if null is not None:
                                claim.null_measurements[draw].append(np.asarray(null, dtype=float))
                    del null_activations
                    progress.advance(min(size, n - begin), f"{key} random twin {draw + 1}")
        progress.finish(completed=True)
        shared = (time.perf_counter() - start) / len(claims)
        for claim in claims:
            claim.measure_s += shared

    def _measure_weights(self, claim: PreparedClaim) -> None:
        """A statistic of the weights alone (``Prepared.sampling == "weights"``): measured once on
        the model, and once on each of ``weight_null_draws`` random-weights twins (seeds null_seed,
        null_seed + 1, ...) for its null. No input runs through any model."""
        start = time.perf_counter()
        loaded = claim.models[MODEL]
        names = claim.prepared.needs[MODEL].weights
        weights = self.models.weights(loaded.spec, self.settings.device, names)
        values = _guarded(claim, "measuring", lambda: claim.check.measure(claim.prepared, {MODEL: weights}, {}))
        if values is None:
            return
        for stat, value in values.items():
            claim.measurements[stat].append(np.atleast_1d(np.asarray(value, dtype=float)))
        null_names = claim.prepared.null_needs.weights if claim.prepared.null_needs is not None else frozenset()
        seeds = range(self.settings.null_seed, self.settings.null_seed + claim.prepared.weight_null_draws)
        drawn_weights = self.models.random_weights_draws(loaded.spec, self.settings.device, seeds, null_names)
        by_draw = _guarded(claim, "measuring the null", lambda: _null_of_draws(claim, drawn_weights, len(seeds)))
        if by_draw is None:
            return
        for draw, null in enumerate(by_draw):
            claim.null_measurements[draw].append(np.atleast_1d(np.asarray(null, dtype=float)))
        # Pictures after the null, which they may show: the weights plus the null's values by draw.
        drawn = np.stack([np.concatenate(claim.null_measurements[d]) for d in sorted(claim.null_measurements)])
        _draw_check_figures(claim, {MODEL: {**weights, WEIGHT_NULL: drawn}}, {})
        claim.measure_s += time.perf_counter() - start

    def _run_corpus_claims(self, claims: list[PreparedClaim]) -> None:
        """Claims that stream corpora (``Prepared.sampling == "corpus"``): each (model, corpus pass)
        is streamed once for all its claims, with the union of their hooks, and each claim's
        aggregate folds in every batch; then each random-weights twin streams the pass's first
        ``null_tokens`` tokens for the claims' nulls. Memory: one batch of activations plus the
        claims' bounded aggregates (``checks.base.AggregatesCorpus``).

        A claim whose ``needs`` name other roles (a larger model) gets every role's model run on the
        same rows of its subject's stream; its null streams replace the model of its ``null_role``
        by that model's twins and keep the other roles' real models."""
        start = time.perf_counter()
        streams: dict[tuple[str, Any], list[PreparedClaim]] = defaultdict(list)
        for claim in claims:
            for corpus in claim.prepared.corpora:
                streams[(claim.model_key, corpus.key)].append(claim)
        concluded: dict[int, dict[Any, CorpusMeasurement]] = defaultdict(dict)
        for (model_key, corpus_key), members in streams.items():
            loaded = members[0].models[MODEL]
            passes = {id(claim): next(c for c in claim.prepared.corpora if c.key == corpus_key) for claim in members}
            corpus = passes[id(members[0])]
            base_dir = members[0].spec.base_dir
            runs, reads = _corpus_runs({id(claim): _real_readers(claim) for claim in members})
            aggregates = {id(claim): _guarded(claim, "starting its aggregate", lambda: claim.check.aggregate(claim.prepared, passes[id(claim)], MODEL)) for claim in members}
            self._stream(loaded, corpus, corpus.max_tokens, runs, reads, members, aggregates, base_dir)
            nulls: dict[int, list[Any]] = defaultdict(list)
            by_null_model: dict[str, list[PreparedClaim]] = defaultdict(list)
            for claim in members:
                if claim.prepared.null_needs is not None and claim.error is None:
                    by_null_model[str(claim.models[claim.prepared.null_role].spec)].append(claim)
            for with_null in by_null_model.values():
                null_tokens = max(passes[id(claim)].null_tokens for claim in with_null)
                replaced = with_null[0].models[with_null[0].prepared.null_role]
                for twin in self._random_twins(replaced.spec):
                    runs, reads = _corpus_runs({id(claim): _null_readers(claim, twin) for claim in with_null})
                    twin_aggregates = {
                        id(claim): _guarded(claim, "starting its null aggregate", lambda: claim.check.aggregate(claim.prepared, passes[id(claim)], NULL))
                        for claim in with_null
                    }
                    self._stream(loaded, corpus, null_tokens, runs, reads, with_null, twin_aggregates, base_dir)
                    for claim in with_null:
                        nulls[id(claim)].append(twin_aggregates[id(claim)])
            self._search(members, passes, aggregates, loaded)
            for claim in members:
                if claim.error is None:
                    measurement = _guarded(
                        claim, "concluding",
                        lambda: claim.check.conclude(claim.prepared, passes[id(claim)], aggregates[id(claim)], nulls[id(claim)]),
                    )
                    if measurement is not None:
                        concluded[id(claim)][corpus_key] = measurement
        shared = (time.perf_counter() - start) / len(claims)
        for claim in claims:
            claim.measure_s += shared
            if claim.error is None:
                claim.corpus_measurements = [concluded[id(claim)][corpus.key] for corpus in claim.prepared.corpora]
                for measurement in claim.corpus_measurements:
                    kept, notes = validated(measurement.figures, f"check {claim.check.name}")
                    claim.figures.extend(kept)
                    claim.figure_notes.extend(notes)

    def _search(self, claims: list[PreparedClaim], passes: dict[int, CorpusPass], aggregates: dict[int, Any], loaded: Any) -> None:
        """After a pass is streamed: each claim whose check searches for counterexamples
        (``checks.base.SearchesCounterexamples``) gets a probe bound to the subject and its hooks;
        the check keeps the outcome in its aggregate, for ``conclude``."""
        for claim in claims:
            search = getattr(claim.check, "search", None)
            if search is None or claim.error is not None or aggregates.get(id(claim)) is None:
                continue
            probe = self._probe(loaded, claim.prepared.needs.get(MODEL, Needs(frozenset())))
            _guarded(claim, "searching for a counterexample", lambda: search(claim.prepared, passes[id(claim)], aggregates[id(claim)], probe))

    def _probe(self, loaded: Any, needs: Needs) -> Any:
        """``probe(texts) -> (batch, activations)`` on ``loaded`` (``checks.base.Probe``): texts
        tokenized as text inputs are (BOS first, offsets kept), ``needs``' hooks captured."""
        import torch

        from interp_checks.inputs.generators import TextSamples, tokenize_texts

        vocab = Vocabulary(loaded.d_vocab, loaded.n_ctx, loaded.bos_token_id, frozenset(loaded.special_token_ids), loaded.tokenizer)

        def probe(texts: Sequence[str]) -> tuple[InputBatch, dict[str, Any]]:
            batch = tokenize_texts(TextSamples(list(texts)), vocab, "probe", {}, 0)
            batch.tokenizer = vocab.tokenizer
            return batch, capture(loaded.bridge, torch.as_tensor(batch.tokens, device=self.settings.device), needs)

        return probe

    def _stream(
        self, rows_from: Any, corpus: CorpusPass, max_tokens: int, runs: Mapping[Any, tuple[Any, Needs]],
        reads: Mapping[int, Mapping[str, Any]], claims: list[PreparedClaim], aggregates: dict[int, Any], base_dir: Any,
    ) -> None:
        """Stream ``corpus`` (up to ``max_tokens``; rows cut by ``rows_from``'s tokenizer) through every
        model of ``runs`` (key -> model, needs), every batch to each claim's aggregate: the hooks of the
        run its subject reads, or role -> hooks when it reads several (``reads``: claim -> role -> key),
        with the weights the claims asked of that model (``Needs.weights``, read once)."""
        import torch

        weights = {key: read_weights(model.bridge, needs.weights) for key, (model, needs) in runs.items()}
        for rows, batch in corpus_rows(
            corpus.source, rows_from, seq_len=corpus.seq_len, batch_size=self.settings.batch_size,
            max_tokens=max_tokens, split=corpus.split, base_dir=base_dir, rows_per_document=corpus.rows_per_document,
        ):
            tokens = torch.as_tensor(rows.tokens, device=self.settings.device)
            activations = {key: {**weights[key], **capture(model.bridge, tokens, needs)} for key, (model, needs) in runs.items()}
            for claim in claims:
                if claim.error is None and aggregates.get(id(claim)) is not None:
                    given = _role_activations(activations, reads[id(claim)])
                    _guarded(claim, "aggregating a batch", lambda: aggregates[id(claim)].update(given, batch))
            del activations

    def _group_started(
        self, claims: list[PreparedClaim], position: tuple[int, int], models: list[str], twins: int, n: int, started: float
    ) -> GroupProgress:
        """Announce a group (its passes: ``n`` sequences through each model and twin) and return what
        reports its chunks; ``_run_claims`` finishes it as failed if the run raises."""
        inputs = f"{describe_inputs(claims[0].inputs)}, seed {claims[0].spec.seed}"
        total = n * (len(models) + twins)
        self._open_group = GroupProgress(self._notify, position, len(claims), total, started)
        self._notify(GroupStarted(position[0], position[1], tuple(models), twins, inputs, len(claims), n, total))
        return self._open_group

    def _notify(self, event: ProgressEvent) -> None:
        """Tell the progress callback; one that fails is dropped (with a warning), never the claims."""
        if self.progress is None:
            return
        try:
            self.progress(event)
        except Exception as error:
            warnings.warn(f"interp_checks: the progress callback failed ({type(error).__name__}: {error}); measuring goes on without it")
            self.progress = None

    def _random_twins(self, spec: Any) -> list[Any]:
        """``null_draws`` random-weights twins of a model (seeds null_seed, null_seed + 1, ...)."""
        first = self.settings.null_seed
        return [self.models.random_twin(spec, self.settings.device, first + d) for d in range(max(1, self.settings.null_draws))]

    # -- judging -----------------------------------------------------------------------------------

    def _evaluate_weight_claim(self, claim: PreparedClaim) -> ClaimResult:
        """A statistic of the weights: each expectation's observed value against the pooled draws of
        its null (``stats.evaluate_against_draws``); n is the number of null draws (random twins)."""
        spec = claim.spec
        # [draws, values]: a draw (one random twin) may give several pooled values, resampled together
        null = np.stack([np.concatenate(claim.null_measurements[d]) for d in sorted(claim.null_measurements)])
        null_kind = claim.check.null_description(claim.prepared)
        results = []
        for stat in claim.prepared.statistics:
            comparison = spec.expect[claim.prepared.expectation_source.get(stat, stat)]
            if stat in claim.prepared.negated:
                comparison = negate(comparison)
            observed = float(np.concatenate(claim.measurements[stat])[0])
            evaluation = evaluate_against_draws(
                observed, null, comparison, statistic=stat, alpha=self.settings.alpha, seed=spec.seed,
                n_resamples=max(self.settings.n_resamples, WEIGHT_STATISTIC_RESAMPLES), null_kind=null_kind,
                unit=claim.prepared.units.get(stat, "score"),
            )
            results.append(ExpectationResult(stat, str(comparison), evaluation, "z"))
        return ClaimResult(
            spec, Outcome.INCONCLUSIVE.value, results, model=claim.describe_models(), null=null_kind,
            inputs={}, n=int(null.shape[0]), load_s=claim.load_s, measure_s=claim.measure_s,
            notes=list(claim.prepared.notes) + claim.figure_notes, figures=list(claim.figures),
        )

    def _evaluate_pooled_claim(self, claim: PreparedClaim) -> ClaimResult:
        """Each statistic of each corpus (``stat[corpus]`` when the claim names several, so a claim
        that holds on one corpus and fails on another says so), pooled over tokens and resampled by
        document (``stats.evaluate_pooled``), or by the evaluator the check names for it
        (``Prepared.evaluators``, e.g. a counterexample search's); n is the fewest documents any corpus gave.

        Series claims are judged the same way per run of the series (``stat[run]`` when it has
        several, e.g. one per seed: each run must bear the claim out), evaluation samples resampled."""
        spec, prepared = claim.spec, claim.prepared
        from interp_checks.stats.universal import CORPUS_EVALUATORS

        series = prepared.sampling == "series"
        labels = claim.series_labels if series else [corpus.label for corpus in prepared.corpora]
        several = len(labels) > 1
        results, sizes, notes, nulls = [], [], list(prepared.notes), []
        for label, measurement in zip(labels, claim.corpus_measurements):
            notes.extend(f"{label}: {note}" if several else note for note in measurement.notes)
            for stat in prepared.statistics:
                comparison = prepared.restated.get(stat) or spec.expect[prepared.expectation_source.get(stat, stat)]
                if stat in prepared.negated:
                    comparison = negate(comparison)
                pooled = measurement.statistics[stat]
                name = f"{stat}[{label}]" if several else stat
                evaluation = CORPUS_EVALUATORS[prepared.evaluators.get(stat, "pooled")](
                    pooled, comparison, statistic=name, alpha=self.settings.alpha, seed=spec.seed, n_resamples=self.settings.n_resamples
                )
                sizes.append(int(pooled.n_documents))
                nulls.extend(name for name in pooled.nulls if name not in nulls)
                claim.samples.append((None, None))  # pooled over tokens: no per-sample strip
                results.append(ExpectationResult(name, str(comparison), evaluation, prepared.units.get(stat)))
        notes.append(
            "unit of sampling: the evaluation sample (each statistic is a function of the curve over checkpoints; intervals "
            "and p-values from resampling the samples the readings were taken on, the same samples at every checkpoint)"
            if series else
            "unit of sampling: the document (statistics pooled over each corpus's tokens; intervals and p-values "
            "from resampling documents)"
        )
        inputs = {plan.reading.name: plan.inputs or "the weights" for plan in claim.series_plans} if series else claim.inputs
        return ClaimResult(
            spec, Outcome.INCONCLUSIVE.value, results, model=claim.describe_models(),
            null=claim.check.null_description(prepared), inputs=inputs, n=min(sizes) if sizes else 0,
            load_s=claim.load_s, measure_s=claim.measure_s, notes=notes + claim.figure_notes, figures=list(claim.figures),
        )

    def _evaluate_claim(self, claim: PreparedClaim) -> ClaimResult:
        if claim.prepared.sampling == "weights":
            return self._evaluate_weight_claim(claim)
        if claim.prepared.sampling in ("corpus", "series"):
            return self._evaluate_pooled_claim(claim)
        start = time.perf_counter()
        spec = claim.spec
        results = []
        sizes = []
        null = self._null_matrix(claim)
        null_is_zero = null is None
        null_kind = claim.check.null_description(claim.prepared)
        notes = list(claim.prepared.notes)
        if claim.sources is not None:
            documents = len(set(claim.sources))
            notes.append(
                f"unit of sampling: the document ({len(claim.sources)} windows from {documents} documents; "
                "each document's windows are averaged first, since windows of one document are not independent)"
            )
            if null is not None:
                null = cluster_means(null, claim.sources)[0]
        for stat in claim.prepared.statistics:
            values = np.concatenate(claim.measurements[stat])
            if claim.sources is not None:
                values = cluster_means(values, claim.sources)[0]
            source = claim.prepared.expectation_source.get(stat, stat)
            comparison = spec.expect[source]
            if stat in claim.prepared.negated:
                comparison = negate(comparison)
            rows = values.reshape(values.shape[0], -1) if values.ndim >= 2 else values[:, None]
            if null is None:  # the check's null needs no model (e.g. zero gain): a null of zeros
                null = np.zeros((rows.shape[0], 1))
            defined = np.isfinite(rows).all(axis=1) & np.isfinite(null).all(axis=1)
            common = dict(
                statistic=stat,
                alpha=self.settings.alpha,
                seed=spec.seed,
                null_samples=null[defined],
                null_kind=null_kind,
                n_resamples=self.settings.n_resamples,
            )
            members = claim.prepared.members.get(stat)
            estimator = claim.prepared.estimators.get(stat)
            if estimator is not None:  # not a mean of per-sequence values (stats.ESTIMATORS)
                evaluation = evaluate_with(estimator, values[defined], comparison, members=members, **common)
            elif members is not None:
                evaluation = evaluate_largest_mean(rows[defined], comparison, members, **common)
            else:
                evaluation = evaluate(values[defined], comparison, **common)
            sizes.append(int(defined.sum()))
            if estimator is not None:  # the strip shows values whose mean is the estimate (stats.display_values)
                claim.samples.append((display_values(estimator, values[defined]), None))
            else:
                claim.samples.append((rows[defined] if members is not None else values[defined], None if null_is_zero else null[defined]))
            results.append(ExpectationResult(stat, str(comparison), evaluation, claim.prepared.units.get(stat)))
        claim.measure_s += time.perf_counter() - start
        return ClaimResult(
            spec,
            Outcome.INCONCLUSIVE.value,
            results,
            model=claim.describe_models(),
            null=null_kind,
            inputs=claim.inputs,
            n=min(sizes) if sizes else 0,
            load_s=claim.load_s,
            measure_s=claim.measure_s,
            notes=notes + claim.figure_notes,
            figures=list(claim.figures),
        )

    @staticmethod
    def _null_matrix(claim: PreparedClaim) -> np.ndarray | None:
        """[sequences, draws] null values (one column per random initialisation), or None."""
        if not claim.null_measurements:
            return None
        return np.stack([np.concatenate(claim.null_measurements[d]) for d in sorted(claim.null_measurements)], axis=1)

    def decide(self, results: list[ClaimResult], family: Family) -> list[ClaimResult]:
        """Adjust measured claims' p-values over ``family`` and set their verdicts, in place.

        ``results`` are :meth:`measure`'s, in the order the family should record them (a session's
        collected order): Holm and BH make each adjusted p depend on every other claim's raw p, so
        claims measured apart (pytest-xdist workers) must be decided together, in one call."""
        judged = [r for r in results if r.outcome != ERROR and r.expectations]
        evaluations = [[e.evaluation for e in r.expectations] for r in judged]
        raw = [claim_p_values(evs) for evs in evaluations]
        support, refute = family.adjust([p for p, _ in raw], [p for _, p in raw], self.settings.adjust)
        for result, evs, p_support, p_refute in zip(judged, evaluations, support, refute):
            decision = decide_claim(evs, p_adjusted=p_support, p_adjusted_refute=p_refute, alpha=self.settings.alpha)
            for expectation, outcome, a, b in zip(result.expectations, decision.outcomes, decision.p_adjusted, decision.p_adjusted_refute):
                expectation.outcome, expectation.p_adjusted, expectation.p_adjusted_refute = outcome.value, a, b
            result.outcome = decision.outcome.value
            result.deciding = decision.deciding
            result.p_value = decision.p_value
        for result in results:
            result.family, result.family_size = family.name, family.size
            result.adjust, result.alpha = self.settings.adjust, self.settings.alpha
            _show_deciding_strip(result)
        return results

    def evaluate(self, specs: Iterable[ClaimSpec], *, family: Family | str | None = None) -> list[ClaimResult]:
        """Evaluate claims together: shared forward passes, one multiplicity family
        (:meth:`measure`, then :meth:`decide`).

        ``family`` is the session's :class:`Family` (claims judged across calls share it); a name or
        None makes a new family of exactly these claims."""
        specs = list(specs)
        if not isinstance(family, Family):
            family = Family(name=family or "claims", size=len(specs))
        return self.decide(self.measure(specs), family)

    def measure(self, specs: Iterable[ClaimSpec]) -> list[ClaimResult]:
        """Measure claims together (shared forward passes), in the order given, without deciding.

        Each result carries its expectations' evaluations (estimates, intervals, raw p-values,
        effect sizes) but no adjusted p-value or verdict yet (outcome ``inconclusive``, or
        ``error``): that is :meth:`decide`'s, over the whole family.

        Never raises for one claim's sake: a claim that cannot be prepared, run or judged becomes an
        ``error`` result naming its file and id (an unexpected exception reads as an internal error
        to report), and the other claims carry on. When a shared pass fails, its claims are run one
        by one, so only the claims whose own run fails get the error."""
        specs = list(specs)
        results: dict[int, ClaimResult] = {}
        prepared: list[tuple[int, PreparedClaim]] = []
        for index, spec in enumerate(specs):
            if spec.error is not None and not spec.problems:  # a file-level error: nothing of the claim to check
                results[index] = ClaimResult(spec, ERROR, error=str(spec.error))
                continue
            try:
                prepared.append((index, self.prepare(spec)))
            except ClaimFileError as error:
                results[index] = ClaimResult(spec, ERROR, error=str(error))
            except Exception as error:  # a bug, not the claim's fault: report it on this claim only
                message = _internal_error(f"check {spec.check}", "preparing the claim", error)
                results[index] = ClaimResult(spec, ERROR, error=f"{spec.path}, claim {spec.id!r}: {message}")

        groups: dict[str, list[tuple[int, PreparedClaim]]] = defaultdict(list)
        for index, claim in prepared:
            groups[claim.input_key].append((index, claim))
        for position, members in enumerate(groups.values(), 1):
            where = (position, len(groups))
            failure = self._run_claims([claim for _, claim in members], where)
            if failure is not None and len(members) > 1:
                # Rerun one by one: a claim whose run fails alone must not take its group with it.
                outcomes = [(index, claim, self._run_claims([claim], where)) for index, claim in members]
            else:
                outcomes = [(index, claim, failure) for index, claim in members]
            for index, claim, error in outcomes:
                results[index] = self._result_of(claim, error)

        return [results[i] for i in range(len(specs))]

    def _run_claims(self, claims: list[PreparedClaim], position: tuple[int, int] = (1, 1)) -> str | None:
        """Run claims as one group; None, or why the shared run failed (a message, not an exception)."""
        for claim in claims:  # a rerun starts clean
            claim.measurements, claim.null_measurements, claim.error = defaultdict(list), defaultdict(list), None
            claim.figures, claim.figure_notes, claim.samples, claim.corpus_measurements = [], [], [], []
            claim.series_labels = []
        self._open_group = None
        try:
            self._run_group(claims, position)
        except MemoryError as error:
            return (
                f"ran out of memory ({error or 'MemoryError'}); lower the inputs' n or sequence length, "
                "or --interp-batch-size"
            )
        except (InputSpecError, RuntimeError, ValueError) as error:
            return str(error)
        except Exception as error:  # a bug in the engine or a loader: report it on these claims only
            return _internal_error("the engine", "running the inputs through the models", error)
        finally:
            if self._open_group is not None:  # a run that raised: its group ends, as failed
                self._open_group.finish(completed=False)
        return None

    def _result_of(self, claim: PreparedClaim, group_error: str | None) -> ClaimResult:
        spec = claim.spec
        where = f"{spec.path}, claim {spec.id!r}"
        if group_error is not None:
            inputs = f"the default inputs of check {claim.check.name} " if claim.default_inputs else "inputs "
            fix = " (the claim gives no inputs:; give inputs: that suit this model)" if claim.default_inputs else ""
            message = f"{where}: running {inputs}{claim.inputs} on {claim.describe_models()} failed: {group_error}{fix}"
            return ClaimResult(spec, ERROR, error=message, model=claim.describe_models())
        if claim.error is not None:
            return ClaimResult(spec, ERROR, error=f"{where}: {claim.error}", model=claim.describe_models())
        try:
            result = self._evaluate_claim(claim)
            _add_strip_candidates(result, claim)
            return result
        except ValueError as error:
            return ClaimResult(spec, ERROR, error=f"{where}: {error}", model=claim.describe_models())
        except Exception as error:  # a bug in the statistics: this claim only
            message = _internal_error("the statistics", "judging the measurements", error)
            return ClaimResult(spec, ERROR, error=f"{where}: {message}", model=claim.describe_models())


def _internal_error(component: str, stage: str, error: BaseException) -> str:
    """The message for an exception no validation foresaw: a bug to report, not the user's to fix."""
    return (
        f"internal error in {component} while {stage} ({type(error).__name__}: {error}); this is a bug, not a "
        "mistake in the claim: please report it with the claim file"
    )


def _real_readers(claim: PreparedClaim) -> dict[str, tuple[Any, Any, Needs]]:
    """Role -> (run key, model, needs) of a corpus claim's own stream: each role it reads, real."""
    return {
        role: (("model", str(claim.models[role].spec)), claim.models[role], needs)
        for role, needs in claim.prepared.needs.items()
    }


def _null_readers(claim: PreparedClaim, twin: Any) -> dict[str, tuple[Any, Any, Needs]]:
    """Role -> (run key, model, needs) of a corpus claim's null stream: its ``null_role`` read from
    ``twin`` (``null_needs``), any other role from its real model."""
    readers = _real_readers(claim)
    role = claim.prepared.null_role
    assert claim.prepared.null_needs is not None
    readers[role] = (("twin", str(twin.spec), twin.seed), twin, claim.prepared.null_needs)
    return readers


def _corpus_runs(readers: Mapping[int, Mapping[str, tuple[Any, Any, Needs]]]) -> tuple[dict[Any, tuple[Any, Needs]], dict[int, dict[str, Any]]]:
    """The models one corpus stream runs (run key -> model and the union of its claims' needs) and,
    per claim, which run each of its roles reads."""
    models: dict[Any, Any] = {}
    needs: dict[Any, list[Needs]] = defaultdict(list)
    reads: dict[int, dict[str, Any]] = {}
    for claim_id, roles in readers.items():
        reads[claim_id] = {}
        for role, (key, model, role_needs) in roles.items():
            models[key] = model
            needs[key].append(role_needs)
            reads[claim_id][role] = key
    return {key: (models[key], _merge(needs[key])) for key in models}, reads


def _role_activations(activations: Mapping[Any, Any], reads: Mapping[str, Any]) -> Any:
    """What a corpus aggregate's ``update`` gets: its subject's hooks when it reads one model, else
    role -> hooks (``checks.base.AggregatesCorpus``)."""
    if list(reads) == [MODEL]:
        return activations[reads[MODEL]]
    return {role: activations[key] for role, key in reads.items()}


def _same_vocabulary(a: Any, b: Any) -> bool:
    """Whether two loaded models read token ids the same way (a corpus claim runs both on one row)."""
    if a.tokenizer is None or b.tokenizer is None:
        return False
    return a.bos_token_id == b.bos_token_id and a.tokenizer.get_vocab() == b.tokenizer.get_vocab()


def _guarded(claim: PreparedClaim, doing: str, call: Any) -> Any:
    """``call()``, or None with ``claim.error`` set: a check's error (or bug) stays on its own claim."""
    try:
        return call()
    except (ValueError, CheckError) as error:
        claim.error = str(error)
    except Exception as error:  # a check's bug: report it on this claim, keep the others
        claim.error = _internal_error(f"check {claim.check.name}", doing, error)
    return None


def _null_of_draws(claim: PreparedClaim, weights: Mapping[str, Any], draws: int) -> list[np.ndarray]:
    """A weight statistic's null on each draw (``weights`` stacked [draws, ...]): all at once where
    the check has ``measure_null_draws`` (``checks.base.MeasuresNullDraws``), else draw by draw."""
    at_once = getattr(claim.check, "measure_null_draws", None)
    if at_once is not None:
        values = np.asarray(at_once(claim.prepared, weights), dtype=float)
        if values.ndim < 1 or values.shape[0] != draws:
            raise CheckError(f"measure_null_draws returned shape {values.shape}, expected [{draws}, values per draw]")
        return list(values)
    return [claim.check.measure_null(claim.prepared, {n: t[d] for n, t in weights.items()}, None) for d in range(draws)]


def _draw_check_figures(claim: PreparedClaim, activations: Mapping[str, Any], batches: Mapping[str, InputBatch]) -> None:
    """The check's pictures of the first chunk, if it draws any (``checks.base.DrawsFigures``).
    Guarded: whatever goes wrong becomes a note on the claim, never an error or a changed verdict."""
    draw = getattr(claim.check, "figures", None)
    if draw is None:
        return
    source = f"check {claim.check.name}"
    try:
        figures = draw(claim.prepared, activations, batches)
    except Exception as error:  # a picture must never cost a verdict
        claim.figure_notes.append(f"figures of {source} could not be drawn: {type(error).__name__}: {error}")
        return
    kept, notes = validated(figures, source)
    claim.figures.extend(kept)
    claim.figure_notes.extend(notes)


def _add_strip_candidates(result: ClaimResult, claim: PreparedClaim) -> None:
    """The engine's strip of each expectation (``result.strip_candidates``), drawn while the claim's
    per-sample values are at hand: which one the claim shows (``_show_deciding_strip``) is known only
    once the whole family is decided, possibly in another process (pytest-xdist), and figures are
    plain data that travel where arrays of samples should not. A failure is a note, like a check's
    figure: a picture never costs a verdict."""
    if len(claim.samples) != len(result.expectations):
        return
    for expectation, (values, null) in zip(result.expectations, claim.samples):
        figure = None
        if expectation.evaluation is not None and values is not None:  # None: no per-unit picture (a rank)
            try:
                figure = verdict_strip(
                    expectation.statistic,
                    values,
                    expectation.evaluation,
                    null=null,
                    null_kind=result.null or "",
                    members=claim.prepared.members.get(expectation.statistic),
                    unit=expectation.unit,
                    unit_of_sampling=display_unit(
                        claim.prepared.estimators.get(expectation.statistic), "document" if claim.sources is not None else "sequence"
                    ),
                )
            except Exception as error:  # a picture must never cost a verdict
                result.notes.append(
                    f"figure 'per-sample values' could not be drawn for {expectation.statistic}: {type(error).__name__}: {error}"
                )
        result.strip_candidates.append(figure)


def _show_deciding_strip(result: ClaimResult) -> None:
    """Put the strip of the expectation that decided the verdict first among the claim's figures:
    the subject's per-sample values (per document where documents were averaged) beside the null's,
    with the threshold and the estimate's interval."""
    if result.deciding is None or not 0 <= result.deciding < len(result.strip_candidates):
        return
    figure = result.strip_candidates[result.deciding]
    if figure is not None and figure not in result.figures:
        result.figures.insert(0, figure)


def passes(result: ClaimResult, *, inconclusive: str = "fail") -> str:
    """'passed', 'failed' or 'skipped' for a claim result, honouring ``expected: refuted``."""
    if result.outcome == ERROR:
        return "failed"
    if result.outcome == Outcome.INCONCLUSIVE.value:
        return "skipped" if inconclusive == "skip" else "failed"
    return "passed" if result.outcome == result.spec.expected else "failed"
