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

from typing import Any, Sequence

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


def _site_slice(site: Any) -> tuple[Any, ...]:
    """Index of a site's part of its hook's activation: [batch, pos, (head,) ...]."""
    positions = slice(None) if site.positions is None else list(site.positions)
    if site.head is None:
        return (slice(None), positions)
    return (slice(None), positions, site.head)


def _replacement(site: Any, method: str, base: torch.Tensor, other: torch.Tensor | None, means: dict[str, torch.Tensor], perm: torch.Tensor) -> torch.Tensor:
    """The whole hook activation with the site's part replaced by ``method``'s value."""
    index = _site_slice(site)
    out = base.clone()
    if method == "zero":
        out[index] = 0.0
    elif method == "mean":
        mean = means[site.hook][: base.shape[1]].to(base.dtype)
        out[index] = mean.expand_as(base)[index]
    elif method == "resample":
        out[index] = base[perm][index]
    else:  # patch
        assert other is not None
        out[index] = other[index]
    return out


def run_interventions(
    bridge: Any,
    clean: Int[torch.Tensor, "n pos"],
    interventions: Sequence[Any],
    *,
    corrupted: Int[torch.Tensor, "n pos"] | None = None,
    means: dict[str, torch.Tensor] | None = None,
) -> dict[str, Float[np.ndarray, "n pos"]]:
    """Each intervention's metric on this chunk, plus the clean run's (``interventions.clean_key``).

    Runs the clean input once (and the corrupted one once, when some intervention needs it),
    caching only the sites' activations, each intervention's residual stream at its first changed
    layer, and the final layer norm's input and scale (for direct effects). Each intervention then
    resumes from the cached residual stream at its first changed layer (``forward(start_at_layer=)``):
    the layers below it are the clean run's and are not recomputed. A direct effect runs no block at
    all: the sites' changes are added to the final residual stream and read through the final layer
    norm with its scale frozen at the base run's (TransformerLens's convention for direct paths).
    """
    from interp_checks.interventions import clean_key

    means = means or {}
    metrics = {i.metric for i in interventions}
    need_corrupted = any(i.needs_corrupted for i in interventions)
    if need_corrupted and corrupted is None:
        raise ValueError("these interventions patch from, or compare with, a paired corrupted input; use inputs that make pairs")
    hooks = {site.hook for i in interventions for site in i.sites}
    hooks |= {f"blocks.{i.first_layer}.hook_resid_pre" for i in interventions if i.path == "total"}
    if any(i.path == "direct" for i in interventions):
        hooks |= {"ln_final.hook_in"} | ({"ln_final.hook_scale"} if _final_norm_scales(bridge) else set())
    runs = {"clean": _clean_run(bridge, clean, hooks)}
    if need_corrupted:
        runs["corrupted"] = _clean_run(bridge, corrupted, hooks)
    out: dict[str, np.ndarray] = {}
    for name, (logits, _) in runs.items():
        for metric in metrics:
            out[clean_key(metric, corrupted=name == "corrupted")] = metric_values(logits, metric, clean, corrupted)
    for intervention in interventions:
        base_name, other_name = ("corrupted", "clean") if intervention.direction == "denoise" else ("clean", "corrupted")
        base, other = runs[base_name][1], runs.get(other_name, (None, None))[1]
        perm = torch.as_tensor(derangement(clean.shape[0], intervention.seed))
        replaced = {
            hook: _replace_all(hook, intervention, base, other, means, perm)
            for hook in sorted({site.hook for site in intervention.sites})
        }
        if intervention.path == "direct":
            logits = _direct_logits(bridge, intervention, base, replaced)
        else:
            logits = _resumed_logits(bridge, intervention, base, replaced)
        out[intervention.key] = metric_values(logits, intervention.metric, clean, corrupted)
    return out


def _clean_run(bridge: Any, tokens: torch.Tensor, hooks: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(logits, the hooks' activations) of an unchanged run."""
    store: dict[str, torch.Tensor] = {}

    def keeper(name: str) -> Any:  # keyed by the name asked for: the bridge may report an alias's name
        def keep(tensor: torch.Tensor, hook: Any) -> None:
            store[name] = tensor.detach()

        return keep

    with torch.inference_mode():
        logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, keeper(name)) for name in sorted(hooks)])
    return logits, store


def _replace_all(hook: str, intervention: Any, base: dict[str, torch.Tensor], other: dict[str, torch.Tensor] | None, means: dict[str, torch.Tensor], perm: torch.Tensor) -> torch.Tensor:
    """The hook's activation with every site of ``intervention`` on that hook replaced."""
    value = base[hook]
    for site in intervention.sites:
        if site.hook == hook:
            value = _replacement(site, intervention.method, value, None if other is None else other[hook], means, perm)
    return value


def _resumed_logits(bridge: Any, intervention: Any, base: dict[str, torch.Tensor], replaced: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits of the changed run, resumed from the base run's residual stream at the first changed layer."""
    start = intervention.first_layer
    resid = base[f"blocks.{start}.hook_resid_pre"]

    def put(name: str) -> Any:
        def hook(tensor: torch.Tensor, hook: Any) -> torch.Tensor:
            return replaced[name]

        return hook

    hooks = [(name, put(name)) for name in replaced if not name.endswith(f"blocks.{start}.hook_resid_pre")]
    if f"blocks.{start}.hook_resid_pre" in replaced:  # the residual stream itself is the site
        resid = replaced[f"blocks.{start}.hook_resid_pre"]
    with torch.inference_mode():
        return bridge.run_with_hooks(resid, start_at_layer=start, fwd_hooks=hooks)


def _direct_logits(bridge: Any, intervention: Any, base: dict[str, torch.Tensor], replaced: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits when the sites' changes reach the unembedding directly, final layer-norm scale frozen."""
    delta = torch.zeros_like(base["ln_final.hook_in"])
    for hook in replaced:
        change = replaced[hook] - base[hook]
        if hook.endswith("attn.hook_z"):
            layer = int(hook.split(".")[1])
            W_O = bridge.W_O[layer]  # [head, d_head, d_model]
            delta = delta + torch.einsum("bphd,hdm->bpm", change.to(W_O.dtype), W_O)
        else:  # hook_mlp_out: already in the residual stream's basis
            delta = delta + change
    resid = base["ln_final.hook_in"] + delta
    scale = base.get("ln_final.hook_scale")  # None: no final layer norm (nothing to freeze)
    return final_logits(bridge, resid, scale)


def _final_norm_scales(bridge: Any) -> bool:
    """Whether the final layer norm divides by a scale (a model without one has no ``hook_scale``)."""
    return getattr(bridge.cfg, "normalization_type", None) in ("LN", "LNPre", "RMS", "RMSPre")


def final_logits(bridge: Any, resid: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """Unembed a final residual stream through the final layer norm with a given (frozen) scale."""
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
