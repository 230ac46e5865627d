"""Composition in activations: how much of a later head's query, key or value an earlier head wrote.

``check: composition_activations`` asks per input sequence what ``check: composition`` asks of the
weights. It is a second line of evidence, independent of the weight score: the weight score says a
head *could* read another's output whatever the inputs; this says how much it *does* on given inputs.

The residual decomposition (attention-only or not, any of TransformerLens's layer norms). The
residual stream entering block L is a sum of components, each a [sequence, position, d_model] array:

* ``embeddings``: ``blocks.0.hook_resid_pre`` (token plus learned positional embeddings, if any);
* each head (l, h) of an earlier layer: ``blocks.l.attn.hook_z[..., h, :] @ W_O[l, h]``, the slice of
  the head's output TransformerLens's ``ActivationCache.stack_head_results`` gives;
* ``attention output biases``: the sum of ``b_O`` of the earlier layers;
* ``other (MLPs)``: ``blocks.L.hook_resid_pre`` minus all of the above (earlier MLPs' outputs; zero,
  to float rounding, in an attention-only model).

The destination's layer norm is frozen at the clean run's scale (``blocks.L.ln1.hook_scale``), which
makes it linear: component c reaches the destination head D = (L, h) as

    contribution_c(p) = (centre(c(p)) / scale(p)) * w_ln @ W_kind[L, h]

(``centre`` subtracts the mean over d_model for LN and LNPre only; ``w_ln`` is the norm's weight for
LN and RMS, 1 otherwise; no norm: scale 1). The norm's own bias, ``b_ln @ W_kind[L, h]``, joins the
output biases as one constant component, ``biases``. So the contributions sum exactly to the head's
input without its own bias: ``hook_kind(p) - b_kind[L, h]`` (``tests/integration/
test_composition_activations.py`` checks this against the hooks, and the per-head terms against
TransformerLens's ``stack_head_results`` + ``apply_ln_to_stack``). ``hook_k`` and ``hook_q`` are
before rotary embeddings, which rotate each position's vector and leave its norm unchanged.

The share. For kind k (q, v alike), per position p:

    share_c(p) = ||contribution_c(p)|| / ||k(p) - b_K[L, h]||

and one number per sequence: the mean of share_c(p) over the positions ``where:`` selects (default:
every position after the first; ``{region: repeat}`` for the repeated half). Shares are norms, not a
partition: they need not sum to 1, and a component can exceed 1 where others cancel it.

Claims (``from: L0H1, to: L1H2, kind: k``):

* ``share``: the source head's share (e.g. ``">= 0.3"``);
* ``lead``: per sequence, the source's share minus the largest share of any *other* component
  (every other earlier head, the embeddings, the biases, the rest). ``lead > 0`` says the source is
  the largest component. A per-sequence paired difference, judged with the usual one-sample test:
  the mean of (source - max of others) is at most the mean of (source - c) for every other c, so
  ``lead > 0`` supported implies the source beats each other component on average — conservative,
  where the members machinery (``stats.evaluate_largest_mean``) answers a different question (which
  member's mean is largest, with the selection paid for), not "this named member beats the rest".

Null: the same statistic on the random-weights twin, per sequence the maximum over every pair of an
earlier head and a later head (the claim's kind): the best pair of an untrained model, as the head
roles take the best head, since a claimed pair was found by looking at all of them.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from jaxtyping import Bool, Float

from interp_checks.checks.base import MODEL, Activations, CheckError, ModelShape, Needs, Prepared, register
from interp_checks.checks.compare import mean_over
from interp_checks.checks.composition import KINDS
from interp_checks.checks.heads import head_name, parse_head
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import TokenSetError, parse_where, select

Head = tuple[int, int]
EMBEDDINGS, BIASES, OTHER = "embeddings", "biases", "other (MLPs)"
SHARE_UNIT = "share of the destination's norm"
NORMS_CENTRED = ("LN", "LNPre")
NORMS_WEIGHTED = ("LN", "RMS")


def needed_hooks(layer: int, kind: str, normalization: str | None) -> frozenset[str]:
    """The clean run's activations that decompose the input of a head of ``layer``."""
    hooks = {"blocks.0.hook_resid_pre", f"blocks.{layer}.hook_resid_pre", f"blocks.{layer}.attn.hook_{kind}"}
    hooks |= {f"blocks.{l}.attn.hook_z" for l in range(layer)}
    if normalization is not None:
        hooks.add(f"blocks.{layer}.ln1.hook_scale")
    return frozenset(hooks)


