"""Composition between attention heads: does a later head read what an earlier head writes?

``check: composition`` is a statistic of the weights (``Prepared.sampling = "weights"``): no input
runs through the model. For a source head S (earlier layer) and a destination head D, the
composition score is TransformerLens's (``utilities.matrix.composition_scores``, as
``TransformerBridge.all_composition_scores`` computes it; Elhage et al. 2021):

    score = ||W_OV(S) M(D)||_F / (||W_OV(S)||_F ||M(D)||_F),   W_OV = W_V W_O,

with M(D) = W_Q W_K^T for Q-composition, (W_Q W_K^T)^T for K-composition and W_V W_O for
V-composition. It is scale-invariant in each factor and ignores layer norms (TransformerLens's
definition; an unfolded layer-norm weight is left out as it leaves it out).

The claim is on ``z``: the score's distance above the same score on random-weights twins of the
same shapes, in null standard deviations (``stats.evaluate_against_draws``: BCa bootstrap over the
twins; the raw score, the null's mean and sd and the empirical tail p are in the note). The null of
one claim pools, per twin, the score of **every** (source, destination) pair of the claim's kind
between an earlier and a later layer. Pooling is valid because every twin's weights are iid per
matrix and every head has the same shapes, and the score is scale-invariant, so every such pair has
the same null distribution whatever its layers (``tests/integration/test_composition.py`` checks the
layer pairs agree on random twins); the pairs of one twin share its weights, so the twin, not the
pair, is the unit the bootstrap resamples. Twins: enough for at least ``MIN_NULL_VALUES`` pooled
values and at least ``MIN_TWINS`` twins. A twin here is one random-weights draw of the attention
weights: for native models drawn directly from TransformerLens's init (``models.init_draws``, no
bridge built), and all draws' scores are computed at once (``measure_null_draws``), so 200 draws
cost about as much as one twin bridge did.

Forms of a claim (each expectation is the z of one pair; a claim of several is their intersection):

* ``from: L0H1, to: L1H2, kind: k`` — statistic ``z``;
* ``to: L1H2, kind: k, sources: [L0H0, L0H1]`` — "the K-composition sources of L1H2 among the heads
  of earlier layers are exactly these": every listed pair meets ``expect`` and every other earlier
  head's pair meets its negation (``Prepared.negated``, as ``heads_with_role`` does). Listing k
  sources with a threshold between them and the rest also says they are the top k.

A head whose OV or QK circuit is exactly zero (a dead head) has an undefined score (0/0): a claim
that needs it is an error naming the head, never a verdict.

``check: composition_activations`` is the same question asked of activations, per sequence (see
``interp_checks.checks.composition_activations``).
"""

from __future__ import annotations

import math
import weakref
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from jaxtyping import Float

from interp_checks.checks.base import MODEL, WEIGHT_NULL, Activations, CheckError, ModelShape, Needs, Prepared, register
from interp_checks.checks.heads import head_name, parse_head
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch

KINDS: dict[str, str] = {"q": "Q", "k": "K", "v": "V"}  # claim key -> TransformerLens's mode
WEIGHTS = frozenset({"W_Q", "W_K", "W_V", "W_O"})
MIN_NULL_VALUES = 200  # pooled null scores per claim (the issue: "at least 200 draws")
MIN_TWINS = 200  # independent random-weights draws, whatever the pooling: the bootstrap resamples draws

Pair = tuple[tuple[int, int], tuple[int, int]]  # ((source layer, head), (destination layer, head))


# --- scores: TransformerLens's own function -------------------------------------------------------


# Grids already computed, per W_O tensor and kind: a twin's weights (``ModelCache.random_weights``)
# are the same tensors for every claim on the model, and TransformerLens's factored computation is
# most of a composition claim's time (measured: 126 grids took 19.5 of the 2L file's 23.7 s).
# Keyed by the tensor's identity (a tensor's == is elementwise), forgotten when the tensor is freed.
_GRIDS: dict[int, dict[str, torch.Tensor]] = {}


def composition_score_grid(
    weights: Mapping[str, torch.Tensor], kind: str
) -> Float[torch.Tensor, "src_layer src_head dst_layer dst_head"]:
    """``_score_grid``, computed once per weights and kind (weights are read-only to checks)."""
    key = weights["W_O"]
    if id(key) not in _GRIDS:
        _GRIDS[id(key)] = {}
        weakref.finalize(key, _GRIDS.pop, id(key), None)
    known = _GRIDS[id(key)]
    if kind not in known:
        known[kind] = _score_grid(weights, kind)
    return known[kind]


