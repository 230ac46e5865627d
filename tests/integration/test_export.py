"""``interp_checks.models.export``: one native attention-only model, written as a HuggingFace GPT-2
folder and as a GGUF file, gives the same activations through all three loaders.

The native model is random but made non-trivial (sharp attention, non-zero biases and LayerNorm
parameters, a non-zero unembedding bias that GPT-2 cannot hold), so "the same" means something.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from interp_checks.models import load_model, parse_model_spec  # noqa: E402
from interp_checks.models.export import EXPORT_CONFIG_KEY, export_gguf, export_hf_gpt2  # noqa: E402
from interp_checks.models.native import boot_random, load_tokenizer, save_native  # noqa: E402
from tests.helpers import tiny_models  # noqa: E402

torch = pytest.importorskip("torch")

N_LAYERS, N_HEADS = 2, 4
ARCH = dict(
    d_model=32,
    d_head=8,
    n_heads=N_HEADS,
    n_layers=N_LAYERS,
    n_ctx=48,
    attn_only=True,
    normalization_type="LN",
    positional_embedding_type="standard",
    eps=1e-4,  # not the default, so a dropped eps would show
)
# Residual-stream and attention hooks that native and GPT-2 bridges both have.
HOOKS = [
    f"blocks.{layer}.{hook}"
    for layer in range(N_LAYERS)
    for hook in ("attn.hook_pattern", "hook_resid_pre", "hook_attn_out", "hook_resid_post")
]


def _tokenizer_file(folder: Path, tokenizer) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder / "tokenizer.json"


def _make_nontrivial(bridge, seed: int) -> None:
    """Sharper attention, non-zero biases / LayerNorm params, and a non-zero unembedding bias."""
    generator = torch.Generator().manual_seed(seed)
    state = {name: tensor.clone() for name, tensor in bridge.state_dict().items()}
    for name, tensor in state.items():
        noise = torch.randn(tensor.shape, generator=generator)
        if name.endswith((".q.weight", ".k.weight")):
            tensor.mul_(3.0)
        elif name.endswith(".bias"):
            tensor.copy_(0.3 * noise)
        elif "ln" in name and name.endswith(".weight"):
            tensor.copy_(1.0 + 0.2 * noise)
    bridge.load_state_dict(state)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(native folder, HF folder, GGUF file) of one random attention-only model."""
    tiny_models.offline_env()
    root = tmp_path_factory.mktemp("export")
    tokenizer = tiny_models.train_tiny_tokenizer(300)  # <|endoftext|> = id 0
    tokenizer_json = _tokenizer_file(root / "tok", tokenizer)
    bridge = boot_random({**ARCH, "d_vocab": tokenizer.get_vocab_size()}, seed=11)
    _make_nontrivial(bridge, seed=11)
    native_dir = save_native(bridge, root / "native", tokenizer_json=tokenizer_json)
    hf_dir = export_hf_gpt2(native_dir, root / "hf")
    gguf_path = export_gguf(hf_dir, root / "gguf" / "model.gguf")
    return native_dir, hf_dir, gguf_path


@pytest.fixture(scope="module")
def loaded(exported):
    native_dir, hf_dir, gguf_path = exported
    specs = {"native": f"native:{native_dir}", "hf": f"hf:{hf_dir}", "gguf": f"gguf:{gguf_path}"}
    return {fmt: load_model(parse_model_spec(spec)) for fmt, spec in specs.items()}


@pytest.fixture(scope="module")
def tokens(loaded):
    """A batch built the way the checks build theirs: token ids, BOS first, then random tokens."""
    model = loaded["native"]
    body = torch.randint(1, model.d_vocab, (4, 24), generator=torch.Generator().manual_seed(0))
    return torch.cat([torch.full((4, 1), model.bos_token_id), body, body[:, :8]], dim=1)


@pytest.fixture(scope="module")
def runs(loaded, tokens):
    out = {}
    for fmt, model in loaded.items():
        with torch.no_grad():
            logits, cache = model.bridge.run_with_cache(tokens, names_filter=lambda name: name in HOOKS)
        out[fmt] = (logits, {name: cache[name] for name in HOOKS})
    return out


