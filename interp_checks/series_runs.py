"""The engine's series path: series claims' readings taken at every checkpoint, shared between claims.

    series claim --prepare--> its readings (``checks.base.SeriesReading``), each an existing check
    prepared against the series' model --> per run: walk the union of the claims' checkpoints, one
    model in memory (``models.series.CheckpointWalker``) --> at each checkpoint, each distinct input
    set runs once (the union of its readings' hooks, in chunks) and every reading measures it -->
    per claim and run, ``SeriesCurves`` --> the check's ``conclude`` --> statistics judged per run.

Why readings reuse checks: "the induction score of L1H0 at every step" must mean exactly what an
``induction_head`` claim means at one step; a series check only reasons about the curve.

Inputs are generated once per series, from the first checkpoint's vocabulary (a series is one
model through training: every checkpoint has the same shape, which the walker checks). Rows cut
from one document are averaged per document before they become samples (the document is the unit).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from interp_checks.checks.base import MODEL, Check, CheckError, ModelShape, Needs, Prepared, SeriesCurves, SeriesReading, get_check
from interp_checks.inputs.generators import InputBatch, InputSpecError, Vocabulary, generate, input_key, normalise_input_spec

__all__ = ["ReadingPlan", "plan_readings", "run_series_claims"]

READING_TOKENS_PER_PASS = 8192


@dataclass
class ReadingPlan:
    """One reading of one claim, prepared: its check and what that check asked for."""

    reading: SeriesReading
    check: Check
    prepared: Prepared
    inputs: dict[str, Any]
    key: str  # input key: readings with equal keys share their samples and their forward passes
    statistic: str  # the reading check's statistic read (as its ``prepared.statistics`` names it)


def plan_readings(prepared: Prepared, shape: ModelShape, base_dir: Any, seed: int = 0) -> list[ReadingPlan]:
    """Prepare each reading's check against the series' model (its inputs seeded by the reading's own
    ``seed`` or else the claim's, ``seed``). Raises CheckError naming the reading."""
    from dataclasses import replace

    from interp_checks.claims.expect import parse_expectation
    from interp_checks.engine import _resolve_input_paths

    plans = []
    for reading in prepared.readings:
        reading = reading if reading.seed is not None else replace(reading, seed=seed)
        where = f"reading {reading.name!r} ({reading.check})"
        try:
            check = get_check(reading.check)
        except CheckError as error:
            raise CheckError(f"{where}: {error}") from None
        if check.model_roles:
            raise CheckError(f"{where}: a reading reads one model; check {check.name} compares models ({', '.join(check.model_roles)})")
        if getattr(check, "reads_series", False):
            raise CheckError(f"{where}: a reading is a per-checkpoint check, not another series check")
        if reading.statistic not in check.statistics:
            raise CheckError(f"{where}: check {check.name} has no statistic {reading.statistic!r}; it has {', '.join(check.statistics)}")
        unknown = sorted(set(reading.params) - set(check.params))
        if unknown:
            raise CheckError(f"{where}: unknown key {unknown[0]!r} for check {check.name}; it takes {', '.join(check.params)}")
        try:
            inner = check.prepare(dict(reading.params), {MODEL: shape}, {reading.statistic: parse_expectation(">= 0")})
        except CheckError as error:
            raise CheckError(f"{where}: {error}") from None
        if inner.sampling not in ("sequence", "weights"):
            raise CheckError(f"{where}: check {check.name} streams corpora; a reading needs per-sequence or weight statistics")
        named = [s for s in inner.statistics if inner.expectation_source.get(s, s) == reading.statistic]
        if len(named) != 1:
            raise CheckError(f"{where}: {reading.statistic} names {len(named)} statistics ({', '.join(named)}); name one head or neuron")
        given = reading.inputs if reading.inputs is not None else (check.default_inputs or {})
        if inner.sampling == "weights":
            inputs: dict[str, Any] = {}
        else:
            if not given:
                raise CheckError(f"{where}: give the reading inputs: (check {check.name} has no default inputs)")
            try:
                inputs = normalise_input_spec(_resolve_input_paths(given, base_dir))
            except InputSpecError as error:
                raise CheckError(f"{where}: {error}") from None
        # Weight readings of one check with the same keys read the same samples (a toy's test points).
        key = input_key(inputs, reading.seed) if inputs else f"weights:{check.name}:{sorted(reading.params.items())!r}"
        plans.append(ReadingPlan(reading, check, inner, inputs, key, named[0]))
    return plans


@dataclass
class _ClaimRuns:
    """What the series path collects for one claim: per run, per reading, a list over checkpoints."""

    plans: list[ReadingPlan]
    kept: dict[str, list[int]]  # run label -> positions this claim reads
    values: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))


