"""The miner: where do two models' per-token log-probs differ most, and which patterns explain it?

A standard way to find circuits is to run two models over a lot of text and look at the tokens
one predicts much better than the other (a 2-layer model beating a 1-layer one on tokens that
repeat an earlier bigram points at induction heads). ``mine`` does that over a whole corpus and
``write_mine_report`` turns the result into

* ``mine.md`` / ``mine.json``: per named pattern of :data:`interp_checks.inputs.token_sets.PATTERNS`
  (plus ``other``, the tokens no pattern matches) how many tokens, their mean gain, and how much of
  the total gain they carry; then the contexts with the largest gains each way;
* ``draft.claims.yaml``: a ``logprob_gain`` claim per pattern whose gain is clearly positive, with
  conservative thresholds, runnable as is (``python -m pytest draft.claims.yaml``).

The gain of a token is that of the ``logprob_gain`` check: ``max(logp_model, floor) -
max(logp_baseline, floor)`` in nats, and patterns are the same functions a claim's
``where: {pattern: NAME}`` uses, so a mined pattern pasted into a claim means the same tokens.

Memory does not grow with the corpus: batches are streamed (:func:`iter_token_batches`) and only
bounded aggregates are kept -- per pattern a count, a sum and a sum of squares of gains, a running
(Welford/Chan) mean and variance of per-window mean gains, and two heaps of ``top_k`` contexts.
No per-token value outlives its batch.

Statistics: tokens of one window are not independent, so the unit is the window (a row of
``seq_len`` tokens), as in claims. The report gives both the token-level mean (pooled over tokens:
what the pattern contributes to the total) and the sequence-level mean (the mean over windows of
each window's mean gain on the pattern's tokens -- what a claim measures) with a normal-approx 95%
interval. Windows cut from the same document are correlated too, so that interval is optimistic;
the draft's thresholds are therefore half its lower end, and the claims sample held-out text.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from interp_checks.checks.compare import DEFAULT_FLOOR, mean_over, token_gains
from interp_checks.inputs.corpora import SPLITS, Document, TokenBatch, iter_documents, iter_token_batches, resolve_source, split_of
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import PATTERNS

__all__ = [
    "Context",
    "MineAggregator",
    "MineError",
    "MineResult",
    "PatternStats",
    "draft_claims",
    "mine",
    "score_batch",
    "write_mine_report",
]

SCHEMA = "interp-checks-mine/1"
OTHER = "other"  # tokens that match no pattern
ALL = "all tokens"
BIG_GAIN = 1.0  # nats: "how many tokens of the pattern gain more than this"
Z95 = 1.959963984540054
CLAIM_MIN_LOWER = 0.1  # nats: a pattern gets a draft claim when its interval's lower end exceeds this
THRESHOLD_STEP = 0.05
DRAFT_INPUTS = {"kind": "corpus", "split": "heldout", "n": 64, "chars": 700}
MARK_OPEN, MARK_CLOSE, ELLIPSIS = "⟦", "⟧", "…"


class MineError(ValueError):
    """The miner cannot run on these models or this corpus; the message says why and what to do."""


# --- aggregates ------------------------------------------------------------------------------------


@dataclass
class PatternStats:
    """Bounded-size running statistics of the gains of one pattern's tokens.

    Token level: ``tokens``, ``gain_sum``, ``gain_sumsq``, and the number of tokens gaining more than
    1 nat (``above_1``) or losing more than 1 nat (``below_1``). Sequence level: over the windows
    that contain at least one token of the pattern, the running mean and sum of squared deviations
    (``window_m2``) of the window's mean gain on those tokens (Chan et al.'s pairwise update, so a
    whole batch of windows is merged at once without losing precision).
    """

    name: str
    description: str
    tokens: int = 0
    gain_sum: float = 0.0
    gain_sumsq: float = 0.0
    above_1: int = 0
    below_1: int = 0
    windows: int = 0
    window_mean: float = 0.0
    window_m2: float = 0.0

    def add_tokens(self, gains: np.ndarray) -> None:
        if gains.size == 0:
            return
        gains = gains.astype(np.float64, copy=False)
        self.tokens += int(gains.size)
        self.gain_sum += float(gains.sum())
        self.gain_sumsq += float(np.dot(gains, gains))
        self.above_1 += int(np.count_nonzero(gains > BIG_GAIN))
        self.below_1 += int(np.count_nonzero(gains < -BIG_GAIN))

    def add_windows(self, means: np.ndarray) -> None:
        """Merge per-window mean gains (finite values only) into the running mean and M2."""
        means = means[np.isfinite(means)].astype(np.float64, copy=False)
        n_b = int(means.size)
        if n_b == 0:
            return
        mean_b = float(means.mean())
        m2_b = float(((means - mean_b) ** 2).sum())
        n = self.windows + n_b
        delta = mean_b - self.window_mean
        self.window_mean += delta * n_b / n
        self.window_m2 += m2_b + delta * delta * self.windows * n_b / n
        self.windows = n

    @property
    def token_mean(self) -> float:
        return self.gain_sum / self.tokens if self.tokens else math.nan

    @property
    def token_sd(self) -> float:
        if self.tokens < 2:
            return math.nan
        var = (self.gain_sumsq - self.gain_sum**2 / self.tokens) / (self.tokens - 1)
        return math.sqrt(max(var, 0.0))

    @property
    def window_sd(self) -> float:
        return math.sqrt(self.window_m2 / (self.windows - 1)) if self.windows >= 2 else math.nan

    @property
    def window_ci(self) -> tuple[float, float]:
        """Normal-approximation 95% interval of the sequence-level mean (NaN with < 2 windows)."""
        if self.windows < 2:
            return (math.nan, math.nan)
        half = Z95 * self.window_sd / math.sqrt(self.windows)
        return (self.window_mean - half, self.window_mean + half)

    def to_dict(self, total_tokens: int, total_gain: float) -> dict[str, Any]:
        lo, hi = self.window_ci
        return {
            "pattern": self.name,
            "description": self.description,
            "tokens": self.tokens,
            "share_of_tokens": _ratio(self.tokens, total_tokens),
            "gain_sum": self.gain_sum,
            "gain_sumsq": self.gain_sumsq,
            "share_of_total_gain": _ratio(self.gain_sum, total_gain),
            "token_mean_gain": _finite(self.token_mean),
            "token_sd_gain": _finite(self.token_sd),
            "tokens_gain_above_1_nat": self.above_1,
            "tokens_gain_below_minus_1_nat": self.below_1,
            "windows": self.windows,
            "sequence_mean_gain": _finite(self.window_mean) if self.windows else None,
            "sequence_sd_gain": _finite(self.window_sd),
            "sequence_ci95": [_finite(lo), _finite(hi)],
        }


@dataclass
class Context:
    """One scored token and what surrounds it, for the report's lists of largest gains."""

    gain: float
    model_logp: float
    baseline_logp: float
    document: str
    position: int  # index of the token in its document's token sequence (BOS not counted)
    token: str
    context: str  # up to ``context_chars`` characters before the token, then the token marked ⟦ ⟧
    patterns: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gain": self.gain,
            "model_logp": _finite(self.model_logp),
            "baseline_logp": _finite(self.baseline_logp),
            "document": self.document,
            "position": self.position,
            "token": self.token,
            "context": self.context,
            "patterns": list(self.patterns),
        }


