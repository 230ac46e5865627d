"""check ablation: measured as a naive per-head ``run_with_hooks`` loop would measure it; recovers
the hand-built model's circuit exactly (every used head found, no unused head called important);
and its bundled claims are not supported on random-weights models of the zoo's shapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.inputs.generators import Vocabulary, generate
from interp_checks.models.native import boot_random, load_native, load_tokenizer, save_native
from interp_checks.plugin import OPT_MODEL, OPT_NULL_DRAWS, OPT_RESAMPLES
from interp_checks.runner import next_token_logprobs
from tests.helpers.circuits import build_induction_2l

ROOT = Path(__file__).resolve().parents[2]
ARCH = dict(d_model=32, n_layers=2, n_heads=3, d_head=8, n_ctx=80, d_vocab=50, attn_only=True, normalization_type="LN", act_fn="gelu")
INPUTS = {"kind": "repeated_random_tokens", "seq_len": 8, "n": 24}


def claim(model: str, expect: dict, inputs: dict = INPUTS, **params) -> ClaimSpec:
    return ClaimSpec(
        id="c", path=ROOT / "x.claims.yaml", index=0, check="ablation", model=model, inputs=inputs,
        expect={k: parse_expectation(v) for k, v in expect.items()}, params=params,
    )


def judged(spec: ClaimSpec, **settings) -> object:
    [result] = Engine(Settings(n_resamples=499, batch_size=16, null_draws=1, **settings)).evaluate([spec])
    assert result.outcome != "error", result.error
    return result


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ablation") / "m"
    save_native(boot_random(ARCH, seed=3), folder)
    return folder


def naive_loss_increase(bridge, tokens: torch.Tensor, layer: int, head: int, method: str) -> np.ndarray:
    """Per sequence, mean over predicted tokens of the loss increase: one full run per head."""
    hook = f"blocks.{layer}.attn.hook_z"
    with torch.inference_mode():
        logits, cache = bridge.run_with_cache(tokens)
    mean = cache[hook].mean(0)  # per position, over every input

    def ablate(z, hook):
        z = z.clone()
        z[:, :, head] = 0.0 if method == "zero" else mean[:, head]
        return z

    with torch.inference_mode():
        ablated = bridge.run_with_hooks(tokens, fwd_hooks=[(hook, ablate)])
    change = next_token_logprobs(logits, tokens) - next_token_logprobs(ablated, tokens)
    return np.nanmean(change[:, 1:], axis=1)


@pytest.mark.parametrize("method", ["zero", "mean"])
def test_every_head_s_loss_increase_equals_a_naive_per_head_loop(tiny, method):
    heads = [f"L{l}H{h}" for l in range(2) for h in range(3)]
    result = judged(claim(f"native:{tiny}", {"loss_increase": "> 0"}, heads="all", method=method))
    bridge = load_native(tiny)
    batch = generate(INPUTS | {"bos": True}, Vocabulary(50, 80, None, frozenset(), None), 0)
    tokens = torch.as_tensor(batch.tokens)
    measured = {e.statistic: e.evaluation.estimate for e in result.expectations}
    for name in heads:
        expected = naive_loss_increase(bridge, tokens, int(name[1]), int(name[3]), method).mean()
        assert measured[f"loss_increase[{name}]"] == pytest.approx(float(expected), abs=1e-5)
    assert any(f"ablation method: {method}" in note for note in result.notes)
    assert any(note.startswith("estimand: the total effect") for note in result.notes)
    assert any(note.startswith("direct effect beside total effect") for note in result.notes)


@pytest.fixture(scope="module")
def handbuilt(tmp_path_factory):
    return build_induction_2l(tmp_path_factory.mktemp("handbuilt") / "induction_2l")


REPEAT = {"kind": "repeated_random_tokens", "seq_len": 32, "n": 32}


@pytest.mark.parametrize("method", ["zero", "mean"])
def test_the_hand_built_circuit_is_recovered_exactly(handbuilt, method):
    heads = list(handbuilt.used_heads) + list(handbuilt.unused_heads)
    spec = claim(handbuilt.spec, {"loss_increase": ">= 1", "direct_loss_increase": ">= 0"}, REPEAT, heads=heads, method=method, where={"region": "repeat"})
    result = judged(spec)
    by_stat = {e.statistic: e for e in result.expectations}
    for head in handbuilt.used_heads:  # found: ablating it costs at least a nat per repeated token
        assert by_stat[f"loss_increase[{head}]"].outcome == "supported", head
    for head in handbuilt.unused_heads:  # W_O = 0: removing it changes nothing, exactly, and is not important
        for stat in ("loss_increase", "direct_loss_increase"):
            evaluation = by_stat[f"{stat}[{head}]"].evaluation
            assert evaluation.estimate == 0.0 and evaluation.ci == (0.0, 0.0), (head, stat, evaluation.estimate)
        assert by_stat[f"loss_increase[{head}]"].outcome == "refuted", head
    # only the induction head writes to the logits: the previous-token head acts through it
    assert by_stat["direct_loss_increase[L1H1]"].evaluation.estimate > 1
    assert by_stat["direct_loss_increase[L0H0]"].evaluation.estimate == 0.0


def test_the_hand_built_model_s_unused_heads_are_ranked_out_and_its_induction_head_in(handbuilt):
    unused = list(handbuilt.unused_heads)
    quiet = judged(claim(handbuilt.spec, {"max_loss_increase": "< 0.01"}, REPEAT, heads=unused, where={"region": "repeat"}))
    assert quiet.outcome == "supported"
    top = judged(claim(handbuilt.spec, {"rank": "<= 2"}, REPEAT, head="L1H1", where={"region": "repeat"}))
    assert top.outcome == "supported"
    dead = judged(claim(handbuilt.spec, {"rank": "<= 2"}, REPEAT, head=unused[0], where={"region": "repeat"}))
    assert dead.outcome == "refuted"


@pytest.mark.parametrize("size", ["2l", "3l", "4l"])
def test_no_bundled_ablation_claim_is_supported_on_a_random_weights_model_of_the_same_shape(pytester, tmp_path, size):
    path = ROOT / "hypotheses" / f"ablation_attn_only_{size}.claims.yaml"
    if not path.exists():
        pytest.skip(f"{path.name} not written yet")
    zoo = ROOT / "fixtures" / "zoo" / f"attn-only-{size}"
    architecture = json.loads((zoo / "config.json").read_text())["architecture"]
    tokenizer = zoo / "tokenizer.json"
    random_dir = save_native(boot_random(architecture, seed=11, tokenizer=load_tokenizer(tokenizer)), tmp_path / "random", tokenizer_json=tokenizer)
    (pytester.path / path.name).write_text(path.read_text())
    pytester.runpytest_inprocess(
        f"{OPT_RESAMPLES}=999", f"{OPT_NULL_DRAWS}=1", f"{OPT_MODEL}=zoo:attn-only-{size}=native:{random_dir}", "-p", "no:randomly"
    )
    claims = json.loads((pytester.path / "reports" / "report.json").read_text())["claims"]
    ablation = [c for c in claims if c["check"] == "ablation"]
    assert ablation and not [c for c in ablation if c.get("error")], [c.get("error") for c in ablation]
    # A claim of presence ("ablating L1H2 raises loss by at least X", "L0H0 ranks in the top k")
    # must not hold on random weights. A claim of absence ("no layer-0 head raises it by more than
    # X") is true of a random model, as "layer 0 has no induction head" is: it is exempt.
    def states_presence(c: dict) -> bool:
        return any(e["comparison"].lstrip().startswith(">") or e["statistic"] == "rank" for e in c["expectations"])

    presence = [c for c in ablation if states_presence(c)]
    assert presence
    supported = [c["id"] for c in presence if c["expected"] == "supported" and c["outcome"] == "supported"]
    assert not supported, supported
