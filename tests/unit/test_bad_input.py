"""Bad input without a model: inputs values, the input-size limit, YAML aliases and limits, odd keys.

Each test is the smallest form of one way a malformed claim file used to escape validation (a
``TypeError`` from deep inside, a ``MemoryError``, a hang) and now gets a message that says what
to write instead.
"""

from __future__ import annotations

import datetime
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from interp_checks.claims import schema
from interp_checks.claims.schema import load_claim_file
from interp_checks.inputs import generators
from interp_checks.inputs.generators import (
    DEFAULT_MAX_INPUT_TOKENS,
    MAX_INPUT_TOKENS_OPTION,
    InputSizeError,
    InputSpecError,
    Vocabulary,
    check_input_size,
    generate,
    input_key,
    normalise_input_spec,
)
from interp_checks.inputs.token_sets import TokenSetError, parse_where

VOCAB = Vocabulary(d_vocab=50, n_ctx=80, bos_token_id=0, special_token_ids=frozenset({0}))
GOOD_CLAIM = """\
  - id: fine
    check: induction_head
    head: L1H0
    inputs: {kind: repeated_random_tokens, seq_len: 8, n: 4}
    expect: {score: ">= 0.4"}
"""


def write(tmp_path: Path, text: str, name: str = "x.claims.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- inputs: values ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [{"a": 1}, ["repeated_random_tokens"], 3, None, True])
def test_an_inputs_kind_that_is_not_a_string_is_refused_with_the_known_kinds(kind):
    with pytest.raises(InputSpecError, match="inputs.kind must be the name of an input generator") as info:
        normalise_input_spec({"kind": kind, "n": 4})
    assert "repeated_random_tokens" in str(info.value) and "unhashable" not in str(info.value)


def test_inputs_keys_must_be_names():
    with pytest.raises(InputSpecError, match="inputs keys must be parameter names"):
        normalise_input_spec({"kind": "random_tokens", 1: 2, "zz": 3})


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"kind": "corpus", "source": datetime.date(2024, 1, 1)}, "inputs.source must be a string"),
        ({"kind": "corpus", "split": ["heldout"]}, "inputs.split must be a string"),
        ({"kind": "corpus", "source": {"a": 1}}, "inputs.source must be a string"),
        ({"kind": "random_tokens", "n": 2.5}, "inputs.n must be a positive integer"),
        ({"kind": "random_tokens", "bos": "yes"}, "inputs.bos must be true or false"),
        ({"kind": "random_tokens", "n": 2**40}, "inputs.n must be at most"),
        ({"kind": "counting", "start_max": 2**63}, "inputs.start_max must be at most"),
        ({"kind": "bracket_nesting", "n": 1, "depth": 5000}, "inputs.depth must be at most 64"),
    ],
)
def test_inputs_parameters_are_checked_against_their_defaults_type(spec, words):
    with pytest.raises(InputSpecError, match=words):
        normalise_input_spec(spec)
    with pytest.raises(InputSpecError, match=words):  # and generate (the engine's path) says the same
        generate(spec, VOCAB, seed=0)


def test_a_normalised_spec_is_plain_data_that_input_key_can_hash(tmp_path):
    spec = normalise_input_spec({"kind": "corpus", "source": tmp_path / "c.txt", "n": 2})
    assert spec["source"] == str(tmp_path / "c.txt")  # a Path from a Python claim becomes a string
    assert len(input_key(spec, 0)) == 16


def test_a_negative_seed_is_refused_by_generate():
    with pytest.raises(InputSpecError, match="seed must be a non-negative integer"):
        generate({"kind": "random_tokens", "n": 2, "seq_len": 4}, VOCAB, seed=-1)


# --- inputs: the size limit ----------------------------------------------------------------------


def test_the_size_limit_names_the_size_and_the_option_that_raises_it():
    spec = normalise_input_spec({"kind": "repeated_random_tokens", "seq_len": 8, "n": 1_000_000_000})
    with pytest.raises(InputSizeError) as info:
        check_input_size(spec, DEFAULT_MAX_INPUT_TOKENS)
    message = str(info.value)
    assert "17,000,000,000 tokens" in message and "n=1,000,000,000" in message
    assert f"{DEFAULT_MAX_INPUT_TOKENS:,}" in message and MAX_INPUT_TOKENS_OPTION in message
    check_input_size(spec, None)  # no limit
    check_input_size(spec, 17_000_000_000)  # exactly at the limit is allowed


