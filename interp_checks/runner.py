"""Running models: the one place that calls a model's forward pass for the engine and the miner.

Two things every family needs and that must mean the same everywhere:

* :func:`capture` runs a bridge on a batch of tokens keeping only the hooks a plan asked for, and
  stops the forward pass as soon as the last of them has fired (no unembedding unless logits are
  needed). The engine shares it between claims; the miner streams corpora through it.
* :func:`next_token_logprobs` turns logits into the log-probability of the token that actually
  came next, as ``logit[target] - logsumexp(logits)``: nothing of size [n, pos, vocab] is kept
  besides the logits themselves, which matters over millions of tokens.

Checks never call :func:`capture`: they declare what they need and receive it (they may use the
pure tensor functions here, so a log-prob means the same in a claim and in the miner).
"""

from __future__ import annotations

import warnings
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from jaxtyping import Float, Int

from interp_checks.checks.base import Needs

__all__ = ["capture", "final_logits", "metric_values", "next_token_logprobs", "run_interventions"]


class _StopForward(Exception):
    """Raised from a hook once every needed activation is stored: the rest of the model is skipped."""


def capture(bridge: Any, tokens: torch.Tensor, needs: Needs) -> dict[str, torch.Tensor]:
    """Run ``bridge`` on ``tokens`` keeping only ``needs.hooks``; stop early unless logits are needed."""
    store: dict[str, Any] = {}
    wanted = set(needs.hooks)

    def keeper(name: str) -> Any:  # keyed by the name asked for: the bridge may report an alias's name
        def keep(tensor: torch.Tensor, hook: Any) -> None:
            store[name] = tensor.detach()
            if not needs.logits and wanted.issubset(store):
                raise _StopForward

        return keep

    with torch.inference_mode():
        try:
            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, keeper(name)) for name in sorted(wanted)])
            if needs.logits:
                store["logits"] = logits
        except _StopForward:
            pass
    missing = wanted - set(store)
    if missing:
        raise RuntimeError(f"the model never produced hook(s) {sorted(missing)}")
    return store


def next_token_logprobs(
    logits: Float[torch.Tensor, "n pos vocab"], tokens: Int[Any, "n pos"]
) -> Float[np.ndarray, "n pos"]:
    """logp of the token at position p given the tokens before it (float64); NaN at p = 0.

    ``logit[target] - logsumexp(logits)`` in float32, never a full log-softmax: same value, half
    the memory traffic on a large vocabulary.
    """
    logits = logits[:, :-1].float()
    target = torch.as_tensor(tokens, device=logits.device)[:, 1:].long()
    picked = logits.gather(-1, target[..., None])[..., 0] - torch.logsumexp(logits, dim=-1)
    out = picked.cpu().numpy().astype(np.float64)
    return np.concatenate([np.full((out.shape[0], 1), np.nan), out], axis=1)


# -- interventions -----------------------------------------------------------------------------------


