"""Which tokens count: the ``where:`` of a claim, and the named token patterns the miner groups by.

A token subset is a boolean mask over an ``InputBatch``'s positions; position p stands for the
token at p, predicted from the tokens before it (so position 0, the BOS, is never selected).
Subsets compose by AND. One module serves both the comparison check (``where:``) and the miner
(patterns), so a pattern the miner reports can be pasted into a claim and means the same thing.

    where: {region: repeat}            a region the input generator planted (e.g. the repeated half)
    where: {regex: '\\)'}               tokens whose characters overlap a match in the row's text
    where: {seen_before: true}         tokens that occurred earlier in the same sequence (false: first occurrences)
    where: {pattern: induction_like}   a named pattern (see PATTERNS)
    where: {predicate: fn}             Python claims only: fn(batch) -> bool array [n, pos]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from jaxtyping import Bool, Int

from interp_checks.inputs.generators import InputBatch

WHERE_KEYS = ("region", "regex", "seen_before", "pattern", "predicate")


class TokenSetError(ValueError):
    """A ``where:`` block asks for a subset that does not exist or cannot be computed on these inputs."""


def seen_before(tokens: Int[np.ndarray, "n pos"], valid: Bool[np.ndarray, "n pos"]) -> Bool[np.ndarray, "n pos"]:
    """The token at p occurred at an earlier valid position of its row."""
    n, pos = tokens.shape
    out = np.zeros((n, pos), dtype=bool)
    for i in range(n):
        seen: set[int] = set()
        row, ok = tokens[i], valid[i]
        for p in range(pos):
            if not ok[p]:
                continue
            token = int(row[p])
            out[i, p] = token in seen
            seen.add(token)
    return out


def bigram_seen_before(tokens: Int[np.ndarray, "n pos"], valid: Bool[np.ndarray, "n pos"]) -> Bool[np.ndarray, "n pos"]:
    """Induction-like: the pair (token at p-1, token at p) occurred earlier in the row.

    This is what an induction head exploits: the previous token was seen before, and what followed
    it then is what comes now.
    """
    n, pos = tokens.shape
    out = np.zeros((n, pos), dtype=bool)
    for i in range(n):
        seen: set[tuple[int, int]] = set()
        row, ok = tokens[i], valid[i]
        for p in range(1, pos):
            if not (ok[p] and ok[p - 1]):
                continue
            pair = (int(row[p - 1]), int(row[p]))
            out[i, p] = pair in seen
            seen.add(pair)
    return out


def _token_text_mask(batch: InputBatch, test: Callable[[str, str, int], bool]) -> Bool[np.ndarray, "n pos"]:
    """Tokens for which ``test(token_text, row_text, token_start)`` holds (text inputs only)."""
    if batch.texts is None or batch.offsets is None:
        raise TokenSetError("this subset reads the tokens' text, so the inputs must start from text (e.g. kind: corpus)")
    out = np.zeros(batch.tokens.shape, dtype=bool)
    for i, text in enumerate(batch.texts):
        for p in range(batch.tokens.shape[1]):
            start, stop = batch.offsets[i, p]
            if batch.valid[i, p] and stop > start:
                out[i, p] = test(text[start:stop], text, int(start))
    return out


_CLOSING = re.compile(r"^\s*[\)\]\}]+\s*$")
_IDENTIFIER = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*$")


def _is_repeated_identifier(piece: str, text: str, start: int) -> bool:
    """An identifier-like token that already occurred earlier in the row's text as a whole word."""
    if not _IDENTIFIER.match(piece):
        return False
    word = piece.strip()
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", text[:start]) is not None


PATTERNS: dict[str, tuple[str, Callable[[InputBatch], np.ndarray]]] = {
    "induction_like": ("the previous token and this one occurred together earlier in the sequence", lambda b: bigram_seen_before(b.tokens, b.valid)),
    "repeated_token": ("this token occurred earlier in the sequence", lambda b: seen_before(b.tokens, b.valid)),
    "closing_bracket": ("a closing bracket", lambda b: _token_text_mask(b, lambda t, *_: bool(_CLOSING.match(t)))),
    "repeated_identifier": ("an identifier already used earlier in the text", lambda b: _token_text_mask(b, _is_repeated_identifier)),
    "whitespace": ("whitespace only (indentation, newlines)", lambda b: _token_text_mask(b, lambda t, *_: t.strip() == "")),
    "digits": ("contains a digit", lambda b: _token_text_mask(b, lambda t, *_: any(c.isdigit() for c in t))),
}


