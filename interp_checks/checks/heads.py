"""Attention-head roles: induction, previous-token and duplicate-token heads.

Measured statistic (``score``), per sequence and head: the head's attention on the keys the role
names, averaged over the query positions where the role is defined. For an induction head on a
repeated sequence that is, for each token of the repeat, the attention to the token after its
first occurrence. Rows where the role names no key (the first half of a repeated random sequence,
for an induction head) are left out of the average rather than counted as zero. That is the one
difference from ``transformer_lens.head_detector.detect_head`` with its default "mul" measure,
which divides by all rows; ``tests/integration/test_heads_vs_detect_head.py`` checks the two agree
after that correction. The role masks are the same as ``detect_head``'s patterns.

Null: the same statistic on a random-weights twin of the model, taking per sequence the maximum
over every head of the model. Claims name heads a researcher found by looking at all of them, so
the fair null for "this head scores high" is the best head of an untrained model, not one head.

Pictures (``figures``): a heatmap of a claimed head's attention pattern on the first chunk, with
the role's keys marked; for claims about several heads, the claimed head scoring highest on the
chunk, and for "exactly these heads" also the highest-scoring head outside the claim.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
from jaxtyping import Bool, Float

from interp_checks.checks.base import MODEL, Activations, CheckError, ModelShape, Needs, Prepared, parse_component, register
from interp_checks.figure_data import crop_around
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch

PATTERN_HOOK = "blocks.{layer}.attn.hook_pattern"
HEATMAP_SIZE = 40  # the most positions a pattern heatmap shows each way: 28 of them at 48 made report.json 2.4 MB
SHARED_STRUCTURE = 0.8  # share of the chunk's role cells that must be common to most sequences to average them


def parse_head(text: Any, shape: ModelShape) -> tuple[int, int]:
    """``"L1H0"`` -> (1, 0), checked against the model's layers and heads (``Site.parse``)."""
    site = parse_component(text, shape, ("head",), "head")
    return site.layer, int(site.head)  # type: ignore[arg-type]


def head_name(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


# --- role masks: which keys each query should attend to -------------------------------------------


def previous_token_mask(tokens: torch.Tensor) -> Bool[torch.Tensor, "batch q k"]:
    """Each query attends to the position just before it."""
    n, pos = tokens.shape
    mask = torch.zeros(pos, pos, dtype=torch.bool, device=tokens.device)
    mask[1:, :-1] = torch.eye(pos - 1, dtype=torch.bool, device=tokens.device)
    return mask.expand(n, pos, pos)


def duplicate_token_mask(tokens: torch.Tensor) -> Bool[torch.Tensor, "batch q k"]:
    """Each query attends to earlier occurrences of its own token."""
    same = tokens[:, :, None] == tokens[:, None, :]
    return torch.tril(same, diagonal=-1)


def induction_mask(tokens: torch.Tensor) -> Bool[torch.Tensor, "batch q k"]:
    """Each query attends to the token after an earlier occurrence of its own token."""
    duplicate = duplicate_token_mask(tokens)
    shifted = torch.zeros_like(duplicate)
    shifted[:, :, 1:] = duplicate[:, :, :-1]
    return torch.tril(shifted)


ROLE_MASKS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "induction_head": induction_mask,
    "previous_token_head": previous_token_mask,
    "duplicate_token_head": duplicate_token_mask,
}


def role_scores(
    pattern: Float[torch.Tensor, "batch head q k"], mask: Bool[torch.Tensor, "batch q k"]
) -> Float[torch.Tensor, "batch head"]:
    """Mean over defined query rows of the attention mass on the role's keys (NaN if no row is defined)."""
    mass = (pattern * mask[:, None].to(pattern.dtype)).sum(-1)  # batch head q
    defined = mask.any(-1).to(pattern.dtype)  # batch q
    count = defined.sum(-1)  # batch
    total = (mass * defined[:, None]).sum(-1)
    return total / count[:, None]  # 0/0 -> NaN for sequences where the role is never defined


