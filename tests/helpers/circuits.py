"""Hand-built models with known circuits, for tests of checks that must recover them.

The builders live in :mod:`interp_checks.zoo.handbuilt` (benchmarks use them too); this module
re-exports them and adds what tests of them share: the per-sequence losses a known circuit is
judged on, computed with the harness's own input generator and log-prob function.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from jaxtyping import Float

from interp_checks.inputs.generators import InputBatch, Vocabulary, generate
from interp_checks.runner import next_token_logprobs
from interp_checks.zoo.handbuilt import VARIANTS, KnownCircuit, build_induction_2l

__all__ = ["VARIANTS", "KnownCircuit", "build_induction_2l", "repeated_tokens", "repeat_and_first_half_losses"]


def repeated_tokens(bridge: Any, *, seq_len: int = 32, n: int = 128, seed: int = 0) -> InputBatch:
    """Repeated random tokens for ``bridge`` from the harness's own generator (no BOS: no tokenizer)."""
    vocab = Vocabulary(d_vocab=int(bridge.cfg.d_vocab), n_ctx=int(bridge.cfg.n_ctx), bos_token_id=None)
    return generate({"kind": "repeated_random_tokens", "seq_len": seq_len, "n": n}, vocab, seed)


def repeat_and_first_half_losses(bridge: Any, batch: InputBatch) -> tuple[Float[np.ndarray, "n"], Float[np.ndarray, "n"]]:
    """Per sequence, the mean next-token loss (nats) on the repeat but its first token (which no
    earlier token predicts) and on the first half (position 0's loss is undefined and left out)."""
    with torch.no_grad():
        logits = bridge(torch.as_tensor(batch.tokens))
    loss = -next_token_logprobs(logits, batch.tokens)  # NaN at position 0
    repeat = batch.regions["repeat"].copy()
    repeat[:, batch.meta["repeat_start"]] = False
    first = batch.regions["first"]
    return np.nanmean(np.where(repeat, loss, np.nan), axis=1), np.nanmean(np.where(first, loss, np.nan), axis=1)
