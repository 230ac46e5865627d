"""Model spec parsing: no model is loaded here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from interp_checks.models import spec as spec_module
from interp_checks.models.cache import ModelCache
from interp_checks.models.spec import (
    PREFIXES,
    ModelSpec,
    ModelSpecError,
    available_zoo_models,
    parse_binding,
    parse_model_spec,
    zoo_dir,
)


def _hf_dir(folder: Path, *, weights: str = "model.safetensors", tokenizer: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    if weights:
        (folder / weights).write_bytes(b"")
    if tokenizer:
        (folder / "tokenizer.json").write_text("{}")
    return folder


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """A fake zoo with attn-only-2l built and a folder without config.json."""
    root = tmp_path / "zoo"
    (root / "attn-only-2l").mkdir(parents=True)
    (root / "attn-only-2l" / "config.json").write_text("{}")
    (root / "half-written").mkdir()
    monkeypatch.setenv("INTERP_CHECKS_ZOO", str(root))
    return root


# --- zoo -------------------------------------------------------------------------------------


def test_zoo_dir_defaults_to_repo_fixtures(monkeypatch):
    import interp_checks

    monkeypatch.delenv("INTERP_CHECKS_ZOO", raising=False)
    assert zoo_dir() == Path(interp_checks.__file__).resolve().parents[1] / "fixtures" / "zoo"


def test_zoo_dir_env_override_and_available_models(zoo):
    assert zoo_dir() == zoo.resolve()
    assert available_zoo_models() == ["attn-only-2l"]  # folders without config.json are not models


def test_zoo_spec(zoo):
    spec = parse_model_spec("zoo:attn-only-2l")
    assert spec == ModelSpec("zoo", "attn-only-2l", "zoo:attn-only-2l")
    assert str(spec) == "zoo:attn-only-2l"
    assert spec.path == zoo.resolve() / "attn-only-2l"


def test_unknown_zoo_name_suggests_closest(zoo):
    with pytest.raises(ModelSpecError) as info:
        parse_model_spec("zoo:atn-only-2l")
    message = str(info.value)
    assert "unknown zoo model 'atn-only-2l'" in message
    assert "Did you mean zoo:attn-only-2l?" in message
    assert "Available zoo models: attn-only-2l" in message


def test_known_but_unbuilt_zoo_model_says_so(zoo):
    with pytest.raises(ModelSpecError, match=r"'attn-only-3l' is not built: .*attn-only-3l has no config.json"):
        parse_model_spec("zoo:attn-only-3l")


def test_empty_zoo_lists_none(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CHECKS_ZOO", str(tmp_path / "nothing-here"))
    assert available_zoo_models() == []
    with pytest.raises(ModelSpecError, match="none built yet"):
        parse_model_spec("zoo:gpt5")


# --- paths -----------------------------------------------------------------------------------


def test_relative_hf_path_resolves_against_base_dir(tmp_path, monkeypatch):
    claims = tmp_path / "claims"
    model = _hf_dir(claims / "models" / "m")
    monkeypatch.chdir(tmp_path)  # cwd must not matter
    spec = parse_model_spec("hf:./models/m", base_dir=claims)
    assert spec.kind == "hf"
    assert spec.target == str(model.resolve())
    assert Path(spec.target).is_absolute()
    assert spec.text == "hf:./models/m"
    assert str(spec) == f"hf:{model.resolve()}"


def test_parent_relative_and_absolute_paths(tmp_path):
    model = _hf_dir(tmp_path / "m")
    (tmp_path / "claims").mkdir()
    assert parse_model_spec("hf:../m", base_dir=tmp_path / "claims").target == str(model.resolve())
    assert parse_model_spec(f"hf:{model}", base_dir="/somewhere/else").target == str(model.resolve())


def test_tilde_expands(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    model = _hf_dir(tmp_path / "models" / "m")
    assert parse_model_spec("hf:~/models/m", base_dir="/elsewhere").target == str(model.resolve())


def test_missing_folder_names_resolved_path_and_base(tmp_path):
    with pytest.raises(ModelSpecError) as info:
        parse_model_spec("hf:./m", base_dir=tmp_path)
    message = str(info.value)
    assert f"folder {(tmp_path / 'm').resolve()} not found" in message
    assert f"relative paths resolve against the claim file folder {tmp_path}" in message
    assert "nothing is downloaded" in message
    assert message.startswith("hf:./m: ")


@pytest.mark.parametrize(
    ("weights", "tokenizer", "expected"),
    [
        ("", True, "has no weights"),
        ("model.safetensors", False, "has no tokenizer"),
    ],
)
def test_incomplete_hf_folder(tmp_path, weights, tokenizer, expected):
    _hf_dir(tmp_path / "m", weights=weights, tokenizer=tokenizer)
    with pytest.raises(ModelSpecError, match=expected):
        parse_model_spec("hf:m", base_dir=tmp_path)


def test_hf_folder_without_config_hints_native(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelSpecError, match="no config.json.*native:"):
        parse_model_spec("hf:m", base_dir=tmp_path)


def test_hf_accepts_pickled_or_sharded_weights(tmp_path):
    _hf_dir(tmp_path / "a", weights="pytorch_model.bin")
    _hf_dir(tmp_path / "b", weights="model-00001-of-00002.safetensors")
    assert parse_model_spec("hf:a", base_dir=tmp_path).kind == "hf"
    assert parse_model_spec("hf:b", base_dir=tmp_path).kind == "hf"


def test_hf_path_that_is_a_file(tmp_path):
    (tmp_path / "m.bin").write_bytes(b"")
    with pytest.raises(ModelSpecError, match="is a file, hf: needs a HuggingFace model folder"):
        parse_model_spec("hf:m.bin", base_dir=tmp_path)


def test_gguf_file(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    spec = parse_model_spec("gguf:m.gguf", base_dir=tmp_path)
    assert spec == ModelSpec("gguf", str((tmp_path / "m.gguf").resolve()))


def test_gguf_missing_file(tmp_path):
    with pytest.raises(ModelSpecError, match=r"file .*nope\.gguf not found.*nothing is downloaded"):
        parse_model_spec("gguf:nope.gguf", base_dir=tmp_path)


def test_gguf_folder_suggests_the_file(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelSpecError, match=r"is a folder, gguf: needs the \.gguf file itself; it holds x\.gguf"):
        parse_model_spec("gguf:d", base_dir=tmp_path)


def test_native_folder(tmp_path):
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "config.json").write_text("{}")
    assert parse_model_spec("native:n", base_dir=tmp_path) == ModelSpec("native", str((tmp_path / "n").resolve()))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSpecError, match="no config.json, so it is not a native checkpoint"):
        parse_model_spec("native:empty", base_dir=tmp_path)


# --- prefixes --------------------------------------------------------------------------------


def test_unknown_prefix_lists_valid_ones():
    with pytest.raises(ModelSpecError) as info:
        parse_model_spec("onnx:model.onnx")
    message = str(info.value)
    assert "unknown model prefix 'onnx'" in message
    for prefix in PREFIXES:
        assert f"{prefix}:" in message


def test_prefix_typo_suggests_fix():
    with pytest.raises(ModelSpecError, match=r"did you mean hf:\./m\?"):
        parse_model_spec("HF:./m")


@pytest.mark.parametrize("text", ["", "   ", "hf:", "zoo:  "])
def test_empty_specs(text):
    with pytest.raises(ModelSpecError):
        parse_model_spec(text)


def test_bare_unbound_name(zoo):
    with pytest.raises(ModelSpecError, match=r"no prefix .* and no --interp-model binding.*--interp-model mymodel="):
        parse_model_spec("mymodel")
    with pytest.raises(ModelSpecError, match=r"Did you mean zoo:attn-only-2l\?"):
        parse_model_spec("attn-only-2l")


def test_bare_name_typo_of_a_binding(tmp_path):
    with pytest.raises(ModelSpecError, match="Did you mean the bound name 'small'"):
        parse_model_spec("smal", bindings={"small": "hf:./m"})


# --- bindings --------------------------------------------------------------------------------


def test_binding_replaces_bare_name_and_resolves_against_binding_dir(tmp_path):
    cli_dir, claims = tmp_path / "cli", tmp_path / "claims"
    model = _hf_dir(cli_dir / "m")
    claims.mkdir()
    spec = parse_model_spec("small", base_dir=claims, bindings={"small": "hf:./m"}, bindings_base_dir=cli_dir)
    assert spec == ModelSpec("hf", str(model.resolve()))
    assert spec.text == "hf:./m"
    assert spec.bound_from == "small"
    assert spec.describe() == f"small (= hf:{model.resolve()})"


def test_binding_base_defaults_to_cwd(tmp_path, monkeypatch):
    model = _hf_dir(tmp_path / "m")
    monkeypatch.chdir(tmp_path)
    spec = parse_model_spec("small", base_dir="/claims/elsewhere", bindings={"small": "hf:m"})
    assert spec.target == str(model.resolve())


def test_binding_can_override_a_whole_zoo_spec(tmp_path, zoo):
    model = _hf_dir(tmp_path / "m")
    bindings = {"zoo:attn-only-2l": f"hf:{model}"}
    assert parse_model_spec("zoo:attn-only-2l", bindings=bindings).kind == "hf"
    # only the exact whole string is a key: a bare "attn-only-2l" binding does not touch zoo: specs
    assert parse_model_spec("zoo:attn-only-2l", bindings={"attn-only-2l": f"hf:{model}"}).kind == "zoo"


def test_missing_file_in_binding_mentions_binding(tmp_path):
    with pytest.raises(ModelSpecError, match=r"small \(bound to hf:\./gone\).*--interp-model binding"):
        parse_model_spec("small", bindings={"small": "hf:./gone"}, bindings_base_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("small=hf:./m", ("small", "hf:./m")),
        (" small = zoo:attn-only-2l ", ("small", "zoo:attn-only-2l")),
        ("zoo:attn-only-2l=native:/ckpt", ("zoo:attn-only-2l", "native:/ckpt")),
        ("m=gguf:/x/a=b.gguf", ("m", "gguf:/x/a=b.gguf")),  # only the first '=' splits
    ],
)
def test_parse_binding(text, expected):
    assert parse_binding(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("small", "expected NAME=SPEC"),
        ("=hf:./m", "NAME before '=' is empty"),
        ("small=", "SPEC after '=' is empty"),
        ("sm all=hf:./m", "must be letters"),
        ("hf:x=hf:./m", "must be letters"),
        ("small=./m", "needs one of the prefixes"),
        ("small=other", "cannot point at another bound name"),
    ],
)
def test_bad_binding(text, expected):
    with pytest.raises(ModelSpecError, match=expected):
        parse_binding(text)


def test_errors_are_value_errors():
    assert issubclass(ModelSpecError, ValueError)
    assert spec_module.ModelSpecError is ModelSpecError


def test_spec_is_hashable_and_text_does_not_affect_equality():
    a = ModelSpec("hf", "/abs/m", "hf:./m")
    b = ModelSpec("hf", "/abs/m", "hf:/abs/m", bound_from="x")
    assert a == b and hash(a) == hash(b) and str(a) == "hf:/abs/m"


# --- cheap imports, cache bookkeeping, devices ------------------------------------------------


@pytest.mark.parametrize("module", ["interp_checks.models.spec", "interp_checks.models"])
def test_importing_specs_does_not_import_torch(module):
    code = (
        f"import sys, {module}\n"
        "heavy = [m for m in ('torch', 'transformers', 'transformer_lens') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_model_cache_loads_each_spec_once(monkeypatch):
    from interp_checks.models import load

    calls: list[tuple[str, str]] = []
    twin_calls: list[int] = []

    def fake_load(spec, *, device="cpu"):
        calls.append((str(spec), device))
        return object()

    def fake_twin(loaded, *, seed=0):
        twin_calls.append(seed)
        return (loaded, seed)

    monkeypatch.setattr(load, "load_model", fake_load)
    monkeypatch.setattr(load, "load_random_twin", fake_twin)
    cache = ModelCache()
    spec = ModelSpec("hf", "/abs/m")
    first = cache.get(spec, "cpu")
    assert cache.get(ModelSpec("hf", "/abs/m", "hf:./m"), "cpu") is first
    assert calls == [("hf:/abs/m", "cpu")]
    assert cache.random_twin(spec, "cpu", seed=1) is cache.random_twin(spec, "cpu", seed=1)
    assert cache.random_twin(spec, "cpu", seed=2) != cache.random_twin(spec, "cpu", seed=1)
    assert twin_calls == [1, 2] and len(calls) == 1
    cache.clear()
    assert len(cache) == 0


def test_resolve_device():
    import torch

    from interp_checks.models.load import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device(None) == resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelSpecError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelSpecError, match="CUDA is not available"):
            resolve_device("cuda")
