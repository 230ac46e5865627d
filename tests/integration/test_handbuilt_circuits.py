"""Hand-built models with known circuits: the construction does what its answer key says, and the
harness's own head-role checks recover exactly the used heads.

Each test states a property of the construction that holds by design (an exact zero, an analytic
value, near-perfect copying), measured with TransformerLens's own functions where one exists
(``W_Q``.. per-head views, ``all_composition_scores``) and the harness's own generator and log-probs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_checks.models.native import CONFIG_FILE, load_native
from interp_checks.plugin import OPT_RESAMPLES
from interp_checks.zoo import handbuilt
from tests.helpers.circuits import VARIANTS, KnownCircuit, build_induction_2l, repeat_and_first_half_losses, repeated_tokens


@pytest.fixture(scope="module", params=VARIANTS)
def induction(request, tmp_path_factory) -> tuple[KnownCircuit, object]:
    circuit = build_induction_2l(tmp_path_factory.mktemp("handbuilt") / f"induction-2l-{request.param}", variant=request.param)
    return circuit, load_native(circuit.spec.removeprefix("native:"))


def all_heads(bridge) -> list[str]:
    return [f"L{layer}H{head}" for layer in range(bridge.cfg.n_layers) for head in range(bridge.cfg.n_heads)]


def test_the_answer_key_covers_every_head_once_and_is_saved_with_the_model(induction):
    circuit, bridge = induction
    assert sorted(circuit.used_heads + circuit.unused_heads) == sorted(all_heads(bridge))
    assert not set(circuit.used_heads) & set(circuit.unused_heads)
    assert set(circuit.roles) <= set(circuit.used_heads) and set(circuit.silenced) == set(circuit.unused_heads)
    assert {head for edge in circuit.composition for head in edge[:2]} <= set(circuit.used_heads)
    meta = json.loads((Path(circuit.spec.removeprefix("native:")) / CONFIG_FILE).read_text())["meta"]
    assert meta["known_circuit"] == json.loads(json.dumps(circuit.to_dict()))


def test_the_variants_differ_in_width_as_documented(induction):
    circuit, bridge = induction
    width = bridge.cfg.n_heads * bridge.cfg.d_head
    assert (bridge.cfg.d_model != width) == circuit.name.endswith("narrow")
    assert bridge.cfg.normalization_type is None and bridge.cfg.positional_embedding_type == "standard"


def test_tl_per_head_weights_are_the_designed_ones_and_unused_heads_write_nothing(induction):
    """Packing per-head matrices into the native q/k/v/o Linear layers, read back through
    TransformerLens's own ``W_Q``/``W_K``/``W_V``/``W_O`` views (which would catch a transposed or
    mis-ordered head)."""
    circuit, bridge = induction
    _, layout = handbuilt.induction_architecture(circuit.name.split("/")[1])
    designed = {
        (0, 0): handbuilt.previous_token_head(layout, bridge.cfg.d_head, bridge.cfg.n_ctx),
        (1, 1): handbuilt.induction_head(layout, bridge.cfg.d_head),
    }
    for (layer, head), weights in designed.items():
        for name in ("W_Q", "W_K", "W_V", "W_O"):
            torch.testing.assert_close(getattr(bridge, name)[layer, head].double(), getattr(weights, name), rtol=1e-6, atol=1e-4)
    for label in circuit.unused_heads:
        layer, head = int(label[1]), int(label[3])
        assert torch.count_nonzero(bridge.W_O[layer, head]) == 0, label
        if "W_Q = W_K = W_V = W_O = 0" in circuit.silenced[label]:
            assert all(torch.count_nonzero(getattr(bridge, name)[layer, head]) == 0 for name in ("W_Q", "W_K", "W_V")), label


def test_it_predicts_the_repeat_nearly_perfectly_and_not_the_first_half(induction):
    """Unit: the sequence. A token repeated inside the first half makes any induction head split its
    attention between continuations, so "nearly perfect" is stated on all sequences (mean) and
    exactly on the sequences without such a repeat (each one)."""
    _, bridge = induction
    batch = repeated_tokens(bridge, seq_len=32, n=128, seed=0)
    repeat, first = repeat_and_first_half_losses(bridge, batch)
    first_half = batch.tokens[:, : batch.meta["repeat_start"]]
    distinct = np.array([len(set(row)) == len(row) for row in first_half.tolist()])
    assert 0.5 < distinct.mean() < 1  # both kinds are present (d_vocab 4096, 32 tokens: about 89% distinct)
    assert repeat.mean() < 0.1, repeat.mean()
    assert repeat[distinct].max() < 0.01, repeat[distinct].max()
    assert first.min() > math.log(bridge.cfg.d_vocab) / 2, first.min()


def test_the_attention_patterns_are_the_designed_ones(induction):
    _, bridge = induction
    batch = repeated_tokens(bridge, seq_len=32, n=32, seed=1)
    _, cache = bridge.run_with_cache(torch.as_tensor(batch.tokens), names_filter=lambda name: name.endswith("hook_pattern"))
    layer0, layer1 = cache["blocks.0.attn.hook_pattern"], cache["blocks.1.attn.hook_pattern"]
    positions = torch.arange(1, batch.tokens.shape[1])
    assert layer0[:, 0, positions, positions - 1].min() > 0.999  # previous-token head
    assert layer0[:, 1].diagonal(dim1=-2, dim2=-1).min() > 0.999  # distractor: itself
    assert layer1[:, 2, :, 0].min() > 0.999  # distractor: position 0
    start = batch.meta["repeat_start"]
    queries = torch.arange(start, batch.tokens.shape[1])
    induction_mass = layer1[:, 1, queries, queries - start + 1]
    assert induction_mass.median() > 0.999 and induction_mass.mean() > 0.95


def test_tl_composition_scores_single_out_the_k_composition_edge(induction):
    """TransformerLens's ``all_composition_scores``: the known edge is the largest K-score of the
    model, equal to 1/sqrt(token_dim) (an identity map of rank token_dim composed with another has
    ||AB||_F / (||A||_F ||B||_F) = sqrt(m) / m); its Q- and V-scores are zero, because L1H1's query
    and value read only ``tok``, where L0H0 writes nothing."""
    circuit, bridge = induction
    (source, target, kind), = circuit.composition
    src, dst = (int(source[1]), int(source[3])), (int(target[1]), int(target[3]))
    with torch.no_grad():
        scores = {mode: bridge.all_composition_scores(mode.upper()).scores.nan_to_num(0.0) for mode in "qkv"}
    assert kind == "k"
    assert scores["k"][src + dst].item() == pytest.approx(1 / math.sqrt(handbuilt.TOKEN_DIM), rel=1e-3)
    assert tuple(int(i) for i in torch.unravel_index(scores["k"].argmax(), scores["k"].shape)) == src + dst
    assert scores["q"][src + dst].abs().item() < 1e-6 and scores["v"][src + dst].abs().item() < 1e-6


def test_the_head_role_checks_name_exactly_the_used_heads(pytester, induction):
    """Through the pytest plugin, as a user runs a claim file: each role has exactly its used head,
    and the deliberately false twins (a distractor with sharp attention, the other role's head) are
    refuted."""
    circuit, _ = induction
    (pytester.path / "model").symlink_to(Path(circuit.spec.removeprefix("native:")), target_is_directory=True)
    claims = [
        {"id": f"{role}-exactly", "check": role, "heads_with_role": [head], "expect": {"score": ">= 0.5"}}
        for head, role in circuit.roles.items()
    ]
    claims += [
        {"id": "distractor-induction-FALSE", "check": "induction_head", "head": "L1H2", "expect": {"score": ">= 0.5"}, "expected": "refuted"},
        {"id": "prev-is-induction-FALSE", "check": "induction_head", "heads_with_role": ["L0H0"], "expect": {"score": ">= 0.5"}, "expected": "refuted"},
        {"id": "induction-is-prev-FALSE", "check": "previous_token_head", "head": "L1H1", "expect": {"score": ">= 0.5"}, "expected": "refuted"},
    ]
    pytester.makefile(".claims.yaml", known=json.dumps({"model": "native:./model", "inputs": circuit.inputs, "claims": claims}))
    result = pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=199")
    result.assert_outcomes(passed=len(claims))
