"""Draft claims from a mining run: ``draft.claims.yaml``, runnable as is, with conservative thresholds.

One ``logprob_gain`` claim per pattern whose sequence-level 95% interval lies above
``CLAIM_MIN_LOWER`` nats, with threshold half that lower end rounded down to ``THRESHOLD_STEP``;
one claim over all tokens whose direction follows the data (gain, loss, or no difference beyond a
band). Windows cut from the same document are correlated, so the miner's intervals are optimistic:
hence half the lower end. Claims sample the corpus's held-out documents where it has any, which
the miner reads only when asked to (``--split all`` or ``heldout``; the default is ``train``): the
header and ``mine.json`` say which.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml

from interp_checks.checks.compare import DEFAULT_FLOOR
from interp_checks.mine.aggregate import OTHER
from interp_checks.mine.result import MineResult

__all__ = ["CLAIM_MIN_LOWER", "THRESHOLD_STEP", "Draft", "draft_claims"]

CLAIM_MIN_LOWER = 0.1  # nats: a pattern gets a draft claim when its interval's lower end exceeds this
THRESHOLD_STEP = 0.05
DRAFT_INPUTS = {"n": 64, "chars": 700}  # per claim: 64 passages of 700 characters from the sampled split
RULE = (
    f"sequence-level 95% interval above {CLAIM_MIN_LOWER:g} nats; threshold half its lower end, "
    f"rounded down to {THRESHOLD_STEP:g}"
)


@dataclass(frozen=True)
class Draft:
    """A draft claim file: its text (``#`` header + YAML), the claims, and what text they sample."""

    text: str
    claims: list[dict[str, Any]]
    split: str  # the split the claims sample
    note: str  # a sentence: whether the miner read that text (the header says the same)

    def to_dict(self, file: str) -> dict[str, Any]:
        """``mine.json``'s ``draft_claims``."""
        return {"file": file, "claims": self.claims, "split": self.split, "note": self.note, "rule": RULE}


def _round_down(x: float, step: float = THRESHOLD_STEP) -> float:
    return round(math.floor(x / step + 1e-9) * step, 10)


def _round_up(x: float, step: float = THRESHOLD_STEP) -> float:
    return round(math.ceil(x / step - 1e-9) * step, 10)


def _claims(result: MineResult, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    claims: list[dict[str, Any]] = []
    model, baseline = result.model, result.baseline

    def claim(claim_id: str, statement: str, expect: str, where: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": claim_id, "statement": statement, "check": "logprob_gain", "baseline": baseline}
        if result.floor != DEFAULT_FLOOR:
            out["floor"] = result.floor
        out["inputs"] = dict(inputs)
        if where is not None:
            out["where"] = where
        out["expect"] = {"mean_gain": expect}
        return out

    for stats in result.ranked():
        if stats.name == OTHER:
            continue  # "no pattern" cannot be written as a where: block
        lo, hi = stats.window_ci
        if not (math.isfinite(lo) and lo > CLAIM_MIN_LOWER):
            continue
        threshold = max(_round_down(lo / 2), THRESHOLD_STEP)
        statement = (
            f"{model} predicts the tokens of pattern {stats.name} ({stats.description}) better than {baseline}, "
            f"by at least {threshold:g} nats per token on average in a window (mined: {stats.window_mean:.3f} "
            f"[{lo:.3f}, {hi:.3f}] over {stats.windows:,} windows)"
        )
        claims.append(claim(f"gain-{stats.name}", statement, f">= {threshold:g}", {"pattern": stats.name}))

    overall = result.overall
    lo, hi = overall.window_ci
    mined = f"(mined: {overall.window_mean:.3f} [{lo:.3f}, {hi:.3f}] over {overall.windows:,} windows)"
    if math.isfinite(lo) and lo > CLAIM_MIN_LOWER:
        threshold = max(_round_down(lo / 2), THRESHOLD_STEP)
        statement = f"{model} predicts text better than {baseline}, by at least {threshold:g} nats per token {mined}"
        claims.append(claim("gain-all-tokens", statement, f">= {threshold:g}"))
    elif math.isfinite(hi) and hi < -CLAIM_MIN_LOWER:
        threshold = max(_round_down(-hi / 2), THRESHOLD_STEP)
        statement = f"{model} predicts text worse than {baseline}, by at least {threshold:g} nats per token {mined}"
        claims.append(claim("gain-all-tokens", statement, f"<= -{threshold:g}"))
    else:
        spread = max(abs(lo), abs(hi)) if math.isfinite(lo) and math.isfinite(hi) else 0.0
        band = _round_up(max(2 * spread, CLAIM_MIN_LOWER))
        statement = f"{model} and {baseline} predict text equally well, within {band:g} nats per token {mined}"
        claims.append(claim("gain-all-tokens", statement, f"between -{band:g} {band:g}"))
    return claims


def _sampled_split(result: MineResult) -> tuple[str, str]:
    """The split the draft claims sample, and a sentence saying truthfully whether the miner read it.

    Claims sample the held-out documents whenever the corpus has any. Only a run on ``train`` (the
    default) leaves them unread; ``all`` and ``heldout`` read them, so the thresholds were picked on
    the very text the claims test and must be confirmed on other text.
    """
    if not result.heldout_available:
        return "all", "This corpus has no held-out documents, so these claims sample all of it, including the mined text."
    if result.split == "train":
        return "heldout", "These claims sample the corpus's held-out documents, which the miner did not read."
    halves = {"discovery": "confirmation", "confirmation": "discovery"}
    if result.split in halves:
        other = halves[result.split]
        return other, (
            f"The miner read the {result.split} half of the held-out documents; these claims sample the {other} "
            "half, which it did not read."
        )
    read = "every document, the held-out ones included" if result.split == "all" else "only the held-out documents"
    return "heldout", (
        f"The miner read {read} (split {result.split}), and these claims sample the held-out documents: their "
        "thresholds were picked on the text they test, so confirm them on text the miner did not read (another "
        "corpus, or mine with --split train)."
    )


def draft_claims(result: MineResult) -> Draft | None:
    """The draft claim file for ``result`` (None if the corpus was an iterable of documents)."""
    if result.corpus is None:
        return None
    split, note = _sampled_split(result)
    claims = _claims(result, {"kind": "corpus", "source": result.corpus, "split": split, **DRAFT_INPUTS})
    header = [
        "Draft claims written by `interp-checks mine`. Move the ones you keep into hypotheses/.",
        f"Mined {result.created}: {result.model} vs baseline {result.baseline},",
        f"on corpus {result.corpus} (split {result.split}): {result.tokens_seen:,} tokens in {result.windows:,} windows "
        f"of {result.seq_len} tokens, floor {result.floor:g}.",
        "Thresholds are starting points, not findings: each is half the lower end of the pattern's",
        f"sequence-level 95% interval on the mined text, rounded down to {THRESHOLD_STEP:g}.",
        *textwrap.wrap(note, 100),
        "Patterns: interp_checks/inputs/token_sets.py (PATTERNS); the same where: {pattern: ...} the miner grouped by.",
    ]
    body = yaml.safe_dump(
        {"model": result.model, "seed": 0, "claims": claims},
        sort_keys=False, allow_unicode=True, default_flow_style=None, width=1_000_000,
    )
    return Draft("".join(f"# {line}\n" for line in header) + body, claims, split, note)
