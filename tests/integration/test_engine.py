"""The engine: shared forward passes, only the needed hooks, early stop, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from interp_checks import engine as engine_module
from interp_checks.checks.base import Needs
from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.report.schema import claim_record
from interp_checks.runner import capture
from interp_checks.inputs.generators import InputSpecError, Vocabulary, generate
from interp_checks.models.native import boot_random, save_native

ARCH = dict(d_model=32, n_layers=3, n_heads=2, d_head=16, n_ctx=80, d_vocab=50, attn_only=True, normalization_type="LN", act_fn="gelu")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("engine") / "m"
    save_native(boot_random(ARCH, seed=1), folder)
    return folder


def spec(model_dir: Path, claim_id: str, check: str = "induction_head", seq_len: int = 8, **params) -> ClaimSpec:
    expect = params.pop("expect", {"score": ">= 0.5"})
    return ClaimSpec(
        id=claim_id,
        path=model_dir.parent / "x.claims.yaml",
        index=0,
        check=check,
        model=f"native:{model_dir}",
        inputs={"kind": "repeated_random_tokens", "seq_len": seq_len, "n": 20},
        expect={k: parse_expectation(v) for k, v in expect.items()},
        params=params or {"head": "L1H0"},
    )


def test_claims_on_the_same_model_and_inputs_share_one_pass(model_dir, monkeypatch):
    calls = []
    real = engine_module.capture

    def counting(bridge, tokens, needs):
        calls.append(needs)
        return real(bridge, tokens, needs)

    monkeypatch.setattr(engine_module, "capture", counting)
    specs = [
        spec(model_dir, "a", head="L0H0"),
        spec(model_dir, "b", check="previous_token_head", head="L1H1"),
        spec(model_dir, "c", check="duplicate_token_head", layer=0, expect={"max_score": "< 0.9"}),
        spec(model_dir, "d", seq_len=9, head="L0H1"),  # other inputs: a second group
    ]
    results = Engine(Settings(n_resamples=199, batch_size=64, null_draws=2)).evaluate(specs)
    assert all(r.outcome != "error" for r in results), [r.error for r in results]
    # two groups, each one pass on the model and one on each of its two random twins
    assert len(calls) == 2 * (1 + 2)
    shared = calls[0]
    assert shared.hooks == {"blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"}
    assert not shared.logits


def test_chunking_gives_the_same_numbers(model_dir):
    whole = Engine(Settings(n_resamples=199, batch_size=64)).evaluate([spec(model_dir, "a")])[0]
    chunked = Engine(Settings(n_resamples=199, batch_size=3)).evaluate([spec(model_dir, "a")])[0]
    assert whole.expectations[0].evaluation.estimate == pytest.approx(chunked.expectations[0].evaluation.estimate, abs=1e-6)


def test_same_seed_same_numbers(model_dir):
    first = claim_record(Engine(Settings(n_resamples=199)).evaluate([spec(model_dir, "a")])[0])
    second = claim_record(Engine(Settings(n_resamples=199)).evaluate([spec(model_dir, "a")])[0])
    for record in (first, second):
        for timing in ("duration_s", "load_s", "measure_s"):
            record.pop(timing)
    assert first == second


def test_capture_keeps_only_needed_hooks_and_stops_early():
    model = boot_random(ARCH, seed=0)
    tokens = torch.randint(0, 50, (2, 10))
    reached = []
    model.hook_dict["ln_final.hook_in"].add_hook(lambda t, hook: reached.append(hook.name))
    try:
        store = capture(model, tokens, Needs(frozenset({"blocks.0.attn.hook_pattern"})))
        assert set(store) == {"blocks.0.attn.hook_pattern"}
        assert reached == []  # layers 1, 2 and the unembedding never ran
        with_logits = capture(model, tokens, Needs(frozenset({"blocks.0.attn.hook_pattern"}), logits=True))
        assert with_logits["logits"].shape == (2, 10, 50)
    finally:
        model.reset_hooks()
    full = model.run_with_cache(tokens, names_filter=["blocks.0.attn.hook_pattern"])[1]
    torch.testing.assert_close(store["blocks.0.attn.hook_pattern"], full["blocks.0.attn.hook_pattern"])


def test_inputs_are_seeded_by_seed_and_spec_only():
    vocab = Vocabulary(d_vocab=50, n_ctx=80, bos_token_id=0, special_token_ids=frozenset({0, 1}))
    one = generate({"kind": "repeated_random_tokens", "seq_len": 8, "n": 30}, vocab, seed=4)
    two = generate({"kind": "repeated_random_tokens", "seq_len": 8, "n": 30}, vocab, seed=4)
    other = generate({"kind": "repeated_random_tokens", "seq_len": 8, "n": 30}, vocab, seed=5)
    np.testing.assert_array_equal(one.tokens, two.tokens)
    assert not np.array_equal(one.tokens, other.tokens)
    assert (one.tokens[:, 0] == 0).all() and not np.isin(one.tokens[:, 1:], [0, 1]).any()
    np.testing.assert_array_equal(one.tokens[:, 1:9], one.tokens[:, 9:])


def test_inputs_longer_than_the_context_are_refused():
    with pytest.raises(InputSpecError, match="lower seq_len"):
        generate({"kind": "repeated_random_tokens", "seq_len": 50}, Vocabulary(50, 80, None), seed=0)


def test_max_score_is_the_largest_head_mean_not_the_mean_of_per_sequence_maxima(model_dir):
    """On the same inputs, a layer's max_score estimate is exactly the largest of its heads' score estimates."""
    engine = Engine(Settings(n_resamples=199, null_draws=1))
    heads = ["L1H0", "L1H1"]
    per_head, group = engine.evaluate(
        [spec(model_dir, "each", heads=heads), spec(model_dir, "group", layer=1, expect={"max_score": ">= 0.5"})]
    )
    estimates = [e.evaluation.estimate for e in per_head.expectations]
    (expectation,) = group.expectations
    assert expectation.evaluation.estimate == pytest.approx(max(estimates), abs=1e-12)
    assert expectation.evaluation.deciding_member == heads[int(np.argmax(estimates))]
    assert expectation.evaluation.estimand.startswith("largest of 2 member means")
    (band,) = engine.evaluate([spec(model_dir, "band", layer=1, expect={"max_score": "between 0.1 0.5"})])
    assert band.outcome == "error" and "one-sided" in band.error and "'band'" in band.error


def test_windows_of_one_document_count_once(tmp_path):
    """A corpus of 3 documents asked for 12 windows: the claim's statistics run over 3 documents."""
    from interp_checks.models.native import load_tokenizer

    zoo_tokenizer = Path(__file__).resolve().parents[2] / "fixtures" / "zoo" / "tokenizer.json"
    arch = dict(ARCH, d_vocab=2048, n_ctx=128)
    folder = save_native(boot_random(arch, seed=2, tokenizer=load_tokenizer(zoo_tokenizer)), tmp_path / "m", tokenizer_json=zoo_tokenizer)
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(f'{{"text": "{("def f%d(x): return x + %d" % (i, i) + chr(92) + "n") * 40}"}}\n' for i in range(3)))
    claim = ClaimSpec(
        id="three-docs", path=tmp_path / "x.claims.yaml", index=0, check="logprob_gain", model=f"native:{folder}",
        inputs={"kind": "corpus", "source": str(corpus), "split": "all", "n": 12, "chars": 120},
        expect={"mean_gain": parse_expectation("between -0.01 0.01")}, params={"baseline": f"native:{folder}"},
    )
    (result,) = Engine(Settings(n_resamples=199)).evaluate([claim])
    assert result.outcome != "error", result.error
    assert result.n == 3
    assert any("12 windows from 3 documents" in note for note in result.notes)


def test_loading_is_timed_apart_from_measuring(model_dir):
    """The first claim on a model pays for loading it (and its random twins); a second evaluation
    on the cached model pays nothing for loading, so load_s says where the time went."""
    engine = Engine(Settings(n_resamples=199, null_draws=2))
    (first,) = engine.evaluate([spec(model_dir, "a")])
    (second,) = engine.evaluate([spec(model_dir, "a")])
    assert first.load_s > 0 and second.measure_s > 0
    assert second.load_s < 0.01 < first.load_s
    assert first.duration_s == first.load_s + first.measure_s
