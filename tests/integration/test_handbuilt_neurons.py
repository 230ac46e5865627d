"""The hand-built token-neuron model (``zoo.handbuilt.build_token_neurons``) does what its answer key
says: on text through the real zoo tokenizer, each neuron's activation at the key's hook is the
key's value (large exactly on the neuron's token strings, 0 on every other token, whatever the
context), the direction survives the layer norm before the MLP, and a planted exception is left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_checks.checks.base import Needs
from interp_checks.models.native import CONFIG_FILE, load_native
from interp_checks.runner import capture
from interp_checks.zoo.handbuilt import (
    TOKEN_NEURON_ACTIVATIONS,
    KnownNeurons,
    build_token_neurons,
    token_strings_matching,
)

TEXTS = (
    "x = 7 and 17, 7;def undefined 1234567\n    return self.value + 42",
    "def f(a, b=3):\n    # the default is 3\n    return a * b - 1.5e10",
    "no digits here, only words and punctuation: (a, b) -> [c]",
)


@pytest.fixture(scope="module", params=TOKEN_NEURON_ACTIVATIONS)
def built(request, tmp_path_factory) -> tuple[KnownNeurons, object]:
    folder = tmp_path_factory.mktemp("token-neurons") / request.param
    key = build_token_neurons(
        folder, {0: token_strings_matching(r"\d"), 1: token_strings_matching("def")}, act_fn=request.param, exceptions={0: ["7"]}
    )
    return key, load_native(folder)


def tokens_of(bridge, text: str) -> list[int]:
    tokenizer = bridge.tokenizer
    return [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"]


def hook_values(bridge, ids: list[int], hooks: set[str]) -> dict[str, np.ndarray]:
    store = capture(bridge, torch.tensor([ids]), Needs(frozenset(hooks)))
    return {name: value[0].double().numpy() for name, value in store.items()}


def test_the_key_is_saved_with_the_model_and_names_its_tokens(built):
    key, bridge = built
    meta = json.loads((Path(key.spec.removeprefix("native:")) / CONFIG_FILE).read_text())["meta"]
    assert meta["known_neurons"] == json.loads(json.dumps(key.to_dict()))
    assert "7" not in key.fires_on[0] and key.exceptions[0] == ("7",)
    assert {"0", "1", " 1", "42"} & set(key.fires_on[0]) and "def" in key.fires_on[1]
    assert bridge.cfg.act_fn == key.act_fn and bridge.cfg.d_mlp == key.d_mlp == 16
    strings = [bridge.tokenizer.decode([i]) for i in key.token_ids[0]]
    assert sorted(strings) == sorted(key.fires_on[0])


@pytest.mark.parametrize("text", TEXTS)
def test_activations_at_the_hook_are_the_keys_on_real_text(built, text):
    key, bridge = built
    ids = tokens_of(bridge, text)
    got = hook_values(bridge, ids, {key.hook})[key.hook]
    np.testing.assert_allclose(got, key.expected(ids), atol=1e-4)
    strings = [bridge.tokenizer.decode([i]) for i in ids]
    for position, token in enumerate(strings[1:], start=1):
        fires = got[position] > key.threshold
        assert fires[0] == (token in key.fires_on[0]), (token, got[position, 0])
        assert fires[1] == (token in key.fires_on[1]), (token, got[position, 1])
        assert not fires[2:].any()  # neurons without a set fire on nothing


def test_every_digit_token_fires_but_the_planted_exception(built):
    """The claim a test will state, "L0N0 fires on every match of \\d", is false only at ``7``."""
    key, bridge = built
    ids = tokens_of(bridge, " ".join(["0 1 2 3 4 5 6 7 8 9", *key.fires_on[0]]))
    activation = hook_values(bridge, ids, {key.hook})[key.hook][:, 0]
    strings = [bridge.tokenizer.decode([i]) for i in ids]
    quiet = {s for s, a in zip(strings[1:], activation[1:]) if any(c.isdigit() for c in s) and a <= key.threshold}
    assert quiet == {"7"}


def test_the_direction_survives_the_layer_norm_before_the_mlp(built):
    """The residual at every position is its token's embedding (attention writes nothing, rotary
    adds nothing), and ln2 only divides it by sqrt(1 + eps): embeddings have mean 0 and norm sqrt(d_model)."""
    key, bridge = built
    ids = tokens_of(bridge, TEXTS[0])
    values = hook_values(bridge, ids, {"blocks.0.hook_resid_mid", "blocks.0.ln2.hook_normalized", "blocks.0.mlp.hook_pre"})
    embedding = bridge.state_dict()["embed.weight"].double().numpy()[ids]
    np.testing.assert_allclose(values["blocks.0.hook_resid_mid"], embedding, atol=1e-5)
    np.testing.assert_allclose(values["blocks.0.ln2.hook_normalized"], embedding / math.sqrt(1 + key.eps), atol=1e-5)
    member = key.membership(bridge.cfg.d_vocab)[ids]
    np.testing.assert_allclose(values["blocks.0.mlp.hook_pre"], member * key.pre_activation / math.sqrt(1 + key.eps), atol=1e-4)


def test_bad_token_sets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not token strings"):
        build_token_neurons(tmp_path / "a", {0: ["no such token string"]})
    with pytest.raises(ValueError, match="outside the layer"):
        build_token_neurons(tmp_path / "b", {16: ["7"]})
    with pytest.raises(ValueError, match="not among its token strings"):
        build_token_neurons(tmp_path / "c", {0: ["1"]}, exceptions={0: ["7"]})