def scores_by_layer(activations: Activations, layers: list[int], mask: torch.Tensor) -> dict[int, np.ndarray]:
    """{layer: [batch, head] scores} for the given layers."""
    out = {}
    for layer in layers:
        pattern = activations[PATTERN_HOOK.format(layer=layer)].float()
        out[layer] = role_scores(pattern, mask.to(pattern.device)).cpu().numpy()
    return out


class HeadRoleCheck:
    """One attention-head role. Claim keys: ``head``, ``heads``, ``layer`` or ``heads_with_role``.

    * ``head: L1H0`` — statistic ``score`` of that head.
    * ``heads: [L1H0, L1H3]`` — every listed head has the role: one expectation per head.
    * ``layer: 0`` (or ``heads: [...]``) with ``max_score`` — a claim about the largest of the
      heads' mean scores: ``"< 0.2"`` says no head of the group has the role, ``">= 0.5"`` that some
      head has it (which one need not be named; the search over heads is paid for by a Bonferroni
      correction). Judged on the heads' means, never on the mean of per-sequence maxima, which is
      biased upwards (``stats.evaluate_largest_mean``).
    * ``heads_with_role: [L1H0, L1H3]`` — exactly these heads have the role: each listed head meets
      ``expect`` and every other head of the model meets its negation. All must hold (an
      intersection-union test); the engine still adjusts every expectation's p-value with the
      session's family, which is conservative.
    """

    statistics: ClassVar[tuple[str, ...]] = ("score", "max_score")
    params: ClassVar[tuple[str, ...]] = ("head", "heads", "layer", "heads_with_role")
    model_roles: ClassVar[tuple[str, ...]] = ()
    # What the bundled head-role claims use: every role is defined on a repeated random sequence (the
    # repeat half for induction and duplicate-token heads, every position for previous-token heads).
    # 64 sequences give an interval about 0.01 wide for a zoo head (measured: the 2L's L1H2, induction
    # score 0.778 [0.772, 0.785]); the model and its 5 random twins took 1.5 s on 1 busy CPU thread.
    default_inputs: ClassVar[Mapping[str, Any]] = {"kind": "repeated_random_tokens", "seq_len": 32, "n": 64}

    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        given = [key for key in self.params if params.get(key) is not None]
        if len(given) != 1:
            raise CheckError(
                f"{self.name} needs exactly one of head, heads, layer or heads_with_role"
                + (f"; got {', '.join(given)}" if given else "")
            )
        key = given[0]
        value = params[key]
        if key == "layer":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < shape.n_layers:
                raise CheckError(f"layer {value!r} is outside the model, which has layers 0..{shape.n_layers - 1}")
            selected = [(value, h) for h in range(shape.n_heads)]
        elif key == "head":
            selected = [parse_head(value, shape)]
        else:
            if not isinstance(value, list) or not value:
                raise CheckError(f"{key} must be a non-empty list of heads like [L1H0, L1H3]")
            selected = [parse_head(item, shape) for item in value]
            if len(set(selected)) != len(selected):
                raise CheckError(f"{key} lists a head twice: {value}")
        if "max_score" in expect and key == "head":
            raise CheckError("max_score is for a group of heads (heads, layer); for one head use score")
        if "max_score" in expect and key == "heads_with_role":
            raise CheckError("heads_with_role takes score (each listed head has the role, no other has it); use layer or heads with max_score")
        if "max_score" in expect and expect["max_score"].op == "between":
            raise CheckError(
                "max_score takes a one-sided expectation: '< t' (no head of the group reaches t) or '>= t' "
                "(some head does); for a band, write two claims"
            )
        if key == "heads_with_role" and getattr(expect.get("score"), "op", None) == "between":
            raise CheckError(
                "heads_with_role needs a one-sided score expectation such as \">= 0.5\": every other head must "
                "meet its opposite, and 'between' has no one-sided opposite"
            )

        statistics: list[str] = []
        source: dict[str, str] = {}
        negated: set[str] = set()
        if "score" in expect:
            for layer, head in selected:
                stat = "score" if key == "head" else f"score[{head_name(layer, head)}]"
                statistics.append(stat)
                source[stat] = "score"
            if key == "heads_with_role":
                for layer in range(shape.n_layers):
                    for head in range(shape.n_heads):
                        if (layer, head) not in selected:
                            stat = f"score[{head_name(layer, head)}] (not in role)"
                            statistics.append(stat)
                            source[stat] = "score"
                            negated.add(stat)
        members: dict[str, list[str]] = {}
        if "max_score" in expect:
            statistics.append("max_score")
            source["max_score"] = "max_score"
            members["max_score"] = [head_name(layer, head) for layer, head in selected]
        all_heads = [(l, h) for l in range(shape.n_layers) for h in range(shape.n_heads)]
        measured = all_heads if key == "heads_with_role" else selected
        layers = sorted({layer for layer, _ in measured})
        return Prepared(
            needs={MODEL: Needs(frozenset(PATTERN_HOOK.format(layer=l) for l in layers))},
            null_needs=Needs(frozenset(PATTERN_HOOK.format(layer=l) for l in range(shape.n_layers))),
            statistics=statistics,
            expectation_source=source,
            negated=frozenset(negated),
            state={"selected": selected, "layers": layers, "key": key, "shape": shape},
            members=members,
            units={stat: "attention probability" for stat in statistics},
        )

    def _mask(self, batch: InputBatch) -> torch.Tensor:
        return ROLE_MASKS[self.name](torch.as_tensor(batch.tokens))

    def measure(
        self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]
    ) -> dict[str, np.ndarray]:
        scores = scores_by_layer(activations[MODEL], prepared.state["layers"], self._mask(batches[MODEL]))
        out: dict[str, np.ndarray] = {}
        for stat in prepared.statistics:
            if stat == "score":
                layer, head = prepared.state["selected"][0]
                out[stat] = scores[layer][:, head]
            elif stat.startswith("score["):
                layer, head = parse_head(stat[len("score[") :].split("]")[0], prepared.state["shape"])
                out[stat] = scores[layer][:, head]
            elif stat == "max_score":  # [sequences, heads]: judged on the largest head mean, see Prepared.members
                out[stat] = np.stack([scores[l][:, h] for l, h in prepared.state["selected"]], axis=1)
        return out

    def figures(
        self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]
    ) -> list[Figure]:
        """The attention pattern of the head(s) the claim is about, on the first chunk, role keys marked."""
        batch = batches[MODEL]
        mask = self._mask(batch)
        one = prepared.state["key"] == "head"  # nothing to choose between: no scores needed
        scores = {} if one else scores_by_layer(activations[MODEL], prepared.state["layers"], mask)
        return [
            pattern_figure(activations[MODEL][PATTERN_HOOK.format(layer=layer)][:, head], mask, batch, self.name, head_name(layer, head), why)
            for (layer, head), why in figure_heads(prepared.state, scores)
        ]

    def measure_null(self, prepared: Prepared, activations: Activations, batch: InputBatch) -> np.ndarray:
        shape: ModelShape = prepared.state["shape"]
        scores = scores_by_layer(activations, list(range(shape.n_layers)), self._mask(batch))
        return np.max(np.concatenate([scores[l] for l in range(shape.n_layers)], axis=1), axis=1)

    def null_description(self, prepared: Prepared) -> str:
        return "max over all heads of the same architecture with random weights, same inputs"


