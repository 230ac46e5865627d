"""Seeded input generators: the same claim file gives the same token sequences on every run.

A generator turns ``inputs: {kind: ..., ...}`` from a claim file into an ``InputBatch`` of token
ids for one model's vocabulary. Claims whose model, inputs and seed agree get the identical batch
(same cache key), which is what lets the engine share one forward pass between them.

Users add a generator with ``@register_generator("name")``; it receives the validated parameters,
a vocabulary description and a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from jaxtyping import Bool, Int


class InputSpecError(ValueError):
    """An ``inputs:`` block names an unknown generator or gives it bad parameters."""


class InputSizeError(InputSpecError):
    """An ``inputs:`` block asks for more tokens than the run's limit allows (checked before allocating)."""


# The most tokens one claim's inputs may hold unless the run raises the limit. Token ids (int64),
# validity and region masks and character offsets cost about 30 bytes a token before any model
# runs, and every token then goes through the model (and its random twin, or a baseline): 2**22
# tokens is ~130 MB of inputs and minutes of CPU per model, within a laptop's means; 10**9 tokens
# (a typo'd n) would be ~30 GB. Raised with --interp-max-input-tokens (pytest) or
# Settings.max_input_tokens (Python).
DEFAULT_MAX_INPUT_TOKENS = 2**22
MAX_INPUT_TOKENS_OPTION = "--interp-max-input-tokens"  # the pytest option (plugin.OPT_MAX_INPUT_TOKENS)

