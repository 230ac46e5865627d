"""Our head-role score against transformer_lens.head_detector.detect_head.

detect_head's default "mul" measure sums the attention on the role's keys over every query row and
divides by all rows; ours divides by the rows where the role names a key. So for one sequence
ours == detect_head * seq_len / defined_rows, exactly, on any model and any tokens.

Every sequence is compared: random tokens are drawn from 8 ids, so a sequence of 12 repeats some
token (pigeonhole) and every role names a key on some row of it. (Drawn from all 60 ids, most
random sequences had no repeat, and a comparison that skips them could pass having compared
nothing.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformer_lens.head_detector import detect_head

from interp_checks.checks.heads import ROLE_MASKS, role_scores
from interp_checks.inputs.generators import Vocabulary, generate
from interp_checks.models.native import boot_random

ARCH = dict(d_model=32, n_layers=2, n_heads=4, d_head=8, n_ctx=128, d_vocab=60, attn_only=True, normalization_type="LN", act_fn="gelu")


SEQ_LEN, N = 12, 4


@pytest.mark.parametrize("role", sorted(ROLE_MASKS))
@pytest.mark.parametrize("inputs, vocab", [("repeated_random_tokens", 60), ("random_tokens", 8)])
def test_scores_equal_detect_head_after_row_correction(role, inputs, vocab, monkeypatch):
    model = boot_random(ARCH, seed=3)
    batch = generate({"kind": inputs, "seq_len": SEQ_LEN, "n": N}, Vocabulary(vocab, 128, None), seed=1)
    compared, corrected = 0, 0
    for row in torch.as_tensor(batch.tokens):
        tokens = row[None]
        monkeypatch.setattr(model, "to_tokens", lambda seq, **kwargs: tokens, raising=False)
        theirs = detect_head(model, "ignored: tokens are given above", role).numpy()
        mask = ROLE_MASKS[role](tokens)
        defined_rows = int(mask.any(-1).sum())
        assert defined_rows > 0, f"{role} names no key in {tokens.tolist()}: nothing to compare"
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
        ours = np.stack(
            [role_scores(cache[f"blocks.{layer}.attn.hook_pattern"], mask).numpy()[0] for layer in range(ARCH["n_layers"])]
        )
        np.testing.assert_allclose(ours, theirs * tokens.shape[1] / defined_rows, rtol=1e-5, atol=1e-6)
        compared += 1
        corrected += defined_rows < tokens.shape[1]
    assert compared == N
    assert corrected == N  # every sequence has rows where the role is undefined: the correction is exercised
