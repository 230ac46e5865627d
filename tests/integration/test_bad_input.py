"""Bad input with tiny models: one bad claim errors alone, the size limit, loaders' file paths.

Companion of ``tests/unit/test_bad_input.py`` (no models) and ``test_fuzz_claims.py`` (random
mutations): each test here is one failure the engine or a loader used to let escape.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from interp_checks import engine as engine_module
from interp_checks.checks import base
from interp_checks.checks.heads import ROLE_MASKS, HeadRoleCheck
from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import ERROR, Engine, Settings
from interp_checks.inputs.generators import MAX_INPUT_TOKENS_OPTION
from interp_checks.models.load import load_model
from interp_checks.models.native import CONFIG_FILE, boot_random, save_native
from interp_checks.models.spec import ModelSpecError, parse_model_spec
from interp_checks.plugin import OPT_MAX_INPUT_TOKENS, OPT_RESAMPLES

ZOO_TOKENIZER = Path(__file__).resolve().parents[2] / "fixtures" / "zoo" / "tokenizer.json"
ARCH = dict(d_model=16, n_layers=2, n_heads=2, d_head=8, n_ctx=64, d_vocab=60, attn_only=True, normalization_type="LN", act_fn="gelu")
TOKENS = {"kind": "repeated_random_tokens", "seq_len": 6, "n": 8}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-input")
    out = {"model": save_native(boot_random(ARCH, seed=1), root / "model")}
    out["short"] = save_native(boot_random({**ARCH, "n_ctx": 10}, seed=2), root / "short")  # context of 10 tokens
    return out


def spec(models: dict[str, Path], claim_id: str, *, model: str = "model", check: str = "induction_head", inputs: Any = None, **params: Any) -> ClaimSpec:
    expect = params.pop("expect", {"score": ">= 0.4"})
    return ClaimSpec(
        id=claim_id,
        path=models["model"].parent / "x.claims.yaml",
        index=0,
        check=check,
        model=f"native:{models[model]}",
        inputs=dict(TOKENS) if inputs is None else inputs,
        expect={k: parse_expectation(v) for k, v in expect.items()},
        params=params or {"head": "L1H0"},
    )


def engine(**settings: Any) -> Engine:
    return Engine(Settings(n_resamples=99, **settings))


def assert_alone(results, bad_ids: set[str], words: str) -> None:
    for result in results:
        if result.spec.id in bad_ids:
            assert result.outcome == ERROR, result
            assert words in result.error and repr(result.spec.id) in result.error and str(result.spec.path) in result.error, result.error
        else:
            assert result.outcome != ERROR, result.error


# --- the engine: one claim's failure stays with that claim ----------------------------------------


@pytest.mark.parametrize("kind", [{"a": 1}, ["repeated_random_tokens"]])
def test_an_inputs_kind_that_is_not_a_string_errors_alone(models, kind):
    results = engine().evaluate([spec(models, "good"), spec(models, "bad", inputs={"kind": kind, "n": 8})])
    assert_alone(results, {"bad"}, "inputs.kind must be the name of an input generator")


def test_oversized_inputs_error_alone_before_anything_is_generated(models, monkeypatch):
    real = engine_module.generate

    def guarded(spec_, vocab, seed, **kwargs):
        assert spec_["n"] < 1000, "inputs were generated for the oversized claim"
        return real(spec_, vocab, seed, **kwargs)

    monkeypatch.setattr(engine_module, "generate", guarded)
    huge = {"kind": "repeated_random_tokens", "seq_len": 8, "n": 1_000_000_000}
    results = engine().evaluate([spec(models, "good"), spec(models, "huge", inputs=huge)])
    assert_alone(results, {"huge"}, MAX_INPUT_TOKENS_OPTION)
    assert "17,000,000,000 tokens" in results[1].error


def test_the_limit_is_a_setting(models):
    claims = [spec(models, "small", inputs={**TOKENS, "n": 7}), spec(models, "big", inputs={**TOKENS, "n": 8})]
    assert_alone(engine(max_input_tokens=100).evaluate(claims), {"big"}, "over the limit of 100 tokens")  # 8 x 13 = 104
    assert_alone(engine(max_input_tokens=104).evaluate(claims), set(), "")
    assert_alone(engine(max_input_tokens=None).evaluate(claims), set(), "")


class _Buggy(HeadRoleCheck):
    """A head-role check with a bug in one stage (as a user's own check might have)."""

    def __init__(self, name: str, stage: str):
        super().__init__(name, "test only")
        self.stage = stage

    def prepare(self, params, shapes, expect):
        if self.stage == "prepare":
            raise TypeError("unhashable type: 'dict'")
        return super().prepare(params, shapes, expect)

    def measure(self, prepared, activations, batches):
        if self.stage == "measure":
            raise KeyError("blocks.9.attn.hook_pattern")
        return super().measure(prepared, activations, batches)

    def _mask(self, batch):
        return ROLE_MASKS["induction_head"](torch.as_tensor(batch.tokens))

    def measure_null(self, prepared, activations, batch):
        if self.stage == "measure_null":
            raise AttributeError("'NoneType' object has no attribute 'tokens'")
        return super().measure_null(prepared, activations, batch)


@pytest.fixture
def buggy_checks():
    names = {stage: f"test_buggy_{stage}" for stage in ("prepare", "measure", "measure_null")}
    for stage, name in names.items():
        base.register(_Buggy(name, stage))
    yield names
    for name in names.values():
        base._REGISTRY.pop(name, None)


def test_a_bug_in_a_check_is_reported_on_its_claim_as_an_internal_error(models, buggy_checks):
    claims = [spec(models, "good")] + [spec(models, stage, check=name) for stage, name in buggy_checks.items()]
    results = engine().evaluate(claims)
    assert_alone(results, set(buggy_checks), "please report it")
    for result, stage in zip(results[1:], ("preparing", "measuring", "measuring the null")):
        assert f"internal error in check {result.spec.check} while {stage} " in result.error


def test_a_failing_shared_pass_is_rerun_claim_by_claim(models):
    """Same inputs on two models: the short-context model cannot take them. Only its claim errors."""
    results = engine().evaluate([spec(models, "good"), spec(models, "too-long", model="short")])
    assert_alone(results, {"too-long"}, "lower seq_len")


def test_a_bad_where_value_errors_at_prepare_not_in_measure(models):
    gain = dict(check="logprob_gain", baseline=f"native:{models['model']}", expect={"mean_gain": "> -1"})
    results = engine().evaluate([spec(models, "good"), spec(models, "bad-where", where={"region": ["repeat"]}, **gain)])
    assert_alone(results, {"bad-where"}, "where.region must be a string")


# --- the plugin option -----------------------------------------------------------------------------


def test_the_option_raises_and_lowers_the_limit(pytester, models):
    (pytester.path / "model").symlink_to(models["model"], target_is_directory=True)
    claim = dict(id="c", check="induction_head", head="L1H0", inputs=TOKENS, expect={"score": ">= 0.4"}, expected="refuted")
    pytester.makefile(".claims.yaml", suite=json.dumps({"model": "native:./model", "claims": [claim]}))
    pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=99").assert_outcomes(passed=1)
    result = pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=99", f"{OPT_MAX_INPUT_TOKENS}=50")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*suite.claims.yaml, claim 'c': inputs repeated_random_tokens*over the limit of 50 tokens*{OPT_MAX_INPUT_TOKENS}=N*"])
    result = pytester.runpytest_inprocess(f"{OPT_MAX_INPUT_TOKENS}=0")
    assert result.ret != 0 and f"{OPT_MAX_INPUT_TOKENS} must be at least 1" in result.stderr.str()