def needed_weights(layers: list[int], kind: str, normalization: str | None) -> frozenset[str]:
    """The parameters that carry the components to a head of ``layers``: W_O and b_O (stacked), the
    destination's W and b of its kind, and the destination block's layer-norm weight and bias."""
    names = {"W_O", "b_O", f"W_{kind.upper()}", f"b_{kind.upper()}"}
    for layer in layers:
        if normalization in NORMS_WEIGHTED:
            names.add(f"blocks.{layer}.ln1.weight")
        if normalization == "LN":
            names.add(f"blocks.{layer}.ln1.bias")
    return frozenset(names)


def residual_components(
    acts: Activations, weights: Activations, layer: int, n_heads: int
) -> tuple[list[str], Float[torch.Tensor, "component n pos d_model"]]:
    """The residual stream entering ``layer`` as named components that sum to it exactly: the
    embeddings, every earlier head's output, the output biases, and the rest (MLPs)."""
    names, parts = [EMBEDDINGS], [acts["blocks.0.hook_resid_pre"].float()]
    W_O = weights["W_O"].float()
    for l in range(layer):
        z = acts[f"blocks.{l}.attn.hook_z"].float()  # n pos head d_head
        per_head = torch.einsum("nphd,hdm->hnpm", z, W_O[l])
        names += [head_name(l, h) for h in range(n_heads)]
        parts += list(per_head)
    bias = weights["b_O"].float()[:layer].sum(0).expand_as(parts[0])
    names.append(BIASES)
    parts.append(bias)
    resid = acts[f"blocks.{layer}.hook_resid_pre"].float()
    names.append(OTHER)
    parts.append(resid - torch.stack(parts).sum(0))
    return names, torch.stack(parts)


def through_frozen_norm(
    stack: Float[torch.Tensor, "component n pos d_model"], acts: Activations, weights: Activations, layer: int, normalization: str | None
) -> Float[torch.Tensor, "component n pos d_model"]:
    """Each component as the destination's layer norm passes it on at the clean run's scale (linear
    once the scale is frozen): centred (LN, LNPre), divided by the scale, times the norm's weight."""
    if normalization is None:
        return stack
    if normalization in NORMS_CENTRED:
        stack = stack - stack.mean(-1, keepdim=True)
    stack = stack / acts[f"blocks.{layer}.ln1.hook_scale"].float()
    if normalization in NORMS_WEIGHTED:
        stack = stack * weights[f"blocks.{layer}.ln1.weight"].float()
    return stack


def destination_contributions(
    acts: Activations, weights: Activations, layer: int, kind: str, normalization: str | None, n_heads: int
) -> tuple[list[str], Float[torch.Tensor, "component n pos head d_head"], Float[torch.Tensor, "n pos head d_head"]]:
    """Every component's contribution to every head of ``layer``'s query, key or value, and what
    they sum to: the hook minus the head's own bias. The layer norm's bias joins the biases."""
    names, stack = residual_components(acts, weights, layer, n_heads)
    normed = through_frozen_norm(stack, acts, weights, layer, normalization)
    W = _per_query_head(weights[f"W_{kind.upper()}"].float()[layer], n_heads)  # head d_model d_head
    contributions = torch.einsum("cnpm,hmd->cnphd", normed, W)
    if normalization == "LN":
        contributions[names.index(BIASES)] += torch.einsum("m,hmd->hd", weights[f"blocks.{layer}.ln1.bias"].float(), W)
    hook = acts[f"blocks.{layer}.attn.hook_{kind}"].float()
    bias = _per_query_head(weights[f"b_{kind.upper()}"].float()[layer], n_heads)
    return names, contributions, _per_query_head(hook, n_heads, dim=2) - bias


