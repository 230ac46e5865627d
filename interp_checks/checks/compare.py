"""Model comparison: how much better does one model predict the same tokens than another?

Statistic ``mean_gain``, per sequence: the mean, over the tokens the claim's ``where:`` selects, of

    gain = max(logp_model, floor) - max(logp_baseline, floor)

in nats, where logp is the log-probability each model gives the actual next token. The floor
(default -5) stops one wildly wrong model (a token at -20 nats) from dominating the mean.

Why per sequence: tokens of one sequence are not independent (a model that has locked onto a
repeated span gets all of its tokens right together), so the sequence is the unit of sampling; the
t-test and bootstrap run over per-sequence means, never over pooled tokens.

Different tokenizers: a "token" is not the same thing for both models, so gains are computed on
character spans instead. The spans are cut at the character offsets where *both* tokenizations
have a token boundary; a span's log-prob for a model is the sum of its floored token log-probs
inside it. ``where:`` is evaluated on the subject model's tokens (a span counts if any of its
model tokens is selected). Random token ids mean different things to different tokenizers, so
such a comparison needs text inputs; the claim errors otherwise and says so.

Null: zero gain (the baseline predicts as well as the model); the effect size is Cohen's d_z of
the per-sequence gains against zero.
"""

from __future__ import annotations

import bisect
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from jaxtyping import Float, Int

from interp_checks.checks.base import MODEL, Activations, CheckError, ModelShape, Needs, Prepared, register
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import TokenSetError, parse_where, select
from interp_checks.runner import next_token_logprobs

BASELINE = "baseline"
DEFAULT_FLOOR = -5.0


def floored(logp: np.ndarray, floor: float) -> np.ndarray:
    """max(logp, floor), keeping NaN where there is no prediction."""
    return np.where(np.isnan(logp), np.nan, np.maximum(logp, floor))


def token_gains(model_logp: np.ndarray, baseline_logp: np.ndarray, floor: float) -> np.ndarray:
    return floored(model_logp, floor) - floored(baseline_logp, floor)


def same_tokens(a: InputBatch, b: InputBatch) -> bool:
    return a.tokens.shape == b.tokens.shape and np.array_equal(a.tokens, b.tokens) and np.array_equal(a.valid, b.valid)


def mean_over(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-row mean of values where mask is True (NaN for rows with nothing selected)."""
    count = mask.sum(axis=1)
    total = np.where(mask, np.nan_to_num(values), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _token_ends(batch: InputBatch, row: int) -> list[tuple[int, int]]:
    """(position, end character) of the row's tokens that cover characters, in order."""
    out = []
    for p in range(1, batch.tokens.shape[1]):
        start, stop = batch.offsets[row, p]
        if batch.valid[row, p] and stop > start:
            out.append((p, int(stop)))
    return out


def span_gains_row(
    model: InputBatch, baseline: InputBatch, row: int, model_logp: np.ndarray, baseline_logp: np.ndarray, selected: np.ndarray, floor: float
) -> list[float]:
    """Gains of one row on the character spans both tokenizations agree on (selected spans only)."""
    ends_m, ends_b = _token_ends(model, row), _token_ends(baseline, row)
    if not ends_m or not ends_b:
        return []
    covered = min(ends_m[-1][1], ends_b[-1][1])
    boundaries = sorted({e for _, e in ends_m} & {e for _, e in ends_b} & set(range(covered + 1)))
    if not boundaries:
        return []
    covered = boundaries[-1]  # characters after the last shared boundary belong to no comparable span
    spans = len(boundaries)
    total_m, total_b = np.zeros(spans), np.zeros(spans)
    chosen = np.zeros(spans, dtype=bool)
    for p, end in ends_m:
        if end <= covered:
            k = bisect.bisect_left(boundaries, end)
            total_m[k] += max(model_logp[row, p], floor)
            chosen[k] |= bool(selected[row, p])
    for p, end in ends_b:
        if end <= covered:
            total_b[bisect.bisect_left(boundaries, end)] += max(baseline_logp[row, p], floor)
    return list((total_m - total_b)[chosen])


class LogprobGainCheck:
    """``check: logprob_gain`` with ``baseline:`` (a model spec), optional ``where:`` and ``floor:``."""

    name: ClassVar[str] = "logprob_gain"
    description: ClassVar[str] = "per-token log-prob gain of the model over a baseline, floored, averaged per sequence"
    statistics: ClassVar[tuple[str, ...]] = ("mean_gain",)
    params: ClassVar[tuple[str, ...]] = ("where", "floor")
    model_roles: ClassVar[tuple[str, ...]] = (BASELINE,)

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        floor = params.get("floor", DEFAULT_FLOOR)
        if not isinstance(floor, (int, float)) or isinstance(floor, bool) or not np.isfinite(floor) or floor > 0:
            raise CheckError(f"floor must be a number <= 0 (a log-prob), got {floor!r}")
        try:
            where = parse_where(params.get("where"))
        except TokenSetError as error:
            raise CheckError(str(error)) from None
        logits = Needs(frozenset(), logits=True)
        return Prepared(
            needs={MODEL: logits, BASELINE: logits},
            null_needs=None,
            statistics=["mean_gain"],
            expectation_source={"mean_gain": "mean_gain"},
            state={"floor": float(floor), "where": where},
        )

    def measure(
        self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]
    ) -> dict[str, np.ndarray]:
        floor, where = prepared.state["floor"], prepared.state["where"]
        model, baseline = batches[MODEL], batches[BASELINE]
        model_logp = next_token_logprobs(activations[MODEL]["logits"], model.tokens)
        baseline_logp = next_token_logprobs(activations[BASELINE]["logits"], baseline.tokens)
        try:
            selected = select(where, model)
        except TokenSetError as error:
            raise ValueError(str(error)) from None
        if same_tokens(model, baseline):
            return {"mean_gain": mean_over(token_gains(model_logp, baseline_logp, floor), selected)}
        if model.texts is None or baseline.texts is None:
            raise ValueError(
                "the model and the baseline tokenize differently, and random token ids mean different things to "
                "different tokenizers: compare them on text inputs (kind: corpus, repeated_span_text, ...)"
            )
        note = "the model and baseline tokenize differently: gains are on character spans where both have a token boundary"
        if note not in prepared.notes:
            prepared.notes.append(note)
        means = []
        for row in range(model.n):
            gains = span_gains_row(model, baseline, row, model_logp, baseline_logp, selected, floor)
            means.append(float(np.mean(gains)) if gains else np.nan)
        return {"mean_gain": np.asarray(means)}

    def measure_null(self, prepared: Prepared, activations: Activations, batch: InputBatch) -> np.ndarray:
        raise NotImplementedError("logprob_gain's null is zero gain; it needs no model")

    def null_description(self, prepared: Prepared) -> str:
        return "zero gain (the baseline predicts as well as the model)"


register(LogprobGainCheck())