def metric_values(
    logits: Float[torch.Tensor, "n pos vocab"], metric: str, clean: Int[torch.Tensor, "n pos"], corrupted: Int[torch.Tensor, "n pos"] | None
) -> Float[np.ndarray, "n pos"]:
    """An intervention metric (``interventions.METRICS``) from a run's logits, aligned with the
    tokens: ``[:, p]`` is about the prediction of token ``p`` of the *clean* input; NaN at p = 0."""
    if metric == "logprob":
        return next_token_logprobs(logits, clean)
    if corrupted is None:
        raise ValueError("metric logit_diff needs paired corrupted inputs (an input generator that makes pairs)")
    logits = logits[:, :-1].float()
    right, wrong = clean[:, 1:].long(), corrupted[:, 1:].long()
    diff = logits.gather(-1, right[..., None])[..., 0] - logits.gather(-1, wrong[..., None])[..., 0]
    diff = torch.where(right == wrong, torch.full_like(diff, float("nan")), diff)
    out = diff.cpu().numpy().astype(np.float64)
    return np.concatenate([np.full((out.shape[0], 1), np.nan), out], axis=1)


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)`` with no fixed point (for ``resample``: no sequence keeps
    its own activation); the identity when n < 2, where there is nothing else to take."""
    if n < 2:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if not (perm == np.arange(n)).any():
            return perm


# Why 256 MiB: a stacked run's largest tensors are its logits [rows, pos, d_vocab] and logsumexp's
# temporary of the same size (see ``_bytes_per_copy``); on the zoo's models (d_vocab 2,048) that
# is 4-8 copies of a 64 x 65 chunk per forward, where the sweep benchmark's time per intervention
# has stopped falling (benchmarks/bench_ablation_sweep.py --budgets), and on a 50k-vocabulary model
# it still lets one 64 x 128 chunk through (a stack never holds fewer than one copy).
STACK_BUDGET_BYTES = 256 * 2**20


def run_interventions(
    bridge: Any,
    clean: Int[torch.Tensor, "n pos"],
    interventions: Sequence[Any],
    *,
    corrupted: Int[torch.Tensor, "n pos"] | None = None,
    means: dict[str, torch.Tensor] | None = None,
    hooks: frozenset[str] | set[str] = frozenset(),
    logits: bool = False,
    budget_bytes: int = STACK_BUDGET_BYTES,
) -> dict[str, Any]:
    """Each intervention's metric on this chunk, plus the clean run's (``interventions.clean_key``),
    plus ``hooks`` (and ``"logits"`` if asked) of the clean run, as :func:`capture` would give them.

    * **One clean run** (and one corrupted run when some intervention needs it) serves everything:
      the activations a claim reads, the clean metric, the sites' values, and each intervention's
      residual stream at its first changed layer. Its logits are reduced to the metrics at once and
      dropped (unless ``logits``): nothing of size [n, pos, vocab] outlives one run.
    * **Total effects resume and stack**: interventions on the same base run (clean, or corrupted
      for denoising) whose first changed layer is the same are stacked along the batch (k copies of
      the chunk's residual stream there) and run in one ``forward(start_at_layer=)`` whose hooks
      change each copy's own sites, at most ``budget_bytes`` of activations per stacked run (see
      :data:`STACK_BUDGET_BYTES`). The blocks below the first changed layer are not run
      (:func:`_lower_blocks_skipped`; TransformerLens 4.3 alone would run them and discard them).
      In an attention-only model a head's change is folded into the next block's residual stream
      (``_resume_layer``), so ablating a head re-runs only the blocks after it.
    * **Direct effects run no block**: each one's change through ``W_O`` is added to the base run's
      final residual stream and read through the final layer norm with its scale frozen
      (TransformerLens's convention for direct paths), all of a stack in one tensor op.
    """
    from interp_checks.interventions import clean_key

    interventions = list(dict.fromkeys(interventions))
    means = means or {}
    need_corrupted = any(i.needs_corrupted for i in interventions)
    if need_corrupted and corrupted is None:
        raise ValueError("these interventions patch from, or compare with, a paired corrupted input; use inputs that make pairs")
    metrics = sorted({i.metric for i in interventions})
    folds = _folds_heads(bridge)
    cached = _hooks_to_cache(interventions, _has_final_scale(bridge), folds)
    out: dict[str, Any] = {}
    clean_logits, clean_acts = _clean_run(bridge, clean, cached | set(hooks))
    for metric in metrics:
        out[clean_key(metric)] = metric_values(clean_logits, metric, clean, corrupted)
    out.update({name: clean_acts[name] for name in hooks})
    if logits:
        out["logits"] = clean_logits
    del clean_logits
    runs = {"clean": clean_acts}
    if need_corrupted:
        assert corrupted is not None
        corrupted_logits, runs["corrupted"] = _clean_run(bridge, corrupted, cached)
        for metric in metrics:
            out[clean_key(metric, corrupted=True)] = metric_values(corrupted_logits, metric, clean, corrupted)
        del corrupted_logits
    copies = _copies_per_stack(bridge, clean.shape, budget_bytes)
    for (base_name, path, resume_layer), group in _stack_groups(interventions, folds).items():
        for begin in range(0, len(group), copies):
            stack = group[begin : begin + copies]
            edits = [_edits(i, runs, means) for i in stack]
            if path == "direct":
                stacked_logits = _direct_stack_logits(bridge, stack, edits, runs[base_name])
            else:
                stacked_logits = _resumed_stack_logits(bridge, resume_layer, edits, runs[base_name])
            out.update(_stack_metrics(stacked_logits, stack, clean, corrupted))
            del stacked_logits
    return out


def _hooks_to_cache(interventions: Sequence[Any], final_scale: bool, folds: int) -> set[str]:
    """What the base runs must keep: every site's hook (values to patch, resample or compare with),
    the residual stream where each total effect resumes, the final stream (and the final layer
    norm's scale, if the model has one) for direct effects."""
    hooks = {site.hook for i in interventions for site in i.sites}
    hooks |= {f"blocks.{_resume_layer(i, folds)}.hook_resid_pre" for i in interventions if i.path == "total"}
    if any(i.path == "direct" for i in interventions):
        hooks |= {"ln_final.hook_in", "ln_final.hook_scale"} if final_scale else {"ln_final.hook_in"}
    return hooks


def _has_final_scale(bridge: Any) -> bool:
    """Whether the final layer norm divides by a scale (a model with no normalisation has none)."""
    return getattr(bridge.cfg, "normalization_type", None) is not None


def _folds_heads(bridge: Any) -> int:
    """The number of layers when a head's change can be folded into the next block's residual stream
    (0 when it cannot): in an attention-only model a block's output is its input plus the sum of
    its heads' ``z @ W_O`` (+ ``b_O``), so changing a head's ``z`` adds ``change @ W_O`` to the
    residual stream entering the next block, exactly. With an MLP after the attention the change
    goes through it, and the run resumes at the head's own block."""
    cfg = bridge.cfg
    return int(cfg.n_layers) if getattr(cfg, "attn_only", False) and not getattr(cfg, "parallel_attn_mlp", False) else 0


def _resume_layer(intervention: Any, folds: int) -> int:
    """The block a total effect's changed run resumes at: its first changed layer, or the next one
    when every site there is a head's output that folds into the residual stream (``_folds_heads``;
    never past the last block, so that the model's own final layer norm and unembedding run)."""
    first = intervention.first_layer
    heads_only = all(site.kind == "head" for site in intervention.sites if site.layer == first)
    return first + 1 if heads_only and first + 1 < folds else first


def _stack_groups(interventions: Sequence[Any], folds: int) -> dict[tuple[str, str, int], list[Any]]:
    """Interventions that can share one stacked run: same base run, same path, and (for total
    effects) the same layer where the run resumes."""
    groups: dict[tuple[str, str, int], list[Any]] = {}
    for i in interventions:
        base = "corrupted" if i.direction == "denoise" else "clean"
        layer = _resume_layer(i, folds) if i.path == "total" else -1
        groups.setdefault((base, i.path, layer), []).append(i)
    return groups


def _bytes_per_copy(bridge: Any, shape: tuple[int, int]) -> int:
    """Peak bytes one copy of an [n, pos] chunk adds to a stacked run: its logits and logsumexp's
    temporary (2 x d_vocab a token), a block's working activations (about 16 x d_model: residual,
    q, k, v, z, MLP hidden), and the attention scores and pattern (2 x n_heads x pos)."""
    cfg = bridge.cfg
    n, pos = shape
    d_vocab = getattr(cfg, "d_vocab_out", 0) or cfg.d_vocab
    d_vocab = d_vocab if d_vocab > 0 else cfg.d_vocab
    per_token = 2 * d_vocab + 16 * cfg.d_model + 2 * cfg.n_heads * pos
    return 4 * n * pos * per_token


def _copies_per_stack(bridge: Any, shape: tuple[int, int], budget_bytes: int) -> int:
    """How many copies of the chunk one stacked run may hold (at least one)."""
    return max(1, budget_bytes // max(1, _bytes_per_copy(bridge, shape)))


# -- what each intervention changes ------------------------------------------------------------------


@dataclass(frozen=True)
class _Edit:
    """One site's change in one copy of the chunk: ``hook``'s activation at ``index`` (its batch
    entry a full slice) becomes ``value`` ([n, ...] at the index, or a scalar)."""

    hook: str
    index: tuple[Any, ...]
    value: torch.Tensor | float


def _site_slice(site: Any) -> tuple[Any, ...]:
    """Index of a site's part of its hook's activation: [batch, pos, (head or neuron,) ...]."""
    positions = slice(None) if site.positions is None else list(site.positions)
    if site.neuron is not None:
        return (slice(None), positions, site.neuron)
    if site.head is None:
        return (slice(None), positions)
    return (slice(None), positions, site.head)


def _edits(intervention: Any, runs: dict[str, dict[str, torch.Tensor]], means: dict[str, torch.Tensor]) -> list[_Edit]:
    """Every site of ``intervention`` with the value ``method`` puts there. The values do not depend
    on the changed run (zeros, reference means, another sequence's clean value, the paired run's
    value), so each is computed once, before any changed run, from the base runs' caches."""
    base_name, other_name = ("corrupted", "clean") if intervention.direction == "denoise" else ("clean", "corrupted")
    base, other = runs[base_name], runs.get(other_name)
    edits = []
    for site in intervention.sites:
        index = _site_slice(site)
        activation = base[site.hook]
        value: torch.Tensor | float
        if intervention.method == "zero":
            value = 0.0
        elif intervention.method == "mean":
            value = means[site.hook][: activation.shape[1]].to(activation.dtype).expand_as(activation)[index]
        elif intervention.method == "resample":
            perm = torch.as_tensor(derangement(activation.shape[0], intervention.seed), device=activation.device)
            value = activation[perm][index]
        else:  # patch
            assert other is not None
            value = other[site.hook][index]
        edits.append(_Edit(site.hook, index, value))
    return edits


def _apply(activation: torch.Tensor, edits: Sequence[_Edit], rows: slice) -> None:
    """Write ``edits`` into ``rows`` of ``activation`` (in place)."""
    for edit in edits:
        activation[(rows,) + edit.index[1:]] = edit.value


# -- total effects: stacked, resumed runs ------------------------------------------------------------


def _resumed_stack_logits(bridge: Any, start: int, edits: list[list[_Edit]], base: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits of k changed runs at once ([k * n, pos, vocab], copy j in rows j*n ... (j+1)*n - 1),
    resumed from the base run's residual stream entering block ``start``. Each hook changes only its
    own copy's sites, on the activation the changed run computed (so components downstream of an
    earlier change see it, as in a full run with the same hooks)."""
    entry = f"blocks.{start}.hook_resid_pre"
    folded = f"blocks.{start - 1}.attn.hook_z"  # heads of the block below, folded in (``_resume_layer``)
    resid = base[entry]
    n = resid.shape[0]
    rows = [slice(j * n, (j + 1) * n) for j in range(len(edits))]
    stacked = resid.repeat((len(edits),) + (1,) * (resid.ndim - 1))
    W_O = bridge.W_O.detach() if any(e.hook == folded for copy_edits in edits for e in copy_edits) else None
    by_hook: dict[str, list[tuple[slice, _Edit]]] = {}
    for copy, copy_edits in zip(rows, edits):
        below = [e for e in copy_edits if e.hook == folded]
        if below:
            stacked[copy] += _direct_change(below, base, W_O, like=resid)
        _apply(stacked, [e for e in copy_edits if e.hook == entry], copy)  # the residual stream itself is a site
        for edit in copy_edits:
            if edit.hook not in (entry, folded):
                by_hook.setdefault(edit.hook, []).append((copy, edit))

    def changer(name: str) -> Any:
        def hook(activation: torch.Tensor, hook: Any) -> torch.Tensor:
            activation = activation.clone()
            for copy, edit in by_hook[name]:
                _apply(activation, [edit], copy)
            return activation

        return hook

    fwd_hooks = [(name, changer(name)) for name in sorted(by_hook)]
    return _resumed_forward(bridge, stacked, start, fwd_hooks)


def _resumed_forward(bridge: Any, resid: torch.Tensor, start: int, fwd_hooks: list[tuple[str, Any]]) -> torch.Tensor:
    """``run_with_hooks(resid, start_at_layer=start)`` without running the blocks below ``start``
    where that is known to give the same logits on this bridge (checked once per bridge)."""
    with torch.inference_mode():
        if start > 0 and _skipping_is_exact(bridge, resid, start):
            with _lower_blocks_skipped(bridge, start):
                return bridge.run_with_hooks(resid, start_at_layer=start, fwd_hooks=fwd_hooks)
        return bridge.run_with_hooks(resid, start_at_layer=start, fwd_hooks=fwd_hooks)


# Per bridge: how its blocks return their output (found by one tiny run) and whether skipping the
# blocks below the resume point gives the same logits (checked on the first resumed run).
_SKIP_STATE: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()


def _skipping_is_exact(bridge: Any, resid: torch.Tensor, start: int) -> bool:
    """Whether resuming with the lower blocks skipped gives this bridge's ``start_at_layer`` logits.

    TransformerLens 4.3's ``start_at_layer`` feeds the residual stream to the wrapped model as input
    embeddings and runs every block, discarding what blocks 0 ... start - 1 computed; skipping them
    is what makes resuming save time. It replaces those blocks' forward with a pass-through that
    returns what the model's loop expects, so it is checked once per bridge, on two sequences,
    against the unskipped run; on any difference or error the bridge resumes the slow, exact way
    (and says so once)."""
    state = _SKIP_STATE.setdefault(bridge, {})
    if "exact" not in state:
        probe = resid[:2]
        try:
            with _lower_blocks_skipped(bridge, start):
                skipped = bridge(probe, start_at_layer=start)
            full = bridge(probe, start_at_layer=start)
            state["exact"] = bool(torch.allclose(skipped, full, rtol=1e-5, atol=1e-6))
        except Exception as error:  # an architecture whose block loop the pass-through does not fit
            state["exact"] = False
            state["why"] = f"{type(error).__name__}: {error}"
        if not state["exact"]:
            warnings.warn(
                "interp_checks: skipping the blocks below an intervention does not reproduce this model's "
                f"start_at_layer logits ({state.get('why', 'the logits differ')}); resuming runs every block"
            )
    return bool(state["exact"])


@contextmanager
def _lower_blocks_skipped(bridge: Any, start: int) -> Iterator[None]:
    """Blocks 0 ... start - 1 of ``bridge`` pass their input through untouched (no hooks, no
    compute) while inside; ``start_at_layer`` replaces their output anyway."""
    blocks = list(bridge.blocks)[:start]
    through = _pass_through(_block_output_kind(bridge))
    try:
        for block in blocks:  # an instance attribute shadows the class's forward; object's setattr, because
            object.__setattr__(block, "forward", through)  # a bridge component forwards setattr to the wrapped module
        yield
    finally:
        for block in blocks:
            vars(block).pop("forward", None)


def _pass_through(kind: tuple[str, int]) -> Any:
    """A block forward that returns its hidden-state input in the shape the model's loop expects."""
    container, length = kind

    def forward(*args: Any, **kwargs: Any) -> Any:
        hidden = args[0] if args else kwargs["hidden_states"]
        if container == "tensor":
            return hidden
        return (hidden,) + (None,) * (length - 1)

    return forward


def _block_output_kind(bridge: Any) -> tuple[str, int]:
    """('tensor', 1) or ('tuple', length): what block 0 returns to the model, seen on a 1 x 2 run."""
    state = _SKIP_STATE.setdefault(bridge, {})
    if "kind" not in state:
        seen: list[Any] = []
        handle = bridge.blocks[0].register_forward_hook(lambda module, args, output: seen.append(output))
        try:
            with torch.inference_mode():
                bridge(torch.zeros((1, 2), dtype=torch.long, device=_device_of(bridge)))
        finally:
            handle.remove()
        output = seen[0]
        state["kind"] = ("tuple", len(output)) if isinstance(output, tuple) else ("tensor", 1)
    return state["kind"]


def _device_of(bridge: Any) -> torch.device:
    return next(bridge.parameters()).device


# -- direct effects: no block at all -----------------------------------------------------------------


def _direct_stack_logits(bridge: Any, stack: Sequence[Any], edits: list[list[_Edit]], base: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits of k direct effects at once ([k * n, pos, vocab]): each one's change to the final
    residual stream added to the base run's, read through the final layer norm with the base run's
    scale (frozen), in one unembedding."""
    W_O = bridge.W_O.detach() if any(site.kind == "head" for i in stack for site in i.sites) else None
    deltas = torch.stack([_direct_change(copy_edits, base, W_O, like=base["ln_final.hook_in"]) for copy_edits in edits])
    resid = (base["ln_final.hook_in"] + deltas).flatten(0, 1)
    scale = base.get("ln_final.hook_scale")
    if scale is not None:
        scale = scale.repeat((len(stack),) + (1,) * (scale.ndim - 1))
    return final_logits(bridge, resid, scale)


def _direct_change(
    edits: Sequence[_Edit], base: dict[str, torch.Tensor], W_O: torch.Tensor | None, *, like: torch.Tensor
) -> Float[torch.Tensor, "n pos d_model"]:
    """What the sites' changes add to the residual stream (shaped ``like``) when they go straight
    there: a head's change of ``z`` through its ``W_O``, an MLP's change as it is."""
    delta = torch.zeros_like(like)
    for hook in sorted({edit.hook for edit in edits}):
        changed = base[hook].clone()
        _apply(changed, [e for e in edits if e.hook == hook], slice(None))
        change = changed - base[hook]
        if hook.endswith("attn.hook_z"):
            assert W_O is not None
            layer = int(hook.split(".")[1])
            delta = delta + torch.einsum("bphd,hdm->bpm", change.to(W_O.dtype), W_O[layer])
        else:  # hook_mlp_out: already in the residual stream's basis
            delta = delta + change
    return delta


def _stack_metrics(
    stacked_logits: torch.Tensor, stack: Sequence[Any], clean: torch.Tensor, corrupted: torch.Tensor | None
) -> dict[str, Float[np.ndarray, "n pos"]]:
    """Each copy's metric, read from its rows of a stacked run's logits."""
    n = clean.shape[0]
    return {
        i.key: metric_values(stacked_logits[j * n : (j + 1) * n], i.metric, clean, corrupted)
        for j, i in enumerate(stack)
    }


def _clean_run(bridge: Any, tokens: torch.Tensor, hooks: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(logits, the hooks' activations) of an unchanged run."""
    store: dict[str, torch.Tensor] = {}

    def keeper(name: str) -> Any:  # keyed by the name asked for: the bridge may report an alias's name
        def keep(tensor: torch.Tensor, hook: Any) -> None:
            store[name] = tensor.detach()

        return keep

    with torch.inference_mode():
        logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, keeper(name)) for name in sorted(hooks)])
    missing = set(hooks) - set(store)
    if missing:
        raise RuntimeError(f"the model never produced hook(s) {sorted(missing)}")
    return logits, store


def final_logits(bridge: Any, resid: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """Unembed a final residual stream through the final layer norm with a given (frozen) scale
    (None for a model with no normalisation, which has no scale)."""
    kind = getattr(bridge.cfg, "normalization_type", None)
    ln = bridge.ln_final
    with torch.inference_mode():
        if kind in ("LN", "LNPre"):
            x = (resid - resid.mean(-1, keepdim=True)) / scale
        elif kind in ("RMS", "RMSPre"):
            x = resid / scale
        else:
            x = resid
        if kind in ("LN", "RMS"):
            x = x * ln.weight if hasattr(ln, "weight") else x * ln.w
            if kind == "LN":
                x = x + (ln.bias if hasattr(ln, "bias") else ln.b)
        return x @ bridge.W_U + bridge.b_U


def read_weights(bridge: Any, names: frozenset[str] | set[str]) -> dict[str, torch.Tensor]:
    """Parameters by TransformerLens name: a bridge property (``W_Q``, ``W_O``, ... stacked [layer,
    head, ...]) or a state-dict entry (``blocks.0.attn.W_Q``). Detached copies: a check may not
    change the model."""
    state: dict[str, torch.Tensor] | None = None
    out: dict[str, torch.Tensor] = {}
    for name in sorted(names):
        value = getattr(bridge, name, None) if "." not in name else None
        if value is None:
            state = state if state is not None else bridge.state_dict()
            if name not in state:
                raise ValueError(f"the model has no parameter {name!r} (TransformerLens names such as W_Q or blocks.0.attn.W_Q)")
            value = state[name]
        out[name] = value.detach().clone()
    return out