def test_an_oversized_spec_is_refused_before_the_generator_allocates_anything(monkeypatch):
    original = generators._GENERATORS["repeated_random_tokens"]

    def must_not_run(*args):
        raise AssertionError("the generator ran for an oversized spec")

    monkeypatch.setitem(generators._GENERATORS, "repeated_random_tokens", generators.Generator(
        original.name, original.defaults, must_not_run, original.description, original.size, original.limits, original.unit
    ))
    with pytest.raises(InputSizeError, match=MAX_INPUT_TOKENS_OPTION):
        generate({"kind": "repeated_random_tokens", "seq_len": 8, "n": 10**9}, VOCAB, seed=0, max_tokens=2**22)


def test_text_generators_are_measured_in_characters_before_generating():
    for kind, params in [("corpus", {"chars": 100_000}), ("counting", {"length": 100_000}), ("bracket_nesting", {"length": 100_000})]:
        spec = normalise_input_spec({"kind": kind, "n": 64, **params})
        with pytest.raises(InputSizeError, match="characters of text"):
            check_input_size(spec, DEFAULT_MAX_INPUT_TOKENS)


def test_a_generator_without_a_size_estimate_is_checked_on_what_it_made(monkeypatch):
    @generators.register_generator("test_unsized", defaults={"n": 4, "width": 10}, description="test only")
    def unsized(params, vocab, rng):
        return np.zeros((params["n"], params["width"]), dtype=np.int64), {}

    try:
        assert generators.input_size(normalise_input_spec({"kind": "test_unsized"})) is None
        assert generate({"kind": "test_unsized"}, Vocabulary(5, 100, None), seed=0, max_tokens=40).n == 4
        with pytest.raises(InputSizeError, match="400 tokens"):
            generate({"kind": "test_unsized", "n": 40}, Vocabulary(5, 100, None), seed=0, max_tokens=100)
    finally:
        generators._GENERATORS.pop("test_unsized")


def test_the_plugin_option_and_the_limit_agree():
    from interp_checks import plugin

    assert plugin.OPT_MAX_INPUT_TOKENS == MAX_INPUT_TOKENS_OPTION
    assert plugin.DEFAULT_MAX_INPUT_TOKENS == DEFAULT_MAX_INPUT_TOKENS


# --- where: --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where, words",
    [
        ({"region": ["repeat"]}, "where.region must be a string"),
        ({"regex": 5}, "where.regex must be a string"),
        ({"pattern": {"a": 1}}, "where.pattern must be a string"),
        ({1: "x", "zz": 2}, "where has no key"),
    ],
)
def test_where_values_of_the_wrong_type_are_refused(where, words):
    with pytest.raises(TokenSetError, match=words):
        parse_where(where)


# --- YAML: aliases, nesting, size ----------------------------------------------------------------


