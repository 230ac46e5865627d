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

A claim's problems are collected, not raised at the first one, and reported from the most basic
up (``Tier``): the file (YAML, top-level shape), then the claim's own shape (a mapping with an id),
then its check (missing or unknown), then its keys (unknown keys, values of the wrong type, a head
outside the model, a statistic the check does not produce, an unparseable expectation), then the
rest (inputs, their size). The engine adds what only the check and the model can tell and builds
one message naming every problem in that order (:func:`problems_error`), so a bad ``inputs:`` never
hides an unknown check. A claim without ``inputs:`` (here and in the file's defaults) gets its
check's default inputs in the engine (``ClaimSpec.inputs`` stays empty).
"""

from __future__ import annotations

import difflib
import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

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


class Tier(enum.IntEnum):
    """How basic a claim's problem is: a claim's problems are reported in this order (lowest first),
    because fixing a basic one (the check's name) often changes what the later ones mean."""

    SHAPE = 0  # the claim is not a mapping with a usable id
    CHECK = 1  # 'check:' is missing or names no registered check
    KEYS = 2  # unknown keys, ill-typed values, heads outside the model, statistics, expectations
    INPUTS = 3  # the rest: inputs (kind, parameters, size)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a claim, with how basic it is."""

    tier: Tier
    message: str


class ClaimFileError(ValueError):
    """A claim file, or one claim in it, is malformed. ``str()`` names the file and the claim.

    ``problems``: a claim's problems, most basic first (empty for a file-level error)."""

    def __init__(self, path: Path | str, message: str, claim_id: str | None = None, problems: tuple[Problem, ...] = ()):
        self.path = Path(path)
        self.claim_id = claim_id
        self.message = message
        self.problems = tuple(problems)
        where = f"{self.path}" + (f", claim {claim_id!r}" if claim_id else "")
        super().__init__(f"{where}: {message}")


def problems_error(path: Path | str, claim_id: str, problems: list[Problem] | tuple[Problem, ...]) -> ClaimFileError:
    """One error naming every problem of a claim, the most basic first ("2 problems: (1) ...; (2) ...")."""
    ordered = tuple(sorted(problems, key=lambda problem: problem.tier))  # stable: same tier keeps its order
    if len(ordered) == 1:
        message = ordered[0].message
    else:
        message = f"{len(ordered)} problems: " + "; ".join(f"({i}) {p.message}" for i, p in enumerate(ordered, 1))
    return ClaimFileError(path, message, claim_id, ordered)


@dataclass
class ClaimSpec:
    """One claim as written, plus the file defaults it inherited."""

    id: str
    path: Path
    index: int
    statement: str = ""
    check: str = ""
    model: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)  # empty: not given, the check's default inputs
    expect: dict[str, Comparison] = field(default_factory=dict)
    expect_text: dict[str, str] = field(default_factory=dict)
    expected: str = "supported"
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    marks: list[str] = field(default_factory=list)
    error: ClaimFileError | None = None
    problems: list[Problem] = field(default_factory=list)  # what the schema found; ``error`` names them all

    @property
    def base_dir(self) -> Path:
        """Relative model paths resolve against the claim file's folder."""
        return self.path.parent

    def add_problem(self, tier: Tier, message: str) -> None:
        """Record a problem; ``error`` then names every problem so far, the most basic first."""
        self.problems.append(Problem(tier, message))
        self.error = problems_error(self.path, self.id, self.problems)


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
        defaults = {"model": model or "", "seed": seed, "inputs": data.get("inputs")}
    except ClaimFileError as error:
        return ClaimFile(path, [], error)

    specs = [_parse_claim(path, index, raw, defaults) for index, raw in enumerate(claims)]
    _flag_duplicate_ids(specs)
    return ClaimFile(path, specs)


def _flag_duplicate_ids(specs: list[ClaimSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen and not any(p.tier == Tier.SHAPE for p in spec.problems):
            spec.add_problem(Tier.SHAPE, "this id is used twice in the file; ids must be unique")
        seen.add(spec.id)


def _parse_claim(path: Path, index: int, raw: Any, defaults: dict[str, Any]) -> ClaimSpec:
    """A claim as written; its problems (all of them that the schema can see) are in ``problems``."""
    fallback_id = f"claim-{index}"
    if not isinstance(raw, dict):
        spec = ClaimSpec(fallback_id, path, index)
        spec.add_problem(Tier.SHAPE, f"claim #{index} must be a mapping of keys such as id, check, expect; got {_short(raw)}")
        return spec
    given_id = raw.get("id")
    named = isinstance(given_id, (str, int, float)) and not isinstance(given_id, bool) and str(given_id) != ""
    claim_id = str(given_id) if named else fallback_id
    spec = ClaimSpec(claim_id, path, index)
    for tier, message in _claim_problems(spec, raw, defaults):
        spec.add_problem(tier, message)
    return spec


def _claim_problems(spec: ClaimSpec, raw: dict[str, Any], defaults: dict[str, Any]) -> Iterator[tuple[Tier, str]]:
    """Fill ``spec`` from ``raw`` and yield every problem found, with its tier. Each key is checked
    on its own, so one bad key never hides another."""
    yield from _shape_problems(spec, raw)
    check = raw.get("check")
    if not isinstance(check, str) or not check:
        yield Tier.CHECK, "'check:' is missing; name a check such as induction_head"
    else:
        spec.check = check
    yield from _key_problems(spec, raw, defaults)
    yield from _expect_problems(spec, raw)
    inputs = raw.get("inputs")
    if inputs is None:
        inputs = defaults["inputs"]
    if inputs is not None and inputs != {}:  # none given: the engine uses the check's default inputs
        if not isinstance(inputs, dict) or "kind" not in inputs:
            yield Tier.INPUTS, (
                "'inputs:' must be a mapping with a 'kind:', e.g. {kind: repeated_random_tokens, seq_len: 32, n: 64}, "
                "or left out for the check's default inputs (interp-checks checks lists them)"
            )
        else:
            spec.inputs = dict(inputs)


def _shape_problems(spec: ClaimSpec, raw: dict[str, Any]) -> Iterator[tuple[Tier, str]]:
    odd = _non_string_keys(raw)
    if odd:
        yield Tier.SHAPE, f"claim keys must be names such as id, check, expect; got {_short(odd[0])}"
    if raw.get("id") is None or raw.get("id") == "":
        yield Tier.SHAPE, "every claim needs an 'id:' (letters, digits, '-', '_', '.')"
    elif not isinstance(raw["id"], (str, int, float)) or isinstance(raw["id"], bool):
        yield Tier.SHAPE, f"an id is a name (letters, digits, '-', '_', '.'), got {_short(raw['id'])}"
    elif not CLAIM_ID.match(spec.id):
        yield Tier.SHAPE, "an id may contain only letters, digits, '-', '_' and '.' (it ends the pytest node id)"


def _key_problems(spec: ClaimSpec, raw: dict[str, Any], defaults: dict[str, Any]) -> Iterator[tuple[Tier, str]]:
    """The common keys other than check, expect and inputs; then the check's own keys' integers."""
    statement = raw.get("statement", "")
    if statement is not None and not isinstance(statement, (str, int, float)):
        yield Tier.KEYS, f"statement must be text, got {_short(statement)}"
    else:
        spec.statement = "" if statement is None else str(statement)
    model = raw.get("model") or defaults["model"] or ""
    if not isinstance(model, str):
        yield Tier.KEYS, f"model must be a model spec such as zoo:attn-only-2l, got {_short(model)}"
    elif not model:
        yield Tier.KEYS, "no model: give 'model:' in the claim or at the top of the file (e.g. zoo:attn-only-2l)"
    else:
        spec.model = model
    seed = raw.get("seed", defaults["seed"])
    if _check_seed(seed):
        yield Tier.KEYS, _check_seed(seed)
    else:
        spec.seed = seed
    expected = raw.get("expected", "supported")
    if not isinstance(expected, str) or expected not in EXPECTED_OUTCOMES:
        yield Tier.KEYS, f"expected must be 'supported' or 'refuted', got {_short(expected)}"
    else:
        spec.expected = expected
    marks = raw.get("marks", [])
    if not isinstance(marks, list) or not all(isinstance(m, str) and m.isidentifier() for m in marks):
        yield Tier.KEYS, "marks must be a list of names, e.g. [slow, induction]"
    else:
        spec.marks = marks
    spec.params = {key: value for key, value in raw.items() if isinstance(key, str) and key not in CLAIM_KEYS}
    for key, value in spec.params.items():
        huge = _int_beyond_64_bits(value)
        if huge is not None:
            yield Tier.KEYS, f"{key}: the integer {_short(huge)} is out of range; numbers in a claim must lie within +-2**63"


def _expect_problems(spec: ClaimSpec, raw: dict[str, Any]) -> Iterator[tuple[Tier, str]]:
    """Parse every expectation; each unparseable one is its own problem (the others still parse)."""
    expect = raw.get("expect")
    if not isinstance(expect, dict) or not expect:
        yield Tier.KEYS, "'expect:' must map a statistic to a comparison, e.g. {score: \">= 0.4\"}"
        return
    for statistic, text in expect.items():
        try:
            spec.expect[str(statistic)] = parse_expectation(text)
        except ExpectationSyntaxError as error:
            yield Tier.KEYS, f"expect.{statistic}: {error}"
            continue
        spec.expect_text[str(statistic)] = str(text)


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
