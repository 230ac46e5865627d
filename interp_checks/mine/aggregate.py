"""The miner's bounded aggregates: per-pattern running statistics and the top-k contexts each way.

Memory does not grow with the corpus: only per pattern a count, a sum and a sum of squares of
gains, a running (Welford/Chan) mean and variance of per-window mean gains, and two heaps of
``top_k`` contexts are kept. No per-token value outlives its batch.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from interp_checks.checks.compare import mean_over
from interp_checks.inputs.corpora import TokenBatch
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.streams import RowText, decode as _decode, token_strings
from interp_checks.inputs.token_sets import PATTERNS
from interp_checks.numbers import finite_or_none, ratio_or_none

__all__ = ["ALL", "OTHER", "Context", "MineAggregator", "MineError", "PatternStats", "pattern_counts", "token_strings"]

OTHER = "other"  # tokens that match no pattern
ALL = "all tokens"
BIG_GAIN = 1.0  # nats: "how many tokens of the pattern gain more than this"
Z95 = 1.959963984540054
MARK_OPEN, MARK_CLOSE, ELLIPSIS = "⟦", "⟧", "…"


class MineError(ValueError):
    """The miner cannot run on these models or this corpus; the message says why and what to do."""


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
            "share_of_tokens": ratio_or_none(self.tokens, total_tokens),
            "gain_sum": self.gain_sum,
            "gain_sumsq": self.gain_sumsq,
            "share_of_total_gain": ratio_or_none(self.gain_sum, total_gain),
            "token_mean_gain": finite_or_none(self.token_mean),
            "token_sd_gain": finite_or_none(self.token_sd),
            "tokens_gain_above_1_nat": self.above_1,
            "tokens_gain_below_minus_1_nat": self.below_1,
            "windows": self.windows,
            "sequence_mean_gain": finite_or_none(self.window_mean) if self.windows else None,
            "sequence_sd_gain": finite_or_none(self.window_sd),
            "sequence_ci95": [finite_or_none(lo), finite_or_none(hi)],
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
            "model_logp": finite_or_none(self.model_logp),
            "baseline_logp": finite_or_none(self.baseline_logp),
            "document": self.document,
            "position": self.position,
            "token": self.token,
            "context": self.context,
            "patterns": list(self.patterns),
        }


def pattern_counts(contexts: list[Context], patterns: Iterable[str]) -> dict[str, int]:
    """How many of ``contexts`` match each pattern (``other``: those matching none)."""
    counts = {name: 0 for name in patterns}
    for context in contexts:
        for name in context.patterns or [OTHER]:
            counts[name] = counts.get(name, 0) + 1
    return counts


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
        self.row_text = RowText(tokenizer, special_ids)
        self.strings = self.row_text.strings
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
        return self.row_text.batch(batch, kind="mine")

    def masks(self, batch: TokenBatch, scored: np.ndarray, text: InputBatch | None = None) -> dict[str, np.ndarray]:
        """Scored positions of each pattern, and of ``other`` (none of them); ``text``: the batch's
        :meth:`text_batch`, when the caller already has it."""
        text = text if text is not None else self.text_batch(batch)
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
        text: InputBatch | None = None,
    ) -> None:
        gains = np.asarray(gains, dtype=np.float64)
        if gains.shape != batch.tokens.shape:
            raise MineError(f"gains have shape {gains.shape}, the batch {batch.tokens.shape}")
        scored = batch.valid.copy()
        scored[:, 0] = False  # nothing predicts position 0
        scored &= np.isfinite(gains)
        masks = self.masks(batch, scored, text)
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
