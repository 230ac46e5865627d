"""What the engine concludes about claims: plain data, shared by the engine, the plugin and reports.

The engine fills these; ``report.schema`` turns them into the versioned JSON record people and CI
read. Nothing here computes anything: it imports no model, check or statistics code beyond the
``Evaluation`` it carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from interp_checks.figures import Figure

if TYPE_CHECKING:
    from interp_checks.claims.schema import ClaimSpec
    from interp_checks.stats import Evaluation

ERROR = "error"
INCONCLUSIVE = "inconclusive"


@dataclass
class ExpectationResult:
    """One expectation of a claim (``score[L1H0] >= 0.5``) and its share in the verdict."""

    statistic: str
    comparison: str
    evaluation: "Evaluation | None"
    unit: str | None = None
    p_adjusted: float = float("nan")
    p_adjusted_refute: float = float("nan")
    outcome: str = INCONCLUSIVE

    @property
    def deciding_p(self) -> float:
        """The adjusted p-value on the side this expectation came out on (refutation p if refuted)."""
        return self.p_adjusted_refute if self.outcome == "refuted" else self.p_adjusted


@dataclass
class ClaimResult:
    """A claim's verdict with everything needed to read it: numbers, method, family, timing.

    ``deciding`` indexes the expectation that decided the verdict (see
    ``stats.verdict.ClaimDecision``); its effect size is the claim's headline effect size and
    ``p_value`` its adjusted p-value on the deciding side. ``family_size`` is the number of claims
    whose p-values were adjusted together (claims not run count as p = 1). ``load_s`` is the time
    spent loading models (and building random-weights twins) that this claim was the first to
    need; ``measure_s`` its share of the shared forward passes plus its own statistics.
    """

    spec: "ClaimSpec"
    outcome: str
    expectations: list[ExpectationResult] = field(default_factory=list)
    error: str | None = None
    model: str = ""
    null: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    n: int | None = None
    load_s: float = 0.0
    measure_s: float = 0.0
    family: str = "session"
    family_size: int | None = None
    adjust: str = "holm"
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)
    deciding: int | None = None
    p_value: float = float("nan")
    figures: list[Figure] = field(default_factory=list)  # plot-ready pictures (see interp_checks.figures)
    # the engine's strip of each expectation; the deciding one joins ``figures`` once decided
    strip_candidates: list[Figure | None] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.load_s + self.measure_s

    @property
    def deciding_expectation(self) -> ExpectationResult | None:
        if self.deciding is None or not 0 <= self.deciding < len(self.expectations):
            return None
        return self.expectations[self.deciding]
