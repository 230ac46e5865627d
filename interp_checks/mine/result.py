"""What a mining run found (:class:`MineResult`); ``to_dict()`` is ``mine.json``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from interp_checks.mine.aggregate import Context, PatternStats, pattern_counts
from interp_checks.numbers import finite_or_none
from interp_checks.report.mine_markdown import MINE_SCHEMA as SCHEMA

__all__ = ["SCHEMA", "MineResult"]


def _nan_low(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


@dataclass
class MineResult:
    """What a mining run found; ``to_dict()`` is ``mine.json`` (schema :data:`SCHEMA`)."""

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
    heldout_available: bool | None = None  # whether the corpus has held-out documents (None: not named)

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
            "heldout_available": self.heldout_available,
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
            "tokens_per_second": finite_or_none(self.tokens_per_second),
            "statistics_note": (
                "token-level = pooled over tokens; sequence-level = mean over windows of the window's mean gain on "
                "the pattern's tokens, with a normal-approximation 95% interval (windows are the unit for statistics)"
            ),
            "overall": self.overall.to_dict(total_tokens, total_gain),
            "patterns": [stats.to_dict(total_tokens, total_gain) for stats in self.ranked()],
            "top_gains": [c.to_dict() for c in self.top_gains],
            "top_losses": [c.to_dict() for c in self.top_losses],
            "top_gains_by_pattern": pattern_counts(self.top_gains, self.patterns),
            "top_losses_by_pattern": pattern_counts(self.top_losses, self.patterns),
        }
