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
from collections.abc import Iterable
from enum import Enum

from interp_checks.stats.comparison import Comparison
from interp_checks.stats.evaluate import Evaluation

__all__ = ["Outcome", "decide", "combine"]


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
