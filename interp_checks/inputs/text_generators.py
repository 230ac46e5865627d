"""Text input generators: real text and planted patterns, as characters rather than token ids.

Why text: a claim that compares two models' per-token log-probs ("2 layers beat 1 on repeated
spans") must show both models the *same characters* even if their tokenizers differ. These
generators therefore return :class:`TextSamples` (texts plus named character spans);
``generators.generate`` tokenizes them with each model's own tokenizer and turns the spans into
token masks. Nothing here may depend on a tokenizer.

Why these patterns: each isolates one thing a small model trained on Python source can learn --
copying an earlier span (``repeated_span_text``, ``far_copy``), tracking nesting
(``bracket_nesting``), continuing a sequence (``counting``) -- inside text that looks like the code
and docs it was trained on, so the difference between models is about the mechanism, not about
text being out of distribution.

Determinism: every draw goes through the ``numpy.random.Generator`` that ``generate`` seeds from
(seed, spec); documents come from :mod:`interp_checks.inputs.corpora` in a fixed order. The same
seed gives the same texts on every machine with the same Python (the stdlib corpus is the running
Python's).

Importing this module registers the kinds ``corpus``, ``repeated_span_text``, ``bracket_nesting``,
``counting`` and ``far_copy``.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any, Callable, Iterator

import numpy as np

from interp_checks.inputs.corpora import SPLITS, CorpusError, Document, resolve_source, sample_documents
from interp_checks.inputs.generators import InputSpecError, TextSamples, Vocabulary, register_generator

Span = tuple[int, int]

_NEWLINE = re.compile("\n")
_SPACE = re.compile(" ")
_WORD = re.compile(r"\S+")

# Deepest bracket nesting bracket_nesting draws (it recurses once per level; deeper is no test of a
# model with a context of a few hundred tokens anyway).
MAX_BRACKET_DEPTH = 64

# How many candidate windows a generator may try per requested text before it settles for fewer
# texts (e.g. a corpus of one short document cannot give 64 different windows).
_ATTEMPTS_PER_TEXT = 8


# --- real text -----------------------------------------------------------------------------------


def _sample_corpus(params: dict[str, Any], rng: np.random.Generator) -> list[Document]:
    """A seeded sample of ``params["n"]`` documents of ``params["source"]``/``params["split"]``.

    Corpus problems (missing path, malformed file, unknown split) become ``InputSpecError`` so the
    claim that asked for them is reported as misconfigured, with the corpus's own message.
    """
    source, split = params["source"], params["split"]
    if not isinstance(source, str) or not source:
        raise InputSpecError(f"inputs.source must be 'stdlib', 'stdlib-docs', 'stdlib-code' or a path, got {source!r}")
    if split not in SPLITS:
        raise InputSpecError(f"inputs.split must be one of {list(SPLITS)}, got {split!r}")
    try:
        resolved = resolve_source(source)
        documents = sample_documents(resolved, params["n"], rng, split=split)
    except CorpusError as error:
        raise InputSpecError(f"inputs.source: {error}") from None
    if not documents:
        raise InputSpecError(f"inputs.source {source!r} has no non-blank documents in split {split!r}")
    return documents


def _line_start_window(text: str, chars: int, rng: np.random.Generator) -> str:
    """``chars`` characters of ``text`` starting at a uniformly drawn line start (whole text if short).

    Starting at a line start keeps windows of code syntactically plausible (no half identifier
    first). If no line starts late enough, the window starts at 0.
    """
    if len(text) <= chars:
        return text
    last = len(text) - chars
    starts = [0] + [m.end() for m in _NEWLINE.finditer(text, 0, last)]
    start = starts[int(rng.integers(len(starts)))]
    return text[start : start + chars]


def _windows(documents: list[Document], chars: int, rng: np.random.Generator) -> Iterator[tuple[str, str]]:
    """Windows: one per sampled document (in stream order), then more from the documents longer
    than ``chars``, round-robin, at fresh offsets.

    The extra windows let a corpus with fewer than ``n`` documents (one long ``.txt``, or the
    43-document held-out stdlib) still give ``n`` texts; windows of one document are distinct but
    not independent. Short documents are never repeated (they would be identical rows).
    """
    for doc in documents:
        yield doc.name, _line_start_window(doc.text, chars, rng)
    long = [doc for doc in documents if len(doc.text) > chars]
    while long:
        for doc in long:
            yield doc.name, _line_start_window(doc.text, chars, rng)


def _collect(
    windows: Iterator[tuple[str, str]], n: int, make: Callable[[str], tuple[str, dict[str, list[Span]]] | None]
) -> TextSamples:
    """Up to ``n`` samples built by ``make`` from successive (document, window) pairs (``None`` =
    window unusable); each sample remembers its document (``TextSamples.sources``)."""
    texts: list[str] = []
    sources: list[str] = []
    regions: dict[str, list[list[Span]]] = {}
    for name, window in islice(windows, n * _ATTEMPTS_PER_TEXT):
        made = make(window)
        if made is None:
            continue
        text, spans = made
        texts.append(text)
        sources.append(name)
        for name, row in spans.items():
            regions.setdefault(name, []).append(row)
        if len(texts) == n:
            break
    return TextSamples(texts, regions, sources)


@register_generator(
    "corpus",
    defaults={"source": "stdlib", "split": "heldout", "n": 64, "chars": 700},
    size=lambda p: p["n"] * p["chars"],
    unit="characters",
    description="n windows of `chars` characters of real text, from a seeded sample of the source's documents",
)
def corpus(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator) -> TextSamples:
    documents = _sample_corpus(params, rng)
    samples = _collect(_windows(documents, params["chars"], rng), params["n"], lambda w: (w, {}) if w.strip() else None)
    if not samples.texts:
        raise InputSpecError(f"inputs.source {params['source']!r} gave no usable text")
    return samples


# --- a repeated span inside real text ------------------------------------------------------------


def _plant_repeat(window: str, span_chars: int, rng: np.random.Generator) -> tuple[str, dict[str, list[Span]]] | None:
    """Copy a whitespace-delimited span of ~``span_chars`` characters to a later line break.

    The insertion point is drawn first among line starts that leave room for a span before them
    (falling back to word starts for text without line breaks); the span then starts at a drawn
    word start before it and ends at the word end nearest ``span_chars`` characters on. The copy is
    followed by the separator it was inserted after (newline or space), so the text after it still
    starts a line (or word).
    """
    word_starts = [m.start() for m in _WORD.finditer(window)]
    if not word_starts:
        return None
    first_word = word_starts[0]
    points = [m.end() for m in _NEWLINE.finditer(window) if m.end() - 1 - span_chars >= first_word]
    separator = "\n"
    if not points:
        points = [m.end() for m in _SPACE.finditer(window) if m.end() - 1 - span_chars >= first_word]
        separator = " "
    if not points:
        return None
    point = points[int(rng.integers(len(points)))]
    starts = [s for s in word_starts if s <= point - 1 - span_chars]
    start = starts[int(rng.integers(len(starts)))]
    # word ends in (start, point - 1]: window[point - 1] is whitespace, so there is at least one
    ends = [m.end() for m in _WORD.finditer(window, start, point - 1)]
    target = start + span_chars
    stop = min(ends, key=lambda e: (abs(e - target), e))
    copy = window[start:stop]
    text = window[:point] + copy + separator + window[point:]
    return text, {"original": [(start, stop)], "repeat": [(point, point + len(copy))]}


@register_generator(
    "repeated_span_text",
    defaults={"source": "stdlib", "split": "heldout", "n": 64, "chars": 450, "span_chars": 80},
    size=lambda p: p["n"] * (p["chars"] + p["span_chars"] + 1),
    unit="characters",
    description="a real-text window with an earlier ~span_chars span copied again at a later line break (regions repeat, original)",
)
def repeated_span_text(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator) -> TextSamples:
    """Region ``repeat`` is the inserted copy, ``original`` the span it copies (which comes first).

    Texts are ``chars`` + the copy + one separator long. The copy sits in otherwise real text, so
    a model that predicts it better than the surrounding text is copying, not recognising a
    synthetic format.
    """
    if params["chars"] < 2 * params["span_chars"] + 2:
        raise InputSpecError(
            f"inputs.chars ({params['chars']}) must be at least 2 * span_chars + 2 ({2 * params['span_chars'] + 2}) "
            "to hold a span and a later copy point"
        )
    documents = _sample_corpus(params, rng)
    span_chars = params["span_chars"]
    samples = _collect(
        _windows(documents, params["chars"], rng), params["n"], lambda w: _plant_repeat(w, span_chars, rng)
    )
    if not samples.texts:
        raise InputSpecError(
            f"inputs.source {params['source']!r} has no window of {params['chars']} characters with room for a "
            f"{span_chars}-character span and a later line break"
        )
    return samples


# --- nested brackets -----------------------------------------------------------------------------

_NAMES = (
    "self", "data", "key", "value", "items", "node", "args", "kwargs", "name", "path", "result", "obj",
    "item", "config", "parts", "line", "text", "index", "count", "buf", "cls", "func", "options", "entry",
    "state", "size", "offset", "x", "y", "i", "n", "k", "v", "default", "prefix", "stream", "context",
)
_FUNCTIONS = (
    "len", "list", "dict", "tuple", "sorted", "str", "int", "max", "min", "isinstance", "getattr", "repr",
    "set", "range", "zip", "map", "enumerate", "any", "all", "sum", "format", "iter", "next", "hasattr",
)
_METHODS = (
    "get", "append", "items", "keys", "values", "format", "join", "split", "update", "pop", "copy", "read",
    "write", "encode", "decode", "strip", "replace", "startswith", "extend", "setdefault", "group",
)
_STRINGS = ("name", "value", "key", "utf-8", "default", "type", "id", "path", "data", "strict", "mode", "args")


class _Brackets:
    """Random Python-like expressions whose bracket nesting reaches a drawn target depth."""

    def __init__(self, rng: np.random.Generator, max_depth: int):
        self.rng = rng
        self.max_depth = max_depth

    def pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def atom(self) -> str:
        roll = self.rng.random()
        if roll < 0.6:
            return self.pick(_NAMES)
        if roll < 0.75:
            return f"{self.pick(_NAMES)}.{self.pick(_NAMES)}"
        if roll < 0.9:
            return f"'{self.pick(_STRINGS)}'"
        return str(int(self.rng.integers(0, 10)))

    def expr(self, level: int, target: int) -> str:
        """An expression inside ``level`` open brackets; if ``level < target`` it must nest down to
        ``target`` (one child, drawn, carries the requirement; the others nest rarely)."""
        must = level < target
        if not must and (level >= self.max_depth or self.rng.random() < 0.75):
            return self.atom()
        kind = self.pick(("call", "call", "method", "index", "list", "tuple", "dict", "set"))
        counts = {"index": 1, "tuple": int(self.rng.integers(2, 4)), "dict": int(self.rng.integers(1, 3))}
        k = counts.get(kind, int(self.rng.integers(1, 4)))
        spine = int(self.rng.integers(k)) if level + 1 < target else -1
        children = [self.expr(level + 1, target if i == spine else 0) for i in range(k)]
        if kind == "call":
            return f"{self.pick(_FUNCTIONS)}({', '.join(children)})"
        if kind == "method":
            return f"{self.pick(_NAMES)}.{self.pick(_METHODS)}({', '.join(children)})"
        if kind == "index":
            return f"{self.pick(_NAMES)}[{children[0]}]"
        if kind == "list":
            return f"[{', '.join(children)}]"
        if kind == "tuple":
            return f"({', '.join(children)})"
        if kind == "set":
            return "{" + ", ".join(children) + "}"
        return "{" + ", ".join(f"'{self.pick(_STRINGS)}': {child}" for child in children) + "}"

    def statement(self, target: int) -> str:
        body = self.expr(0, target)
        roll = self.rng.random()
        if roll < 0.6:
            return f"    {self.pick(_NAMES)} = {body}"
        if roll < 0.8:
            return f"    return {body}"
        return f"    yield {body}"


def _closing_brackets(text: str) -> list[tuple[int, int]]:
    """(position, depth) of every closing bracket; depth 1 = outermost pair."""
    depth, found = 0, []
    for position, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            found.append((position, depth))
            depth -= 1
    return found


@register_generator(
    "bracket_nesting",
    defaults={"n": 64, "depth": 6, "length": 200},
    # a statement nesting `depth` deep is rarely over 30 characters a level (measured: <= 26 at depth 64)
    size=lambda p: p["n"] * (p["length"] + 40 * p["depth"]),
    unit="characters",
    limits={"depth": MAX_BRACKET_DEPTH},
    description="Python-like statements of nested (), [], {} up to `depth` deep, ~length chars (regions closing, deep_closing)",
)
def bracket_nesting(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator) -> TextSamples:
    """A ``def`` header, then indented statements until the text is at least ``length`` characters.

    Each statement's nesting target is drawn from 1..depth; the first statement always reaches
    ``depth`` so every text has deep brackets. Region ``closing`` = every closing bracket
    character, ``deep_closing`` = those closing a pair at depth >= 3 (outermost = 1): predicting
    *which* bracket closes needs a stack-like memory of the openers, hardest when deep.
    """
    maker = _Brackets(rng, params["depth"])
    texts, closing, deep = [], [], []
    for _ in range(params["n"]):
        lines = [f"def {maker.pick(_METHODS)}_{maker.pick(_NAMES)}({maker.pick(_NAMES)}, {maker.pick(_NAMES)}):"]
        target = params["depth"]
        while sum(len(line) + 1 for line in lines) < params["length"]:
            lines.append(maker.statement(target))
            target = int(rng.integers(1, params["depth"] + 1))
        text = "\n".join(lines) + "\n"
        brackets = _closing_brackets(text)
        texts.append(text)
        closing.append([(p, p + 1) for p, _ in brackets])
        deep.append([(p, p + 1) for p, d in brackets if d >= 3])
    return TextSamples(texts, {"closing": closing, "deep_closing": deep})


# --- counting ------------------------------------------------------------------------------------

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")


def _counting_items(rng: np.random.Generator, start_max: int, length: int) -> list[str]:
    kind = ("numbers", "numbers", "letters", "weekdays", "months")[int(rng.integers(5))]
    if kind == "numbers":
        start = int(rng.integers(0, start_max + 1))
        return [str(start + i) for i in range(length)]
    cycle: tuple[str, ...] = {"letters": _LETTERS, "weekdays": _WEEKDAYS, "months": _MONTHS}[kind]
    roll = rng.random()
    if kind == "letters" and roll < 0.3:
        cycle = tuple(c.upper() for c in cycle)
    elif kind != "letters" and roll < 0.3:
        cycle = tuple(c[:3] for c in cycle)  # Mon, Tue, ... / Jan, Feb, ...
    offset = int(rng.integers(len(cycle)))
    return [cycle[(offset + i) % len(cycle)] for i in range(length)]


@register_generator(
    "counting",
    defaults={"n": 64, "start_max": 50, "length": 40},
    # an item is at most max(quoted 'September', digits) plus a separator; plus a `name = [` prefix
    size=lambda p: p["n"] * (p["length"] * max(13, len(str(p["start_max"] + p["length"])) + 2) + 20),
    unit="characters",
    description="`length` items counting up (numbers from 0..start_max, letters, weekdays, months; cycling) (region continuation)",
)
def counting(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator) -> TextSamples:
    """Region ``continuation`` = the characters of every item after the 3rd (quotes and separators
    excluded): three items establish the sequence, the rest is predictable by continuing it.

    Formats are the ones such sequences take in Python source: a bare comma list, a list literal
    of numbers or quoted strings, one item per line, or space separated.
    """
    if params["length"] < 4:
        raise InputSpecError(f"inputs.length must be at least 4 (3 items set the pattern), got {params['length']}")
    texts, continuation = [], []
    for _ in range(params["n"]):
        items = _counting_items(rng, params["start_max"], params["length"])
        numeric = items[0].isdigit()
        style = ("plain", "list", "lines", "spaces")[int(rng.integers(4))]
        quote = "" if numeric else "'"
        if style == "list":
            prefix, separator, suffix = f"{_NAMES[int(rng.integers(len(_NAMES)))]} = [", ", ", "]\n"
        elif style == "lines":
            prefix, separator, suffix, quote = "", "\n", "\n", ""
        elif style == "spaces":
            prefix, separator, suffix, quote = "", " ", "\n", ""
        else:
            prefix, separator, suffix, quote = "", ", ", "\n", ""
        parts, spans, position = [prefix], [], len(prefix)
        for i, item in enumerate(items):
            if i:
                parts.append(separator)
                position += len(separator)
            start = position + len(quote)
            parts.append(f"{quote}{item}{quote}")
            position += len(item) + 2 * len(quote)
            if i >= 3:
                spans.append((start, start + len(item)))
        parts.append(suffix)
        texts.append("".join(parts))
        continuation.append(spans)
    return TextSamples(texts, {"continuation": continuation})


# --- a key = value pair recalled across real text ------------------------------------------------

_WORDS = (
    "cache", "buffer", "socket", "parser", "header", "token", "stream", "session", "config", "default",
    "timeout", "retry", "limit", "path", "file", "module", "handler", "format", "encoding", "local",
    "remote", "server", "client", "index", "record", "entry", "field", "table", "queue", "worker",
    "signal", "event", "loop", "context", "state", "mode", "level", "source", "target", "backup",
)
_HEX = "0123456789abcdef"


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _random_key(rng: np.random.Generator) -> str:
    words = [_pick(rng, _WORDS) for _ in range(int(rng.integers(2, 4)))]
    style = int(rng.integers(3))
    if style == 0:
        return "_".join(words).upper()  # DEFAULT_CACHE_TIMEOUT
    if style == 1:
        return "_" + "_".join(words)  # _socket_retry_path
    return "self." + "_".join(words)  # self.session_token


def _random_value(rng: np.random.Generator, chars: int) -> str:
    """A quoted literal of about ``chars`` characters that only copying can predict."""
    style = int(rng.integers(3))
    if style == 0:  # a hex digest
        return "'" + "".join(_pick(rng, tuple(_HEX)) for _ in range(max(1, chars - 2))) + "'"

    def literal(words: list[str]) -> str:  # '/cache/socket/...' or 'cache.socket...'
        return "'" + ("/" + "/".join(words) if style == 1 else ".".join(words)) + "'"

    words = [_pick(rng, _WORDS)]
    while len(words) < 2 or len(literal(words)) < chars:
        words.append(_pick(rng, _WORDS))
    return literal(words)


@register_generator(
    "far_copy",
    defaults={"source": "stdlib", "split": "heldout", "n": 64, "chars": 450, "span_chars": 40},
    size=lambda p: p["n"] * (p["chars"] + 1),
    unit="characters",
    description="`KEY = 'value'` first, real filler text, then `KEY = ` again and the value (region copied_value)",
)
def far_copy(params: dict[str, Any], vocab: Vocabulary, rng: np.random.Generator) -> TextSamples:
    """Recall across a long gap: the value (~span_chars, a random hex digest, path or dotted name)
    is unpredictable except by finding the key's first occurrence ~``chars`` characters back.

    Layout: ``KEY = VALUE\\n``, real lines of the source (a line-start window, cut after its last
    newline) to make the text about ``chars`` long, then ``KEY = VALUE\\n`` again. Region
    ``copied_value`` = the second VALUE, quotes included. ``source``/``split`` pick the filler
    (added to the brief's parameters so user corpora work here too). Filler windows that contain
    the key or value are skipped, so the only earlier occurrence is the planted one.
    """
    span_chars = params["span_chars"]
    if params["chars"] < 2 * (span_chars + 40) + 40:
        raise InputSpecError(
            f"inputs.chars ({params['chars']}) must be at least 2 * (span_chars + 40) + 40 "
            f"({2 * (span_chars + 40) + 40}) to leave room for filler between the two key lines"
        )
    documents = _sample_corpus(params, rng)

    def make(window: str) -> tuple[str, dict[str, list[Span]]] | None:
        key, value = _random_key(rng), _random_value(rng, span_chars)
        line = f"{key} = {value}\n"
        filler = window[: max(0, params["chars"] - 2 * len(line))]
        if "\n" in filler:
            filler = filler[: filler.rindex("\n") + 1]
        elif filler:
            filler += "\n"
        if not filler.strip() or key in filler or value in filler:
            return None
        text = line + filler + line
        start = len(text) - len(value) - 1
        return text, {"copied_value": [(start, start + len(value))]}

    samples = _collect(_windows(documents, params["chars"], rng), params["n"], make)
    if not samples.texts:
        raise InputSpecError(f"inputs.source {params['source']!r} gave no usable filler text")
    return samples
