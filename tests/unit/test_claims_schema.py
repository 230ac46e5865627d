"""Claim files and expectation strings: parsing, defaults, and errors that name file, claim and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interp_checks.claims.expect import ExpectationSyntaxError, negate, parse_expectation
from interp_checks.claims.schema import load_claim_file
from interp_checks.stats import Comparison


def write(tmp_path: Path, text: str, name: str = "x.claims.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


GOOD = """
    model: zoo:attn-only-2l
    seed: 3
    claims:
      - id: L1H0-induction
        statement: Head L1H0 is an induction head
        check: induction_head
        head: L1H0
        inputs: {kind: repeated_random_tokens, seq_len: 32, n: 64}
        expect: {score: ">= 0.4"}
      - id: false-one
        check: induction_head
        model: native:./other
        head: L0H0
        inputs: {kind: repeated_random_tokens}
        expect: {score: "between 0.2 0.5"}
        expected: refuted
"""


def test_a_good_file_parses_with_file_defaults(tmp_path):
    parsed = load_claim_file(write(tmp_path, GOOD))
    assert parsed.error is None
    first, second = parsed.claims
    assert (first.id, first.check, first.model, first.seed) == ("L1H0-induction", "induction_head", "zoo:attn-only-2l", 3)
    assert first.params == {"head": "L1H0"}
    assert first.expect == {"score": Comparison(">=", 0.4)}
    assert second.model == "native:./other" and second.expected == "refuted"
    assert second.expect["score"] == Comparison("between", 0.2, 0.5)
    assert second.base_dir == tmp_path


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("claims: [\n  - id: a\n    check: [", "malformed YAML at line"),
        ("claims: []\n", "non-empty list"),
        ("modle: zoo:x\nclaims: [{id: a}]\n", "Did you mean 'model'"),
        ("- just\n- a list\n", "mapping with a 'claims:' list"),
        ("seed: one\nclaims: [{id: a}]\n", "seed must be an integer"),
    ],
)
def test_file_level_errors_name_the_file(tmp_path, text, fragment):
    path = write(tmp_path, text)
    parsed = load_claim_file(path)
    assert parsed.error is not None
    assert str(path) in str(parsed.error) and fragment in str(parsed.error)


@pytest.mark.parametrize(
    "claim, fragment",
    [
        ("{id: a, check: induction_head, head: L1H0, inputs: {kind: k}}", "'expect:' must map"),
        ("{id: a, head: L1H0, inputs: {kind: k}, expect: {score: '>= 1'}}", "'check:' is missing"),
        ("{id: a, check: c, inputs: {kind: k}, expect: {score: 'at least 0.4'}}", "cannot parse expectation 'at least 0.4'"),
        ("{id: a, check: c, inputs: {kind: k}, expect: {score: 0.4}}", "is not a comparison string"),
        ("{id: a, check: c, inputs: {kind: k}, expect: {score: '>= 0.4'}, expected: maybe}", "expected must be"),
        ("{id: 'a b', check: c, inputs: {kind: k}, expect: {score: '>= 0.4'}}", "id may contain only"),
        ("{id: a, check: c, inputs: 5, expect: {score: '>= 0.4'}}", "'inputs:' must be a mapping"),
        ("{id: a, check: c, inputs: {n: 5}, expect: {score: '>= 0.4'}}", "or left out for the check's default inputs"),
    ],
)
def test_claim_level_errors_name_file_and_claim_and_spare_the_others(tmp_path, claim, fragment):
    path = write(tmp_path, f"model: zoo:m\nclaims:\n  - {claim}\n  - {{id: fine, check: c, inputs: {{kind: k}}, expect: {{score: '>= 0.1'}}}}\n")
    parsed = load_claim_file(path)
    assert parsed.error is None
    bad, fine = parsed.claims
    assert bad.error is not None and fragment in str(bad.error), str(bad.error)
    assert str(path) in str(bad.error)
    assert fine.error is None


def test_a_claim_without_inputs_is_no_error_here_the_engine_gives_the_check_s_defaults(tmp_path):
    parsed = load_claim_file(write(tmp_path, "model: zoo:m\nclaims:\n  - {id: a, check: c, expect: {score: '>= 0.4'}}\n"))
    (claim,) = parsed.claims
    assert claim.error is None and claim.inputs == {}
    with_file_default = write(tmp_path, "model: zoo:m\ninputs: {kind: k}\nclaims:\n  - {id: a, check: c, expect: {score: '>= 0.4'}}\n")
    assert load_claim_file(with_file_default).claims[0].inputs == {"kind": "k"}


def test_duplicate_ids_are_flagged(tmp_path):
    claim = "{id: a, check: c, inputs: {kind: k}, expect: {score: '>= 0.1'}}"
    parsed = load_claim_file(write(tmp_path, f"model: zoo:m\nclaims:\n  - {claim}\n  - {claim}\n"))
    assert parsed.claims[0].error is None
    assert "used twice" in str(parsed.claims[1].error)


def test_missing_model_is_an_error(tmp_path):
    parsed = load_claim_file(write(tmp_path, "claims:\n  - {id: a, check: c, inputs: {kind: k}, expect: {score: '>= 0.1'}}\n"))
    assert "no model" in str(parsed.claims[0].error)


@pytest.mark.parametrize(
    "text, expected",
    [
        (">= 0.4", Comparison(">=", 0.4)),
        ("<0.2", Comparison("<", 0.2)),
        ("> -1e-3", Comparison(">", -0.001)),
        ("<= 1", Comparison("<=", 1.0)),
        ("between 0.2 0.5", Comparison("between", 0.2, 0.5)),
        ("between 0.2 and 0.5", Comparison("between", 0.2, 0.5)),
    ],
)
def test_expectations_parse(text, expected):
    assert parse_expectation(text) == expected


@pytest.mark.parametrize("text", ["== 0.4", "0.4", ">= nan", ">= inf", "between 0.5 0.2", "between a b", "", ">="])
def test_bad_expectations_are_refused(text):
    with pytest.raises(ExpectationSyntaxError):
        parse_expectation(text)


@given(st.sampled_from([">=", ">", "<=", "<"]), st.floats(-1e6, 1e6, allow_nan=False), st.floats(-2e6, 2e6, allow_nan=False))
def test_negation_is_the_complement(op, threshold, value):
    comparison = Comparison(op, threshold)
    assert negate(comparison).holds(value) != comparison.holds(value)
    assert parse_expectation(str(comparison)) == comparison