# --- files named by a checkpoint stay inside it -------------------------------------------------------


@pytest.fixture
def with_tokenizer(tmp_path) -> Path:
    from interp_checks.models.native import load_tokenizer

    tokenizer = load_tokenizer(ZOO_TOKENIZER)
    return save_native(boot_random({**ARCH, "d_vocab": 2048}, seed=3, tokenizer=tokenizer), tmp_path / "ckpt", tokenizer_json=ZOO_TOKENIZER)


def set_tokenizer(folder: Path, value: Any) -> None:
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["tokenizer"] = value
    (folder / CONFIG_FILE).write_text(json.dumps(config))


def load_error(folder: Path) -> str:
    with pytest.raises(ModelSpecError) as info:
        load_model(parse_model_spec(f"native:{folder}"))
    return str(info.value)


def test_a_native_tokenizer_path_inside_the_folder_loads(with_tokenizer):
    (with_tokenizer / "sub").mkdir()
    shutil.move(with_tokenizer / "tokenizer.json", with_tokenizer / "sub" / "tok.json")
    set_tokenizer(with_tokenizer, "sub/../sub/tok.json")
    assert load_model(parse_model_spec(f"native:{with_tokenizer}")).tokenizer is not None


@pytest.mark.parametrize(
    "value, words",
    [
        ("../../../../../../../../etc/passwd", "a path leading out of the checkpoint folder"),
        ("/etc/passwd", "an absolute path"),
        (5, "must be a file name inside"),
        (["tokenizer.json"], "must be a file name inside"),
    ],
)
def test_a_native_tokenizer_path_out_of_the_folder_is_refused(with_tokenizer, value, words):
    set_tokenizer(with_tokenizer, value)
    message = load_error(with_tokenizer)
    assert words in message and "refused" in message or "must be a file name" in message
    assert str(with_tokenizer / CONFIG_FILE) in message
    assert "expected value" not in message  # the file was never parsed


def test_a_native_tokenizer_symlinked_out_of_the_folder_is_refused(with_tokenizer, tmp_path):
    outside = tmp_path / "secret.json"
    shutil.copy(with_tokenizer / "tokenizer.json", outside)
    (with_tokenizer / "tokenizer.json").unlink()
    (with_tokenizer / "tokenizer.json").symlink_to(outside)
    assert "a symlink out of the checkpoint folder" in load_error(with_tokenizer)