# No integer parameter of an input generator may exceed this (numpy draws use int64; counts this
# large are typos). Generators may declare tighter limits (``limits=`` of ``register_generator``).
MAX_INT_PARAMETER = 2**31 - 1


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` cut to ``limit`` characters, for error messages about values users wrote."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_plain(value: Any, depth: int = 0) -> bool:
    """JSON-able plain data: what a claim file can write and an input key can hash."""
    if depth > 20:
        return False
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


@dataclass(frozen=True)
class Vocabulary:
    """What a generator may know about the model's tokens."""

    d_vocab: int
    n_ctx: int
    bos_token_id: int | None
    special_token_ids: frozenset[int] = frozenset()
    tokenizer: Any = field(default=None, compare=False, repr=False)  # for generators that start from text

    def sampleable_ids(self) -> np.ndarray:
        """Token ids that random inputs draw from: everything but special tokens."""
        ids = np.arange(self.d_vocab)
        if self.special_token_ids:
            ids = ids[~np.isin(ids, sorted(self.special_token_ids))]
        return ids


@dataclass
class InputBatch:
    """Token sequences (one row = one independent sample) plus what was used to make them.

    ``valid`` is False on right padding (rows of text differ in length). ``sources`` names the
    document each row was cut from, where rows of one document can repeat (the unit of sampling is
    then the document, not the row). ``regions`` names token
    subsets the generator knows about (``repeat``: the second copy of a repeated sequence, or a
    planted span inside real text). ``texts`` and ``offsets`` (each token's character span in its
    row's text) exist for inputs that start from text, so token subsets can be chosen by regex and
    models with different tokenizers can be compared on the same characters. ``tokenizer`` is the
    model's tokenizer (None if it has none), kept only to show tokens as text in pictures
    (:meth:`token_strings`).
    """

    tokens: Int[np.ndarray, "n pos"]
    kind: str
    params: dict[str, Any]
    seed: int
    valid: Bool[np.ndarray, "n pos"] | None = None
    regions: dict[str, Bool[np.ndarray, "n pos"]] = field(default_factory=dict)
    texts: list[str] | None = None
    offsets: Int[np.ndarray, "n pos 2"] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    sources: list[str] | None = None
    tokenizer: Any = field(default=None, repr=False, compare=False)
    # The paired corrupted input of each row (same shape), for patching; None: the inputs make no pairs.
    corrupted: Int[np.ndarray, "n pos"] | None = None
    # Each row's held-out answer: the token the model should predict after the row's last token,
    # which is not part of the row (modular addition's "a b =" -> (a + b) mod p); None: no such answer.
    answers: Int[np.ndarray, " n"] | None = None

    def __post_init__(self) -> None:
        if self.valid is None:
            self.valid = np.ones(self.tokens.shape, dtype=bool)

    @property
    def n(self) -> int:
        return int(self.tokens.shape[0])

    def rows(self, start: int, stop: int) -> "InputBatch":
        """A slice of the sequences, for running a large batch in chunks."""
        return InputBatch(
            self.tokens[start:stop],
            self.kind,
            self.params,
            self.seed,
            self.valid[start:stop],
            {name: mask[start:stop] for name, mask in self.regions.items()},
            None if self.texts is None else self.texts[start:stop],
            None if self.offsets is None else self.offsets[start:stop],
            self.meta,
            None if self.sources is None else self.sources[start:stop],
            self.tokenizer,
            None if self.corrupted is None else self.corrupted[start:stop],
            None if self.answers is None else self.answers[start:stop],
        )

    def token_strings(self, row: int, start: int = 0, stop: int | None = None) -> list[str]:
        """Tokens ``start:stop`` of ``row`` as text, for pictures: each token's characters in the
        row's text where the batch has text, else the tokenizer's decoding of its id, else the id
        itself (``"#17"``). Padding positions are included; callers show the valid ones."""
        ids = [int(t) for t in self.tokens[row, start:stop]]
        if self.texts is None or self.offsets is None:
            return [_decode_one(self.tokenizer, i) for i in ids]
        text = self.texts[row]
        spans = [(int(a), int(b)) for a, b in self.offsets[row, start:stop]]
        return [text[a:b] if b > a else _decode_one(self.tokenizer, i) for i, (a, b) in zip(ids, spans)]


def _decode_one(tokenizer: Any, token_id: int) -> str:
    """One token id as text through ``tokenizer`` (``"#id"`` without one, or if decoding fails)."""
    if tokenizer is not None:
        try:
            return str(tokenizer.decode([token_id]))
        except Exception:  # a tokenizer that cannot decode one id alone: show the id
            pass
    return f"#{token_id}"


@dataclass
class TextSamples:
    """What a text generator returns: texts, and named character spans inside each text.

    ``sources`` names, per text, the document it was cut from (None: every text is its own
    sample). Several windows of one document are not independent samples, so the engine averages a
    claim's values over each document's windows and the document becomes the unit of sampling.
    """

    texts: list[str]
    regions: dict[str, list[list[tuple[int, int]]]] = field(default_factory=dict)
    sources: list[str] | None = None


@dataclass(frozen=True)
class Generator:
    name: str
    defaults: Mapping[str, Any]
    make: Callable[[dict[str, Any], Vocabulary, np.random.Generator], tuple[np.ndarray, dict[str, Any]]]
    description: str
    # An upper bound on the tokens (for text generators: characters) the parameters ask for, so the
    # size limit is checked before anything is allocated; None: checked only after generating.
    size: Callable[[dict[str, Any]], int] | None = None
    limits: Mapping[str, int] = field(default_factory=dict)  # tighter maxima of integer parameters
    unit: str = "tokens"  # what ``size`` counts: "tokens", or "characters" for text generators


_GENERATORS: dict[str, Generator] = {}


def _default_size(params: Mapping[str, Any]) -> int | None:
    """n x seq_len for a generator that takes both (a fair guess for token generators), else unknown."""
    n, seq_len = params.get("n"), params.get("seq_len")
    if isinstance(n, int) and isinstance(seq_len, int):
        return n * seq_len
    return None


def register_generator(
    name: str,
    *,
    defaults: Mapping[str, Any],
    description: str,
    size: Callable[[dict[str, Any]], int] | None = None,
    limits: Mapping[str, int] | None = None,
    unit: str = "tokens",
) -> Callable:
    """Decorator: register ``fn(params, vocab, rng) -> (tokens, meta)`` as input kind ``name``.

    ``size(params)`` should return an upper bound on the tokens (or, for text, characters) the
    parameters make, so oversized inputs are refused before any memory is allocated; without it
    the default guess is ``n * seq_len`` when the generator takes both, and the size is otherwise
    checked on the generated batch. ``unit`` says what ``size`` counts (``"characters"`` for text
    generators: a character is at most about one token for the usual tokenizers). ``limits`` caps
    integer parameters (e.g. a recursion depth).
    """

    def decorate(fn: Callable) -> Callable:
        _GENERATORS[name] = Generator(name, dict(defaults), fn, description, size, dict(limits or {}), unit)
        return fn

    return decorate


def available_generators() -> dict[str, Generator]:
    return dict(_GENERATORS)


def normalise_input_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults and reject unknown kinds, keys or ill-typed values, so equal specs compare
    (and hash) equal and every value is plain data. Raises InputSpecError saying what to write."""
    example = "{kind: repeated_random_tokens, seq_len: 32, n: 64}"
    if not isinstance(spec, Mapping):
        raise InputSpecError(f"inputs must be a mapping like {example}, got {_short(spec)}")
    known = ", ".join(sorted(_GENERATORS))
    odd_keys = [key for key in spec if not isinstance(key, str)]
    if odd_keys:
        raise InputSpecError(f"inputs keys must be parameter names, got {_short(odd_keys[0])}; write e.g. {example}")
    kind = spec.get("kind")
    if not isinstance(kind, str):
        raise InputSpecError(
            f"inputs.kind must be the name of an input generator (a string), got {_short(kind)}. Known kinds: {known}"
        )
    if kind not in _GENERATORS:
        close = difflib.get_close_matches(kind, list(_GENERATORS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InputSpecError(f"unknown inputs kind {kind!r}.{hint} Known kinds: {known}")
    generator = _GENERATORS[kind]
    unknown = set(spec) - {"kind"} - set(generator.defaults)
    if unknown:
        raise InputSpecError(
            f"inputs kind {kind!r} has no parameter(s) {sorted(unknown)}; it takes {sorted(generator.defaults)}"
        )
    params = {**generator.defaults, **{k: v for k, v in spec.items() if k != "kind"}}
    for key, default in generator.defaults.items():
        params[key] = _check_parameter(generator, key, default, params[key])
    return {"kind": kind, **params}


def _check_parameter(generator: Generator, key: str, default: Any, value: Any) -> Any:
    """One parameter, checked against the type of its default (and its limit); returns it normalised."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputSpecError(f"inputs.{key} must be true or false, got {_short(value)}")
    elif isinstance(default, int):
        lowest = 0 if default == 0 else 1  # a parameter whose default is 0 takes 0 (a seed; "n: 0" for all)
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            what = "a non-negative" if lowest == 0 else "a positive"
            raise InputSpecError(f"inputs.{key} must be {what} integer, got {_short(value)}")
        limit = generator.limits.get(key, MAX_INT_PARAMETER)
        if value > limit:
            raise InputSpecError(f"inputs.{key} must be at most {limit:,} for kind {generator.name!r}, got {value:,}")
    elif isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not _is_plain(float(value)):
            raise InputSpecError(f"inputs.{key} must be a finite number, got {_short(value)}")
    elif isinstance(default, str):
        if isinstance(value, os.PathLike):  # Python claims may pass a Path
            value = os.fspath(value)
        if not isinstance(value, str):
            raise InputSpecError(f"inputs.{key} must be a string (default {default!r}), got {_short(value)}")
    elif not _is_plain(value):
        raise InputSpecError(
            f"inputs.{key} must be plain data (a number, string, true/false, list or mapping), got {_short(value)}"
        )
    return value


def describe_inputs(spec: Mapping[str, Any]) -> str:
    """An ``inputs:`` mapping as a claim file writes it (``{kind: corpus, n: 64}``), for messages,
    notes, progress lines and ``interp-checks checks``."""
    return "{" + ", ".join(f"{key}: {value}" for key, value in spec.items()) + "}"


def input_size(spec: Mapping[str, Any]) -> int | None:
    """An upper bound on the tokens (text generators: characters) a normalised spec asks for, or None."""
    generator = _GENERATORS[spec["kind"]]
    params = {k: v for k, v in spec.items() if k != "kind"}
    return generator.size(params) if generator.size is not None else _default_size(params)


def _size_error(spec: Mapping[str, Any], size: int, max_tokens: int, unit: str) -> InputSizeError:
    counts = ", ".join(f"{k}={v:,}" for k, v in spec.items() if isinstance(v, int) and not isinstance(v, bool))
    asked = f"{size:,} {unit}" if unit == "tokens" else f"{size:,} {unit} of text (each counted as a token)"
    return InputSizeError(
        f"inputs {spec['kind']} ({counts}) ask for about {asked}, over the limit of {max_tokens:,} tokens per "
        f"claim (it keeps one claim from exhausting memory: each token costs about 30 bytes before any model runs, "
        f"and runs through every model of the claim). Lower n (or the sequence length), or raise the limit with "
        f"{MAX_INPUT_TOKENS_OPTION}=N (Settings(max_input_tokens=N) from Python)"
    )


def check_input_size(spec: Mapping[str, Any], max_tokens: int | None) -> None:
    """Refuse a normalised spec whose estimated size exceeds ``max_tokens`` (None: no limit), before
    anything is allocated. Text generators are measured in characters, an upper bound on tokens for
    the usual tokenizers; the tokenized batch is checked again by :func:`generate`."""
    if max_tokens is None:
        return
    size = input_size(spec)
    if size is not None and size > max_tokens:
        raise _size_error(spec, size, max_tokens, _GENERATORS[spec["kind"]].unit)


def input_key(spec: Mapping[str, Any], seed: int) -> str:
    """A stable identifier of (normalised spec, seed): equal keys mean identical batches."""
    text = json.dumps({"spec": dict(spec), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate(spec: Mapping[str, Any], vocab: Vocabulary, seed: int, *, max_tokens: int | None = None) -> InputBatch:
    """The batch for a normalised spec. The RNG is seeded by (seed, spec), never by claim id.

    ``max_tokens``: refuse (InputSizeError) a spec whose estimated size exceeds it before generating,
    and a generated batch larger than it (for generators whose size cannot be estimated)."""
    spec = normalise_input_spec(spec)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputSpecError(f"seed must be a non-negative integer, got {_short(seed)}")
    check_input_size(spec, max_tokens)
    generator = _GENERATORS[spec["kind"]]
    params = {k: v for k, v in spec.items() if k != "kind"}
    entropy = int(input_key(spec, seed), 16)
    rng = np.random.default_rng([seed, entropy])
    made = generator.make(params, vocab, rng)
    if isinstance(made, TextSamples):
        batch = tokenize_texts(made, vocab, spec["kind"], params, seed)
        batch.tokenizer = vocab.tokenizer
        if max_tokens is not None and batch.tokens.size > max_tokens:
            raise _size_error(spec, int(batch.tokens.size), max_tokens, "tokens")
        return batch
    tokens, meta = made
    if max_tokens is not None and tokens.size > max_tokens:
        raise _size_error(spec, int(tokens.size), max_tokens, "tokens")
    if tokens.shape[1] > vocab.n_ctx:
        raise InputSpecError(
            f"inputs {spec['kind']} make sequences of {tokens.shape[1]} tokens but the model's context is "
            f"{vocab.n_ctx}: lower seq_len"
        )
    regions = meta.pop("regions", {})
    corrupted = meta.pop("corrupted", None)
    answers = meta.pop("answers", None)
    batch = InputBatch(tokens.astype(np.int64), spec["kind"], params, seed, regions=regions, meta=meta, tokenizer=vocab.tokenizer)
    batch.corrupted = None if corrupted is None else corrupted.astype(np.int64)
    batch.answers = None if answers is None else np.asarray(answers, dtype=np.int64)
    return batch


def tokenize_texts(samples: TextSamples, vocab: Vocabulary, kind: str, params: dict[str, Any], seed: int) -> InputBatch:
    """Tokenize texts with the model's own tokenizer: BOS first, truncated to the context, right-padded.

    Each token keeps its character span, so regions (character spans) become token masks, and two
    models with different tokenizers can later be lined up on the characters they both cover.
    """
    if vocab.tokenizer is None:
        raise InputSpecError(f"inputs kind {kind!r} starts from text, so the model needs a tokenizer; this one has none")
    encoded = vocab.tokenizer(samples.texts, add_special_tokens=False, return_offsets_mapping=True)
    prefix = [] if vocab.bos_token_id is None else [vocab.bos_token_id]
    rows = [prefix + list(ids) for ids in encoded["input_ids"]]
    spans = [[(0, 0)] * len(prefix) + [tuple(o) for o in offs] for offs in encoded["offset_mapping"]]
    length = min(vocab.n_ctx, max(len(r) for r in rows))
    n = len(rows)
    tokens = np.zeros((n, length), dtype=np.int64)
    valid = np.zeros((n, length), dtype=bool)
    offsets = np.zeros((n, length, 2), dtype=np.int64)
    for i, (row, span) in enumerate(zip(rows, spans)):
        row, span = row[:length], span[:length]
        tokens[i, : len(row)] = row
        valid[i, : len(row)] = True
        offsets[i, : len(row)] = span
    if vocab.bos_token_id is not None:
        tokens[~valid] = vocab.bos_token_id
    regions = {}
    for name, per_row in samples.regions.items():
        mask = np.zeros((n, length), dtype=bool)
        for i, row_spans in enumerate(per_row):
            for start, stop in row_spans:
                mask[i] |= (offsets[i, :, 0] < stop) & (offsets[i, :, 1] > start) & valid[i]
        regions[name] = mask
    sources = None if samples.sources is None else list(samples.sources)
    return InputBatch(tokens, kind, params, seed, valid, regions, list(samples.texts), offsets, sources=sources)


def _with_bos(body: np.ndarray, vocab: Vocabulary, bos: bool) -> tuple[np.ndarray, int]:
    if not bos or vocab.bos_token_id is None:
        return body, 0
    column = np.full((body.shape[0], 1), vocab.bos_token_id, dtype=body.dtype)
    return np.concatenate([column, body], axis=1), 1


@register_generator(
    "repeated_random_tokens",
    defaults={"seq_len": 32, "n": 64, "bos": True},
    size=lambda p: p["n"] * (2 * p["seq_len"] + 1),
    description="seq_len uniformly random tokens, then the same seq_len tokens again (after a BOS token)",
)
def repeated_random_tokens(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator):
    ids = vocab.sampleable_ids()
    first = rng.choice(ids, size=(params["n"], params["seq_len"]))
    tokens, offset = _with_bos(np.concatenate([first, first], axis=1), vocab, params["bos"])
    repeat = np.zeros(tokens.shape, dtype=bool)
    repeat[:, offset + params["seq_len"] :] = True
    first_half = np.zeros(tokens.shape, dtype=bool)
    first_half[:, offset : offset + params["seq_len"]] = True
    return tokens, {"repeat_start": offset + params["seq_len"], "prefix": offset, "regions": {"repeat": repeat, "first": first_half}}


@register_generator(
    "induction_pairs",
    defaults={"seq_len": 32, "n": 64, "bos": True},
    size=lambda p: 2 * p["n"] * (2 * p["seq_len"] + 1),
    description=(
        "clean/corrupted pairs for patching: the clean input is repeated_random_tokens; its corrupted "
        "twin replaces the first half with fresh random tokens, so the repeat has nothing to copy from"
    ),
)
def induction_pairs(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator):
    tokens, meta = repeated_random_tokens(params, vocab, rng)
    corrupted = tokens.copy()
    start, stop = meta["prefix"], meta["repeat_start"]
    corrupted[:, start:stop] = rng.choice(vocab.sampleable_ids(), size=(tokens.shape[0], stop - start))
    meta["corrupted"] = corrupted
    return tokens, meta


@register_generator(
    "random_tokens",
    defaults={"seq_len": 64, "n": 64, "bos": True},
    size=lambda p: p["n"] * (p["seq_len"] + 1),
    description="seq_len uniformly random tokens (after a BOS token); a control without planted repeats",
)
def random_tokens(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator):
    ids = vocab.sampleable_ids()
    tokens, offset = _with_bos(rng.choice(ids, size=(params["n"], params["seq_len"])), vocab, params["bos"])
    return tokens, {"prefix": offset}


# Text generators register themselves on import; imported last because they use register_generator.
from interp_checks.inputs import modular, streams, text_generators  # noqa: E402,F401
