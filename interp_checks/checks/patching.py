"""Activation and path patching between clean and corrupted inputs (``check: patching``).

A claim names sites (``interventions.Site``: a head's output ``L1H2``, its query/key/value
``L1H2.q``/``.k``/``.v``, an MLP's output ``L0.mlp``, the residual stream entering a block
``L1.resid``; all patched together), a direction, a path and a metric, on inputs that make
clean/corrupted pairs (``induction_pairs``: the repeat of random tokens, its first half replaced).

* ``direction`` (required, since the two answer different questions; Heimersheim & Nanda 2024):
  ``denoise`` runs the *corrupted* input with the sites' activations taken from the clean run
  (is the component **sufficient** to restore the behaviour?); ``noise`` runs the *clean* input with
  the sites' activations taken from the corrupted run (is the component **necessary**?).
* ``path``: ``total`` (default; the patched activation flows through every later layer: the total
  effect) or ``direct`` (only the sites' own write reaches the logits, the final layer norm's scale
  frozen at the base run's: the direct effect through the path site -> logits).
* ``metric``: ``logprob`` (default; log-probability of the clean input's next token) or
  ``logit_diff`` (clean next token's logit minus the corrupted input's next token's logit, defined
  where the two differ). Both continuous: a probability or a top-k hit hides components that push
  the wrong way (Zhang & Nanda 2023).
* ``where``: which predicted tokens count (a ``where:`` mapping, e.g. ``{region: repeat}``);
  default every predicted token where the metric is defined.

Statistics, per sequence, over the ``where`` tokens (m = the metric, averaged over those tokens;
*base* is the run that is patched: corrupted for denoise, clean for noise; *other* is the run the
patch comes from):

* ``effect``: m(patched) - m(base), in the metric's units (nats for logprob): TransformerLens's
  ``PatchingResult.effect()``, averaged over the tokens. Denoising: positive = restores; noising:
  negative = destroys.
* ``normalized``: the share of the clean-corrupted gap the patch moves the base run across,
  R = mean_i(m(patched) - m(base)) / mean_i(m(other) - m(base)): for denoising the fraction of the
  behaviour restored (TransformerLens's ``normalized``, 1 = fully), for noising the fraction
  destroyed. A ratio of means over sequences with a paired bootstrap (``stats.ratios``), not
  a mean of per-sequence ratios, which explode on sequences whose gap is small.

Picture (``figures``): the metric by position, averaged over the first chunk's sequences, for the
clean run, the corrupted run and the patched run, so the reader sees where the patch moves it.

Null (of ``effect``): the same patch's effect on a random-weights twin of the model, same pairs.
Every result's notes name the estimand, the direction, the corruption, the metric and the tokens.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Mapping

import numpy as np
from jaxtyping import Bool, Float

from interp_checks.checks.base import MODEL, Activations, CheckError, ModelShape, Needs, Prepared, parse_component, register
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import TokenSetError, Where, parse_where, select
from interp_checks.interventions import DIRECTIONS, METRICS, PATHS, Intervention, Site, clean_key

UNITS = {"logprob": "nats (log-prob of the clean next token)", "logit_diff": "logits (clean minus corrupted next token)"}
DIRECTION_MEANS = {
    "denoise": "denoising: the corrupted run with the sites' clean activations patched in (sufficiency)",
    "noise": "noising: the clean run with the sites' corrupted activations patched in (necessity)",
}


def parse_site(text: Any, shape: ModelShape, positions: tuple[int, ...] | None) -> Site:
    """``"L1H2"``, ``"L1H2.k"``, ``"L0.mlp"``, ``"L1.resid"`` -> a Site, checked against the model."""
    return parse_component(text, shape, ("head", "head_q", "head_k", "head_v", "mlp", "resid"), "site", positions)


def _choice(params: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = params.get(key, default)
    if value is None:
        raise CheckError(
            f"patching needs '{key}:' ({' or '.join(allowed)}): denoise patches clean activations into the corrupted run "
            "(sufficiency), noise patches corrupted activations into the clean run (necessity); they are not symmetric"
        )
    if value not in allowed:
        raise CheckError(f"{key} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _sites(params: Mapping[str, Any], shape: ModelShape) -> tuple[Site, ...]:
    given = [key for key in ("site", "sites") if params.get(key) is not None]
    if len(given) != 1:
        raise CheckError("patching needs exactly one of site (one component) or sites (a list, patched together)")
    raw = params[given[0]]
    names = [raw] if given[0] == "site" else raw
    if not isinstance(names, list) or not names:
        raise CheckError("sites must be a non-empty list such as [L1H0, L1H2]")
    positions = params.get("positions")
    if positions is not None:
        if not isinstance(positions, list) or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < shape.n_ctx for p in positions):
            raise CheckError(f"positions must be a list of token positions within 0..{shape.n_ctx - 1}")
        positions = tuple(sorted(set(positions)))
    sites = [parse_site(name, shape, positions) for name in names]
    if len(set(sites)) != len(sites):
        raise CheckError(f"sites lists a component twice: {names}")
    return tuple(sites)


def describe(intervention: Intervention, where: Where) -> list[str]:
    """The notes every result carries: estimand, direction, corruption, metric, tokens."""
    sites = " + ".join(site.name for site in intervention.sites)
    if intervention.path == "total":
        estimand = f"total effect of {sites} (the patched activation flows through every later layer)"
    else:
        estimand = f"direct effect of {sites} through the path {sites} -> logits (final layer-norm scale frozen at the base run's)"
    return [
        f"estimand: {estimand}",
        f"direction: {intervention.direction} ({DIRECTION_MEANS[intervention.direction]})",
        "corruption: each input's paired corrupted sequence from the input generator (see inputs)",
        f"metric: {intervention.metric}, {UNITS[intervention.metric]}, averaged per sequence over {where.describe()}",
        "effect = m(patched) - m(base run); normalized = mean(m(patched) - m(base)) / mean(m(other run) - m(base)) over "
        "sequences (ratio of means, paired BCa bootstrap, Fieller-linearised t-test)",
    ]


def token_means(values: Float[np.ndarray, "n pos"], mask: Bool[np.ndarray, "n pos"]) -> Float[np.ndarray, " n"]:
    """Per-row mean over the selected positions (NaN for a row with none)."""
    count = mask.sum(axis=1)
    total = np.where(mask, np.nan_to_num(values), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def patching_terms(readings: Activations, batch: InputBatch, intervention: Intervention, where: Where) -> tuple[np.ndarray, np.ndarray]:
    """(numerator, denominator) per sequence: mean over the tokens of m(patched) - m(base) and of
    m(other) - m(base), over the tokens ``where`` selects where all three metrics are defined."""
    denoise = intervention.direction == "denoise"
    base = np.asarray(readings[clean_key(intervention.metric, corrupted=denoise)])
    other = np.asarray(readings[clean_key(intervention.metric, corrupted=not denoise)])
    patched = np.asarray(readings[intervention.key])
    try:
        mask = select(where, batch)
    except TokenSetError as error:
        raise CheckError(str(error)) from None
    mask &= np.isfinite(base) & np.isfinite(other) & np.isfinite(patched)
    return token_means(patched - base, mask), token_means(other - base, mask)


def position_curves(readings: Activations, batch: InputBatch, intervention: Intervention, where: Where) -> Figure:
    """A line per run (clean, corrupted, patched): the metric at each position, mean over the chunk's
    sequences where it is defined; the positions ``where`` selects are named in the caption."""
    mask = select(where, batch)
    runs = {
        "clean run": readings[clean_key(intervention.metric)],
        "corrupted run": readings[clean_key(intervention.metric, corrupted=True)],
        f"patched ({intervention.direction})": readings[intervention.key],
    }
    x = [int(p) for p in range(batch.tokens.shape[1]) if np.isfinite(np.asarray(runs["clean run"])[:, p]).any()]
    series = []
    for label, values in runs.items():
        values = np.asarray(values)[:, x]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a position undefined in every sequence: NaN
            mean = np.nanmean(values, axis=0)
        series.append({"label": label, "x": x, "y": rounded(mean, 4)})
    chosen = np.flatnonzero(mask.any(axis=0))
    span = f"positions {chosen.min()}-{chosen.max()}" if chosen.size else "no position"
    sites = " + ".join(site.name for site in intervention.sites)
    caption = (
        f"Mean over the first {batch.n} sequences of the {intervention.metric} at each position, for the clean run, the "
        f"corrupted run and the run with {sites} patched ({intervention.path} path). The claim averages {where.describe()} "
        f"({span})."
    )
    data = {"series": series, "x_label": "position", "y_label": UNITS[intervention.metric]}
    return Figure("line", f"{intervention.metric} by position: clean, corrupted, patched {sites}", data, caption)


class PatchingCheck:
    """``check: patching``; see the module doc. Claim keys: ``site`` or ``sites``, ``direction``,
    optional ``path``, ``metric``, ``positions``, ``where``."""

    name: ClassVar[str] = "patching"
    description: ClassVar[str] = (
        "activation/path patching between clean and corrupted inputs: effect (metric units) and normalized (share of the gap)"
    )
    statistics: ClassVar[tuple[str, ...]] = ("effect", "normalized")
    params: ClassVar[tuple[str, ...]] = ("site", "sites", "direction", "path", "metric", "positions", "where")
    model_roles: ClassVar[tuple[str, ...]] = ()
    # Induction pairs: repeated random tokens and the same with the first half replaced. 64 pairs of
    # 2 x 32 tokens; each patch resumes from the cached residual stream (runner.run_interventions).
    default_inputs: ClassVar[Mapping[str, Any]] = {"kind": "induction_pairs", "seq_len": 32, "n": 64}

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        sites = _sites(params, shape)
        direction = _choice(params, "direction", DIRECTIONS, None)
        path = _choice(params, "path", PATHS, "total")
        metric = _choice(params, "metric", METRICS, "logprob")
        try:
            where = parse_where(params.get("where"))
        except TokenSetError as error:
            raise CheckError(str(error)) from None
        try:
            intervention = Intervention(sites, "patch", metric=metric, path=path, direction=direction)
        except ValueError as error:
            raise CheckError(str(error)) from None
        statistics = [stat for stat in self.statistics if stat in expect]
        needs = Needs(frozenset(), interventions=(intervention,))
        return Prepared(
            needs={MODEL: needs},
            null_needs=needs,
            statistics=statistics,
            state={"intervention": intervention, "where": where},
            notes=describe(intervention, where),
            units={"effect": UNITS[metric], "normalized": "share of the clean-corrupted gap"},
            estimators={"normalized": "ratio_of_means"} if "normalized" in statistics else {},
        )

    def measure(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> dict[str, np.ndarray]:
        numerator, denominator = patching_terms(activations[MODEL], batches[MODEL], prepared.state["intervention"], prepared.state["where"])
        out: dict[str, np.ndarray] = {}
        if "effect" in prepared.statistics:
            out["effect"] = numerator
        if "normalized" in prepared.statistics:
            out["normalized"] = np.stack([numerator, denominator], axis=1)
        return out

    def figures(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> list[Figure]:
        """The metric by position for the clean, corrupted and patched runs (mean over the first chunk)."""
        return [position_curves(activations[MODEL], batches[MODEL], prepared.state["intervention"], prepared.state["where"])]

    def measure_null(self, prepared: Prepared, activations: Activations, batch: InputBatch) -> np.ndarray:
        return patching_terms(activations, batch, prepared.state["intervention"], prepared.state["where"])[0]

    def null_description(self, prepared: Prepared) -> str:
        return "the same patch's effect on a random-weights twin of the model, same input pairs"


register(PatchingCheck())