def test_a_native_tokenizer_that_is_not_a_tokenizer_says_so(with_tokenizer):
    (with_tokenizer / "tokenizer.json").write_text("root:x:0:0:root:/root:/bin/bash\n")
    message = load_error(with_tokenizer)
    assert "is not a tokenizers JSON file" in message and "Exception:" not in message


@pytest.mark.parametrize(
    "config, words",
    [
        ([1, 2], "expected a JSON object"),
        ({"format": "interp-checks-native/1", "architecture": {**ARCH, "n_kittens": 3}}, "does not describe a model TransformerLens can build"),
    ],
)
def test_a_malformed_native_config_says_what_is_wrong(models, tmp_path, config, words):
    folder = tmp_path / "odd"
    shutil.copytree(models["model"], folder)
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    assert words in load_error(folder)


def test_hf_shards_named_outside_the_folder_are_refused(tmp_path):
    from safetensors import safe_open

    from tests.helpers.tiny_models import offline_env, write_tiny_hf_gpt2

    offline_env()
    folder = write_tiny_hf_gpt2(tmp_path / "hf", n_layer=1, n_embd=16, n_head=2, vocab_size=300)
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        names = list(handle.keys())
    (tmp_path / "elsewhere").mkdir()
    shutil.move(folder / "model.safetensors", tmp_path / "elsewhere" / "w.safetensors")
    for shard in ("../elsewhere/w.safetensors", str(tmp_path / "elsewhere" / "w.safetensors")):
        index = {"metadata": {}, "weight_map": {name: shard for name in names}}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
        with pytest.raises(ModelSpecError, match="outside .*; refused"):
            load_model(parse_model_spec(f"hf:{folder}"))
    shutil.move(tmp_path / "elsewhere" / "w.safetensors", folder / "w.safetensors")
    index = {"metadata": {}, "weight_map": {name: "w.safetensors" for name in names}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert load_model(parse_model_spec(f"hf:{folder}")).n_layers == 1  # a shard inside the folder loads


def test_the_issue_cases_through_pytest(pytester, models, tmp_path):
    """As a user would: `python -m pytest folder` with the issue's bad files beside a good one."""
    (pytester.path / "model").symlink_to(models["model"], target_is_directory=True)
    evil = pytester.path / "evil"
    shutil.copytree(models["model"], evil)
    set_tokenizer(evil, "../../../../../../../../../../etc/passwd")
    good = dict(id="good", check="induction_head", head="L1H0", inputs=TOKENS, expect={"score": ">= 0.4"}, expected="refuted")
    pytester.makefile(".claims.yaml", good=json.dumps({"model": "native:./model", "claims": [good]}))
    bad = {
        "kind": {"inputs": {"kind": {"a": 1}}},
        "huge": {"inputs": {"kind": "repeated_random_tokens", "n": 1_000_000_000}},
        "passwd": {"model": "native:./evil"},
    }
    for name, change in bad.items():
        claim = {**good, "id": name, "expected": "supported", **change}
        pytester.makefile(".claims.yaml", **{name: json.dumps({"model": "native:./model", "claims": [claim]})})
    levels = "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
    pytester.makefile(
        ".claims.yaml",
        laughs=textwrap.dedent(
            """\
            description:
              l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]
            """
        )
        + levels
        + "model: native:./model\nclaims:\n  - {id: laughs, check: induction_head, head: L1H0, statement: *l9, "
        "inputs: {kind: repeated_random_tokens}, expect: {score: '>= 0.4'}}\n",
    )
    result = pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=99")
    result.assert_outcomes(passed=1, failed=4)
    out = result.stdout.str()
    for words in (
        "kind.claims.yaml, claim 'kind': inputs.kind must be the name of an input generator",
        f"huge.claims.yaml, claim 'huge': inputs repeated_random_tokens (seq_len=32, n=1,000,000,000) ask for about 65,000,000,000 tokens",
        "passwd.claims.yaml, claim 'passwd': native:./evil",
        "laughs.claims.yaml: refused: its aliases (*name) expand to over",
    ):
        assert words in out, words
    assert "a path leading out of the checkpoint folder" in out and "expected value" not in out
    for marker in ("TypeError", "MemoryError", "unhashable", "Traceback", "Exception:"):
        assert marker not in out, marker


def test_heads_with_role_refuses_between_before_running(models, monkeypatch):
    monkeypatch.setattr(engine_module, "capture", lambda *a: pytest.fail("a model ran for a claim that cannot be judged"))
    claim = spec(models, "exactly", heads_with_role=["L1H0"], expect={"score": "between 0.2 0.8"})
    (result,) = engine().evaluate([claim])
    assert result.outcome == ERROR and "heads_with_role needs a one-sided score expectation" in result.error
