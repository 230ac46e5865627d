"""A claim's problems, most basic first; and a claim without ``inputs:`` runs on its check's defaults.

Order (issue 11, item 7): the file (YAML, top-level shape), then the claim's check (missing or
unknown), then its keys (unknown keys, ill-typed values, a head outside the model, a statistic the
check does not produce, an unparseable expectation), then the rest (inputs, their size). A bad or
missing ``inputs:`` used to hide every other problem; here each case pairs a problem with a bad
``inputs:`` (and some with each other) and checks that the message names the basic one first.
Claims go through the real path: YAML file -> ``load_claim_file`` -> ``Engine.evaluate``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from interp_checks.checks.base import available_checks
from interp_checks.claims.schema import load_claim_file
from interp_checks.engine import ERROR, Engine, Settings
from interp_checks.inputs.generators import DEFAULT_MAX_INPUT_TOKENS, check_input_size, describe_inputs, normalise_input_spec
from interp_checks.models.native import boot_random, load_tokenizer, save_native
from interp_checks.report.schema import claim_record

ZOO_TOKENIZER = Path(__file__).resolve().parents[2] / "fixtures" / "zoo" / "tokenizer.json"
# context 80: the head roles' default inputs (BOS + 2 x 32 tokens) fit; d_vocab = the zoo tokenizer's
ARCH = dict(d_model=16, n_layers=2, n_heads=2, d_head=8, n_ctx=80, d_vocab=2048, attn_only=True, normalization_type="LN", act_fn="gelu")
BAD_INPUTS = "inputs: {kind: repeated_random_tokn, n: 8}"
INPUTS_WORDS = "unknown inputs kind 'repeated_random_tokn'"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("problems")
    tokenizer = load_tokenizer(ZOO_TOKENIZER)
    for name, seed in (("model", 1), ("base", 2)):
        save_native(boot_random(ARCH, seed=seed, tokenizer=tokenizer), root / name, tokenizer_json=ZOO_TOKENIZER)
    return root


def evaluate(folder: Path, claim: str, name: str = "x") -> list:
    """Evaluate one claim file holding ``claim`` (YAML lines of one claim, without the leading '- ')."""
    body = textwrap.indent("- " + textwrap.dedent(claim).strip().replace("\n", "\n  "), "  ")
    path = folder / f"{name}.claims.yaml"
    path.write_text(f"model: native:./model\nseed: 0\nclaims:\n{body}\n", encoding="utf-8")
    parsed = load_claim_file(path)
    assert parsed.error is None, parsed.error
    return Engine(Settings(n_resamples=99, null_draws=1)).evaluate(parsed.claims)


# (case, the claim's keys, the problems its error must name, in this order)
ORDER_CASES = [
    ("unknown check before inputs", f"id: a\ncheck: induction_hed\nhead: L1H0\n{BAD_INPUTS}\nexpect: {{score: '>= 0.4'}}",
     ["unknown check 'induction_hed'. Did you mean 'induction_head'?", INPUTS_WORDS]),
    ("missing check before inputs", f"id: a\nhead: L1H0\n{BAD_INPUTS}\nexpect: {{score: '>= 0.4'}}",
     ["'check:' is missing", INPUTS_WORDS]),
    ("head outside the model before inputs", f"id: a\ncheck: induction_head\nhead: L9H0\n{BAD_INPUTS}\nexpect: {{score: '>= 0.4'}}",
     ["head L9H0 is outside the model", INPUTS_WORDS]),
    ("unparseable expectation before inputs", f"id: a\ncheck: induction_head\nhead: L1H0\n{BAD_INPUTS}\nexpect: {{score: 'at least 0.4'}}",
     ["cannot parse expectation 'at least 0.4'", INPUTS_WORDS]),
    ("unparseable expectation before inputs that are not a mapping", "id: a\ncheck: induction_head\nhead: L1H0\ninputs: 5\nexpect: {score: 'at least 0.4'}",
     ["cannot parse expectation 'at least 0.4'", "'inputs:' must be a mapping with a 'kind:'"]),
    ("unknown key before inputs", f"id: a\ncheck: induction_head\nhead: L1H0\nlayers: 3\n{BAD_INPUTS}\nexpect: {{score: '>= 0.4'}}",
     ["unknown key 'layers' for check induction_head", INPUTS_WORDS]),
    ("statistic the check does not produce before inputs", f"id: a\ncheck: induction_head\nhead: L1H0\n{BAD_INPUTS}\nexpect: {{loss: '< 2'}}",
     ["does not produce statistic 'loss'", INPUTS_WORDS]),
    ("missing baseline before inputs", f"id: a\ncheck: logprob_gain\n{BAD_INPUTS}\nexpect: {{mean_gain: '> 0'}}",
     ["needs 'baseline:'", INPUTS_WORDS]),
    ("head outside the model before oversized inputs", "id: a\ncheck: induction_head\nhead: L9H0\ninputs: {kind: repeated_random_tokens, seq_len: 32, n: 1000000}\nexpect: {score: '>= 0.4'}",
     ["head L9H0 is outside the model", "over the limit of"]),
    ("check before keys", "id: a\ncheck: induction_hed\nstatement: [a, b]\nhead: L1H0\nexpect: {score: '>= 0.4'}",
     ["unknown check 'induction_hed'", "statement must be text"]),
    ("the claim's id before its check", "id: 'a b'\ncheck: induction_hed\nhead: L1H0\nexpect: {score: '>= 0.4'}",
     ["id may contain only", "unknown check 'induction_hed'"]),
    ("a head outside the model and an unparseable expectation: both keys, both named", "id: a\ncheck: induction_head\nheads: [L9H0]\nexpect: {score: '>= 0.4', max_score: 'at most 1'}",
     ["cannot parse expectation 'at most 1'", "head L9H0 is outside the model"]),
    ("inputs alone", f"id: a\ncheck: induction_head\nhead: L1H0\n{BAD_INPUTS}\nexpect: {{score: '>= 0.4'}}",
     [INPUTS_WORDS]),
]


@pytest.mark.parametrize("claim, words", [case[1:] for case in ORDER_CASES], ids=[case[0] for case in ORDER_CASES])
def test_a_claim_s_problems_are_named_most_basic_first(folder, claim, words):
    (result,) = evaluate(folder, claim)
    assert result.outcome == ERROR
    error = result.error
    assert error.startswith(f"{folder / 'x.claims.yaml'}, claim ")
    positions = [error.find(word) for word in words]
    assert -1 not in positions, f"missing {[w for w, p in zip(words, positions) if p < 0]} in: {error}"
    assert positions == sorted(positions), f"out of order: {error}"
    if len(words) > 1:
        assert f"{len(words)} problems: (1) " in error, error
    else:
        assert "problems:" not in error, error


def test_a_bad_claim_still_errors_alone(folder):
    """Collecting every problem must not change what happens to the file's other claims."""
    path = folder / "two.claims.yaml"
    path.write_text(
        "model: native:./model\nclaims:\n"
        "  - {id: good, check: induction_head, head: L1H0, inputs: {kind: repeated_random_tokens, seq_len: 6, n: 8}, expect: {score: '< 0.99'}}\n"
        f"  - {{id: bad, check: induction_hed, head: L9H0, {BAD_INPUTS}, expect: {{score: 'at least 1'}}}}\n",
        encoding="utf-8",
    )
    good, bad = Engine(Settings(n_resamples=99, null_draws=1)).evaluate(load_claim_file(path).claims)
    assert good.outcome != ERROR, good.error
    assert bad.outcome == ERROR and bad.error.index("unknown check") < bad.error.index("cannot parse") < bad.error.index(INPUTS_WORDS)


