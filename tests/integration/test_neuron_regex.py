"""check: neuron_regex and top_examples end to end on the SoLU zoo model and on a random-weights model of
the same shape: a true claim supported, a false one refuted, the random model never supported, both nulls
reported, the document the unit, one verdict per corpus, the SoLU reading named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.models.cache import ModelCache
from interp_checks.models.native import boot_random, save_native
from interp_checks.zoo import model_path, zoo_tokenizer_path
from interp_checks.zoo.recipes import RECIPES

HERE = Path(__file__).resolve().parent
FAST = Settings(n_resamples=499, null_draws=2)
# Small streams: the held-out discovery half of the stdlib, where the neuron was found by looking
# (hypotheses/explore_neurons.py); these tests check the machinery, the bundled claims confirm it on the
# other half.
STREAM = {"kind": "corpus_stream", "source": "stdlib", "split": "discovery", "max_tokens": 20_000, "null_tokens": 4_096}
THE_NEURON = "L0N216"  # the `\bthe\b` neuron of zoo:solu-1l (exploratory: discovery split)


def claim(model: str, expect: dict[str, str], check: str = "neuron_regex", inputs=STREAM, **params) -> ClaimSpec:
    return ClaimSpec(
        id="c", path=HERE / "x.claims.yaml", index=0, check=check, model=model, inputs=dict(inputs),
        expect={k: parse_expectation(v) for k, v in expect.items()}, params=params,
    )


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(FAST, models=ModelCache())


@pytest.fixture(scope="module")
def random_solu(tmp_path_factory) -> str:
    """A random-weights model of zoo:solu-1l's shape, as a native checkpoint."""
    folder = tmp_path_factory.mktemp("random") / "solu-random"
    save_native(boot_random(RECIPES["solu-1l"].architecture(), seed=7), folder, tokenizer_json=zoo_tokenizer_path())
    return f"native:{folder}"


def test_a_true_regex_claim_is_supported_against_both_nulls(engine):
    [result] = engine.evaluate([claim("zoo:solu-1l", {"auroc": ">= 0.9", "correlation": ">= 0.3"}, neuron=THE_NEURON, regex=r"\bthe\b")])
    assert result.outcome == "supported", result
    auroc = result.expectations[0].evaluation
    assert auroc.ci[0] >= 0.9
    assert auroc.n == result.n and result.n >= 5  # documents, not tokens
    nulls = auroc.note
    assert "random-weights model" in nulls and "random token class" in nulls
    assert auroc.effect_size is not None and auroc.null_estimate is not None
    assert any("blocks.0.mlp.ln.hook_in" in note for note in result.notes)  # the reading is named
    assert any("unit of sampling: the document" in note for note in result.notes)


def test_a_false_regex_claim_is_refuted(engine):
    [result] = engine.evaluate([claim("zoo:solu-1l", {"auroc": ">= 0.9"}, neuron=THE_NEURON, regex=r"\d")])
    assert result.outcome == "refuted", result


def test_the_same_claim_on_a_random_weights_model_of_the_same_shape_is_not_supported(engine, random_solu):
    [result] = engine.evaluate([claim(random_solu, {"auroc": ">= 0.9", "correlation": ">= 0.3"}, neuron=THE_NEURON, regex=r"\bthe\b")])
    assert result.outcome != "supported", result


def test_a_claim_over_two_corpora_gets_one_verdict_per_corpus(engine):
    inputs = {**STREAM, "source": "stdlib-docs,stdlib-code", "max_tokens": 10_000}
    [result] = engine.evaluate([claim("zoo:solu-1l", {"auroc": ">= 0.5"}, inputs=inputs, neuron=THE_NEURON, regex=r"\bthe\b")])
    names = [e.statistic for e in result.expectations]
    assert names == ["auroc[stdlib-docs/discovery]", "auroc[stdlib-code/discovery]"]


def test_top_examples_judges_each_band_and_pictures_the_top(engine):
    [result] = engine.evaluate([
        claim("zoo:solu-1l", {"top_share": ">= 0.5", "band_share": ">= 0.5"}, check="top_examples",
              neuron=THE_NEURON, regex=r"\bthe\b", k=50, bands=["top 1%", "20-50%"])
    ])
    names = [e.statistic for e in result.expectations]
    assert names == ["top_share", "band_share[top 1%]", "band_share[20-50%]"]
    top, low = result.expectations[1].evaluation, result.expectations[2].evaluation
    assert top.estimate > low.estimate  # the top band matches more than the bulk of the range
    kinds = [figure.kind for figure in result.figures]
    assert "tokens" in kinds and "bars" in kinds
    tokens = next(f for f in result.figures if f.kind == "tokens")
    values = [row["values"][row["focus"]] for row in tokens.data["rows"]]
    assert values == sorted(values, reverse=True)  # largest activations, in order


def test_an_unknown_neuron_is_an_error_naming_the_fix(engine):
    [result] = engine.evaluate([claim("zoo:solu-1l", {"auroc": ">= 0.9"}, neuron="L0N9999", regex="x")])
    assert result.outcome == "error" and "N0..N511" in result.error
    [result] = engine.evaluate([claim("zoo:attn-only-2l", {"auroc": ">= 0.9"}, neuron="L0N1", regex="x")])
    assert result.outcome == "error" and "attention-only" in result.error
    [result] = engine.evaluate([claim("zoo:solu-1l", {"auroc": ">= 0.9"}, inputs={"kind": "corpus", "n": 4}, neuron="L0N1", regex="x")])
    assert result.outcome == "error" and "corpus_stream" in result.error
