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
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from jaxtyping import Bool, Int


class InputSpecError(ValueError):
    """An ``inputs:`` block names an unknown generator or gives it bad parameters."""


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
    models with different tokenizers can be compared on the same characters.
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
        )


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


_GENERATORS: dict[str, Generator] = {}


def register_generator(name: str, *, defaults: Mapping[str, Any], description: str) -> Callable:
    """Decorator: register ``fn(params, vocab, rng) -> (tokens, meta)`` as input kind ``name``."""

    def decorate(fn: Callable) -> Callable:
        _GENERATORS[name] = Generator(name, dict(defaults), fn, description)
        return fn

    return decorate


def available_generators() -> dict[str, Generator]:
    return dict(_GENERATORS)


def normalise_input_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults and reject unknown kinds or keys, so equal specs compare (and hash) equal."""
    if not isinstance(spec, Mapping):
        raise InputSpecError(f"inputs must be a mapping like {{kind: repeated_random_tokens, seq_len: 32, n: 64}}, got {spec!r}")
    kind = spec.get("kind")
    if kind not in _GENERATORS:
        close = difflib.get_close_matches(str(kind), list(_GENERATORS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InputSpecError(f"unknown inputs kind {kind!r}.{hint} Known kinds: {', '.join(sorted(_GENERATORS))}")
    generator = _GENERATORS[kind]
    unknown = set(spec) - {"kind"} - set(generator.defaults)
    if unknown:
        raise InputSpecError(
            f"inputs kind {kind!r} has no parameter(s) {sorted(unknown)}; it takes {sorted(generator.defaults)}"
        )
    params = {**generator.defaults, **{k: v for k, v in spec.items() if k != "kind"}}
    for key, default in generator.defaults.items():
        if isinstance(default, bool):
            if not isinstance(params[key], bool):
                raise InputSpecError(f"inputs.{key} must be true or false, got {params[key]!r}")
        elif isinstance(default, int) and (not isinstance(params[key], int) or isinstance(params[key], bool) or params[key] < 1):
            raise InputSpecError(f"inputs.{key} must be a positive integer, got {params[key]!r}")
    return {"kind": kind, **params}


def input_key(spec: Mapping[str, Any], seed: int) -> str:
    """A stable identifier of (normalised spec, seed): equal keys mean identical batches."""
    text = json.dumps({"spec": dict(spec), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate(spec: Mapping[str, Any], vocab: Vocabulary, seed: int) -> InputBatch:
    """The batch for a normalised spec. The RNG is seeded by (seed, spec), never by claim id."""
    spec = normalise_input_spec(spec)
    generator = _GENERATORS[spec["kind"]]
    params = {k: v for k, v in spec.items() if k != "kind"}
    entropy = int(input_key(spec, seed), 16)
    rng = np.random.default_rng([seed, entropy])
    made = generator.make(params, vocab, rng)
    if isinstance(made, TextSamples):
        return tokenize_texts(made, vocab, spec["kind"], params, seed)
    tokens, meta = made
    if tokens.shape[1] > vocab.n_ctx:
        raise InputSpecError(
            f"inputs {spec['kind']} make sequences of {tokens.shape[1]} tokens but the model's context is "
            f"{vocab.n_ctx}: lower seq_len"
        )
    regions = meta.pop("regions", {})
    return InputBatch(tokens.astype(np.int64), spec["kind"], params, seed, regions=regions, meta=meta)


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
    "random_tokens",
    defaults={"seq_len": 64, "n": 64, "bos": True},
    description="seq_len uniformly random tokens (after a BOS token); a control without planted repeats",
)
def random_tokens(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator):
    ids = vocab.sampleable_ids()
    tokens, offset = _with_bos(rng.choice(ids, size=(params["n"], params["seq_len"])), vocab, params["bos"])
    return tokens, {"prefix": offset}


# Text generators register themselves on import; imported last because they use register_generator.
from interp_checks.inputs import text_generators  # noqa: E402,F401
