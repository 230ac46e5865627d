"""check neuron_universal on the hand-built token-neuron model, whose answer is known: L0N0 fires on
every token holding a digit except the planted exception ``7``, L0N1 on tokens holding ``def``.

"L0N0 fires on every match of \\d" is refuted by the search, which finds and shrinks the exception
to the bare string ``7`` (the same counterexample every run); "L0N0 never fires off \\d" is true,
so no counterexample exists and the claim stays inconclusive, saying how much was searched; the
statistical form "violation_rate <= 0.2" is supported where 7s are about a tenth of the digits; and
on a random-weights model of the same shape nothing is supported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from interp_checks.checks.base import CheckError, ModelShape
from interp_checks.checks.universal import NeuronUniversalCheck
from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.models.native import boot_random, save_native
from interp_checks.zoo import zoo_tokenizer_path
from interp_checks.zoo.handbuilt import KnownNeurons, build_token_neurons, token_strings_matching

ROOT = Path(__file__).resolve().parents[2]
N_DOCUMENTS = 30
SEARCH_EXAMPLES = 150


def write_corpus(path: Path, digits: str, seed: int = 0) -> Path:
    """Documents of small Python-like lines whose numbers use only ``digits``."""
    rng = np.random.default_rng(seed)
    names = ["total", "count", "value", "x", "offset", "size"]
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(N_DOCUMENTS):
            lines = []
            for _ in range(int(rng.integers(6, 12))):
                number = "".join(rng.choice(list(digits), size=int(rng.integers(1, 4))))
                name = names[int(rng.integers(len(names)))]
                lines.append(f"def f(a):\n    {name} = {number} + a" if rng.random() < 0.3 else f"{name} = {name} * {number}")
            handle.write(json.dumps({"text": "\n".join(lines) + "\n"}) + "\n")
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> KnownNeurons:
    folder = tmp_path_factory.mktemp("universal") / "token-neurons"
    return build_token_neurons(folder, {0: token_strings_matching(r"\d"), 1: token_strings_matching("def")}, exceptions={0: ["7"]})


@pytest.fixture(scope="module")
def random_twin(tmp_path_factory, model) -> str:
    folder = tmp_path_factory.mktemp("universal") / "random"
    save_native(boot_random(model.architecture, seed=1), folder, tokenizer_json=zoo_tokenizer_path())
    return f"native:{folder}"


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpora")
    return {"no sevens": write_corpus(folder / "no7.jsonl", "012345689"), "all digits": write_corpus(folder / "digits.jsonl", "0123456789")}


def claim(model_spec: str, corpus: Path, expect: str, **params) -> ClaimSpec:
    params = {"neuron": "L0N0", "regex": r"\d", "search_examples": SEARCH_EXAMPLES} | params
    inputs = {"kind": "corpus_stream", "source": str(corpus), "split": "all", "max_tokens": 20_000, "seq_len": 64}
    return ClaimSpec(
        id="c", path=ROOT / "x.claims.yaml", index=0, check="neuron_universal", model=model_spec, inputs=inputs,
        expect={"violation_rate": parse_expectation(expect)}, params=params,
    )


def judged(spec: ClaimSpec):
    [result] = Engine(Settings(n_resamples=499, batch_size=16, null_draws=1)).evaluate([spec])
    assert result.outcome != "error", result.error
    return result


def test_fires_on_every_digit_is_refuted_by_the_planted_exception_shrunk_to_seven(model, corpora):
    result = judged(claim(model.spec, corpora["no sevens"], "<= 0", tokens="match", threshold=model.threshold))
    assert result.outcome == "refuted"
    [expectation] = result.expectations
    evaluation = expectation.evaluation
    assert evaluation.test == "counterexample search" and evaluation.p_value_refute == 0.0
    assert any(note.startswith("minimal counterexample: '7' (token '7'") for note in result.notes), result.notes
    assert "none in the corpus stream" in evaluation.note  # the corpus has no 7: the search found it
    [figure] = [f for f in result.figures if f.kind == "tokens"]
    [row] = figure.data["rows"]
    assert row["tokens"] == ["7"] and row["focus"] == 0 and row["values"][0] <= model.threshold
    assert figure.data["center"] == pytest.approx(model.threshold, rel=1e-3)


def test_the_search_is_deterministic(model, corpora):
    """Same claim, same model, same corpus: the same counterexample after the same number of inputs."""
    spec = claim(model.spec, corpora["all digits"], "<= 0", tokens="match", threshold=model.threshold)
    first, second = judged(spec), judged(spec)
    assert first.outcome == second.outcome == "refuted"
    notes = [[n for n in r.notes if n.startswith(("minimal counterexample", "counterexample search"))] for r in (first, second)]
    assert notes[0] == notes[1] and len(notes[0]) == 2
    assert "minimal counterexample: '7'" in notes[0][1]


def test_corpus_violations_count_and_the_shortest_is_shown(model, corpora):
    result = judged(claim(model.spec, corpora["all digits"], "<= 0", tokens="match", threshold=model.threshold))
    evaluation = result.expectations[0].evaluation
    assert "violating corpus token(s)" in evaluation.note and "none in the corpus" not in evaluation.note
    [shortest] = [n for n in result.notes if n.startswith("shortest violation in the corpus")]
    assert "(token '7'" in shortest
    rows = [f for f in result.figures if f.kind == "tokens"][0].data["rows"]
    assert len(rows) == 2 and rows[1]["tokens"][rows[1]["focus"]] == "7"


def test_never_fires_off_digits_is_true_and_stays_inconclusive(model, corpora):
    result = judged(claim(model.spec, corpora["all digits"], "<= 0", tokens="nonmatch", threshold=model.threshold))
    assert result.outcome == "inconclusive"
    evaluation = result.expectations[0].evaluation
    assert evaluation.p_value == evaluation.p_value_refute == 1.0
    assert "generated inputs; not a proof" in evaluation.note and "no counterexample in " in evaluation.note
    tried = int(evaluation.note.split(" corpus tokens and ")[1].split(" generated")[0].replace(",", ""))
    assert tried >= SEARCH_EXAMPLES // 2  # hypothesis ran the search, not a token
    assert not [f for f in result.figures if f.kind == "tokens"]


def test_never_fires_off_a_narrower_regex_is_refuted(model, corpora):
    """L0N1 fires on ``def`` inside ``undefined`` too (it reads the token, not the word): "never fires
    off \\bdef\\b" is false, and the search finds a counterexample outside the corpus's words."""
    result = judged(claim(model.spec, corpora["all digits"], "<= 0", neuron="L0N1", regex=r"\bdef\b", tokens="nonmatch", threshold=model.threshold))
    assert result.outcome == "refuted"
    [note] = [n for n in result.notes if n.startswith("minimal counterexample")]
    text = note.split("'")[1]
    assert "(token 'def'" in note and re.fullmatch(r"\w?def\w?", text) and not re.search(r"\bdef\b", text), note


