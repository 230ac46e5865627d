"""Three-valued verdicts: supported, refuted, or inconclusive.

A claim is only *supported* when two views agree: the (multiplicity-adjusted)
p-value rejects "the claim is false" at alpha, **and** the whole 1 - 2*alpha
interval lies on the claimed side. The interval alone is a one-sided test at
alpha but is not adjusted for multiplicity; the adjusted p-value alone says
nothing about the estimate's precision in the report. Requiring both means a
supported claim always shows an interval that visibly backs it up.

*Refuted* is symmetric: the claim's opposite is significant and the interval
lies wholly on the other side. Everything else (too few sequences, too much
noise, an estimate sitting on the threshold) is *inconclusive*, which is a
legitimate outcome, not an error: it says "measure more", not "false".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from interp_checks.stats.comparison import Comparison
from interp_checks.stats.evaluate import Evaluation

__all__ = ["ClaimDecision", "Outcome", "claim_p_values", "combine", "decide", "decide_claim"]


class Outcome(str, Enum):
    """Verdict for one claim. A ``str`` subclass so it serialises as its value."""

    SUPPORTED = "supported"
    REFUTED = "refuted"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


def _ci_on_claimed_side(comparison: Comparison, lo: float, hi: float) -> bool:
    """The whole interval satisfies the claim: every claim is a half-line or a band (convex), so
    that holds exactly when both ends do."""
    return comparison.holds(lo) and comparison.holds(hi)


def _ci_on_refuting_side(comparison: Comparison, lo: float, hi: float) -> bool:
    """The whole interval satisfies the *negation* of the claim."""
    t = comparison.threshold
    if comparison.op == ">=":  # not (mean >= t)  <=>  mean < t
        return hi < t
    if comparison.op == ">":  # not (mean > t)  <=>  mean <= t
        return hi <= t
    if comparison.op == "<=":
        return lo > t
    if comparison.op == "<":
        return lo >= t
    assert comparison.upper is not None
    return hi < t or lo > comparison.upper


def decide(
    evaluation: Evaluation, *, p_adjusted: float, p_adjusted_refute: float, alpha: float
) -> Outcome:
    """Verdict for one evaluated claim, given its multiplicity-adjusted p-values.

    ``p_adjusted`` / ``p_adjusted_refute`` are ``evaluation.p_value`` /
    ``evaluation.p_value_refute`` after :func:`adjust_p_values` across the run
    (or unchanged for a single claim). ``alpha`` should be the one
    :func:`evaluate` was called with, so that the interval's level
    (1 - 2*alpha) matches the test. Any NaN among the inputs gives
    INCONCLUSIVE.
    """
    lo, hi = evaluation.ci
    values = (lo, hi, evaluation.estimate, float(p_adjusted), float(p_adjusted_refute))
    if any(math.isnan(v) for v in values):
        return Outcome.INCONCLUSIVE
    comparison = evaluation.comparison
    if p_adjusted < alpha and _ci_on_claimed_side(comparison, lo, hi):
        return Outcome.SUPPORTED
    if p_adjusted_refute < alpha and _ci_on_refuting_side(comparison, lo, hi):
        return Outcome.REFUTED
    return Outcome.INCONCLUSIVE


def combine(outcomes: Iterable[Outcome]) -> Outcome:
    """Verdict for a claim made of several expectations.

    REFUTED if any expectation is refuted (one false part makes the claim
    false); SUPPORTED only if every part is supported; otherwise INCONCLUSIVE.

    Raises:
        ValueError: no outcomes. A claim with no expectations is a bug upstream
            and must not be vacuously "supported".
    """
    collected = [Outcome(o) for o in outcomes]
    if not collected:
        raise ValueError("combine() needs at least one outcome; a claim with no expectations cannot be judged")
    if Outcome.REFUTED in collected:
        return Outcome.REFUTED
    if all(o is Outcome.SUPPORTED for o in collected):
        return Outcome.SUPPORTED
    return Outcome.INCONCLUSIVE


def claim_p_values(evaluations: Sequence[Evaluation]) -> tuple[float, float]:
    """One claim's (support p, refutation p) from its expectations' raw p-values.

    A claim holds only if every expectation holds ("these four heads are induction heads", "exactly
    these heads and no other"): an intersection-union test, whose p is the largest expectation p,
    with no correction needed. It is refuted if any expectation is refuted: a union of k chances,
    so the smallest refutation p is Bonferroni-multiplied by k. These claim-level p-values are what
    the session's multiplicity adjustment treats as one hypothesis each, so a claim with many
    expectations counts once in the family.
    """
    if not evaluations:
        raise ValueError("a claim with no expectations cannot be judged")
    k = len(evaluations)
    support = max(float(e.p_value) for e in evaluations)
    refute = min(1.0, k * min(float(e.p_value_refute) for e in evaluations))
    return support, refute


@dataclass(frozen=True)
class ClaimDecision:
    """A claim's verdict, each expectation's share in it, and which expectation decided it.

    ``p_adjusted[i]`` / ``p_adjusted_refute[i]`` are expectation i's p-values after the claim's
    multiplicity factors (within the claim and across the family), so that the claim is supported
    exactly when every expectation's ``p_adjusted`` is below alpha (with its interval on the claimed
    side), and refuted exactly when some expectation's ``p_adjusted_refute`` is (with its interval
    on the other side). ``deciding`` indexes the expectation that decided the verdict: for a
    supported claim the weakest one (largest adjusted p), for a refuted claim the strongest
    refutation (smallest adjusted refutation p), for an inconclusive claim the unsupported
    expectation with the largest adjusted p. ``p_value`` is the deciding expectation's adjusted
    p-value on the side that decided (the refutation p for a refuted claim).
    """

    outcome: Outcome
    outcomes: tuple[Outcome, ...]
    p_adjusted: tuple[float, ...]
    p_adjusted_refute: tuple[float, ...]
    deciding: int
    p_value: float


def _factor(adjusted: float, raw: float) -> float:
    """How much the family's adjustment multiplied a claim's p (1 when the raw p is 0 or NaN)."""
    if math.isnan(adjusted) or math.isnan(raw) or raw <= 0:
        return 1.0
    return adjusted / raw


def decide_claim(
    evaluations: Sequence[Evaluation], *, p_adjusted: float, p_adjusted_refute: float, alpha: float
) -> ClaimDecision:
    """Verdict of one claim, given its claim-level p-values after adjustment over the family.

    ``p_adjusted`` / ``p_adjusted_refute`` are :func:`claim_p_values` after
    :func:`interp_checks.stats.adjust_p_values` across the family.
    """
    raw_support, raw_refute = claim_p_values(evaluations)
    k = len(evaluations)
    support_factor = _factor(p_adjusted, raw_support)
    refute_factor = _factor(p_adjusted_refute, raw_refute)
    adjusted = tuple(min(1.0, e.p_value * support_factor) for e in evaluations)
    adjusted_refute = tuple(min(1.0, k * e.p_value_refute * refute_factor) for e in evaluations)
    outcomes = tuple(
        decide(e, p_adjusted=a, p_adjusted_refute=b, alpha=alpha) for e, a, b in zip(evaluations, adjusted, adjusted_refute)
    )
    outcome = combine(outcomes)
    indices = range(k)
    if outcome is Outcome.REFUTED:
        deciding = min((i for i in indices if outcomes[i] is Outcome.REFUTED), key=lambda i: adjusted_refute[i])
        p_value = adjusted_refute[deciding]
    elif outcome is Outcome.SUPPORTED:
        deciding = max(indices, key=lambda i: adjusted[i])
        p_value = adjusted[deciding]
    else:
        deciding = max((i for i in indices if outcomes[i] is not Outcome.SUPPORTED), key=lambda i: _nan_last(adjusted[i]))
        p_value = adjusted[deciding]
    return ClaimDecision(outcome, outcomes, adjusted, adjusted_refute, deciding, p_value)


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value
