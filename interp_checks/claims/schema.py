"""Claim files -> validated ``ClaimSpec`` objects.

The contract (users' files rely on it; extend it, don't break it)::

    model: zoo:attn-only-2l            # default subject of the file's claims
    seed: 0                            # default seed of the inputs
    inputs: {kind: repeated_random_tokens, seq_len: 32, n: 64}   # optional default inputs
    claims:
      - id: L1H0-induction
        statement: Head L1H0 is an induction head
        check: induction_head
        head: L1H0                     # check-specific keys; the check validates them
        inputs: {kind: repeated_random_tokens, seq_len: 32, n: 64}
        expect: {score: ">= 0.4"}
        expected: supported            # or refuted: a deliberately false claim

Everything that can be checked without a model is checked here, and every error names the file,
the claim id and the fix. A bad claim becomes a ``ClaimSpec`` carrying its error, so the file's
other claims still run. Check-specific keys are validated later by the check itself, which knows
the model's shape. Imports nothing heavy: the plugin collects files with it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from interp_checks.claims.expect import ExpectationSyntaxError, parse_expectation
from interp_checks.stats import Comparison

FILE_KEYS = ("model", "seed", "inputs", "claims", "description")
CLAIM_KEYS = ("id", "statement", "check", "model", "inputs", "expect", "expected", "seed", "marks")
EXPECTED_OUTCOMES = ("supported", "refuted")
CLAIM_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")
MAX_SEED = 2**63 - 1

# Limits on what a claim file may make the YAML reader build. Claim files are a few KB; these
# only stop a malformed or hostile file from exhausting memory ("billion laughs": nested aliases
# whose expansion doubles at each level) or the stack.
MAX_FILE_BYTES = 4 * 2**20
# Nodes plus scalar characters of the document with every alias expanded. A file without aliases
# is at most about twice its size, so only alias expansion can pass this.
MAX_EXPANDED_SIZE = 2**24
MAX_NESTING = 64


class ClaimFileError(ValueError):
    """A claim file, or one claim in it, is malformed. ``str()`` names the file and the claim."""

    def __init__(self, path: Path | str, message: str, claim_id: str | None = None):
        self.path = Path(path)
        self.claim_id = claim_id
        self.message = message
        where = f"{self.path}" + (f", claim {claim_id!r}" if claim_id else "")
        super().__init__(f"{where}: {message}")


@dataclass
class ClaimSpec:
    """One claim as written, plus the file defaults it inherited."""

    id: str
    path: Path
    index: int
    statement: str = ""
    check: str = ""
    model: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Comparison] = field(default_factory=dict)
    expect_text: dict[str, str] = field(default_factory=dict)
    expected: str = "supported"
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    marks: list[str] = field(default_factory=list)
    error: ClaimFileError | None = None

    @property
    def base_dir(self) -> Path:
        """Relative model paths resolve against the claim file's folder."""
        return self.path.parent


@dataclass
class ClaimFile:
    path: Path
    claims: list[ClaimSpec]
    error: ClaimFileError | None = None


