"""The ``native:`` format: save -> load keeps every config field that shapes the forward pass, and
weights that do not fit their config are refused with a message naming the file, the tensors and
the fix (never a bare ``RuntimeError`` from ``load_state_dict``).

The architecture matrix is hand-picked to cover what hand-built "ground truth" models use and what
the old fixed field list dropped: bidirectional attention, no layer norm, ``d_head * n_heads !=
d_model``, MLPs (plain, SoLU-LN, gated), ``d_vocab_out != d_vocab``, rotary positions, GQA, soft caps,
the hook flags ``use_attn_result`` / ``use_split_qkv_input``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from interp_checks.models.load import load_model
from interp_checks.models.native import (
    CONFIG_FILE,
    NOT_RECORDED,
    WEIGHTS_FILE,
    NativeFormatError,
    architecture_of,
    boot_random,
    config_fields,
    load_native,
    save_native,
)
from interp_checks.models.spec import ModelSpecError, parse_model_spec
from interp_checks.plugin import OPT_RESAMPLES

ZOO = Path(__file__).resolve().parents[2] / "fixtures" / "zoo"
BASE = dict(d_model=24, n_layers=2, n_heads=3, d_head=8, n_ctx=32, d_vocab=40)

ARCHITECTURES: dict[str, dict[str, Any]] = {
    "bidirectional-no-norm-narrow-heads": {**BASE, "d_head": 5, "attn_only": True, "normalization_type": None, "attention_dir": "bidirectional"},
    "mlp-gelu-rotary": {**BASE, "d_mlp": 40, "act_fn": "gelu", "positional_embedding_type": "rotary", "rotary_dim": 4, "rotary_base": 500},
    "vocab-out-rms-hook-flags": {
        **BASE,
        "d_vocab_out": 7,
        "normalization_type": "RMS",
        "use_attn_result": True,
        "use_split_qkv_input": True,
        "original_architecture": "HandBuilt",
        "d_mlp": 16,
    },
    "solu-ln-lnpre-wide-heads": {**BASE, "d_head": 12, "act_fn": "solu_ln", "d_mlp": 32, "normalization_type": "LNPre"},
    "gated-gqa-softcaps": {
        **BASE,
        "n_heads": 4,
        "d_head": 6,
        "n_key_value_heads": 2,
        "gated_mlp": True,
        "act_fn": "silu",
        "normalization_type": "RMS",
        "final_rms": True,
        "attn_scores_soft_cap": 30.0,
        "output_logits_soft_cap": 20.0,
        "attn_scale": 2.5,
    },
}


def forward_fields(cfg: Any) -> dict[str, Any]:
    """Every constructor field of a config but those a checkpoint never records (device, dtype, ...)."""
    return {name: getattr(cfg, name, None) for name in config_fields() if name not in NOT_RECORDED}


@pytest.fixture(params=sorted(ARCHITECTURES))
def saved(request, tmp_path) -> tuple[str, Any, Path]:
    original = boot_random(ARCHITECTURES[request.param], seed=11)
    return request.param, original, save_native(original, tmp_path / request.param)


def test_save_then_load_gives_the_same_config_hooks_and_logits(saved):
    name, original, folder = saved
    loaded = load_native(folder)
    assert forward_fields(loaded.cfg) == forward_fields(original.cfg), name
    assert set(loaded.hook_dict) == set(original.hook_dict), name  # use_attn_result adds hook_result, ...
    tokens = torch.randint(0, BASE["d_vocab"], (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, found = original(tokens), loaded(tokens)
    assert found.shape == expected.shape == (3, 20, original.cfg.d_vocab_out if original.cfg.d_vocab_out > 0 else 40)
    torch.testing.assert_close(found, expected, rtol=0, atol=1e-6)


def test_every_field_set_by_hand_is_written_to_config_json(saved):
    name, _, folder = saved
    written = json.loads((folder / CONFIG_FILE).read_text())["architecture"]
    for key, value in ARCHITECTURES[name].items():
        assert written[key] == value, (name, key)
    assert not set(written) & set(NOT_RECORDED)


def test_fields_at_their_default_are_not_written(tmp_path):
    written = json.loads((save_native(boot_random(BASE), tmp_path / "plain") / CONFIG_FILE).read_text())["architecture"]
    assert "attention_dir" not in written and "initializer_range" not in written and "use_attn_result" not in written
    assert written.get("d_vocab_out", 40) == 40  # boot_native resolves -1 to d_vocab
    assert written["d_model"] == 24 and written["normalization_type"] == "LN"  # the always-written fields


def test_a_field_that_is_not_json_is_refused_at_save_time(tmp_path):
    bridge = boot_random(BASE)
    bridge.cfg.original_architecture = object()
    with pytest.raises(NativeFormatError, match="cannot save the config field original_architecture="):
        save_native(bridge, tmp_path / "odd")


def test_an_architecture_native_models_cannot_have_is_a_format_error(tmp_path):
    folder = save_native(boot_random(BASE), tmp_path / "shortformer")
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["architecture"]["positional_embedding_type"] = "shortformer"  # TL's native model has standard and rotary only
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(NativeFormatError, match="shortformer"):
        load_native(folder)


@pytest.mark.parametrize("zoo_name", ["attn-only-1l", "attn-only-2l"])
def test_zoo_checkpoints_written_with_the_old_field_list_still_load_and_resave(zoo_name, tmp_path):
    old = json.loads((ZOO / zoo_name / CONFIG_FILE).read_text())["architecture"]
    bridge = load_native(ZOO / zoo_name)
    resaved = architecture_of(bridge)
    assert {key: resaved[key] for key in old} == old
    copy = load_native(save_native(bridge, tmp_path / zoo_name))
    tokens = torch.randint(0, old["d_vocab"], (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(copy(tokens), bridge(tokens), rtol=0, atol=1e-6)


# --- weights that do not fit the config ----------------------------------------------------------


def rewrite_weights(folder: Path, change) -> None:
    state = load_file(str(folder / WEIGHTS_FILE))
    change(state)
    save_file(state, str(folder / WEIGHTS_FILE))


def _wrong_shape(state: dict[str, torch.Tensor]) -> None:
    state["blocks.1.attn.q.weight"] = torch.zeros(20, 24)


def _missing(state: dict[str, torch.Tensor]) -> None:
    del state["blocks.0.attn.o.bias"]


def _unexpected(state: dict[str, torch.Tensor]) -> None:
    state["blocks.0.mlp.fc_in.weight"] = torch.zeros(96, 24)


WEIGHT_PROBLEMS = {
    "wrong-shape": (_wrong_shape, "blocks.1.attn.q.weight has shape [20, 24], the config needs [24, 24]"),
    "missing": (_missing, "blocks.0.attn.o.bias [24] is missing"),
    "unexpected": (_unexpected, "blocks.0.mlp.fc_in.weight [96, 24] is not part of this architecture"),
}
ATTN_ONLY = {**BASE, "attn_only": True}


def write_broken(folder: Path, problem: str) -> Path:
    save_native(boot_random(ATTN_ONLY, seed=2), folder)
    rewrite_weights(folder, WEIGHT_PROBLEMS[problem][0])
    return folder


@pytest.mark.parametrize("problem", sorted(WEIGHT_PROBLEMS))
def test_weights_that_do_not_fit_name_the_file_the_tensor_the_shapes_and_the_fix(problem, tmp_path):
    folder = write_broken(tmp_path / problem, problem)
    with pytest.raises(NativeFormatError) as info:
        load_native(folder)
    message = str(info.value)
    assert str(folder / WEIGHTS_FILE) in message and str(folder / CONFIG_FILE) in message
    assert WEIGHT_PROBLEMS[problem][1] in message
    assert "(1 problem(s))" in message and "Fix: " in message and "save_native" in message
    with pytest.raises(ModelSpecError, match=f"native:.*{problem}.*does not fit"):  # as the harness sees it
        load_model(parse_model_spec(f"native:{folder}"))


def test_many_problems_are_counted_and_the_list_is_cut(tmp_path):
    bridge, wider = boot_random(ATTN_ONLY), boot_random({**ATTN_ONLY, "d_model": 32}).state_dict()
    touching_d_model = sum(tensor.shape != wider[name].shape for name, tensor in bridge.state_dict().items())
    folder = save_native(bridge, tmp_path / "wide")
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["architecture"]["d_model"] = 32  # every tensor touching d_model now has the wrong shape
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(NativeFormatError, match=rf"\({touching_d_model} problem\(s\)\):( [^;]+;){{8}} and {touching_d_model - 8} more\. Fix: "):
        load_native(folder)


def test_a_claim_on_a_checkpoint_whose_weights_do_not_fit_errors_alone(pytester, tmp_path):
    """Through pytest, as a user runs it: the broken checkpoint's claims fail naming the file; a
    claim on a good checkpoint in the same run still passes."""
    save_native(boot_random(ATTN_ONLY, seed=1), pytester.path / "good")
    for problem in WEIGHT_PROBLEMS:
        write_broken(pytester.path / problem, problem)
    claim = dict(check="previous_token_head", head="L1H0", inputs={"kind": "repeated_random_tokens", "seq_len": 6, "n": 8})
    claims = [{**claim, "id": "good-claim", "expect": {"score": ">= 0.9"}, "expected": "refuted"}]
    claims += [{**claim, "id": f"on-{problem}", "model": f"native:./{problem}", "expect": {"score": ">= 0.9"}} for problem in WEIGHT_PROBLEMS]
    pytester.makefile(".claims.yaml", suite=json.dumps({"model": "native:./good", "claims": claims}))
    result = pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=99")
    result.assert_outcomes(passed=1, failed=3)
    out = result.stdout.str()
    for problem, (_, words) in WEIGHT_PROBLEMS.items():
        assert f"claim 'on-{problem}'" in out and str(pytester.path / problem / WEIGHTS_FILE) in out and words in out, problem
    assert "RuntimeError" not in out and "Traceback" not in out


def test_a_bidirectional_mlp_model_with_its_own_output_vocabulary_runs_through_the_harness(pytester):
    """The shapes of a ground-truth model that is not a causal LM: loaded through ``native:`` by the
    harness, its attention still sees later positions, and a claim file runs on it."""
    architecture = {**BASE, "attention_dir": "bidirectional", "d_mlp": 48, "act_fn": "gelu", "d_vocab_out": 5, "normalization_type": None}
    folder = save_native(boot_random(architecture, seed=4), pytester.path / "bidi")
    loaded = load_model(parse_model_spec(f"native:{folder}"))
    tokens = torch.randint(0, BASE["d_vocab"], (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits, cache = loaded.bridge.run_with_cache(tokens)
    assert logits.shape == (2, 12, 5) and loaded.d_vocab == BASE["d_vocab"]
    assert cache["blocks.0.attn.hook_pattern"].triu(diagonal=1).sum() > 1  # later keys get attention
    claim = {"id": "no-sharp-previous-token-head", "check": "previous_token_head", "head": "L0H0", "expect": {"score": ">= 0.9"}, "expected": "refuted"}
    pytester.makefile(".claims.yaml", bidi=json.dumps({"model": "native:./bidi", "inputs": {"kind": "repeated_random_tokens", "seq_len": 6, "n": 16}, "claims": [claim]}))
    pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=99").assert_outcomes(passed=1)