def test_exported_folder_is_a_gpt2_with_zero_mlps_and_says_the_bias_was_dropped(exported):
    from safetensors.torch import load_file

    native_dir, hf_dir, gguf_path = exported
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"} <= {
        p.name for p in hf_dir.iterdir()
    }
    config = json.loads((hf_dir / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]
    assert (config["n_layer"], config["n_head"], config["n_embd"], config["n_positions"]) == (N_LAYERS, N_HEADS, 32, ARCH["n_ctx"])
    assert config["layer_norm_epsilon"] == ARCH["eps"] and config["tie_word_embeddings"] is False
    record = config[EXPORT_CONFIG_KEY]
    assert record["unembed_bias_dropped"] is True and record["max_abs_unembed_bias"] > 0.1
    assert "per-token constant" in record["note"] and "dropped" in (hf_dir / "README.md").read_text()
    weights = load_file(str(hf_dir / "model.safetensors"))
    mlp = [name for name in weights if ".mlp." in name]
    assert len(mlp) == 4 * N_LAYERS and all(weights[name].abs().max() == 0 for name in mlp)
    assert "lm_head.weight" in weights
    assert gguf_path.read_bytes()[:4] == b"GGUF"


def test_all_formats_describe_the_same_model(loaded):
    native = loaded["native"]
    assert native.bos_token_id == 0  # <|endoftext|>, as the bridge assigns it
    for fmt in ("hf", "gguf"):
        model = loaded[fmt]
        assert (model.n_layers, model.n_heads, model.d_vocab, model.n_ctx) == (
            native.n_layers, native.n_heads, native.d_vocab, native.n_ctx), fmt
        assert model.bos_token_id == native.bos_token_id, fmt
        assert model.special_token_ids == native.special_token_ids, fmt
    assert loaded["gguf"].architecture["gguf_architecture"] == "gpt2"


@pytest.mark.parametrize("fmt", ["hf", "gguf"])
def test_attention_patterns_and_residual_stream_agree(runs, fmt):
    _, native = runs["native"]
    _, other = runs[fmt]
    patterns = [native[f"blocks.{layer}.attn.hook_pattern"] for layer in range(N_LAYERS)]
    assert max(float(p.max()) for p in patterns) > 0.9  # sharp attention: the comparison means something
    for name in HOOKS:
        assert other[name].shape == native[name].shape, name
        torch.testing.assert_close(other[name], native[name], atol=1e-5, rtol=1e-5, msg=lambda m: f"{fmt} {name}: {m}")


def test_logits_differ_by_exactly_the_dropped_unembedding_bias(runs, loaded):
    bias = loaded["native"].bridge.unembed.bias.detach()
    assert bias.abs().max() > 0.1
    native_logits = runs["native"][0]
    torch.testing.assert_close(runs["hf"][0], native_logits - bias, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(runs["gguf"][0], runs["hf"][0], atol=1e-5, rtol=1e-5)


def test_bridge_source_and_zoo_style_special_tokens(tmp_path):
    """Export straight from a bridge, with a tokenizer whose BOS/EOS/PAD are separate tokens (as the
    zoo's is): the HF and GGUF loaders report the ids the native tokenizer assigns."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=280,
        special_tokens=["<|bos|>", "<|eos|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tiny_models.stdlib_corpus(200), trainer=trainer)
    tokenizer_json = _tokenizer_file(tmp_path / "tok", tokenizer)
    roles = load_tokenizer(tokenizer_json)
    assert (roles.bos_token_id, roles.eos_token_id, roles.pad_token_id) == (0, 1, 2)

    bridge = boot_random({**ARCH, "d_vocab": tokenizer.get_vocab_size()}, seed=3)
    hf_dir = export_hf_gpt2(bridge, tmp_path / "hf", tokenizer_json=tokenizer_json, n_inner=4)
    assert json.loads((hf_dir / "config.json").read_text())["n_inner"] == 4
    assert json.loads((hf_dir / "config.json").read_text())[EXPORT_CONFIG_KEY]["unembed_bias_dropped"] is False
    gguf_path = export_gguf(hf_dir, tmp_path / "model.gguf")
    hf = load_model(parse_model_spec(f"hf:{hf_dir}"))
    gguf = load_model(parse_model_spec(f"gguf:{gguf_path}"))
    for model in (hf, gguf):
        assert model.bos_token_id == 0
        assert model.special_token_ids == frozenset({0, 1, 2})
        assert (model.tokenizer.eos_token_id, model.tokenizer.pad_token_id) == (1, 2)
    tokens = torch.tensor([[0, 5, 6, 7, 5, 6, 7]])
    with torch.no_grad():
        want = bridge(tokens)
        torch.testing.assert_close(hf.bridge(tokens), want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(gguf.bridge(tokens), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"attn_only": False, "d_mlp": 64}, "it has MLPs"),
        ({"normalization_type": "RMS"}, "normalization_type='RMS'"),
        ({"positional_embedding_type": "rotary"}, "positional_embedding_type='rotary'"),
    ],
    ids=["mlp", "rmsnorm", "rotary"],
)
def test_architectures_gpt2_cannot_express_are_refused(tmp_path, change, message):
    bridge = boot_random({**ARCH, "d_vocab": 50, **change}, seed=0)
    with pytest.raises(ValueError, match=rf"cannot export .* as GPT-2: .*{message}"):
        export_hf_gpt2(bridge, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_a_model_without_tokenizer_needs_one(tmp_path):
    folder = save_native(boot_random({**ARCH, "d_vocab": 50}, seed=0), tmp_path / "native")
    with pytest.raises(ValueError, match="has no tokenizer.*tokenizer_json=PATH"):
        export_hf_gpt2(folder, tmp_path / "hf")
