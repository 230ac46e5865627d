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

from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int

from interp_checks.checks.base import Needs

__all__ = ["capture", "next_token_logprobs"]


class _StopForward(Exception):
    """Raised from a hook once every needed activation is stored: the rest of the model is skipped."""


def capture(bridge: Any, tokens: torch.Tensor, needs: Needs) -> dict[str, torch.Tensor]:
    """Run ``bridge`` on ``tokens`` keeping only ``needs.hooks``; stop early unless logits are needed."""
    store: dict[str, Any] = {}
    wanted = set(needs.hooks)

    def keep(tensor: torch.Tensor, hook: Any) -> None:
        store[hook.name] = tensor.detach()
        if not needs.logits and wanted.issubset(store):
            raise _StopForward

    with torch.inference_mode():
        try:
            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, keep) for name in sorted(wanted)])
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
