"""Ablation importance: how much worse does the model predict when an attention head is removed?

Estimand: the **total effect** of removing a head on next-token loss. Per sequence, the mean over
the tokens ``where:`` selects (default: every predicted token) of

    loss_increase = loss(model with the head ablated) - loss(model)   (nats per token)

where loss is -log p(actual next token) (``checks._interventions.loss_increase``). The head's
output (``blocks.L.attn.hook_z``, its slice, before ``W_O``) is replaced at every position by the
claim's ``method``, which the answer depends on and which every result names:

* ``mean`` (the default): its per-position mean over the claim's inputs: the head says what it
  says on average, so the ablation removes the information it carries about this input and no
  more (zero ablation also removes the constant part, e.g. a bias other layers expect);
* ``zero``: zeros (a head with zero weights then changes nothing, exactly);
* ``resample``: its value on another input of the same chunk (a seeded derangement).

The **direct effect** (statistic ``direct_loss_increase``) is the same change read straight off
the logits: the head's change goes through the final layer norm with its scale frozen at the clean
run's and no later layer sees it. Later components often compensate for a removed head (self-
repair, McGrath et al. 2023), so the total effect understates what a head does; every result
gives each head's direct effect beside its total effect in a note, and a claim may state either.

Claims (``head``, ``heads`` or ``heads: all``; ``excluding:`` drops heads from ``heads``):

* ``loss_increase`` / ``direct_loss_increase``: one head, or each listed head as its own
  expectation (``loss_increase[L1H0]``), or the listed heads ablated together (``together: true``);
* ``max_loss_increase``: the largest of the listed heads' mean loss increases, each head ablated
  alone ("no head outside {S} raises the loss by more than X": ``heads: all, excluding: S``, ``<
  X``); the search over heads is paid for (``Prepared.members``, ``stats.evaluate_largest_mean``);
* ``rank``: ``head: L1H0`` with ``rank: "<= k"``: L1H0 is among the k heads (of ``among:``, default
  every head) whose ablation raises the loss most. Rank uncertainty: judged by paired tests of
  L1H0 against every other head (``stats.rank``): the claim holds when L1H0 significantly beats all
  but k - 1 of them, with the multiplicity paid for; the observed rank, its bootstrap interval and
  the share of bootstrap resamples in which L1H0 is in the top k are reported beside.

"Head X matters though it is not an induction head" is two claims, not one statistic: an ablation
claim (``loss_increase >= X``) and an ``induction_head`` claim expected refuted (or ``score <
0.2``). Each is judged with its own null and enters the family's multiplicity adjustment; a
combined statistic would mix units (nats and attention probability) and hide which half failed.

Null: the same statistic on the random-weights twin (same inputs, same ablation): per sequence,
the twin's loss increase for the same head; for several heads, the twin's largest over the same
heads per sequence (the fair null for a head found by looking at all of them); for a rank claim,
the twin's margin of the same head over its k-th strongest other head. Its path is the claim's
(direct when the claim states only direct effects).

Picture: for claims over several heads, a layer-by-head grid of the total and of the direct effect
on the first chunk, each cell with its interval in the data and the largest in the caption.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Mapping

import numpy as np

from interp_checks.checks._interventions import LOSS_UNIT, loss_increase
from interp_checks.checks.base import MODEL, Activations, CheckError, ModelShape, Needs, Prepared, register
from interp_checks.checks.heads import head_name, parse_head
from interp_checks.figure_data import head_grid
from interp_checks.figures import Figure
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import TokenSetError, parse_where, select
from interp_checks.interventions import Intervention, head_site
from interp_checks.stats.rank import claimed_k

METHODS = ("mean", "zero", "resample")
DEFAULT_METHOD = "mean"
RESAMPLE_SEED = 0
DIRECT_NOTE = "direct effect beside total effect"  # the start of the note that measure keeps up to date
NOTE_HEADS = 16  # heads listed in that note (those with the largest total effects)

METHOD_WORDS = {
    "mean": "its per-position mean over the claim's inputs",
    "zero": "zeros",
    "resample": f"its value on another input of the same chunk (seeded derangement, seed {RESAMPLE_SEED})",
}

Head = tuple[int, int]


def _heads_of(params: Mapping[str, Any], shape: ModelShape) -> tuple[str, list[Head]]:
    """(which key named them, the heads) from ``head``/``heads``/``excluding``."""
    given = [key for key in ("head", "heads") if params.get(key) is not None]
    if len(given) != 1:
        raise CheckError("ablation needs exactly one of head: L1H0 or heads: [L1H0, ...] (or heads: all)")
    every = [(l, h) for l in range(shape.n_layers) for h in range(shape.n_heads)]
    if given[0] == "head":
        if params.get("excluding") is not None:
            raise CheckError("excluding: drops heads from heads: (e.g. heads: all); it makes no sense with one head")
        return "head", [parse_head(params["head"], shape)]
    value = params["heads"]
    if value == "all":
        heads = every
    elif isinstance(value, list) and value:
        heads = [parse_head(item, shape) for item in value]
        if len(set(heads)) != len(heads):
            raise CheckError(f"heads lists a head twice: {value}")
    else:
        raise CheckError(f"heads must be a non-empty list of heads like [L1H0, L1H3], or all; got {value!r}")
    excluding = params.get("excluding") or []
    if not isinstance(excluding, list):
        raise CheckError(f"excluding must be a list of heads like [L1H0, L1H3]; got {excluding!r}")
    dropped = {parse_head(item, shape) for item in excluding}
    heads = [head for head in heads if head not in dropped]
    if not heads:
        raise CheckError("no head is left once excluding: has removed its heads")
    return "heads", heads


def _method_of(params: Mapping[str, Any]) -> str:
    method = params.get("method", DEFAULT_METHOD)
    if method not in METHODS:
        raise CheckError(f"method {method!r} is not one of {', '.join(METHODS)} (patching from paired inputs is check patching)")
    return str(method)


def _label(heads: list[Head]) -> str:
    return "+".join(head_name(*h) for h in heads)


class AblationCheck:
    """``check: ablation``; keys ``head``/``heads``, ``together``, ``excluding``, ``among``, ``method``, ``where``."""

    name: ClassVar[str] = "ablation"
    description: ClassVar[str] = (
        f"per sequence, the increase in next-token loss ({LOSS_UNIT}) when heads are ablated "
        f"(method mean|zero|resample, default {DEFAULT_METHOD}); total and direct effects, max over heads, rank"
    )
    statistics: ClassVar[tuple[str, ...]] = ("loss_increase", "direct_loss_increase", "max_loss_increase", "rank")
    params: ClassVar[tuple[str, ...]] = ("head", "heads", "together", "excluding", "among", "method", "where")
    model_roles: ClassVar[tuple[str, ...]] = ()
    # Repeated random tokens, loss read on every predicted token (claims about the repeat say
    # where: {region: repeat}). 64 sequences of 2 x 32 tokens: the zoo 4L's every-head sweep
    # (16 heads, total and direct, model and 5 twins) measured in a few seconds on 1 CPU thread.
    default_inputs: ClassVar[Mapping[str, Any]] = {"kind": "repeated_random_tokens", "seq_len": 32, "n": 64}

    def prepare(self, params: Mapping[str, Any], shapes: Mapping[str, ModelShape], expect: Mapping[str, Any]) -> Prepared:
        shape = shapes[MODEL]
        key, heads = _heads_of(params, shape)
        method = _method_of(params)
        together = params.get("together", False)
        if not isinstance(together, bool):
            raise CheckError(f"together must be true or false, got {together!r}")
        if together and key != "heads":
            raise CheckError("together: true ablates the heads listed in heads: together; give heads: [...]")
        try:
            where = parse_where(params.get("where"))
        except TokenSetError as error:
            raise CheckError(str(error)) from None
        if params.get("among") is not None and "rank" not in expect:
            raise CheckError("among: names the heads a rank claim competes against; it goes with rank")
        for stat in ("max_loss_increase", "rank"):
            if stat in expect and expect[stat].op == "between":
                raise CheckError(f"{stat} takes a one-sided expectation; for a band write two claims")
        if "max_loss_increase" in expect and (key == "head" or together):
            raise CheckError("max_loss_increase is over several heads each ablated alone: give heads: [...] or all, without together")
        if "rank" in expect and key != "head":
            raise CheckError("rank is about one head (head: L1H0) among others (among:, default every head)")

        groups: list[list[Head]] = [heads] if together else [[h] for h in heads]
        statistics: list[str] = []
        source: dict[str, str] = {}
        of_group: dict[str, tuple[Head, ...]] = {}  # per-group statistic -> the group it reads
        for stat in ("loss_increase", "direct_loss_increase"):
            if stat in expect:
                for group in groups:
                    name = stat if len(groups) == 1 else f"{stat}[{_label(group)}]"
                    statistics.append(name)
                    source[name] = stat
                    of_group[name] = tuple(group)
        members: dict[str, list[str]] = {}
        ranked: dict[str, list[str]] = {}
        if "max_loss_increase" in expect:
            statistics.append("max_loss_increase")
            members["max_loss_increase"] = [head_name(*h) for h in heads]
        rivals: list[Head] = []
        k = None
        if "rank" in expect:
            among = params.get("among")
            pool = _heads_of({"heads": among if among is not None else "all"}, shape)[1]
            rivals = [h for h in pool if h != heads[0]]
            if not rivals:
                raise CheckError("rank needs at least one other head in among:")
            try:
                k = claimed_k(expect["rank"], 1 + len(rivals))
            except ValueError as error:
                raise CheckError(str(error)) from None
            statistics.append("rank")
            ranked["rank"] = [head_name(*h) for h in [heads[0], *rivals]]
        for stat in ("max_loss_increase", "rank"):
            if stat in statistics:
                source[stat] = stat

        measured = groups + [[h] for h in rivals]
        total = {tuple(g): Intervention(tuple(head_site(*h) for h in g), method, seed=RESAMPLE_SEED) for g in measured}
        direct = {tuple(g): Intervention(tuple(head_site(*h) for h in g), method, path="direct", seed=RESAMPLE_SEED) for g in measured}
        only_direct = bool(statistics) and all(source[s] == "direct_loss_increase" for s in statistics)
        null_interventions = tuple((direct if only_direct else total).values())
        what = "ablated together" if together else ("each ablated alone" if len(groups) > 1 else "ablated")
        notes = [
            f"estimand: the {'direct' if only_direct else 'total'} effect of removing {_label(heads) if together or len(heads) <= 8 else f'{len(heads)} heads'} "
            f"({what}) on next-token loss over {where.describe()}; per sequence, the mean over those tokens of the "
            f"ablated run's loss minus the clean run's ({LOSS_UNIT})",
            f"ablation method: {method} (each head's output hook_z, before W_O, replaced at every position by {METHOD_WORDS[method]})",
            "metric: next-token loss, -log p(actual next token); positions: the ablation changes every position, "
            "the loss is read at the selected tokens",
        ]
        return Prepared(
            needs={MODEL: Needs(frozenset(), interventions=tuple(total.values()) + tuple(direct.values()))},
            null_needs=Needs(frozenset(), interventions=null_interventions),
            statistics=statistics,
            expectation_source=source,
            state={
                "groups": groups, "rivals": rivals, "total": total, "direct": direct, "where": where, "shape": shape,
                "null_path": "direct" if only_direct else "total", "key": key, "seen": {},
                "k": k, "of_group": of_group,
            },
            notes=notes,
            members={**members, **ranked},
            units={s: ("rank" if s == "rank" else LOSS_UNIT) for s in statistics},
            estimators={stat: "rank" for stat in ranked},
        )

    # -- measuring -----------------------------------------------------------------------------------

    def _selected(self, prepared: Prepared, batch: InputBatch) -> np.ndarray:
        try:
            return select(prepared.state["where"], batch)
        except TokenSetError as error:
            raise ValueError(str(error)) from None

    def _effects(self, prepared: Prepared, readings: Activations, batch: InputBatch, path: str) -> dict[tuple[Head, ...], np.ndarray]:
        """{heads: per-sequence loss increase} for every group (and rank rival) measured on ``path``."""
        selected = self._selected(prepared, batch)
        return {group: loss_increase(readings, intervention, selected) for group, intervention in prepared.state[path].items()}

    def measure(
        self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]
    ) -> dict[str, np.ndarray]:
        readings, batch = activations[MODEL], batches[MODEL]
        total = self._effects(prepared, readings, batch, "total")
        direct = self._effects(prepared, readings, batch, "direct")
        self._remember(prepared, batch, total, direct)
        groups = [tuple(g) for g in prepared.state["groups"]]
        out: dict[str, np.ndarray] = {}
        for stat in prepared.statistics:
            base = prepared.expectation_source[stat]
            if base in ("loss_increase", "direct_loss_increase"):
                out[stat] = (total if base == "loss_increase" else direct)[prepared.state["of_group"][stat]]
            elif base == "max_loss_increase":  # [sequences, heads]: judged on the largest head mean
                out[stat] = np.stack([total[g] for g in groups], axis=1)
            elif base == "rank":  # [sequences, heads], the claimed head first
                out[stat] = np.stack([total[groups[0]]] + [total[(h,)] for h in prepared.state["rivals"]], axis=1)
        return out

    def _remember(self, prepared: Prepared, batch: InputBatch, total: dict, direct: dict) -> None:
        """Keep each chunk's per-group effects (keyed by the chunk's tokens, so a rerun replaces
        rather than adds) and rewrite the note that reports direct beside total effects."""
        digest = hashlib.sha1(np.ascontiguousarray(batch.tokens).tobytes()).hexdigest()
        seen: dict[str, tuple[dict, dict]] = prepared.state["seen"]
        groups = [tuple(g) for g in prepared.state["groups"]]
        seen[digest] = ({g: total[g] for g in groups}, {g: direct[g] for g in groups})
        both = {g: (np.concatenate([s[0][g] for s in seen.values()]), np.concatenate([s[1][g] for s in seen.values()])) for g in groups}
        means = {g: (float(np.nanmean(t)), float(np.nanmean(d))) for g, (t, d) in both.items()}
        shown = sorted(groups, key=lambda g: -means[g][0])[:NOTE_HEADS]
        n = len(next(iter(both.values()))[0])
        parts = [f"{_label(list(g))} total {means[g][0]:.3g}, direct {means[g][1]:.3g}" for g in shown]
        more = f" (the {NOTE_HEADS} of {len(groups)} with the largest total effect)" if len(groups) > NOTE_HEADS else ""
        note = (
            f"{DIRECT_NOTE}{more}, means over {n} sequences in {LOSS_UNIT}: " + "; ".join(parts)
            + ". Direct: the change reaches the logits only through the final layer norm with its scale frozen at the "
            "clean run's; total minus direct is what passes through later layers, where compensation (self-repair, "
            "McGrath et al. 2023) makes the total understate the head (for a last-layer head the two differ only by the "
            "final layer norm's scale, which the ablation moves in the total and not in the direct effect)"
        )
        prepared.notes[:] = [n_ for n_ in prepared.notes if not n_.startswith(DIRECT_NOTE)] + [note]

    def measure_null(self, prepared: Prepared, activations: Activations, batch: InputBatch) -> np.ndarray:
        effects = self._effects(prepared, activations, batch, prepared.state["null_path"])
        groups = [tuple(g) for g in prepared.state["groups"]]
        if prepared.state["rivals"]:  # the same head's margin over its k-th strongest other head, per sequence
            k = prepared.state["k"]
            others = np.stack([effects[(h,)] for h in prepared.state["rivals"]], axis=1)
            kth = -np.sort(-others, axis=1)[:, min(k, others.shape[1]) - 1]
            return effects[groups[0]] - kth
        return np.max(np.stack([effects[g] for g in groups], axis=1), axis=1)

    def null_description(self, prepared: Prepared) -> str:
        path = prepared.state["null_path"]
        if prepared.state["rivals"]:
            what = "the same head's loss increase minus the k-th largest of the other heads'"
        elif len(prepared.state["groups"]) > 1:
            what = "the largest loss increase over the same heads, per sequence"
        else:
            what = "the same ablation's loss increase"
        return f"{what} ({path} effect, same method and inputs) on the random-weights twin of the same architecture"

    # -- pictures ------------------------------------------------------------------------------------

    def figures(
        self, prepared: Prepared, activations: Mapping[str, Activations], batches: Mapping[str, InputBatch]
    ) -> list[Figure]:
        """Layer-by-head grids of total and direct effects, for claims over several heads (each alone)."""
        groups = prepared.state["groups"]
        if len(groups) < 2 and not prepared.state["rivals"]:
            return []
        readings, batch = activations[MODEL], batches[MODEL]
        shape: ModelShape = prepared.state["shape"]
        claimed = [g[0] for g in groups]
        out = []
        for path, word in (("total", "Total"), ("direct", "Direct")):
            effects = self._effects(prepared, readings, batch, path)
            per_head = {group[0]: values for group, values in effects.items() if len(group) == 1}
            if not per_head:
                continue
            method = next(iter(prepared.state[path].values())).method
            out.append(head_grid(
                per_head, shape.n_layers, shape.n_heads,
                title=f"{word} effect of ablating each head on next-token loss",
                value_label=f"loss increase ({LOSS_UNIT})",
                what=(
                    f"{word} effect ({'through every later layer' if path == 'total' else 'straight to the logits, final LN scale frozen'}) "
                    f"of {method}-ablating each head alone on next-token loss over {prepared.state['where'].describe()}, "
                    f"on the first {batch.n} sequences of the inputs"
                ),
                marked=claimed if len(claimed) < len(per_head) else (),
            ))
        return out


register(AblationCheck())