def _per_query_head(tensor: torch.Tensor, n_heads: int, dim: int = 0) -> torch.Tensor:
    """Key/value heads repeated to one per query head (grouped-query attention); a no-op otherwise."""
    return tensor if tensor.shape[dim] == n_heads else tensor.repeat_interleave(n_heads // tensor.shape[dim], dim=dim)


def component_shares(
    contributions: Float[torch.Tensor, "component n pos head d_head"], total: Float[torch.Tensor, "n pos head d_head"]
) -> Float[torch.Tensor, "component n pos head"]:
    """||contribution|| / ||total|| per position and destination head (NaN where the total is 0)."""
    norm = total.norm(dim=-1)
    return contributions.norm(dim=-1) / torch.where(norm > 0, norm, torch.nan)


def sequence_shares(
    shares: Float[torch.Tensor, "component n pos head"], selected: Bool[np.ndarray, "n pos"]
) -> Float[np.ndarray, "component n head"]:
    """Per sequence, the mean share over the selected positions (the sequence is the unit)."""
    values = shares.double().cpu().numpy()
    c, n, _, h = values.shape
    moved = values.transpose(0, 3, 1, 2).reshape(c * h, n, -1)  # (component, head) rows of [n, pos]
    means = np.stack([mean_over(row, selected & np.isfinite(row)) for row in moved])
    return means.reshape(c, h, n).transpose(0, 2, 1)


def lead_over_others(shares: Float[np.ndarray, "component n"], source: int) -> Float[np.ndarray, " n"]:
    """Per sequence, the source's share minus the largest share of every other component."""
    others = np.delete(shares, source, axis=0)
    return shares[source] - np.max(others, axis=0)


# Per-sequence shares already computed, by the id of the destination hook tensor they came from
# (forgotten when the tensor is freed), then (layer, kind, where). Checks never change activations.
_SHARES: dict[int, dict[tuple[int, str, str], tuple[list[str], np.ndarray]]] = {}


class CompositionActivationsCheck:
    """One earlier head's share of a later head's q, k or v, per sequence (see the module docstring)."""

    name: ClassVar[str] = "composition_activations"
    description: ClassVar[str] = "share of a later head's query/key/value written by an earlier head (activations, per sequence)"
    statistics: ClassVar[tuple[str, ...]] = ("share", "lead")
    params: ClassVar[tuple[str, ...]] = ("from", "to", "kind", "where")
    model_roles: ClassVar[tuple[str, ...]] = ()
    # The head-role checks' inputs: an induction circuit's composition shows on the repeated half.
    default_inputs: ClassVar[Mapping[str, Any]] = {"kind": "repeated_random_tokens", "seq_len": 32, "n": 64}

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        kind = str(params.get("kind", "")).lower()
        if kind not in KINDS:
            raise CheckError(f"composition_activations needs kind: q, k or v (which input of the later head); got {params.get('kind')!r}")
        if params.get("from") is None or params.get("to") is None:
            raise CheckError("composition_activations needs from: (the earlier head) and to: (the later head), e.g. from: L0H1, to: L1H2")
        source, dest = parse_head(params["from"], shape), parse_head(params["to"], shape)
        if source[0] >= dest[0]:
            raise CheckError(f"{head_name(*source)} is not in an earlier layer than {head_name(*dest)}: a head can only read what earlier layers wrote")
        try:
            where = parse_where(params.get("where"))
        except TokenSetError as error:
            raise CheckError(str(error)) from None
        statistics = [stat for stat in self.statistics if stat in expect]
        if len(statistics) != 1:  # the null is the claimed statistic's own (max over pairs): one per claim
            raise CheckError("composition_activations takes one expectation, share or lead; write two claims for both")
        norm = shape.normalization
        later = list(range(1, shape.n_layers))
        null_hooks = frozenset().union(*(needed_hooks(layer, kind, norm) for layer in later))
        note = (
            f"per sequence, the mean over {where.describe()} of ||{head_name(*source)}'s contribution to {head_name(*dest)}'s "
            f"{kind} through the frozen layer-norm scale|| / ||{kind} - b_{kind.upper()}|| (residual decomposition: embeddings, "
            "each earlier head's z @ W_O, biases, the rest; validated to sum to the hook); lead = the source's share minus the "
            "largest other component's, per sequence"
        )
        return Prepared(
            needs={MODEL: Needs(needed_hooks(dest[0], kind, norm), weights=needed_weights([dest[0]], kind, norm))},
            null_needs=Needs(null_hooks, weights=needed_weights(later, kind, norm)),
            statistics=statistics,
            expectation_source={stat: stat for stat in statistics},
            state={"kind": kind, "source": source, "dest": dest, "where": where, "shape": shape},
            notes=[note],
            units={stat: SHARE_UNIT for stat in statistics},
        )

    def _selected(self, prepared: Prepared, batch: InputBatch) -> np.ndarray:
        try:
            return select(prepared.state["where"], batch)
        except TokenSetError as error:
            raise ValueError(str(error)) from None

    def _layer_shares(self, prepared: Prepared, acts: Activations, batch: InputBatch, layer: int) -> tuple[list[str], np.ndarray]:
        """Component names and per-sequence shares [component, n, head] into every head of ``layer``,
        computed once per chunk: every claim on a model (and each null draw) is handed the same hook
        tensors, so the shares are cached by the destination hook's identity, kind and ``where``
        (measured: 4 claims of the 2L file spent 4.3 s recomputing the same decompositions)."""
        kind, where = prepared.state["kind"], prepared.state["where"]
        hook = acts[f"blocks.{layer}.attn.hook_{kind}"]
        known = _SHARES.setdefault(id(hook), {})
        if not known:
            weakref.finalize(hook, _SHARES.pop, id(hook), None)
        key = (layer, kind, repr(where))
        if key not in known:
            shape: ModelShape = prepared.state["shape"]
            names, contributions, total = destination_contributions(acts, acts, layer, kind, shape.normalization, shape.n_heads)
            known[key] = (names, sequence_shares(component_shares(contributions, total), self._selected(prepared, batch)))
        return known[key]

    def _statistics(self, prepared: Prepared, acts: Activations, batch: InputBatch, source: Head, dest: Head) -> dict[str, np.ndarray]:
        names, shares = self._layer_shares(prepared, acts, batch, dest[0])
        into = shares[:, :, dest[1]]
        row = names.index(head_name(*source))
        return {"share": into[row], "lead": lead_over_others(into, row)}

    def measure(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> dict[str, np.ndarray]:
        values = self._statistics(prepared, activations[MODEL], batches[MODEL], prepared.state["source"], prepared.state["dest"])
        return {stat: values[stat] for stat in prepared.statistics}

    def measure_null(self, prepared: Prepared, activations: Activations, batch: InputBatch) -> np.ndarray:
        """Per sequence, the claimed statistic's maximum over every (earlier head, later head) pair."""
        shape: ModelShape = prepared.state["shape"]
        stat = prepared.statistics[0]
        best = None
        for layer in range(1, shape.n_layers):
            names, shares = self._layer_shares(prepared, activations, batch, layer)
            rows = [names.index(head_name(l, h)) for l in range(layer) for h in range(shape.n_heads)]
            for head in range(shape.n_heads):
                into = shares[:, :, head]
                for row in rows:
                    value = into[row] if stat == "share" else lead_over_others(into, row)
                    best = value if best is None else np.fmax(best, value)
        assert best is not None
        return best

    def null_description(self, prepared: Prepared) -> str:
        return (
            f"per sequence, the maximum over every (earlier head, later head) pair of the same statistic ({KINDS[prepared.state['kind']]}), "
            "on the same architecture with random weights, same inputs"
        )

    def figures(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> list[Figure]:
        """Every component's mean share (rows) of every head of the destination's layer (columns),
        the claimed cell outlined: where the claimed source stands among all the writers."""
        dest, source = prepared.state["dest"], prepared.state["source"]
        names, shares = self._layer_shares(prepared, activations[MODEL], batches[MODEL], dest[0])
        n_heads = shares.shape[2]
        with warnings.catch_warnings():  # a head that reads nothing (zero weights) has no share: blank
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(shares, axis=1)  # component head
        data = {
            "values": rounded(means, 3),
            "row_labels": names,
            "col_labels": [head_name(dest[0], h) for h in range(n_heads)],
            "marked": [[names.index(head_name(*source)), dest[1]]],
            "x_label": "destination head (reads)",
            "y_label": "component of the residual stream (writes)",
            "value_label": SHARE_UNIT,
            "vmin": 0.0,
        }
        kind = KINDS[prepared.state["kind"]]
        caption = (
            f"Mean over the first {shares.shape[1]} sequences of each component's share of each layer-{dest[0]} head's {kind} "
            f"(||contribution|| / ||{kind.lower()} - b||, through the frozen layer-norm scale, over {prepared.state['where'].describe()}). "
            "Outlined: the claimed pair. Shares are norms, not a partition: a column need not sum to 1."
        )
        return [Figure("heatmap", f"Shares of layer {dest[0]}'s {kind} inputs, by component", data, caption)]


register(CompositionActivationsCheck())