def token_strings(tokenizer: Any, special_ids: Iterable[int] = ()) -> np.ndarray:
    """Every token id's text, decoded once (special tokens -> ""), as an object array indexed by id.

    Byte-level tokens that hold part of a multi-byte character decode to U+FFFD on their own; the
    concatenated strings then differ from the original text there, which only the text patterns
    (brackets, digits, identifiers) can notice.
    """
    vocab = tokenizer.get_vocab()
    size = max(vocab.values()) + 1 if vocab else 0
    special = set(int(i) for i in special_ids)
    try:
        special.update(int(i) for i in (getattr(tokenizer, "all_special_ids", None) or []))
    except Exception:  # some tokenizers raise for unset roles
        pass
    out = np.empty(size, dtype=object)
    for i in range(size):
        out[i] = "" if i in special else _decode(tokenizer, [i])
    return out


def _decode(tokenizer: Any, ids: Iterable[int]) -> str:
    ids = [int(i) for i in ids]
    try:
        return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    except TypeError:  # a raw ``tokenizers.Tokenizer``
        return tokenizer.decode(ids, skip_special_tokens=False)


class MineAggregator:
    """Everything the miner keeps between batches; its size does not depend on the corpus.

    ``update(batch, gains)`` folds one batch of per-token gains (``[rows, seq_len]``, NaN where no
    prediction is scored) into per-pattern statistics and the two top-``k`` heaps. Patterns are
    evaluated on an :class:`InputBatch` whose texts are the rows' decoded tokens, concatenated.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        top_k: int = 50,
        context_chars: int = 60,
        prefix: int = 1,
        patterns: Mapping[str, tuple[str, Callable[[InputBatch], np.ndarray]]] | None = None,
        special_ids: Iterable[int] = (),
    ):
        if top_k < 1:
            raise MineError(f"top_k must be >= 1, got {top_k}")
        self.tokenizer = tokenizer
        self.top_k = int(top_k)
        self.context_chars = int(context_chars)
        self.prefix = int(prefix)
        self.patterns = dict(PATTERNS if patterns is None else patterns)
        if OTHER in self.patterns:
            raise MineError(f"a pattern may not be called {OTHER!r}: that name is the tokens no pattern matches")
        self.strings = token_strings(tokenizer, special_ids)
        self.lengths = np.fromiter((len(s) for s in self.strings), dtype=np.int64, count=len(self.strings))
        self.stats: dict[str, PatternStats] = {name: PatternStats(name, desc) for name, (desc, _) in self.patterns.items()}
        self.stats[OTHER] = PatternStats(OTHER, "matches none of the patterns above")
        self.overall = PatternStats(ALL, "every scored token")
        # Min-heaps of (key, tie-break, Context): key = gain (largest gains) or -gain (largest losses);
        # the tie-break -order keeps the earliest of equal gains.
        self.top_gains: list[tuple[float, int, Context]] = []
        self.top_losses: list[tuple[float, int, Context]] = []
        self.tokens_seen = 0  # valid positions streamed, BOS included (what max_tokens counts)
        self.windows = 0
        self.documents = 0
        self._last_document: str | None = None
        self._order = 0

    # -- the text a pattern sees --------------------------------------------------------------------

    def text_batch(self, batch: TokenBatch) -> InputBatch:
        """The batch as an InputBatch with texts and offsets built from each token's decoded text."""
        tokens, valid = batch.tokens, batch.valid
        lengths = np.where(valid, self.lengths[tokens], 0)
        stops = np.cumsum(lengths, axis=1)
        offsets = np.stack([stops - lengths, stops], axis=-1)
        texts = ["".join(self.strings[row[ok]]) for row, ok in zip(tokens, valid)]
        return InputBatch(tokens, "mine", {}, 0, valid.copy(), {}, texts, offsets, {"names": list(batch.names)})

    def masks(self, batch: TokenBatch, scored: np.ndarray) -> dict[str, np.ndarray]:
        """Scored positions of each pattern, and of ``other`` (none of them)."""
        text = self.text_batch(batch)
        out: dict[str, np.ndarray] = {}
        matched = np.zeros(scored.shape, dtype=bool)
        for name, (_, fn) in self.patterns.items():
            mask = np.asarray(fn(text), dtype=bool)
            if mask.shape != scored.shape:
                raise MineError(f"pattern {name!r} returned shape {mask.shape}, expected {scored.shape}")
            out[name] = mask & scored
            matched |= out[name]
        out[OTHER] = scored & ~matched
        return out

    # -- folding a batch in ---------------------------------------------------------------------------

    def update(
        self,
        batch: TokenBatch,
        gains: np.ndarray,
        model_logp: np.ndarray | None = None,
        baseline_logp: np.ndarray | None = None,
    ) -> None:
        gains = np.asarray(gains, dtype=np.float64)
        if gains.shape != batch.tokens.shape:
            raise MineError(f"gains have shape {gains.shape}, the batch {batch.tokens.shape}")
        scored = batch.valid.copy()
        scored[:, 0] = False  # nothing predicts position 0
        scored &= np.isfinite(gains)
        masks = self.masks(batch, scored)
        self.overall.add_tokens(gains[scored])
        self.overall.add_windows(mean_over(gains, scored))
        for name, mask in masks.items():
            self.stats[name].add_tokens(gains[mask])
            self.stats[name].add_windows(mean_over(gains, mask))
        for sign, heap in ((1.0, self.top_gains), (-1.0, self.top_losses)):
            self._offer(heap, sign, batch, gains, scored, masks, model_logp, baseline_logp)
        self.tokens_seen += int(batch.valid.sum())
        self.windows += len(batch.names)
        for name in batch.names:
            if name != self._last_document:
                self.documents += 1
                self._last_document = name
        self._order += gains.size

    def _offer(self, heap, sign, batch, gains, scored, masks, model_logp, baseline_logp) -> None:
        keyed = np.where(scored & (sign * gains > 0), sign * gains, -np.inf).ravel()
        k = min(self.top_k, int(np.count_nonzero(np.isfinite(keyed))))
        if k == 0:
            return
        candidates = np.argpartition(-keyed, k - 1)[:k]
        candidates = candidates[np.lexsort((candidates, -keyed[candidates]))]  # largest first, then earliest
        width = gains.shape[1]
        for flat in candidates:
            key = float(keyed[flat])
            if len(heap) == self.top_k and key <= heap[0][0]:
                break
            row, pos = divmod(int(flat), width)
            context = self._context(batch, row, pos, float(gains[row, pos]), masks, model_logp, baseline_logp)
            entry = (key, -(self._order + int(flat)), context)
            if len(heap) < self.top_k:
                heapq.heappush(heap, entry)
            else:
                heapq.heapreplace(heap, entry)

    def _context(self, batch, row, pos, gain, masks, model_logp, baseline_logp) -> Context:
        tokens = batch.tokens[row]
        first = max(self.prefix, pos - max(self.context_chars, 1))
        before = _decode(self.tokenizer, tokens[first:pos]) if pos > first else ""
        cut = len(before) > self.context_chars or first > self.prefix or int(batch.starts[row]) > 0
        before = before[-self.context_chars :] if self.context_chars > 0 else ""
        token = str(self.strings[int(tokens[pos])])
        text = (ELLIPSIS if cut else "") + before + MARK_OPEN + token + MARK_CLOSE
        return Context(
            gain=gain,
            model_logp=float(model_logp[row, pos]) if model_logp is not None else math.nan,
            baseline_logp=float(baseline_logp[row, pos]) if baseline_logp is not None else math.nan,
            document=batch.names[row],
            position=int(batch.starts[row]) + pos - self.prefix,
            token=token,
            context=text,
            patterns=[name for name, mask in masks.items() if name != OTHER and mask[row, pos]],
        )

    def size(self) -> dict[str, int]:
        """How many entries each aggregate structure holds (constant in the corpus size)."""
        return {
            "patterns": len(self.stats),
            "top_gains": len(self.top_gains),
            "top_losses": len(self.top_losses),
            "token_strings": len(self.strings),
        }