def run_series_claims(engine: Any, claims: list[Any]) -> None:
    """Measure series claims (``Prepared.sampling == "series"``): each run of each series walked once
    for every claim on it, each distinct input set run once per checkpoint, then ``conclude`` per
    claim and run. A claim's failure stays on that claim (``engine._guarded``)."""
    from interp_checks.engine import _guarded
    from interp_checks.figure_data import validated
    from interp_checks.models.series import SeriesError, thin

    start = time.perf_counter()
    by_series: dict[str, list[Any]] = defaultdict(list)
    for claim in claims:
        by_series[claim.model_key].append(claim)
    for members in by_series.values():
        loaded = members[0].models[MODEL]
        runs = loaded.meta["series"]
        collected: dict[int, _ClaimRuns] = {}
        for claim in members:
            try:
                kept = {run.label: thin(run, **claim.prepared.thinning, where="").positions for run in runs}
            except SeriesError as error:
                claim.error = str(error)
                continue
            collected[id(claim)] = _ClaimRuns(claim.series_plans, kept)
        vocab = Vocabulary(loaded.d_vocab, loaded.n_ctx, loaded.bos_token_id, frozenset(loaded.special_token_ids), loaded.tokenizer)
        batches: dict[str, InputBatch] = {}
        for claim in members:
            for plan in claim.series_plans:
                if plan.inputs and plan.key not in batches and claim.error is None:
                    batch = _guarded(claim, "generating a reading's inputs", lambda: generate(plan.inputs, vocab, plan.reading.seed, max_tokens=engine.settings.max_input_tokens))
                    if batch is not None:
                        batches[plan.key] = batch
        for run in runs:
            _walk(engine, run, [c for c in members if c.error is None and id(c) in collected], collected, batches)
        for claim in members:
            if claim.error is not None:
                continue
            measurements = []
            for run in runs:
                curves = _curves(run, collected[id(claim)])
                measurement = _guarded(claim, "concluding", lambda: claim.check.conclude(claim.prepared, curves))
                if measurement is None:
                    break
                measurements.append(measurement)
                kept, notes = validated(measurement.figures, f"check {claim.check.name}")
                claim.figures.extend(kept)
                claim.figure_notes.extend(notes)
            if claim.error is None:
                claim.corpus_measurements = measurements
                claim.series_labels = [run.label for run in runs]
    shared = (time.perf_counter() - start) / max(1, len(claims))
    for claim in claims:
        claim.measure_s += shared


def _walk(engine: Any, run: Any, claims: list[Any], collected: Mapping[int, _ClaimRuns], batches: Mapping[str, InputBatch]) -> None:
    """One pass over ``run``'s checkpoints that any claim keeps; at each, every input set once."""
    from dataclasses import replace

    from interp_checks.models.series import CheckpointWalker

    wanted = {p for claim in claims for p in collected[id(claim)].kept[run.label]}
    walk = replace(run, checkpoints=tuple(c for c in run.checkpoints if c.position in wanted))
    for checkpoint, model in CheckpointWalker(walk, engine.settings.device):
        readers = [(claim, plan) for claim in claims for plan in collected[id(claim)].plans
                   if checkpoint.position in collected[id(claim)].kept[run.label] and claim.error is None]
        by_key: dict[str, list[tuple[Any, ReadingPlan]]] = defaultdict(list)
        for claim, plan in readers:
            by_key[plan.key].append((claim, plan))
        for key, group in by_key.items():
            values = _read(engine, model, group, batches.get(key))
            for (claim, plan), value in zip(group, values):
                if value is not None:
                    collected[id(claim)].values[run.label][plan.reading.name].append(value)
                elif claim.error is None:
                    claim.error = f"reading {plan.reading.name!r} gave no value at {run.axis} {checkpoint.position} of {run.label}"