def figure_heads(state: Mapping[str, Any], scores: Mapping[int, np.ndarray]) -> list[tuple[tuple[int, int], str]]:
    """Which heads to picture (at most two), each with why it was chosen: the one claimed head; of
    several, the claimed head with the highest mean score on the chunk; for ``heads_with_role`` also
    the highest-scoring head outside the claim (the one closest to breaking "no other head")."""
    selected: list[tuple[int, int]] = state["selected"]
    if state["key"] == "head":
        return [(selected[0], "the claimed head")]

    def chunk_mean(layer_head: tuple[int, int]) -> float:
        column = scores[layer_head[0]][:, layer_head[1]]
        return float(np.nanmean(column)) if np.isfinite(column).any() else -np.inf

    chosen = [(max(selected, key=chunk_mean), f"the highest-scoring of the {len(selected)} claimed heads on these sequences")]
    if state["key"] == "heads_with_role":
        others = [(l, h) for l in sorted(scores) for h in range(scores[l].shape[1]) if (l, h) not in selected]
        if others:
            chosen.append((max(others, key=chunk_mean), "the highest-scoring head outside the claim on these sequences"))
    return chosen


def shares_structure(mask: np.ndarray, valid: np.ndarray) -> bool:
    """Whether the sequences' role masks are one structure (repeated random tokens: every sequence
    repeats at the same offset), so a mean pattern over sequences means something: every row is
    unpadded, and most of the chunk's role cells lie where at least half the sequences have one."""
    if not valid.all() or not mask.any():
        return False
    common = mask.mean(axis=0) >= 0.5
    return bool((mask & common).sum() >= SHARED_STRUCTURE * mask.sum())