def _score_grid(
    weights: Mapping[str, torch.Tensor], kind: str
) -> Float[torch.Tensor, "src_layer src_head dst_layer dst_head"]:
    """Every (source, destination) head pair's composition score, unmasked, exactly as
    ``TransformerBridge.all_composition_scores(KINDS[kind])`` builds it from ``W_Q, W_K, W_V, W_O``
    stacked [layer, head, ...] (key/value heads repeated for grouped-query attention)."""
    from transformer_lens import FactoredMatrix
    from transformer_lens.utilities.matrix import composition_scores

    n_heads = weights["W_Q"].shape[1]

    def expand(w: torch.Tensor) -> torch.Tensor:
        return w if w.shape[1] == n_heads else w.repeat_interleave(n_heads // w.shape[1], dim=1)

    W_V, W_O = expand(weights["W_V"]).float(), weights["W_O"].float()
    left = FactoredMatrix(W_V, W_O)
    if kind == "v":
        right = left
    else:
        qk = FactoredMatrix(weights["W_Q"].float(), expand(weights["W_K"]).float().transpose(-2, -1))
        right = qk if kind == "q" else qk.T
    with torch.inference_mode(), np.errstate(all="ignore"):
        return composition_scores(left, right, broadcast_dims=True)


def composition_score_grids_of_draws(
    weights: Mapping[str, torch.Tensor], kind: str
) -> Float[torch.Tensor, "draw src_layer src_head dst_layer dst_head"]:
    """``_score_grids_of_draws``, computed once per stacked weights and kind (cached as
    ``composition_score_grid`` is: the engine hands every claim on a model the same draws)."""
    key = weights["W_O"]
    if id(key) not in _GRIDS:
        _GRIDS[id(key)] = {}
        weakref.finalize(key, _GRIDS.pop, id(key), None)
    known = _GRIDS[id(key)]
    if f"draws:{kind}" not in known:
        known[f"draws:{kind}"] = _score_grids_of_draws(weights, kind)
    return known[f"draws:{kind}"]


def _score_grids_of_draws(
    weights: Mapping[str, torch.Tensor], kind: str
) -> Float[torch.Tensor, "draw src_layer src_head dst_layer dst_head"]:
    """``_score_grid`` of every draw of stacked weights [draw, layer, head, ...], the same numbers
    (to float32 rounding; ``tests/integration/test_init_draws.py``) by a cheaper route than
    TransformerLens's SVDs, which took 14 s for 200 draws of one kind on the 4L zoo model.

    With W_OV(S) = V O and M(D) = A B (q: A = W_Q, B = W_K^T; k: A = W_K, B = W_Q^T; v: A = W_V,
    B = W_O), P(S) = O^T (V^T V) O and R(D) = A (B B^T) A^T (both d_model x d_model, symmetric):
    ||V O A B||_F^2 = <P(S), R(D)>, ||V O||_F^2 = tr P(S), ||A B||_F^2 = tr R(D). Float64; a dead
    head is 0/0 = NaN, as in TransformerLens.
    """
    n_heads = weights["W_Q"].shape[2]

    def expand(w: torch.Tensor) -> torch.Tensor:
        return w if w.shape[2] == n_heads else w.repeat_interleave(n_heads // w.shape[2], dim=2)

    V, O = expand(weights["W_V"]).double(), weights["W_O"].double()  # [D, L, H, m, h], [D, L, H, h, m]
    Q, K = weights["W_Q"].double(), expand(weights["W_K"]).double()
    A, B = {"q": (Q, K.transpose(-2, -1)), "k": (K, Q.transpose(-2, -1)), "v": (V, O)}[kind]
    draws, layers, d_model = V.shape[0], V.shape[1], V.shape[-2]
    heads = layers * n_heads
    flat = lambda t: t.reshape(draws, heads, *t.shape[-2:])  # noqa: E731  [D, heads, a, b]
    V, O, A, B = flat(V), flat(O), flat(A), flat(B)
    scores = torch.empty(draws, heads, heads, dtype=torch.float64)
    chunk = max(1, _GRAM_BUDGET_BYTES // (2 * heads * d_model * d_model * 8))
    for begin in range(0, draws, chunk):  # bounded memory: P and R are [draws, heads, d_model, d_model]
        part = slice(begin, begin + chunk)
        P = O[part].transpose(-2, -1) @ (V[part].transpose(-2, -1) @ V[part]) @ O[part]
        R = A[part] @ (B[part] @ B[part].transpose(-2, -1)) @ A[part].transpose(-2, -1)
        comp_sq = P.flatten(-2) @ R.flatten(-2).transpose(-2, -1)  # [d, src, dst]
        left_sq, right_sq = P.diagonal(dim1=-2, dim2=-1).sum(-1), R.diagonal(dim1=-2, dim2=-1).sum(-1)
        scores[part] = comp_sq.clamp(min=0).sqrt() / left_sq.sqrt()[:, :, None] / right_sq.sqrt()[:, None, :]
    return scores.reshape(draws, layers, n_heads, layers, n_heads).float()


_GRAM_BUDGET_BYTES = 64 * 2**20


def earlier_to_later_pairs(shape: ModelShape) -> list[Pair]:
    """Every (source, destination) pair with the source in an earlier layer: where composition can be."""
    heads = [(layer, head) for layer in range(shape.n_layers) for head in range(shape.n_heads)]
    return [(s, d) for s in heads for d in heads if s[0] < d[0]]


def pair_name(pair: Pair) -> str:
    (sl, sh), (dl, dh) = pair
    return f"{head_name(sl, sh)}->{head_name(dl, dh)}"


def pair_scores(grid: torch.Tensor, pairs: list[Pair]) -> np.ndarray:
    return np.array([float(grid[s[0], s[1], d[0], d[1]]) for s, d in pairs])


# --- the weights check ----------------------------------------------------------------------------


class CompositionCheck:
    """Q-, K- or V-composition between heads, from the weights, as z against random-weights twins."""

    name: ClassVar[str] = "composition"
    description: ClassVar[str] = "composition score of head pairs (weights), z against random-weights twins"
    statistics: ClassVar[tuple[str, ...]] = ("z",)
    params: ClassVar[tuple[str, ...]] = ("from", "to", "kind", "sources")
    model_roles: ClassVar[tuple[str, ...]] = ()
    # No input runs through the model; the engine still wants an input spec to group claims by.
    default_inputs: ClassVar[Mapping[str, Any]] = {"kind": "random_tokens", "seq_len": 2, "n": 1}

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        kind = str(params.get("kind", "")).lower()
        if kind not in KINDS:
            raise CheckError(f"composition needs kind: q, k or v (which input of the later head reads the earlier one); got {params.get('kind')!r}")
        if params.get("to") is None:
            raise CheckError("composition needs to: the later head, e.g. to: L1H2")
        dest = parse_head(params["to"], shape)
        if dest[0] == 0:
            raise CheckError(f"to: {params['to']} is in layer 0, which has no earlier head to compose with")
        if (params.get("from") is None) == (params.get("sources") is None):
            raise CheckError("composition needs exactly one of from: (one earlier head) or sources: (exactly these earlier heads)")
        if getattr(expect.get("z"), "op", None) == "between" and params.get("sources") is not None:
            raise CheckError("sources: needs a one-sided z expectation such as \">= 3\": every other earlier head must meet its opposite")
        earlier = [(layer, head) for layer in range(dest[0]) for head in range(shape.n_heads)]
        listed = [parse_head(params["from"], shape)] if params.get("from") is not None else self._sources(params["sources"], shape)
        for source in listed:
            if source[0] >= dest[0]:
                raise CheckError(
                    f"{head_name(*source)} is not in an earlier layer than {head_name(*dest)}: a head can only read what earlier layers wrote"
                )
        statistics, pairs, negated = [], {}, set()
        if params.get("from") is not None:
            statistics, pairs = ["z"], {"z": (listed[0], dest)}
        else:
            for source in earlier:
                stat = f"z[{pair_name((source, dest))}]" + ("" if source in listed else " (not a source)")
                statistics.append(stat)
                pairs[stat] = (source, dest)
                if source not in listed:
                    negated.add(stat)
        null_pairs = earlier_to_later_pairs(shape)
        twins = max(MIN_TWINS, math.ceil(MIN_NULL_VALUES / len(null_pairs)))
        note = (
            f"{KINDS[kind]}-composition score (TransformerLens composition_scores, ignores layer norms); a statistic of the "
            f"weights, judged as z against {twins} random-weights draws (twins) x {len(null_pairs)} earlier-to-later head pairs each"
        )
        return Prepared(
            needs={MODEL: Needs(frozenset(), weights=WEIGHTS)},
            null_needs=Needs(frozenset(), weights=WEIGHTS),
            statistics=statistics,
            expectation_source={stat: "z" for stat in statistics},
            negated=frozenset(negated),
            state={"kind": kind, "pairs": pairs, "null_pairs": null_pairs, "dest": dest, "shape": shape},
            notes=[note],
            units={stat: f"{KINDS[kind]}-composition score" for stat in statistics},
            sampling="weights",
            weight_null_draws=twins,
        )

    @staticmethod
    def _sources(value: Any, shape: ModelShape) -> list[tuple[int, int]]:
        if not isinstance(value, list) or not value:
            raise CheckError("sources must be a non-empty list of heads like [L0H0, L0H1]")
        heads = [parse_head(item, shape) for item in value]
        if len(set(heads)) != len(heads):
            raise CheckError(f"sources lists a head twice: {value}")
        return heads

    def measure(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> dict[str, float]:
        """The raw score of each claimed pair; a dead head's undefined score is an error naming it."""
        grid = composition_score_grid(activations[MODEL], prepared.state["kind"])
        out = {stat: float(grid[s[0], s[1], d[0], d[1]]) for stat, (s, d) in prepared.state["pairs"].items()}
        undefined = [pair_name(prepared.state["pairs"][stat]) for stat, value in out.items() if not math.isfinite(value)]
        if undefined:
            raise CheckError(
                f"composition score undefined (0/0) for {', '.join(undefined)}: a head's OV or QK weights are exactly zero, "
                "so it writes or reads nothing; leave dead heads out of composition claims"
            )
        return out

    def measure_null(self, prepared: Prepared, activations: Activations, batch: Any) -> np.ndarray:
        """One random twin's scores of every earlier-to-later pair of the claim's kind (pooled)."""
        return pair_scores(composition_score_grid(activations, prepared.state["kind"]), prepared.state["null_pairs"])

    def measure_null_draws(self, prepared: Prepared, weights: Activations) -> np.ndarray:
        """Every draw's ``measure_null`` at once ([draws, pooled pairs]), from stacked weights."""
        grids = composition_score_grids_of_draws(weights, prepared.state["kind"])
        (src_l, src_h), (dst_l, dst_h) = (np.array(side).T for side in zip(*prepared.state["null_pairs"]))
        return grids[:, src_l, src_h, dst_l, dst_h].double().numpy()

    def null_description(self, prepared: Prepared) -> str:
        return (
            f"{KINDS[prepared.state['kind']]}-composition scores of every earlier-to-later head pair of "
            f"{prepared.weight_null_draws} random-weights draws (twins of the same shapes), pooled per draw"
        )

    def figures(self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]) -> list[Figure]:
        """The claim's kind of composition scores of every source head (rows) into every head of a
        later layer (columns), with the null's band in the caption."""
        weights = activations[MODEL]
        null = np.asarray(weights[WEIGHT_NULL]) if WEIGHT_NULL in weights else None
        return [score_matrix_figure(composition_score_grid(weights, prepared.state["kind"]), prepared, null)]


def null_band(null: np.ndarray | None) -> str:
    """The null's mean, sd and central 95% of pooled values, in words."""
    if null is None or null.size < 2:
        return "the null was not measured"
    low, high = np.quantile(null, [0.025, 0.975])
    return (
        f"random-weights draws ({null.shape[0]} draws, {null.size} pairs): mean {null.mean():.3g}, sd {null.std(ddof=1):.2g}, "
        f"95% of pairs in [{low:.3g}, {high:.3g}]; z = (score - mean) / sd"
    )


def score_matrix_figure(grid: torch.Tensor, prepared: Prepared, null: np.ndarray | None = None) -> Figure:
    """Heatmap data: sources x destinations, blank (None) where the destination is not in a later
    layer than the source, the claimed pairs outlined, the null's band in the caption."""
    shape: ModelShape = prepared.state["shape"]
    heads = [(layer, head) for layer in range(shape.n_layers) for head in range(shape.n_heads)]
    sources = [h for h in heads if h[0] < shape.n_layers - 1]
    dests = [h for h in heads if h[0] > 0]
    values = np.array([[float(grid[s[0], s[1], d[0], d[1]]) if s[0] < d[0] else math.nan for d in dests] for s in sources])
    claimed = set(prepared.state["pairs"].values())
    marked = [[i, j] for i, s in enumerate(sources) for j, d in enumerate(dests) if (s, d) in claimed]
    kind = KINDS[prepared.state["kind"]]
    data = {
        "values": rounded(values, 3),
        "row_labels": [head_name(*s) for s in sources],
        "col_labels": [head_name(*d) for d in dests],
        "marked": marked,
        "x_label": "destination head (reads)",
        "y_label": "source head (writes)",
        "value_label": f"{kind}-composition score",
        "vmin": 0.0,
    }
    caption = (
        f"{kind}-composition scores (TransformerLens composition_scores) of every source head into every head of a later "
        f"layer; blank: not later. Outlined: the claimed pair(s). Null band: {null_band(null)}."
    )
    return Figure("heatmap", f"{kind}-composition scores, sources x destinations", data, caption)


register(CompositionCheck())