def _read(engine: Any, model: Any, group: list[tuple[Any, ReadingPlan]], batch: InputBatch | None) -> list[np.ndarray | None]:
    """Each reading of ``group`` (same inputs) on one checkpoint: [samples] or [samples, members]."""
    import torch

    from interp_checks.engine import _guarded, _merge, _readings
    from interp_checks.runner import read_weights
    from interp_checks.stats import cluster_means

    if batch is None:  # statistics of the weights: one fixed value, or the check's own samples (_weight_samples)
        out = []
        for claim, plan in group:
            weights = read_weights(model.bridge, plan.prepared.needs[MODEL].weights)
            value = _guarded(claim, f"reading {plan.reading.name}", lambda: plan.check.measure(plan.prepared, {MODEL: weights}, {}))
            out.append(None if value is None else _weight_samples(value[plan.statistic]))
        return out
    needs = _merge([plan.prepared.needs.get(MODEL, Needs(frozenset())) for _, plan in group])
    weights = read_weights(model.bridge, needs.weights)
    # Rows per forward pass: the run's batch size, or more for short rows (a modular-addition row is 3
    # tokens: 64 rows a pass made the series path a per-call-overhead benchmark), up to ~8k tokens.
    size, device = max(engine.settings.batch_size, READING_TOKENS_PER_PASS // max(1, batch.tokens.shape[1])), engine.settings.device
    parts: list[list[np.ndarray]] = [[] for _ in group]
    with torch.no_grad():
        for begin in range(0, batch.n, size):
            chunk = batch.rows(begin, begin + size)
            activations = _readings(model.bridge, chunk, needs, weights, {}, device)
            for index, (claim, plan) in enumerate(group):
                if claim.error is not None:
                    continue
                value = _guarded(claim, f"reading {plan.reading.name}", lambda: plan.check.measure(plan.prepared, {MODEL: activations}, {MODEL: chunk}))
                if value is not None:
                    parts[index].append(np.asarray(value[plan.statistic], dtype=float))
    out: list[np.ndarray | None] = []
    for (claim, _), chunks in zip(group, parts):
        if claim.error is not None or not chunks:
            out.append(None)
            continue
        values = np.concatenate(chunks)
        values = values.reshape(values.shape[0], -1)
        if batch.sources is not None:
            values = cluster_means(values, batch.sources)[0]
        out.append(values)
    return out


def _weight_samples(value: Any) -> np.ndarray:
    """A weights check's reading as [samples, 1]: one value (a statistic of the weights alone: one
    fixed sample) or one per evaluation sample the check made itself (a toy model's test points)."""
    array = np.asarray(value, dtype=float).reshape(-1)
    return array.reshape(-1, 1)


def _curves(run: Any, collected: _ClaimRuns) -> SeriesCurves:
    """One run's readings as [checkpoints, samples, members] arrays, for ``conclude``."""
    values = {name: np.stack(per_checkpoint) for name, per_checkpoint in collected.values[run.label].items()}
    notes = [f"reading {plan.reading.name}: {plan.reading.describe()} on {plan.inputs or 'the weights'}" for plan in collected.plans]
    return SeriesCurves(
        run.label, run.axis, np.asarray(collected.kept[run.label], dtype=float), values,
        {plan.reading.name: plan.key for plan in collected.plans}, notes, run.record,
    )