def laughs(levels: int) -> str:
    lines = ["  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "description:\n" + "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_quickly_even_where_no_claim_reads_it(tmp_path):
    path = write(tmp_path, laughs(8) + "model: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM)
    start = time.perf_counter()
    parsed = load_claim_file(path)
    assert time.perf_counter() - start < 5
    assert parsed.error is not None and "aliases (*name) expand to over" in str(parsed.error)
    assert str(path) in str(parsed.error)


def test_a_few_aliases_are_fine(tmp_path):
    path = write(
        tmp_path,
        "model: zoo:attn-only-2l\nclaims:\n"
        + GOOD_CLAIM.replace("inputs: {", "inputs: &tokens {")
        + GOOD_CLAIM.replace("id: fine", "id: again").replace("inputs: {kind: repeated_random_tokens, seq_len: 8, n: 4}", "inputs: *tokens"),
    )
    parsed = load_claim_file(path)
    assert parsed.error is None and [c.error for c in parsed.claims] == [None, None]
    assert parsed.claims[1].inputs == {"kind": "repeated_random_tokens", "seq_len": 8, "n": 4}


def test_a_recursive_alias_is_refused(tmp_path):
    path = write(tmp_path, "description: &d {self: *d}\nmodel: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM)
    assert "recursive" in str(load_claim_file(path).error)


def test_deep_nesting_is_refused(tmp_path):
    deep = "[" * 100 + "]" * 100
    path = write(tmp_path, f"description: {deep}\nmodel: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM)
    assert "levels deep" in str(load_claim_file(path).error)
    deeper = "[" * 3000 + "]" * 3000  # PyYAML itself would recurse past Python's limit
    path = write(tmp_path, f"description: {deeper}\nmodel: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM)
    assert "too deeply" in str(load_claim_file(path).error) or "levels deep" in str(load_claim_file(path).error)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    path = write(tmp_path, "model: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM + ("# padding\n" * (schema.MAX_FILE_BYTES // 10 + 1)))
    assert "split it into several files" in str(load_claim_file(path).error)


def test_a_list_used_as_a_key_gets_words_not_pyyaml_internals(tmp_path):
    path = write(tmp_path, "model: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM + "    ? [a, b]\n    : 1\n")
    message = str(load_claim_file(path).error)
    assert "a list or mapping is used as a key" in message and "unhashable" not in message


# --- schema: keys and values of the wrong type ---------------------------------------------------


def test_a_non_string_top_level_key_is_a_file_error(tmp_path):
    path = write(tmp_path, "1: 2\nmodel: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM)
    assert "top-level keys must be names" in str(load_claim_file(path).error)
    path = write(tmp_path, "null: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM)
    assert "top-level keys must be names" in str(load_claim_file(path).error)


@pytest.mark.parametrize(
    "extra, words",
    [
        ("    null: 1\n", "claim keys must be names"),
        ("    3: 1\n", "claim keys must be names"),
        ("    seed: -1\n", "seed must be an integer from 0"),
        ("    seed: 2024-01-01\n", "seed must be an integer from 0"),
        ("    statement: [a, b]\n", "statement must be text"),
        ("    model: [zoo:attn-only-2l]\n", "model must be a model spec"),
        ("    expected: [refuted]\n", "expected must be 'supported' or 'refuted'"),
    ],
)
def test_claim_values_of_the_wrong_type_error_on_that_claim_only(tmp_path, extra, words):
    path = write(tmp_path, "model: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM + GOOD_CLAIM.replace("id: fine", "id: odd") + extra)
    parsed = load_claim_file(path)
    assert parsed.error is None
    assert parsed.claims[0].error is None
    assert words in str(parsed.claims[1].error) and "'odd'" in str(parsed.claims[1].error)


def test_an_id_that_is_not_a_name_gets_the_fallback_id(tmp_path):
    path = write(tmp_path, "model: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM.replace("id: fine", "id: {a: 1}"))
    (claim,) = load_claim_file(path).claims
    assert claim.id == "claim-0" and "an id is a name" in str(claim.error)


def test_file_level_model_and_seed_are_checked(tmp_path):
    assert "model must be a model spec" in str(load_claim_file(write(tmp_path, "model: {a: 1}\nclaims:\n" + GOOD_CLAIM)).error)
    assert "seed must be an integer from 0" in str(load_claim_file(write(tmp_path, "model: zoo:x\nseed: -3\nclaims:\n" + GOOD_CLAIM)).error)


@pytest.mark.parametrize("value", ["-18446744073709551616", "[1, 100000000000000000000]", "{a: 9223372036854775808}"])
def test_integers_numpy_cannot_hold_are_refused_in_check_keys(tmp_path, value):
    """A check hands its keys to numpy, which raises TypeError on them (e.g. logprob_gain's floor)."""
    path = write(tmp_path, "model: zoo:attn-only-2l\nclaims:\n" + GOOD_CLAIM + f"    floor: {value}\n")
    (claim,) = load_claim_file(path).claims
    assert "floor: the integer" in str(claim.error) and "out of range" in str(claim.error)