def pattern_figure(
    pattern: torch.Tensor, mask: torch.Tensor, batch: InputBatch, role: str, head: str, why: str
) -> Figure:
    """A heatmap of one head's attention ([sequences, query, key] on the first chunk) with the
    role's keys marked: the mean over the sequences when they share a structure (the marked cells
    are then those the role names in at least half of them), else the first sequence in which the
    role is defined (its own mask, its tokens as labels). At most HEATMAP_SIZE positions each way,
    cropped around the marked cells (``figure_data.crop_around``)."""
    pattern_np = pattern.float().cpu().numpy()
    mask_np = mask.cpu().numpy()
    n = pattern_np.shape[0]
    if shares_structure(mask_np, batch.valid):
        values, marked = pattern_np.mean(axis=0), mask_np.mean(axis=0) >= 0.5
        labels, unit = [str(p) for p in range(values.shape[0])], "position"
        shown = f"Mean attention pattern over the first {n} sequences of the inputs (they share one structure)"
        marks = "outlined: where the role names a key in at least half of them"
    else:
        defined = [i for i in range(n) if mask_np[i].any()]
        row = defined[0] if defined else 0
        length = int(batch.valid[row].sum())
        values, marked = pattern_np[row, :length, :length], mask_np[row, :length, :length]
        labels, unit = batch.token_strings(row, 0, length), "token"
        shown = f"Attention pattern on sequence {row} of the inputs, " + (
            "the first in which the role is defined" if defined else "(the role is defined in none of the first chunk)"
        )
        marks = "outlined: the keys the role names"
    window = crop_around(marked, HEATMAP_SIZE)
    if window.crops(values.shape):
        shown += (
            f"; cropped to queries {window.row_start}-{window.row_stop - 1} and keys {window.col_start}-{window.col_stop - 1}"
            f" of {values.shape[0]} positions, around the cells the role names"
        )
    rows, cols = np.nonzero(window.take(marked))
    data = {
        "values": rounded(window.take(values), 3),
        "row_labels": labels[window.row_start : window.row_stop],
        "col_labels": labels[window.col_start : window.col_stop],
        "marked": [[int(r), int(c)] for r, c in zip(rows, cols)],
        "x_label": f"key {unit} (attended to)",
        "y_label": f"query {unit} (attending)",
        "value_label": "attention probability",
        "vmin": 0.0,
        "vmax": 1.0,
    }
    role_name = role.replace("_", " ")
    caption = f"{shown}. {head} is {why}; {marks} ({role_name} keys)."
    return Figure("heatmap", f"{head} attention pattern, {role_name} keys marked", data, caption)


for _name, _description in (
    ("induction_head", "attention from each token to the token after its previous occurrence"),
    ("previous_token_head", "attention from each token to the token before it"),
    ("duplicate_token_head", "attention from each token to its previous occurrences"),
):
    register(HeadRoleCheck(_name, _description))