# --- default inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(available_checks()))
def test_every_builtin_check_has_default_inputs_that_are_valid_and_within_the_size_limit(name):
    check = available_checks()[name]
    if getattr(check, "reads_series", False):  # a series check's inputs belong to its readings
        assert check.default_inputs is None
        return
    defaults = check.default_inputs
    assert defaults and "kind" in defaults
    check_input_size(normalise_input_spec(defaults), DEFAULT_MAX_INPUT_TOKENS)


@pytest.mark.parametrize(
    "claim, check",
    [
        ("id: d\ncheck: previous_token_head\nhead: L0H1\nexpect: {score: '< 0.99'}", "previous_token_head"),
        ("id: d\ncheck: logprob_gain\nbaseline: native:./base\nexpect: {mean_gain: '> -5'}", "logprob_gain"),
    ],
)
def test_a_claim_without_inputs_runs_on_its_check_s_default_inputs_and_says_so(folder, claim, check):
    (result,) = evaluate(folder, claim, name="defaults")
    assert result.outcome != ERROR, result.error
    expected = normalise_input_spec(available_checks()[check].default_inputs)
    record = claim_record(result)
    assert record["inputs"] == expected  # report.json shows what was actually used
    assert any(note.startswith(f"default inputs of check {check}: {{kind: {expected['kind']}") for note in record["notes"]), record["notes"]
    assert result.n >= 40  # big enough for a meaningful test: 64 sequences, or the 43 held-out documents for text


def test_given_inputs_are_not_noted_as_defaults(folder):
    (result,) = evaluate(folder, "id: g\ncheck: induction_head\nhead: L1H0\ninputs: {kind: repeated_random_tokens, seq_len: 6, n: 8}\nexpect: {score: '< 0.99'}")
    assert result.outcome != ERROR and result.inputs["n"] == 8
    assert not any("default inputs" in note for note in result.notes)


def test_default_inputs_that_do_not_fit_the_model_say_they_were_the_default(tmp_path):
    save_native(boot_random({**ARCH, "n_ctx": 40}, seed=1), tmp_path / "model")  # shorter than BOS + 2 x 32
    (result,) = evaluate(tmp_path, "id: s\ncheck: induction_head\nhead: L1H0\nexpect: {score: '< 0.99'}")
    assert result.outcome == ERROR
    assert "the default inputs of check induction_head" in result.error and "give inputs: that suit this model" in result.error
    assert "lower seq_len" in result.error


def test_interp_checks_checks_shows_each_check_s_default_inputs(capsys):
    from interp_checks.cli import main

    assert main(["checks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, check in available_checks().items():
        row = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{name} "))
        shown = describe_inputs(check.default_inputs) if check.default_inputs else "none (claims must give inputs:)"
        assert lines[row + 1].strip() == f"default inputs: {shown}"
    assert "default inputs: {kind: corpus, source: stdlib, split: heldout, n: 64, chars: 700}" in [line.strip() for line in lines]