# --- the result ------------------------------------------------------------------------------------


@dataclass
class MineResult:
    """What a mining run found; ``to_dict()`` is ``mine.json``."""

    model: str  # absolute spec (zoo:NAME or PREFIX:/absolute/path), runnable from anywhere
    baseline: str
    model_text: str  # as the user wrote them
    baseline_text: str
    corpus: str | None  # "stdlib..." or an absolute path; None when mined from an iterable of documents
    corpus_label: str
    split: str
    floor: float
    seq_len: int
    batch_size: int
    max_tokens: int | None
    top_k: int
    context_chars: int
    device: str
    tokens_seen: int  # valid positions streamed, BOS included
    windows: int
    documents: int
    seconds: float
    created: str
    patterns: dict[str, PatternStats]  # every pattern, then "other"
    overall: PatternStats
    top_gains: list[Context]  # largest gain first
    top_losses: list[Context]  # most negative gain first
    heldout_available: bool | None = None

    @property
    def tokens_scored(self) -> int:
        return self.overall.tokens

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_seen / self.seconds if self.seconds > 0 else math.nan

    def ranked(self) -> list[PatternStats]:
        """Patterns (and ``other``) by total gain contribution, largest first.

        Ties (two patterns carrying the same total, e.g. one contains all of the other's gains) go to
        the larger mean gain per token: the tighter explanation of the same gain.
        """
        return sorted(self.patterns.values(), key=lambda s: (-s.gain_sum, -_nan_low(s.token_mean), s.name))

    def to_dict(self) -> dict[str, Any]:
        total_tokens, total_gain = self.overall.tokens, self.overall.gain_sum
        return {
            "schema": SCHEMA,
            "created": self.created,
            "model": self.model,
            "baseline": self.baseline,
            "model_as_given": self.model_text,
            "baseline_as_given": self.baseline_text,
            "corpus": self.corpus,
            "corpus_label": self.corpus_label,
            "split": self.split,
            "gain": f"max(logp_model, {self.floor:g}) - max(logp_baseline, {self.floor:g}), nats, per scored token",
            "floor": self.floor,
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "max_tokens": self.max_tokens,
            "device": self.device,
            "tokens_seen": self.tokens_seen,
            "tokens_scored": self.tokens_scored,
            "windows": self.windows,
            "documents": self.documents,
            "seconds": self.seconds,
            "tokens_per_second": _finite(self.tokens_per_second),
            "statistics_note": (
                "token-level = pooled over tokens; sequence-level = mean over windows of the window's mean gain on "
                "the pattern's tokens, with a normal-approximation 95% interval (windows are the unit for statistics)"
            ),
            "overall": self.overall.to_dict(total_tokens, total_gain),
            "patterns": [stats.to_dict(total_tokens, total_gain) for stats in self.ranked()],
            "top_gains": [c.to_dict() for c in self.top_gains],
            "top_losses": [c.to_dict() for c in self.top_losses],
            "top_gains_by_pattern": _pattern_counts(self.top_gains, self.patterns),
            "top_losses_by_pattern": _pattern_counts(self.top_losses, self.patterns),
        }