def _suggest(word: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


class _YamlTooLarge(yaml.YAMLError):
    """A document whose alias expansion or nesting is over the limits (the message says which)."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a composed document that would be too large with its aliases expanded, nested too
    deeply, or recursive (an alias inside the node it names). Linear in the number of distinct
    nodes: shared (aliased) nodes are measured once and their size reused."""
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            open_nodes.discard(key)
            own = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
            sizes[key] = 1 + own + sum(sizes[id(child)] for child in children)
            heights[key] = 1 + max((heights[id(child)] for child in children), default=0)
            if sizes[key] > MAX_EXPANDED_SIZE:
                raise _YamlTooLarge(
                    f"its aliases (*name) expand to over {MAX_EXPANDED_SIZE:,} nodes and characters; "
                    "write the values out or use fewer nested aliases"
                )
            if heights[key] > MAX_NESTING:
                raise _YamlTooLarge(f"it nests lists and mappings more than {MAX_NESTING} levels deep")
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _YamlTooLarge("an alias (*name) refers to a node that contains it (a recursive structure)")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that checks each composed document with :func:`_check_expansion`
    before constructing any Python object from it."""

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        _check_expansion(node)
        return node


def _read_yaml(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ClaimFileError(
                path, f"the file is {size:,} bytes; claim files may be at most {MAX_FILE_BYTES:,}: split it into several files"
            )
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ClaimFileError(path, f"cannot read the file: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ClaimFileError(path, f"the file is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader subclass)
    except _YamlTooLarge as error:
        raise ClaimFileError(path, f"refused: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        if problem == "found unhashable key":  # PyYAML's words for a list or mapping used as a key
            problem = "a list or mapping is used as a key (keys are names such as id or check)"
        raise ClaimFileError(path, f"malformed YAML{where}: {problem}; fix the YAML syntax") from error
    except RecursionError:
        raise ClaimFileError(path, f"refused: it nests lists and mappings too deeply (over {MAX_NESTING} levels)") from None


def _non_string_keys(mapping: dict[Any, Any]) -> list[Any]:
    return [key for key in mapping if not isinstance(key, str)]


def _check_seed(seed: Any) -> str | None:
    """Why ``seed`` is not a usable seed, or None."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        return f"seed must be an integer from 0 to 2**63 - 1, got {_short(seed)}"
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_claim_file(path: Path | str) -> ClaimFile:
    """Parse a ``*.claims.yaml`` file. File-level problems go in ``error``; claim-level in each claim."""
    path = Path(path)
    try:
        data = _read_yaml(path)
        if not isinstance(data, dict):
            raise ClaimFileError(path, "a claim file is a mapping with a 'claims:' list (see README)")
        odd = _non_string_keys(data)
        if odd:
            raise ClaimFileError(path, f"top-level keys must be names, got {_short(odd[0])}; they are: {', '.join(FILE_KEYS)}")
        unknown = sorted(set(data) - set(FILE_KEYS))
        if unknown:
            raise ClaimFileError(
                path,
                f"unknown top-level key {unknown[0]!r}.{_suggest(unknown[0], FILE_KEYS)} "
                f"Top-level keys are: {', '.join(FILE_KEYS)}",
            )
        claims = data.get("claims")
        if not isinstance(claims, list) or not claims:
            raise ClaimFileError(path, "'claims:' must be a non-empty list of claims")
        seed = data.get("seed", 0)
        if _check_seed(seed):
            raise ClaimFileError(path, _check_seed(seed))
        model = data.get("model", "")
        if model is not None and not isinstance(model, str):
            raise ClaimFileError(path, f"model must be a model spec such as zoo:attn-only-2l, got {_short(model)}")
        defaults = {"model": model or "", "seed": seed, "inputs": data.get("inputs") or {}}
    except ClaimFileError as error:
        return ClaimFile(path, [], error)

    specs = [_parse_claim(path, index, raw, defaults) for index, raw in enumerate(claims)]
    _flag_duplicate_ids(specs)
    return ClaimFile(path, specs)


def _flag_duplicate_ids(specs: list[ClaimSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen and spec.error is None:
            spec.error = ClaimFileError(spec.path, "this id is used twice in the file; ids must be unique", spec.id)
        seen.add(spec.id)


def _parse_claim(path: Path, index: int, raw: Any, defaults: dict[str, Any]) -> ClaimSpec:
    fallback_id = f"claim-{index}"
    if not isinstance(raw, dict):
        message = f"claim #{index} must be a mapping of keys such as id, check, expect; got {_short(raw)}"
        return ClaimSpec(fallback_id, path, index, error=ClaimFileError(path, message, fallback_id))
    given_id = raw.get("id")
    named = isinstance(given_id, (str, int, float)) and not isinstance(given_id, bool) and str(given_id) != ""
    claim_id = str(given_id) if named else fallback_id
    spec = ClaimSpec(claim_id, path, index)
    try:
        _fill_claim(spec, raw, defaults)
    except ClaimFileError as error:
        spec.error = error
    return spec


def _fill_claim(spec: ClaimSpec, raw: dict[str, Any], defaults: dict[str, Any]) -> None:
    def fail(message: str) -> ClaimFileError:
        return ClaimFileError(spec.path, message, spec.id)

    odd = _non_string_keys(raw)
    if odd:
        raise fail(f"claim keys must be names such as id, check, expect; got {_short(odd[0])}")
    if raw.get("id") is None or raw.get("id") == "":
        raise fail("every claim needs an 'id:' (letters, digits, '-', '_', '.')")
    if not isinstance(raw["id"], (str, int, float)) or isinstance(raw["id"], bool):
        raise fail(f"an id is a name (letters, digits, '-', '_', '.'), got {_short(raw['id'])}")
    if not CLAIM_ID.match(spec.id):
        raise fail("an id may contain only letters, digits, '-', '_' and '.' (it ends the pytest node id)")
    check = raw.get("check")
    if not isinstance(check, str) or not check:
        raise fail("'check:' is missing; name a check such as induction_head")
    spec.check = check
    statement = raw.get("statement", "")
    if statement is not None and not isinstance(statement, (str, int, float)):
        raise fail(f"statement must be text, got {_short(statement)}")
    spec.statement = "" if statement is None else str(statement)
    model = raw.get("model") or defaults["model"] or ""
    if not isinstance(model, str):
        raise fail(f"model must be a model spec such as zoo:attn-only-2l, got {_short(model)}")
    spec.model = model
    if not spec.model:
        raise fail("no model: give 'model:' in the claim or at the top of the file (e.g. zoo:attn-only-2l)")
    inputs = raw.get("inputs", defaults["inputs"])
    if not isinstance(inputs, dict) or "kind" not in inputs:
        raise fail("'inputs:' must be a mapping with a 'kind:', e.g. {kind: repeated_random_tokens, seq_len: 32, n: 64}")
    spec.inputs = dict(inputs)
    seed = raw.get("seed", defaults["seed"])
    if _check_seed(seed):
        raise fail(_check_seed(seed))
    spec.seed = seed
    expected = raw.get("expected", "supported")
    if not isinstance(expected, str) or expected not in EXPECTED_OUTCOMES:
        raise fail(f"expected must be 'supported' or 'refuted', got {_short(expected)}")
    spec.expected = expected
    marks = raw.get("marks", [])
    if not isinstance(marks, list) or not all(isinstance(m, str) and m.isidentifier() for m in marks):
        raise fail("marks must be a list of names, e.g. [slow, induction]")
    spec.marks = marks

    expect = raw.get("expect")
    if not isinstance(expect, dict) or not expect:
        raise fail("'expect:' must map a statistic to a comparison, e.g. {score: \">= 0.4\"}")
    for statistic, text in expect.items():
        try:
            spec.expect[str(statistic)] = parse_expectation(text)
        except ExpectationSyntaxError as error:
            raise fail(f"expect.{statistic}: {error}") from None
        spec.expect_text[str(statistic)] = str(text)
    spec.params = {key: value for key, value in raw.items() if key not in CLAIM_KEYS}
    for key, value in spec.params.items():
        huge = _int_beyond_64_bits(value)
        if huge is not None:
            raise fail(f"{key}: the integer {_short(huge)} is out of range; numbers in a claim must lie within +-2**63")


def _int_beyond_64_bits(value: Any, depth: int = 0) -> int | None:
    """An integer in ``value`` (searched through lists and mappings) that numpy cannot hold, or None.

    Checks hand their keys' values to numpy, which raises TypeError on such integers.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value if not -(2**63) <= value < 2**63 else None
    if depth < MAX_NESTING and isinstance(value, (list, tuple)):
        return next((found for item in value if (found := _int_beyond_64_bits(item, depth + 1)) is not None), None)
    if depth < MAX_NESTING and isinstance(value, dict):
        return next((found for item in value.values() if (found := _int_beyond_64_bits(item, depth + 1)) is not None), None)
    return None