@dataclass(frozen=True)
class Where:
    """A parsed ``where:`` block: every given condition must hold."""

    region: str | None = None
    regex: str | None = None
    seen_before: bool | None = None
    pattern: str | None = None
    predicate: Callable[[InputBatch], np.ndarray] | None = None

    def describe(self) -> str:
        parts = [f"{key}={getattr(self, key)!r}" for key in WHERE_KEYS if getattr(self, key) is not None and key != "predicate"]
        if self.predicate is not None:
            parts.append(f"predicate={getattr(self.predicate, '__name__', 'fn')}")
        return ", ".join(parts) or "all tokens"


_WHERE_EXAMPLES = {"region": "e.g. region: repeat", "regex": "e.g. regex: '\\)'", "pattern": "e.g. pattern: induction_like"}


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_where(raw: Any) -> Where:
    """Validate a ``where:`` mapping (None or {} means every predicted token)."""
    if raw is None:
        return Where()
    if not isinstance(raw, Mapping):
        raise TokenSetError(f"where must be a mapping such as {{region: repeat}}, got {_short(raw)}")
    unknown = sorted((key for key in raw if key not in WHERE_KEYS), key=str)
    if unknown:
        raise TokenSetError(f"where has no key {_short(unknown[0])}; it takes {', '.join(WHERE_KEYS)}")
    for key in ("region", "regex", "pattern"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise TokenSetError(f"where.{key} must be a string ({_WHERE_EXAMPLES[key]}), got {_short(raw[key])}")
    if raw.get("pattern") is not None and raw["pattern"] not in PATTERNS:
        raise TokenSetError(f"unknown pattern {raw['pattern']!r}; patterns: {', '.join(PATTERNS)}")
    if raw.get("regex") is not None:
        try:
            re.compile(raw["regex"])
        except re.error as error:
            raise TokenSetError(f"where.regex {raw['regex']!r} does not compile: {error}") from None
    if raw.get("seen_before") is not None and not isinstance(raw["seen_before"], bool):
        raise TokenSetError("where.seen_before must be true or false")
    if raw.get("predicate") is not None and not callable(raw["predicate"]):
        raise TokenSetError("where.predicate must be a Python callable(batch) -> bool array (Python claims only)")
    return Where(**{key: raw.get(key) for key in WHERE_KEYS})


def regex_mask(batch: InputBatch, pattern: str) -> Bool[np.ndarray, "n pos"]:
    """Tokens whose character span overlaps a match of ``pattern`` in the row's text."""
    if batch.texts is None or batch.offsets is None:
        raise TokenSetError("where.regex needs inputs that start from text (e.g. kind: corpus), not random token ids")
    compiled = re.compile(pattern)
    out = np.zeros(batch.tokens.shape, dtype=bool)
    for i, text in enumerate(batch.texts):
        starts, stops = batch.offsets[i, :, 0], batch.offsets[i, :, 1]
        for match in compiled.finditer(text):
            if match.end() > match.start():
                out[i] |= (starts < match.end()) & (stops > match.start())
    return out & batch.valid


def select(where: Where, batch: InputBatch) -> Bool[np.ndarray, "n pos"]:
    """The positions ``where`` selects: valid, predicted (p >= 1), and every condition true."""
    mask = batch.valid.copy()
    mask[:, 0] = False
    if where.region is not None:
        if where.region not in batch.regions:
            known = ", ".join(sorted(batch.regions)) or "none"
            raise TokenSetError(f"inputs kind {batch.kind!r} has no region {where.region!r}; its regions: {known}")
        mask &= batch.regions[where.region]
    if where.regex is not None:
        mask &= regex_mask(batch, where.regex)
    if where.seen_before is not None:
        seen = seen_before(batch.tokens, batch.valid)
        mask &= seen if where.seen_before else ~seen
    if where.pattern is not None:
        mask &= PATTERNS[where.pattern][1](batch)
    if where.predicate is not None:
        chosen = np.asarray(where.predicate(batch), dtype=bool)
        if chosen.shape != batch.tokens.shape:
            raise TokenSetError(f"where.predicate returned shape {chosen.shape}, expected {batch.tokens.shape}")
        mask &= chosen
    return mask