def _pattern_counts(contexts: list[Context], patterns: Mapping[str, PatternStats]) -> dict[str, int]:
    counts = {name: 0 for name in patterns}
    for context in contexts:
        for name in context.patterns or [OTHER]:
            counts[name] = counts.get(name, 0) + 1
    return counts


# --- the forward passes ----------------------------------------------------------------------------


def score_batch(model: Any, baseline: Any, tokens: np.ndarray, floor: float, device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gains, model logp, baseline logp) for a batch of token rows: one logits-only pass per model."""
    import torch

    from interp_checks.checks.base import Needs
    from interp_checks.runner import capture, next_token_logprobs

    needs = Needs(frozenset(), logits=True)
    batch = torch.as_tensor(tokens, device=device)
    with torch.inference_mode():
        model_logp = next_token_logprobs(capture(model.bridge, batch, needs)["logits"], batch)
        baseline_logp = next_token_logprobs(capture(baseline.bridge, batch, needs)["logits"], batch)
    return token_gains(model_logp, baseline_logp, floor), model_logp, baseline_logp


# --- mining ----------------------------------------------------------------------------------------


def mine(
    model: str,
    baseline: str,
    *,
    corpus: str | os.PathLike | Iterable[Document] = "stdlib",
    split: str = "all",
    max_tokens: int | None = 1_000_000,
    seq_len: int | None = None,
    batch_size: int = 16,
    floor: float = DEFAULT_FLOOR,
    top_k: int = 50,
    context_chars: int = 60,
    device: str = "cpu",
    base_dir: str | os.PathLike | None = None,
    progress: bool = True,
    models: Any = None,
    callback: Callable[[MineAggregator], None] | None = None,
    threads: int | None = None,
) -> MineResult:
    """Run ``model`` and ``baseline`` over ``corpus`` and aggregate their per-token gains by pattern.

    ``model``/``baseline``: model specs (``zoo:``, ``hf:``, ``gguf:``, ``native:``; relative paths
    against ``base_dir``). They must share a tokenizer. ``corpus``: ``"stdlib"`` (also
    ``stdlib-docs``, ``stdlib-code``), a path (``.txt``/``.jsonl`` file, folder, saved dataset), or
    any iterable of :class:`Document`. ``split``: ``all``, ``train`` or ``heldout`` (by document).
    ``max_tokens``: stop after this many tokens (BOS included; ``None``: the whole corpus).
    ``seq_len``: window length (default: the smaller context of the two models); each window is BOS
    + ``seq_len - 1`` document tokens, the last window of a document padded. ``models``: a
    :class:`ModelCache` to load through. ``callback(aggregator)`` is called after every batch.
    ``threads``: torch CPU threads while mining (restored afterwards); on a machine whose cores are
    busy with other work, 1 thread can be several times faster than oversubscribed ones.
    """
    from interp_checks.models.cache import ModelCache
    from interp_checks.models.load import resolve_device
    from interp_checks.models.spec import parse_model_spec

    if split not in SPLITS:
        raise MineError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not isinstance(floor, (int, float)) or isinstance(floor, bool) or not math.isfinite(floor) or floor > 0:
        raise MineError(f"floor must be a number <= 0 (a log-prob), got {floor!r}")
    if max_tokens is not None and max_tokens < 1:
        raise MineError(f"max_tokens must be positive (or None for the whole corpus), got {max_tokens}")
    if threads is not None and threads < 1:
        raise MineError(f"threads must be >= 1, got {threads}")
    if batch_size < 1 or top_k < 1 or context_chars < 0:
        raise MineError(f"need batch_size >= 1, top_k >= 1, context_chars >= 0; got {batch_size}, {top_k}, {context_chars}")
    device = resolve_device(device)
    model_spec = parse_model_spec(model, base_dir=base_dir)
    baseline_spec = parse_model_spec(baseline, base_dir=base_dir)
    if isinstance(corpus, (str, os.PathLike)):
        resolved = resolve_source(corpus, base_dir=base_dir)
        source: Any = resolved
        corpus_name: str | None = str(resolved)
        corpus_label = str(corpus)
    else:
        source, corpus_name, corpus_label = corpus, None, "documents given by the caller"

    cache = models if models is not None else ModelCache()
    subject = cache.get(model_spec, device)
    other = cache.get(baseline_spec, device)
    _check_same_tokenizer(subject, other)
    n_ctx = min(subject.n_ctx, other.n_ctx)
    seq_len = n_ctx if seq_len is None else int(seq_len)
    if not 2 <= seq_len <= n_ctx:
        raise MineError(f"seq_len must be between 2 and {n_ctx} (the smaller context of the two models), got {seq_len}")
    tokenizer = subject.tokenizer
    bos = subject.bos_token_id
    pad = bos if bos is not None else 0
    prefix = 0 if bos is None else 1
    aggregator = MineAggregator(
        tokenizer, top_k=top_k, context_chars=context_chars, prefix=prefix, special_ids=subject.special_token_ids
    )
    encoder = getattr(tokenizer, "backend_tokenizer", tokenizer)  # fast, and no max-length warnings
    import torch

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    start = time.perf_counter()
    try:
        for batch in iter_token_batches(
            source, encoder, seq_len=seq_len, batch_size=batch_size, max_tokens=max_tokens,
            bos_id=bos, pad_id=pad, split=split, progress=progress,
        ):
            gains, model_logp, baseline_logp = score_batch(subject, other, batch.tokens, float(floor), device)
            aggregator.update(batch, gains, model_logp, baseline_logp)
            if callback is not None:
                callback(aggregator)
    finally:
        torch.set_num_threads(previous_threads)
    seconds = time.perf_counter() - start
    if aggregator.overall.tokens == 0:
        raise MineError(
            f"corpus {corpus_label!r} (split {split}) gave no tokens to score: it is empty, or every document "
            f"of the split is blank"
        )
    return MineResult(
        model=str(model_spec),
        baseline=str(baseline_spec),
        model_text=model,
        baseline_text=baseline,
        corpus=corpus_name,
        corpus_label=corpus_label,
        split=split,
        floor=float(floor),
        seq_len=seq_len,
        batch_size=batch_size,
        max_tokens=max_tokens,
        top_k=top_k,
        context_chars=context_chars,
        device=device,
        tokens_seen=aggregator.tokens_seen,
        windows=aggregator.windows,
        documents=aggregator.documents,
        seconds=seconds,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        patterns=dict(aggregator.stats),
        overall=aggregator.overall,
        top_gains=[entry[2] for entry in sorted(aggregator.top_gains, reverse=True, key=lambda e: (e[0], e[1]))],
        top_losses=[entry[2] for entry in sorted(aggregator.top_losses, reverse=True, key=lambda e: (e[0], e[1]))],
        heldout_available=_has_heldout(corpus_name) if corpus_name is not None else None,
    )


def _check_same_tokenizer(model: Any, baseline: Any) -> None:
    advice = (
        "the miner compares the two models token by token, so they must share one tokenizer. To compare "
        "models with different tokenizers, write a logprob_gain claim on text inputs instead (baseline: SPEC, "
        "inputs: {kind: corpus, ...}): it lines the two tokenizations up on character spans"
    )
    for loaded in (model, baseline):
        if loaded.tokenizer is None:
            raise MineError(f"{loaded.spec.describe()} has no tokenizer, and the miner reads text: {advice}")
    vocab_m, vocab_b = model.tokenizer.get_vocab(), baseline.tokenizer.get_vocab()
    if vocab_m != vocab_b:
        differ = sorted(set(vocab_m.items()) ^ set(vocab_b.items()), key=lambda kv: (kv[1], kv[0]))[:3]
        shown = ", ".join(f"{t!r}={i}" for t, i in differ)
        raise MineError(
            f"{model.spec.describe()} and {baseline.spec.describe()} have different tokenizers "
            f"({len(vocab_m)} vs {len(vocab_b)} tokens; e.g. {shown} is in only one): {advice}"
        )


def _has_heldout(corpus: str) -> bool:
    """Whether the corpus has any held-out document (a small folder may have none)."""
    try:
        return any(split_of(doc.name) == "heldout" for doc in iter_documents(corpus))
    except ValueError:
        return False


# --- reports ---------------------------------------------------------------------------------------


def write_mine_report(result: MineResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``mine.md``, ``mine.json`` and (when the corpus can be named) ``draft.claims.yaml``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "mine.md", "json": out / "mine.json"}
    draft = draft_claims(result)
    data = result.to_dict()
    data["draft_claims"] = None if draft is None else {"file": "draft.claims.yaml", "claims": draft[1]}
    paths["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if draft is not None:
        paths["claims"] = out / "draft.claims.yaml"
        paths["claims"].write_text(draft[0], encoding="utf-8")
    paths["markdown"].write_text(render_markdown(result, draft[1] if draft else None), encoding="utf-8")
    return paths


def _round_down(x: float, step: float = THRESHOLD_STEP) -> float:
    return round(math.floor(x / step + 1e-9) * step, 10)


def _round_up(x: float, step: float = THRESHOLD_STEP) -> float:
    return round(math.ceil(x / step - 1e-9) * step, 10)


def draft_claims(result: MineResult) -> tuple[str, list[dict[str, Any]]] | None:
    """The draft claim file's text and its claims (None if the corpus was an iterable of documents).

    One claim per pattern whose sequence-level 95% interval lies above ``CLAIM_MIN_LOWER`` nats, with
    threshold half that lower end rounded down to 0.05; one claim over all tokens whose direction
    follows the data (gain, loss, or no difference beyond a band). Claims sample held-out documents.
    """
    if result.corpus is None:
        return None
    split = "heldout" if result.heldout_available else "all"
    inputs = {"kind": "corpus", "source": result.corpus, **DRAFT_INPUTS, "split": split}
    claims: list[dict[str, Any]] = []
    model, baseline = result.model, result.baseline

    def base(claim_id: str) -> dict[str, Any]:
        claim: dict[str, Any] = {"id": claim_id, "check": "logprob_gain", "baseline": baseline, "inputs": inputs}
        if result.floor != DEFAULT_FLOOR:
            claim["floor"] = result.floor
        return claim

    for stats in result.ranked():
        if stats.name == OTHER:
            continue  # "no pattern" cannot be written as a where: block
        lo, hi = stats.window_ci
        if not (math.isfinite(lo) and lo > CLAIM_MIN_LOWER):
            continue
        threshold = max(_round_down(lo / 2), THRESHOLD_STEP)
        claim = base(f"gain-{stats.name}")
        claim["statement"] = (
            f"{model} predicts the tokens of pattern {stats.name} ({stats.description}) better than {baseline}, "
            f"by at least {threshold:g} nats per token on average in a window (mined: {stats.window_mean:.3f} "
            f"[{lo:.3f}, {hi:.3f}] over {stats.windows:,} windows)"
        )
        claim["where"] = {"pattern": stats.name}
        claim["expect"] = {"mean_gain": f">= {threshold:g}"}
        claims.append(claim)

    overall = result.overall
    lo, hi = overall.window_ci
    claim = base("gain-all-tokens")
    mined = f"(mined: {overall.window_mean:.3f} [{lo:.3f}, {hi:.3f}] over {overall.windows:,} windows)"
    if math.isfinite(lo) and lo > CLAIM_MIN_LOWER:
        threshold = max(_round_down(lo / 2), THRESHOLD_STEP)
        claim["statement"] = f"{model} predicts text better than {baseline}, by at least {threshold:g} nats per token {mined}"
        claim["expect"] = {"mean_gain": f">= {threshold:g}"}
    elif math.isfinite(hi) and hi < -CLAIM_MIN_LOWER:
        threshold = max(_round_down(-hi / 2), THRESHOLD_STEP)
        claim["statement"] = f"{model} predicts text worse than {baseline}, by at least {threshold:g} nats per token {mined}"
        claim["expect"] = {"mean_gain": f"<= -{threshold:g}"}
    else:
        spread = max(abs(lo), abs(hi)) if math.isfinite(lo) and math.isfinite(hi) else 0.0
        band = _round_up(max(2 * spread, CLAIM_MIN_LOWER))
        claim["statement"] = (
            f"{model} and {baseline} predict text equally well, within {band:g} nats per token {mined}"
        )
        claim["expect"] = {"mean_gain": f"between -{band:g} {band:g}"}
    claims.append(claim)

    mined_on_heldout = result.split == "heldout"
    header = [
        "# Draft claims written by `interp-checks mine`. Move the ones you keep into hypotheses/.",
        f"# Mined {result.created}: {result.model} vs baseline {result.baseline},",
        f"# on corpus {result.corpus} (split {result.split}): {result.tokens_seen:,} tokens in {result.windows:,} windows "
        f"of {result.seq_len} tokens, floor {result.floor:g}.",
        "# Thresholds are starting points, not findings: each is half the lower end of the pattern's",
        "# sequence-level 95% interval on the mined text, rounded down to 0.05. Re-check them on held-out text",
    ]
    if split == "heldout" and not mined_on_heldout:
        header.append("# (these claims sample the corpus's held-out documents, which the miner did not read).")
    elif split == "heldout":
        header.append("# (these claims sample held-out documents, which is also what was mined: pick thresholds on other text).")
    else:
        header.append("# (this corpus has no held-out documents, so these claims sample all of it, including the mined text).")
    header.append("# Patterns: interp_checks/inputs/token_sets.py (PATTERNS); the same where: {pattern: ...} the miner grouped by.")
    lines = header + [f"model: {_yaml_scalar(model)}", "seed: 0", "claims:"]
    for claim in claims:
        lines.append(f"  - id: {claim['id']}")
        lines.append(f"    statement: {_yaml_scalar(claim['statement'])}")
        for key in ("check", "baseline", "floor"):
            if key in claim:
                lines.append(f"    {key}: {_yaml_scalar(claim[key])}")
        lines.append(f"    inputs: {_yaml_flow(claim['inputs'])}")
        if "where" in claim:
            lines.append(f"    where: {_yaml_flow(claim['where'])}")
        lines.append(f"    expect: {_yaml_flow(claim['expect'])}")
    return "\n".join(lines) + "\n", claims


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_:/.\-]*$")


def _yaml_scalar(value: Any) -> str:
    """A YAML scalar: plain when it reads back as the same string, else a JSON string (valid YAML)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and not text.endswith(":") and text.lower() not in ("true", "false", "yes", "no", "on", "off", "null"):
        return text
    return json.dumps(text, ensure_ascii=False)


