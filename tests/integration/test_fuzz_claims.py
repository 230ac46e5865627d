"""Fuzzing claim files: one bad claim must error alone, with a message a user can act on.

Hypothesis starts from valid claim files (head-role and logprob_gain claims on tiny native models
the test writes), mutates one or two keys or values (deletes a key, renames one, replaces a value
with a string, number, huge or negative integer, float, None, list, mapping or a YAML "billion
laughs" of nested aliases), writes the file next to a good claim file and evaluates both together.

It asserts that nothing raises; that the good claims still get the verdicts they get alone; and
that every bad claim is either evaluated normally or is an ``error`` whose message names the file
and the claim and carries no internal-exception text (``KeyError``, ``TypeError``, ``object has no
attribute``, ``unhashable``, ``Traceback``...), which would mean an exception escaped validation
and the user is told about our code instead of their file.

Derandomized (a fixed, reproducible sequence of examples), so CI sees the same cases every run.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interp_checks.claims.schema import load_claim_file
from interp_checks.engine import ERROR, Engine, Settings
from interp_checks.models.native import boot_random, load_tokenizer, save_native
from interp_checks.plugin import OPT_RESAMPLES

ZOO_TOKENIZER = Path(__file__).resolve().parents[2] / "fixtures" / "zoo" / "tokenizer.json"
ARCH = dict(d_model=16, n_layers=2, n_heads=2, d_head=8, n_ctx=64, d_vocab=2048, attn_only=True, normalization_type="LN", act_fn="gelu")

# Text that means an exception escaped validation: the user would read about our code, not their file.
INTERNAL_MARKERS = (
    "KeyError",
    "TypeError",
    "AttributeError",
    "IndexError",
    "ValueError",
    "ZeroDivisionError",
    "OverflowError",
    "RecursionError",
    "MemoryError",
    "NotImplementedError",
    "AssertionError",
    "object has no attribute",
    "unhashable",
    "not subscriptable",
    "not iterable",
    "Traceback",
    "internal error",
)

TOKENS = {"kind": "repeated_random_tokens", "seq_len": 6, "n": 8}

# Valid claims: each evaluates without error on the tiny models (file-level model: native:./model).
BASE_CLAIMS: list[dict[str, Any]] = [
    {"id": "head", "statement": "L1H0 induction", "check": "induction_head", "head": "L1H0", "inputs": dict(TOKENS), "expect": {"score": ">= 0.4"}, "expected": "refuted"},
    {"id": "heads", "check": "previous_token_head", "heads": ["L0H0", "L1H1"], "inputs": dict(TOKENS), "expect": {"score": "> 0.9"}},
    {"id": "layer", "check": "duplicate_token_head", "layer": 0, "inputs": dict(TOKENS), "seed": 3, "expect": {"max_score": "< 0.99"}},
    {"id": "exactly", "check": "induction_head", "heads_with_role": ["L1H0"], "inputs": dict(TOKENS), "expect": {"score": ">= 0.4"}, "marks": ["slow"]},
    {"id": "gain", "check": "logprob_gain", "baseline": "native:./base", "inputs": dict(TOKENS), "where": {"region": "repeat"}, "floor": -5, "expect": {"mean_gain": ">= 1.0"}},
    {"id": "gain-text", "check": "logprob_gain", "baseline": "native:./base", "inputs": {"kind": "counting", "n": 6, "length": 8}, "where": {"regex": "[0-9]", "seen_before": False}, "expect": {"mean_gain": "> -0.5"}},
]
BASE_FILE = {"model": "native:./model", "seed": 0}

GOOD_FILE = {
    "model": "native:./model",
    "seed": 0,
    "claims": [
        {"id": "good-head", "check": "induction_head", "head": "L1H1", "inputs": {"kind": "repeated_random_tokens", "seq_len": 7, "n": 10}, "expect": {"score": ">= 0.5"}, "expected": "refuted"},
        {"id": "good-gain", "check": "logprob_gain", "baseline": "native:./model", "inputs": {"kind": "random_tokens", "seq_len": 7, "n": 10}, "expect": {"mean_gain": "between -0.1 0.1"}},
    ],
}


def _laughs(levels: int = 8, width: int = 9) -> list:
    """Nested shared lists: yaml.safe_dump writes them as anchors and aliases, ~width**levels expanded."""
    value: list = ["lol"] * width
    for _ in range(levels):
        value = [value] * width
    return value


# Values a mutation can put anywhere: wrong types, edge numbers, plausible-but-wrong strings.
WEIRD_STRINGS = [
    "", " ", "L1H0", "L9H9", "L-1H0", "score", "max_score", "mean_gain", ">= 0.4", ">= nan", "between 1 0",
    "corpus", "counting", "bracket_nesting", "far_copy", "repeated_span_text", "random_tokens",
    "native:./model", "native:./nope", "zoo:nope", "hf:./model", "gguf:./model", "model", "../../etc/passwd",
    "/etc/passwd", "refuted", "supported", "repeat", "first", "induction_like", "[", "(", "*", "stdlib",
    "heldout", "kind", "{a: 1}", "ünïcode", "0x10",
]
scalar_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=70),
    st.sampled_from([0, -1, 2**31, 2**63, 10**9, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WEIRD_STRINGS),
    st.text(alphabet="aLH01 -_.:/[]{}*&!#%", max_size=10),
)
weird_values = st.one_of(
    scalar_values,
    st.lists(scalar_values, max_size=3),
    st.dictionaries(st.sampled_from(["kind", "a", "n", "seq_len", "region", "score", "1"]), scalar_values, max_size=3),
    st.builds(_laughs),
)
KEY_NAMES = ["id", "check", "model", "inputs", "expect", "expected", "seed", "marks", "statement", "head", "heads",
             "layer", "heads_with_role", "baseline", "where", "floor", "kind", "n", "seq_len", "bos", "region",
             "regex", "pattern", "seen_before", "predicate", "source", "split", "chars", "depth", "length", "claims", "typo"]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in nested dicts (and list positions) down to claims.N.key.subkey, the root
    excluded (no deeper: a "billion laughs" value has ~9**9 paths)."""
    out: list[tuple] = []
    if len(prefix) >= 4:
        return out
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(prefix + (key,))
            out.extend(_paths(value, prefix + (key,)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.append(prefix + (index,))
            out.extend(_paths(value, prefix + (index,)))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated_files(draw) -> tuple[dict, str]:
    """A valid claim file with one or two mutations; returns (file dict, description)."""
    claim = copy.deepcopy(draw(st.sampled_from(BASE_CLAIMS)))
    doc = {**copy.deepcopy(BASE_FILE), "claims": [claim]}
    done = []
    for _ in range(draw(st.integers(1, 2))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        if isinstance(parent, list):
            op = draw(st.sampled_from(["replace", "delete"]))
        else:
            op = draw(st.sampled_from(["replace", "replace", "delete", "rename", "add"]))
        key = path[-1]
        if op == "replace":
            parent[key] = draw(weird_values)
        elif op == "delete":
            del parent[key]
        elif op == "rename":
            new = draw(st.one_of(st.sampled_from(KEY_NAMES), st.integers(0, 3), st.none()))
            parent[new] = parent.pop(key)
        else:
            parent[draw(st.sampled_from(KEY_NAMES))] = draw(weird_values)
        done.append(f"{op} {'.'.join(map(str, path))}")
        if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list) or not doc["claims"]:
            break
    return doc, "; ".join(done)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run faster on one torch thread than on several fighting over two cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def world(tmp_path_factory, one_thread) -> dict[str, Any]:
    """Two tiny native models (with the zoo tokenizer, so text inputs work), a good claim file, an
    engine that keeps the models loaded across examples, and the good claims' verdicts alone."""
    root = tmp_path_factory.mktemp("fuzz")
    tokenizer = load_tokenizer(ZOO_TOKENIZER)
    for name, seed in (("model", 1), ("base", 2)):
        save_native(boot_random(ARCH, seed=seed, tokenizer=tokenizer), root / name, tokenizer_json=ZOO_TOKENIZER)
    good = root / "good.claims.yaml"
    good.write_text(yaml.safe_dump(GOOD_FILE, sort_keys=False), encoding="utf-8")
    engine = Engine(Settings(n_resamples=99, batch_size=64))
    alone = engine.evaluate(load_claim_file(good).claims)
    assert [r.outcome for r in alone] == ["refuted", "supported"], [r.error for r in alone]
    for claim in BASE_CLAIMS:  # every starting point is valid: errors below come from the mutation
        path = root / "base.claims.yaml"
        path.write_text(yaml.safe_dump({**BASE_FILE, "claims": [claim]}, sort_keys=False), encoding="utf-8")
        (result,) = engine.evaluate(load_claim_file(path).claims)
        assert result.outcome != ERROR, result.error
    return {"root": root, "good": good, "engine": engine, "alone": alone, "counter": itertools.count()}


def assert_user_error(message: str, path: Path, claim_id: str | None, what: str) -> None:
    assert message, f"{what}: an error without a message"
    assert str(path) in message, f"{what}: the message does not name the file:\n{message}"
    if claim_id is not None:
        assert repr(claim_id) in message or claim_id in message, f"{what}: the message does not name claim {claim_id!r}:\n{message}"
    scrubbed = message.replace(str(path), "<file>")
    if claim_id:
        scrubbed = scrubbed.replace(claim_id, "<id>")
    leaked = [marker for marker in INTERNAL_MARKERS if marker in scrubbed]
    assert not leaked, f"{what}: internal exception text {leaked} in the message:\n{message}"


def evaluate_next_to_good(world: dict[str, Any], doc: Any, text: str | None = None) -> tuple[Path, list, list]:
    """Write ``doc`` (or ``text``) as a claim file beside the good file and evaluate both together."""
    bad = world["root"] / f"bad{next(world['counter'])}.claims.yaml"
    bad.write_text(text if text is not None else yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    try:
        good_specs = load_claim_file(world["good"]).claims
        parsed = load_claim_file(bad)
        results = world["engine"].evaluate(good_specs + parsed.claims)
    finally:
        bad.unlink()
    return bad, [parsed], results


def check_outcome(world: dict[str, Any], doc: Any, description: str, text: str | None = None) -> None:
    bad, (parsed,), results = evaluate_next_to_good(world, doc, text)
    what = f"mutation [{description}]"
    good_results, bad_results = results[: len(world["alone"])], results[len(world["alone"]) :]
    for alone, together in zip(world["alone"], good_results):
        assert together.outcome == alone.outcome, f"{what}: good claim {alone.spec.id} went {alone.outcome} -> {together.outcome}: {together.error}"
        assert together.expectations[0].evaluation.estimate == alone.expectations[0].evaluation.estimate
    if parsed.error is not None:  # the plugin turns this into one failing item for the file
        assert_user_error(str(parsed.error), bad, None, what)
        return
    for result in bad_results:
        if result.outcome == ERROR:
            assert_user_error(result.error or "", bad, result.spec.id, what)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=mutated_files())
def test_a_mutated_claim_errors_alone_with_a_usable_message(world, case):
    doc, description = case
    check_outcome(world, doc, description)


YAML_MUTATIONS = [
    ("billion laughs in a claim", "statement: *l8", True),
    ("billion laughs as inputs", "inputs: *l8", True),
    ("recursive alias", "inputs: &r {kind: repeated_random_tokens, n: [*r]}", False),
    ("undefined alias", "inputs: *nope", False),
    ("python tag", "inputs: !!python/object/apply:os.system [echo hi]", False),
    ("set tag", "inputs: !!set {a, b}", False),
    ("binary", "statement: !!binary aGVsbG8=", False),
    ("timestamp seed", "seed: 2024-01-01", False),
    ("deep nesting", "statement: " + "[" * 200 + "]" * 200, False),
    ("complex key", "? [a, b]\n    : 1", False),
    ("integer key", "1: 2", False),
    ("null key", "null: 2", False),
    ("tab indentation", "\tbad: 1", False),
]


@pytest.mark.parametrize("name, line, laughs", YAML_MUTATIONS, ids=[m[0] for m in YAML_MUTATIONS])
def test_yaml_level_mutations_error_alone(world, name, line, laughs):
    """What safe_dump cannot write: hostile or odd YAML spelled out in the file's text."""
    anchors = ""
    if laughs:
        anchors = "description:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
            f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
        )
    claim = textwrap.dedent(
        """\
        claims:
          - id: odd
            check: induction_head
            head: L1H0
            inputs: {kind: repeated_random_tokens, seq_len: 6, n: 8}
            expect: {score: ">= 0.4"}
        """
    )
    text = anchors + "model: native:./model\n" + claim + "    " + line.replace("\n", "\n") + "\n"
    check_outcome(world, None, name, text=text)


def test_plugin_end_to_end_bad_files_beside_a_good_one(pytester, world):
    """The issue's cases as a user meets them: `python -m pytest folder` with bad files beside a
    good one. The good claims pass; each bad file fails alone with its own message."""
    for name in ("model", "base"):
        (pytester.path / name).symlink_to(world["root"] / name, target_is_directory=True)
    pytester.makefile(".claims.yaml", good=yaml.safe_dump(GOOD_FILE, sort_keys=False))
    bad_claims = {
        "kinddict": {"inputs": {"kind": {"a": 1}, "n": 8}},
        "kindlist": {"inputs": {"kind": ["repeated_random_tokens"], "n": 8}},
        "huge": {"inputs": {"kind": "repeated_random_tokens", "seq_len": 8, "n": 1_000_000_000}},
        "where": {"check": "logprob_gain", "baseline": "native:./base", "where": {"region": ["repeat"]}, "expect": {"mean_gain": "> 0"}},
    }
    for name, change in bad_claims.items():
        claim = {"id": name, "check": "induction_head", "head": "L1H0", "inputs": dict(TOKENS), "expect": {"score": ">= 0.4"}}
        claim.update(change)
        if claim["check"] == "logprob_gain":
            claim.pop("head")
        pytester.makefile(".claims.yaml", **{name: yaml.safe_dump({"model": "native:./model", "claims": [claim]}, sort_keys=False)})
    pytester.makefile(
        ".claims.yaml",
        laughs="description:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
        + "model: native:./model\nclaims:\n  - id: laughs\n    check: induction_head\n    head: L1H0\n"
        "    statement: *l8\n    inputs: {kind: repeated_random_tokens, seq_len: 6, n: 8}\n    expect: {score: '>= 0.4'}\n",
    )
    result = pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=99", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=5)
    claims = {c["id"]: c for c in json.loads((pytester.path / "reports" / "report.json").read_text())["claims"]}
    assert claims["good-head"]["outcome"] == "refuted" and claims["good-gain"]["outcome"] == "supported"
    output = result.stdout.str()
    for marker in INTERNAL_MARKERS:
        assert marker not in output, f"{marker!r} in the output:\n{output}"
    assert "--interp-max-input-tokens" in claims["huge"]["error"]
    assert "inputs.kind must be the name of an input generator" in claims["kinddict"]["error"]
    assert re.search(r"aliases .* expand to over", output)
