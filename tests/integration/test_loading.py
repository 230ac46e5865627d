"""Loading real (tiny) checkpoints: HF folder, GGUF file, native folder, zoo; random twins; refusals.

Every model here is written offline by ``tests.helpers.tiny_models``; an autouse fixture makes any
network connection attempt fail, so a loader that reached for the Hub would fail these tests.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import shutil  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from interp_checks.models import (  # noqa: E402
    ModelCache,
    ModelSpecError,
    UnsafeCheckpointError,
    load_model,
    load_random_twin,
    parse_model_spec,
)
from tests.helpers import tiny_models  # noqa: E402

torch = pytest.importorskip("torch")

N_LAYERS, N_HEADS = 2, 4
PATTERN_HOOKS = [f"blocks.{layer}.attn.hook_pattern" for layer in range(N_LAYERS)]
TEXT = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)"

NATIVE_ARCH = dict(
    d_model=32,
    d_head=8,
    n_layers=N_LAYERS,
    n_ctx=32,
    n_heads=N_HEADS,
    d_vocab=50,
    attn_only=True,
    normalization_type="LN",
    positional_embedding_type="standard",
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a model loader tried to open a network connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# --- tiny models, written once per session ---------------------------------------------------


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory) -> Path:
    tiny_models.offline_env()
    return tiny_models.write_tiny_hf_gpt2(tmp_path_factory.mktemp("hf") / "tiny-gpt2", n_layer=N_LAYERS, n_head=N_HEADS)


@pytest.fixture(scope="session")
def tiny_gguf(tiny_hf_dir, tmp_path_factory) -> Path:
    return tiny_models.write_tiny_gguf(tmp_path_factory.mktemp("gguf"), hf_dir=tiny_hf_dir)


@pytest.fixture(scope="session")
def native_dir(tmp_path_factory) -> Path:
    from interp_checks.models import native

    bridge = native.boot_random(NATIVE_ARCH, seed=7)
    return native.save_native(bridge, tmp_path_factory.mktemp("native") / "attn-only-2l", meta={"seed": 7})


@pytest.fixture(scope="module")
def hf_model(tiny_hf_dir):
    return load_model(parse_model_spec(f"hf:{tiny_hf_dir}"))


@pytest.fixture(scope="module")
def gguf_model(tiny_gguf):
    return load_model(parse_model_spec(f"gguf:{tiny_gguf.name}", base_dir=tiny_gguf.parent))


@pytest.fixture(scope="module")
def native_model(native_dir):
    return load_model(parse_model_spec(f"native:{native_dir}"))


@pytest.fixture(scope="module")
def tokens(hf_model):
    return hf_model.tokenizer([TEXT, TEXT[::-1]], return_tensors="pt", padding=False, truncation=True, max_length=20)[
        "input_ids"
    ]


def _patterns(loaded, tokens):
    _, cache = loaded.bridge.run_with_cache(tokens, names_filter=PATTERN_HOOKS)
    return [cache[name] for name in PATTERN_HOOKS]


def _assert_attention_patterns(loaded, tokens):
    batch, seq = tokens.shape
    patterns = _patterns(loaded, tokens)
    for pattern in patterns:
        assert pattern.shape == (batch, loaded.n_heads, seq, seq)
        torch.testing.assert_close(pattern.sum(-1), torch.ones(batch, loaded.n_heads, seq))
        assert pattern.triu(diagonal=1).abs().max() == 0  # causal
    return patterns


def _logits(loaded, tokens):
    with torch.no_grad():
        return loaded.bridge(tokens)


# --- HuggingFace folder ----------------------------------------------------------------------


def test_hf_folder_loads_as_eval_bridge_with_attention_hooks(hf_model, tokens):
    assert not hf_model.bridge.training
    assert (hf_model.n_layers, hf_model.n_heads, hf_model.n_ctx) == (N_LAYERS, N_HEADS, 128)
    assert hf_model.d_vocab == len(hf_model.tokenizer)
    assert hf_model.bos_token_id == 0 and 0 in hf_model.special_token_ids
    assert hf_model.device == "cpu"
    assert hf_model.architecture["source"] == "hf" and hf_model.architecture["model_type"] == "gpt2"
    _assert_attention_patterns(hf_model, tokens)


def test_hf_bridge_logits_match_transformers(hf_model, tiny_hf_dir, tokens):
    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(tiny_hf_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(tokens).logits
    torch.testing.assert_close(_logits(hf_model, tokens), expected, atol=1e-5, rtol=1e-5)


def test_hf_pickled_weights_without_code_still_load(hf_model, tiny_hf_dir, tmp_path, tokens):
    folder = tmp_path / "bin-model"
    folder.mkdir()
    for item in tiny_hf_dir.iterdir():
        if item.suffix != ".safetensors":
            shutil.copy(item, folder / item.name)
    from transformers import AutoModelForCausalLM

    torch.save(AutoModelForCausalLM.from_pretrained(tiny_hf_dir).state_dict(), folder / "pytorch_model.bin")
    loaded = load_model(parse_model_spec(f"hf:{folder}"))
    torch.testing.assert_close(_logits(loaded, tokens), _logits(hf_model, tokens))


def test_malicious_pickle_is_refused_without_running_it(tiny_hf_dir, tmp_path):
    marker = tmp_path / "pwned.txt"
    folder = tiny_models.write_malicious_pickle_hf_dir(tmp_path / "evil", marker, tiny_hf_dir=tiny_hf_dir)
    spec = parse_model_spec(f"hf:{folder}")
    with pytest.raises(UnsafeCheckpointError) as info:
        load_model(spec)
    message = str(info.value)
    assert str(folder / "pytorch_model.bin") in message
    assert "refused: this pickle would execute code" in message
    assert "convert it to safetensors" in message
    assert isinstance(info.value, ModelSpecError)
    assert not marker.exists()

    # The payload is real: an unsafe load does run it (so the refusal above is what protected us).
    control = tmp_path / "control.txt"
    evil = tiny_models.write_malicious_pickle_hf_dir(tmp_path / "evil2", control, tiny_hf_dir=tiny_hf_dir)
    torch.load(evil / "pytorch_model.bin", weights_only=False)
    assert control.exists()


def test_remote_code_config_is_refused(tiny_hf_dir, tmp_path):
    import json

    folder = tmp_path / "custom"
    shutil.copytree(tiny_hf_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsafeCheckpointError, match="auto_map"):
        load_model(parse_model_spec(f"hf:{folder}"))


def test_weights_that_do_not_match_the_config_are_refused(tiny_hf_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(tiny_hf_dir, tmp_path / "partial")
    state = load_file(str(folder / "model.safetensors"))
    del state["transformer.h.1.mlp.c_fc.weight"]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelSpecError, match=r"do not match its config.json \(missing: transformer\.h\.1\.mlp\.c_fc\.weight\)"):
        load_model(parse_model_spec(f"hf:{folder}"))


def test_folder_removed_after_parsing_is_an_error_not_a_download(tiny_hf_dir, tmp_path):
    folder = shutil.copytree(tiny_hf_dir, tmp_path / "gone")
    spec = parse_model_spec(f"hf:{folder}")
    shutil.rmtree(folder)
    with pytest.raises(ModelSpecError, match=r"config\.json not found; nothing is downloaded"):
        load_model(spec)


def test_missing_folder_error(tmp_path):
    with pytest.raises(ModelSpecError, match=rf"folder {tmp_path.resolve() / 'nope'} not found"):
        parse_model_spec("hf:./nope", base_dir=tmp_path)


# --- GGUF ------------------------------------------------------------------------------------


def test_gguf_bridge_matches_the_source_model(gguf_model, hf_model, tokens):
    assert not gguf_model.bridge.training
    assert (gguf_model.n_layers, gguf_model.n_heads, gguf_model.d_vocab, gguf_model.n_ctx) == (
        hf_model.n_layers,
        hf_model.n_heads,
        hf_model.d_vocab,
        hf_model.n_ctx,
    )
    assert gguf_model.architecture["gguf_architecture"] == "gpt2"
    assert gguf_model.bos_token_id == hf_model.bos_token_id
    assert gguf_model.special_token_ids == hf_model.special_token_ids
    # the tokenizer rebuilt from GGUF metadata tokenizes like the original
    assert gguf_model.bridge.to_tokens(TEXT).tolist() == hf_model.bridge.to_tokens(TEXT).tolist()
    assert gguf_model.bridge.to_tokens(TEXT)[0, 0].item() == hf_model.bos_token_id
    expected = _logits(hf_model, tokens)
    assert expected.abs().max() > 1  # non-trivial logits, so the comparison means something
    torch.testing.assert_close(_logits(gguf_model, tokens), expected, atol=1e-4, rtol=1e-4)
    for got, want in zip(_assert_attention_patterns(gguf_model, tokens), _patterns(hf_model, tokens)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_f16_gguf_is_close(hf_model, tiny_hf_dir, tmp_path, tokens):
    path = tiny_models.hf_gpt2_to_gguf(tiny_hf_dir, tmp_path / "tiny-f16.gguf", f16=True)
    loaded = load_model(parse_model_spec(f"gguf:{path}"))
    torch.testing.assert_close(_logits(loaded, tokens), _logits(hf_model, tokens), atol=5e-2, rtol=1e-2)


def test_gguf_with_missing_tensors_is_refused(tiny_hf_dir, tmp_path):
    path = tiny_models.hf_gpt2_to_gguf(tiny_hf_dir, tmp_path / "partial.gguf", skip=("blk.1.ffn_up.weight",))
    with pytest.raises(ModelSpecError, match=r"do not match the model its metadata describes \(missing: .*h\.1\.mlp\.c_fc\.weight"):
        load_model(parse_model_spec(f"gguf:{path}"))


def test_gguf_of_unsupported_architecture_lists_the_working_ones(tmp_path):
    import numpy as np
    from gguf import GGUFWriter

    path = tmp_path / "odd.gguf"
    writer = GGUFWriter(str(path), "notanarch")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelSpecError) as info:
        load_model(parse_model_spec(f"gguf:{path}"))
    message = str(info.value)
    assert "cannot load GGUF architecture 'notanarch'" in message
    assert "gpt2" in message and "llama" in message
    assert "hf:PATH" in message


def test_non_gguf_file_is_rejected(tmp_path):
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelSpecError, match="is not a GGUF file"):
        load_model(parse_model_spec(f"gguf:{path}"))


# --- native and zoo --------------------------------------------------------------------------


def test_native_round_trip(native_model, native_dir):
    from interp_checks.models import native

    original = native.boot_random(NATIVE_ARCH, seed=7)
    tokens = torch.randint(0, NATIVE_ARCH["d_vocab"], (2, 12), generator=torch.Generator().manual_seed(0))
    assert not native_model.bridge.training
    assert (native_model.n_layers, native_model.n_heads, native_model.d_vocab, native_model.n_ctx) == (2, 4, 50, 32)
    assert native_model.architecture == {"source": "native", "config": native.read_native_config(native_dir)["architecture"]}
    assert native_model.tokenizer is None and native_model.bos_token_id is None
    assert native_model.special_token_ids == frozenset()
    assert native_model.meta == {"seed": 7}
    with torch.no_grad():
        torch.testing.assert_close(native_model.bridge(tokens), original(tokens))
    _assert_attention_patterns(native_model, tokens)


def test_zoo_spec_loads_from_zoo_dir(native_dir, monkeypatch, native_model):
    monkeypatch.setenv("INTERP_CHECKS_ZOO", str(native_dir.parent))
    loaded = load_model(parse_model_spec("zoo:attn-only-2l"))
    assert str(loaded.spec) == "zoo:attn-only-2l"
    tokens = torch.arange(10).unsqueeze(0)
    torch.testing.assert_close(_logits(loaded, tokens), _logits(native_model, tokens))


def test_broken_native_checkpoint_is_a_spec_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(ModelSpecError, match=r"native:.*expected \"format\""):
        load_model(parse_model_spec(f"native:{folder}"))


# --- random twins ----------------------------------------------------------------------------


def _same_shapes(a, b) -> bool:
    sa, sb = a.bridge.state_dict(), b.bridge.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


@pytest.mark.parametrize("which", ["hf_model", "gguf_model", "native_model"])
def test_random_twin(which, request):
    loaded = request.getfixturevalue(which)
    tokens = torch.randint(1, min(loaded.d_vocab, 50), (2, 10), generator=torch.Generator().manual_seed(1))
    rng_before = torch.random.get_rng_state()
    twin = load_random_twin(loaded, seed=1)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is left alone
    again = load_random_twin(loaded, seed=1)
    other = load_random_twin(loaded, seed=2)

    assert twin.is_random_twin and twin.seed == 1 and not loaded.is_random_twin
    assert not twin.bridge.training
    assert (twin.n_layers, twin.n_heads, twin.d_vocab, twin.n_ctx) == (
        loaded.n_layers,
        loaded.n_heads,
        loaded.d_vocab,
        loaded.n_ctx,
    )
    assert twin.architecture == loaded.architecture and twin.tokenizer is loaded.tokenizer
    assert twin.special_token_ids == loaded.special_token_ids
    assert _same_shapes(twin, loaded)
    base, twin_logits = _logits(loaded, tokens), _logits(twin, tokens)
    assert not torch.allclose(twin_logits, base)
    torch.testing.assert_close(_logits(again, tokens), twin_logits, atol=0, rtol=0)  # deterministic per seed
    assert not torch.allclose(_logits(other, tokens), twin_logits)
    _assert_attention_patterns(twin, tokens)


# --- cache -----------------------------------------------------------------------------------


def test_model_cache(native_dir):
    cache = ModelCache()
    spec = parse_model_spec(f"native:{native_dir}")
    first = cache.get(spec, "cpu")
    assert cache.get(parse_model_spec(str(spec)), "auto" if not torch.cuda.is_available() else "cpu") is first
    twin = cache.random_twin(spec, "cpu", seed=3)
    assert cache.random_twin(spec, "cpu", seed=3) is twin
    assert twin.is_random_twin and twin.bridge is not first.bridge
