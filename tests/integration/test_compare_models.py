"""logprob_gain end to end on models the tests write: identity, falsity, differing tokenizers, predicates."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from interp_checks.models.native import boot_random, load_tokenizer, save_native
from interp_checks.plugin import OPT_RESAMPLES
from tests.helpers.tiny_models import offline_env, write_tiny_hf_gpt2

ZOO_TOKENIZER = Path(__file__).resolve().parents[2] / "fixtures" / "zoo" / "tokenizer.json"
FAST = f"{OPT_RESAMPLES}=999"


def arch(n_layers: int) -> dict:
    return dict(d_model=32, n_layers=n_layers, n_heads=4, d_head=8, n_ctx=128, d_vocab=2048, attn_only=True, normalization_type="LN", act_fn="gelu")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    offline_env()
    root = tmp_path_factory.mktemp("compare")
    tokenizer = load_tokenizer(ZOO_TOKENIZER)
    out = {}
    for name, layers, seed in (("two", 2, 1), ("one", 1, 2)):
        out[name] = save_native(boot_random(arch(layers), seed=seed, tokenizer=tokenizer), root / name, tokenizer_json=ZOO_TOKENIZER)
    out["gpt2"] = write_tiny_hf_gpt2(root / "gpt2", n_positions=128)
    return out


def run(pytester: pytest.Pytester, models: dict[str, Path], body: str) -> tuple[pytest.RunResult, dict]:
    text = f"model: native:{models['two']}\nseed: 0\nclaims:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    pytester.makefile(".claims.yaml", compare=text)
    result = pytester.runpytest_inprocess(FAST)
    claims = json.loads((pytester.path / "reports" / "report.json").read_text())["claims"]
    return result, {c["id"]: c for c in claims}


def test_a_model_against_itself_gains_exactly_nothing(pytester, models):
    result, claims = run(
        pytester,
        models,
        f"""
        - id: self
          check: logprob_gain
          baseline: native:{models['two']}
          inputs: {{kind: repeated_random_tokens, seq_len: 16, n: 16}}
          expect: {{mean_gain: "between -0.001 0.001"}}
        """,
    )
    result.assert_outcomes(passed=1)
    assert claims["self"]["expectations"][0]["estimate"] == 0.0


def test_a_false_comparison_is_refuted(pytester, models):
    result, claims = run(
        pytester,
        models,
        f"""
        - id: random-2l-beats-random-1l
          statement: an untrained 2L predicts repeats 1 nat better than an untrained 1L (false)
          check: logprob_gain
          baseline: native:{models['one']}
          inputs: {{kind: repeated_random_tokens, seq_len: 16, n: 32}}
          where: {{region: repeat}}
          expect: {{mean_gain: ">= 1.0"}}
          expected: refuted
        """,
    )
    result.assert_outcomes(passed=1)
    claim = claims["random-2l-beats-random-1l"]
    assert claim["outcome"] == "refuted"
    assert "zero gain" in claim["expectations"][0]["effect_size_kind"]


def test_different_tokenizers_compare_on_text_and_say_so(pytester, models):
    result, claims = run(
        pytester,
        models,
        f"""
        - id: on-text
          check: logprob_gain
          baseline: hf:{models['gpt2']}
          inputs: {{kind: corpus, source: stdlib, split: heldout, n: 12, chars: 250}}
          expect: {{mean_gain: "between -100 100"}}
        - id: on-random-ids
          check: logprob_gain
          baseline: hf:{models['gpt2']}
          inputs: {{kind: repeated_random_tokens, seq_len: 16, n: 8}}
          expect: {{mean_gain: ">= 0"}}
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    assert claims["on-text"]["outcome"] == "supported"
    assert any("character spans" in note for note in claims["on-text"]["notes"])
    assert claims["on-random-ids"]["outcome"] == "error"
    assert "compare them on text inputs" in claims["on-random-ids"]["error"]


def test_python_claims_can_select_tokens_with_a_predicate(pytester, models):
    pytester.makepyfile(
        test_predicate=f"""
        import numpy as np

        def even_positions(batch):
            return np.arange(batch.tokens.shape[1])[None, :] % 2 == 0 & np.ones_like(batch.tokens, dtype=bool)

        def test_predicate(interp):
            result = interp.check(
                id="even-positions", model="native:{models['two']}", check="logprob_gain",
                baseline="native:{models['two']}", where={{"predicate": even_positions}},
                inputs={{"kind": "repeated_random_tokens", "seq_len": 16, "n": 8}},
                expect={{"mean_gain": "between -0.001 0.001"}},
            )
            assert result.outcome == "supported"
        """
    )
    pytester.runpytest_inprocess(FAST).assert_outcomes(passed=1)