def test_the_statistical_form_is_supported_where_sevens_are_rare(model, corpora):
    result = judged(claim(model.spec, corpora["all digits"], "<= 0.2", tokens="match", threshold=model.threshold))
    assert result.outcome == "supported"
    evaluation = result.expectations[0].evaluation
    assert 0.05 < evaluation.estimate < 0.15  # the share of digit tokens that are the bare 7
    assert evaluation.test != "counterexample search" and evaluation.n == N_DOCUMENTS
    assert not any(n.startswith("counterexample search") for n in result.notes)


@pytest.mark.parametrize("expect", ["<= 0", "<= 0.2"])
def test_a_random_weights_model_of_the_same_shape_is_never_supported(model, corpora, random_twin, expect):
    result = judged(claim(random_twin, corpora["all digits"], expect, tokens="match", threshold=model.threshold))
    assert result.outcome in ("refuted", "inconclusive")


def test_claims_that_cannot_be_judged_are_refused():
    check = NeuronUniversalCheck()
    shapes = {"model": ModelShape(1, 4, 2048, 128, "LN", 16, "solu_ln")}
    expect = {"violation_rate": parse_expectation("<= 0")}
    with pytest.raises(CheckError, match="threshold is required"):
        check.prepare({"neuron": "L0N0", "regex": r"\d"}, shapes, expect)
    with pytest.raises(CheckError, match="tokens must be one of"):
        check.prepare({"neuron": "L0N0", "regex": r"\d", "threshold": 1, "tokens": "both"}, shapes, expect)
    prepared = check.prepare({"neuron": "L0N0", "regex": r"\d", "threshold": 1}, shapes, expect)
    assert prepared.evaluators == {"violation_rate": "universal"} and prepared.null_needs is None
    assert check.prepare({"neuron": "L0N0", "regex": r"\d", "threshold": 1}, shapes, {"violation_rate": parse_expectation("<= 0.01")}).evaluators == {"violation_rate": "pooled"}


def test_the_engine_s_probe_tokenizes_as_text_inputs_and_captures_the_claim_s_hook(model, corpora):
    """The seam a search runs the model through: BOS first, character offsets kept, the hook's values
    those the construction implies for the tokens."""
    engine = Engine(Settings())
    prepared = engine.prepare(claim(model.spec, corpora["all digits"], "<= 0", tokens="match", threshold=model.threshold))
    probe = engine._probe(prepared.models["model"], prepared.prepared.needs["model"])
    batch, activations = probe(["x = 17", "def"])
    tokenizer = prepared.models["model"].tokenizer
    assert (batch.tokens[:, 0] == tokenizer.bos_token_id).all() and batch.texts == ["x = 17", "def"]
    assert batch.token_strings(0, 1, int(batch.valid[0].sum())) == ["x", " =", " 1", "7"]
    np.testing.assert_allclose(activations[model.hook].numpy(), model.expected(batch.tokens), atol=1e-4)
