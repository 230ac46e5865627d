"""logprob_gain end to end on models the tests write: identity, falsity, differing tokenizers, predicates.

The estimates the engine reports are checked against gains computed here from the two models'
logits, independently of the check's code (float64 log-softmax, spans cut by plain loops).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_checks.checks.compare import UNIT
from interp_checks.inputs.generators import InputBatch, Vocabulary, generate
from interp_checks.models.load import load_model
from interp_checks.models.native import boot_random, load_tokenizer, save_native
from interp_checks.models.spec import parse_model_spec
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


def logprobs(spec: str, inputs: dict, seed: int = 0) -> tuple[InputBatch, np.ndarray]:
    """The inputs the engine gives ``spec`` and the log-prob of each next token (NaN at position 0)."""
    loaded = load_model(parse_model_spec(spec))
    vocab = Vocabulary(loaded.d_vocab, loaded.n_ctx, loaded.bos_token_id, frozenset(loaded.special_token_ids), loaded.tokenizer)
    batch = generate(inputs, vocab, seed)
    with torch.inference_mode():
        logits = loaded.bridge(torch.as_tensor(batch.tokens)).double()
    picked = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, torch.as_tensor(batch.tokens)[:, 1:, None].long())[..., 0]
    return batch, np.concatenate([np.full((batch.n, 1), np.nan), picked.numpy()], axis=1)


def expected_span_gain(model: tuple[InputBatch, np.ndarray], baseline: tuple[InputBatch, np.ndarray], floor: float, *, stacked: bool = False) -> float:
    """Mean over sequences of the gain in nats per model token on character spans both tokenizations
    end a token at, each model's span total floored once at floor x (model tokens in the span).
    ``stacked=True`` is the rule before issue 10: every token floored alone, mean over spans."""
    values = []
    for row in range(model[0].n):

        def tokens(side: tuple[InputBatch, np.ndarray]) -> list[tuple[int, float]]:
            batch, logp = side
            return [
                (int(batch.offsets[row, p, 1]), float(logp[row, p]))
                for p in range(1, batch.tokens.shape[1])
                if batch.valid[row, p] and batch.offsets[row, p, 1] > batch.offsets[row, p, 0]
            ]

        ours, theirs = tokens(model), tokens(baseline)
        shared = sorted({end for end, _ in ours} & {end for end, _ in theirs})
        gains, counts = [], []
        for start, stop in zip([0] + shared[:-1], shared):
            m = [x for end, x in ours if start < end <= stop]
            b = [x for end, x in theirs if start < end <= stop]
            if stacked:
                gains.append(sum(max(x, floor) for x in m) - sum(max(x, floor) for x in b))
            else:
                gains.append(max(sum(m), floor * len(m)) - max(sum(b), floor * len(m)))
            counts.append(len(m))
        if counts:
            values.append(np.mean(gains) if stacked else sum(gains) / sum(counts))
    return float(np.mean(values))


def estimate(claim: dict) -> float:
    return claim["expectations"][0]["estimate"]


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


TEXT = {"kind": "corpus", "source": "stdlib", "split": "heldout", "n": 12, "chars": 250}


def test_different_tokenizers_compare_on_text_in_nats_per_model_token(pytester, models):
    """A trained 1L against an untrained GPT-2 with a finer tokenizer (about 2 of its tokens per zoo
    token), and two untrained models against each other. Under the old rule (floor stacked per
    token, mean per span) the untrained native model "beat" the untrained GPT-2 by about 5 nats,
    only because a span of two GPT-2 tokens could lose 10 nats where one native token lost 5."""
    gpt2 = f"hf:{models['gpt2']}"
    result, claims = run(
        pytester,
        models,
        f"""
        - id: trained-beats-untrained
          model: zoo:attn-only-1l
          check: logprob_gain
          baseline: {gpt2}
          inputs: {json.dumps(TEXT)}
          expect: {{mean_gain: ">= 1.0"}}
        - id: hopeless-vs-hopeless
          statement: two untrained models; the floor caps both, whatever their tokenizers
          check: logprob_gain
          baseline: {gpt2}
          inputs: {json.dumps(TEXT)}
          expect: {{mean_gain: "between -0.25 0.25"}}
        - id: on-random-ids
          check: logprob_gain
          baseline: {gpt2}
          inputs: {{kind: repeated_random_tokens, seq_len: 16, n: 8}}
          expect: {{mean_gain: ">= 0"}}
        """,
    )
    result.assert_outcomes(passed=2, failed=1)
    for name in ("trained-beats-untrained", "hopeless-vs-hopeless"):
        assert claims[name]["outcome"] == "supported", claims[name]
        assert any("character spans" in note and UNIT in note for note in claims[name]["notes"])
        assert any(note.startswith("unit:") and UNIT in note for note in claims[name]["notes"])
        assert claims[name]["expectations"][0]["unit"] == UNIT
    baseline = logprobs(gpt2, TEXT)
    trained, untrained = logprobs("zoo:attn-only-1l", TEXT), logprobs(f"native:{models['two']}", TEXT)
    assert estimate(claims["trained-beats-untrained"]) == pytest.approx(expected_span_gain(trained, baseline, -5.0), abs=1e-4)
    assert estimate(claims["hopeless-vs-hopeless"]) == pytest.approx(expected_span_gain(untrained, baseline, -5.0), abs=1e-4)
    assert expected_span_gain(untrained, baseline, -5.0, stacked=True) > 2.0  # what the old rule claimed
    assert claims["on-random-ids"]["outcome"] == "error"
    assert "compare them on text inputs" in claims["on-random-ids"]["error"]


EVEN = {"kind": "repeated_random_tokens", "seq_len": 16, "n": 32}


def test_python_claims_can_select_tokens_with_a_predicate(pytester, models):
    """Two different models (a model against itself gains 0 whatever the predicate selects), and a
    reported estimate that must equal the gain on exactly the even positions. The floor is low
    because these untrained models give every token about -8 nats: at -5 every gain would be 0."""
    pytester.makepyfile(
        test_predicate=f"""
        import numpy as np

        def even_positions(batch):
            return (np.arange(batch.tokens.shape[1])[None, :] % 2 == 0) & np.ones_like(batch.tokens, dtype=bool)

        def test_predicate(interp):
            result = interp.check(
                id="even-positions", model="native:{models['two']}", check="logprob_gain",
                baseline="native:{models['one']}", where={{"predicate": even_positions}}, floor=-50,
                inputs={EVEN!r}, expect={{"mean_gain": "between -1 1"}},
            )
            assert result.outcome == "supported"
        """
    )
    pytester.runpytest_inprocess(FAST).assert_outcomes(passed=1)
    reported = json.loads((pytester.path / "reports" / "report.json").read_text())["claims"]
    (claim,) = [c for c in reported if c["id"] == "even-positions"]
    (_, model), (_, baseline) = logprobs(f"native:{models['two']}", EVEN), logprobs(f"native:{models['one']}", EVEN)
    gains = np.maximum(model, -50.0) - np.maximum(baseline, -50.0)
    positions = np.arange(gains.shape[1])
    by_subset = {name: float(gains[:, mask].mean(axis=1).mean()) for name, mask in (
        ("even", (positions % 2 == 0) & (positions > 0)), ("odd", positions % 2 == 1), ("all", positions > 0),
    )}
    assert estimate(claim) == pytest.approx(by_subset["even"], abs=1e-5)
    # the predicate matters: the other subsets give clearly different numbers
    assert min(abs(by_subset["even"] - by_subset[other]) for other in ("odd", "all")) > 0.02