def _yaml_flow(mapping: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{key}: {_yaml_scalar(value)}" for key, value in mapping.items()) + "}"


# --- markdown --------------------------------------------------------------------------------------


def render_markdown(result: MineResult, claims: list[dict[str, Any]] | None = None) -> str:
    total_tokens, total_gain = result.overall.tokens, result.overall.gain_sum
    overall = result.overall
    lo, hi = overall.window_ci
    out = [
        f"# Miner: {result.model} vs {result.baseline}",
        "",
        f"Corpus `{result.corpus_label}` (split {result.split}): {result.tokens_seen:,} tokens read in "
        f"{result.windows:,} windows of up to {result.seq_len} tokens from {result.documents:,} documents; "
        f"{total_tokens:,} tokens scored. {result.seconds:.1f} s on {result.device} "
        f"({result.tokens_per_second:,.0f} tokens/s). Mined {result.created}.",
        "",
        f"**Gain** of a token = max(logp_model, {result.floor:g}) − max(logp_baseline, {result.floor:g}), in nats: "
        f"positive where `{result.model}` predicts the token better than `{result.baseline}`. Over all scored "
        f"tokens: token-level mean {_fmt(overall.token_mean)}; sequence-level mean {_fmt(overall.window_mean)} "
        f"[{_fmt(lo)}, {_fmt(hi)}].",
        "",
        "## Patterns",
        "",
        "Sorted by each pattern's total gain (the sum of its tokens' gains). A token can match several "
        "patterns, so the shares add up to more than 100%; `other` is the tokens that match none."
        + (
            " The total over all tokens is negative here, so a pattern with a positive total shows a negative share."
            if overall.gain_sum < 0
            else ""
        ),
        "",
        "- **token-level mean**: over the pattern's tokens, pooled — what the pattern contributes to the total;",
        "- **sequence-level mean**: the mean over windows of each window's mean gain on the pattern's tokens, "
        "with a normal-approximation 95% interval. The window is the unit for statistics (tokens of one window "
        "are not independent) and this is what a `logprob_gain` claim measures. Windows cut from the same "
        "document are not independent either, so read the interval as optimistic.",
        "",
        "| pattern | description | tokens | share of tokens | token-level mean gain | gain > 1 nat | "
        "sequence-level mean gain [95% CI] (windows) | share of total gain |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for stats in result.ranked():
        slo, shi = stats.window_ci
        out.append(
            f"| `{stats.name}` | {stats.description} | {stats.tokens:,} | {_pct(_ratio(stats.tokens, total_tokens))} | "
            f"{_fmt(stats.token_mean)} | {_pct(_ratio(stats.above_1, stats.tokens))} | "
            f"{_fmt(stats.window_mean if stats.windows else math.nan)} [{_fmt(slo)}, {_fmt(shi)}] ({stats.windows:,}) | "
            f"{_pct(_ratio(stats.gain_sum, total_gain))} |"
        )
    for title, contexts, sign in (
        (f"Largest gains ({result.model} better)", result.top_gains, "gain"),
        (f"Largest losses ({result.baseline} better)", result.top_losses, "loss"),
    ):
        out += ["", f"## {title}", ""]
        if not contexts:
            out.append(f"No token with a {sign}.")
            continue
        counts = _pattern_counts(contexts, result.patterns)
        listed = ", ".join(f"`{name}` {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n)
        out += [
            f"Of these {len(contexts)} tokens: {listed}. The token is marked {MARK_OPEN} {MARK_CLOSE}; ⏎ is a newline.",
            "",
            "| # | gain | logp model | logp baseline | patterns | document @ token | context |",
            "|--:|--:|--:|--:|---|---|---|",
        ]
        for i, c in enumerate(contexts, start=1):
            out.append(
                f"| {i} | {_fmt(c.gain)} | {_fmt(c.model_logp, 2, sign=False)} | {_fmt(c.baseline_logp, 2, sign=False)} | "
                f"{', '.join(c.patterns) or OTHER} | {_cell(c.document)} @ {c.position} | {_code(c.context)} |"
            )
    out += ["", "## Draft claims", ""]
    if claims is None:
        out.append("None: the corpus was given as documents in memory, which a claim file cannot name.")
    else:
        with_pattern = [c for c in claims if "where" in c]
        out.append(
            f"`draft.claims.yaml`: {len(with_pattern)} pattern claim(s) (sequence-level 95% interval above "
            f"{CLAIM_MIN_LOWER:g} nats; threshold half its lower end, rounded down to {THRESHOLD_STEP:g}) and one "
            "over all tokens. Run it as is with `python -m pytest draft.claims.yaml`; move the claims you keep "
            "into `hypotheses/`."
        )
        out.append("")
        for claim in claims:
            out.append(f"- `{claim['id']}`: {claim['expect']['mean_gain']} — {claim['statement']}")
    return "\n".join(out) + "\n"


def _nan_low(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _fmt(x: float | None, digits: int = 3, sign: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "⏎")


def _code(text: str) -> str:
    shown = text.replace("\r", "").replace("\n", "⏎").replace("\t", "⇥").replace("|", "\\|")
    fence = "``" if "`" in shown else "`"
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"
