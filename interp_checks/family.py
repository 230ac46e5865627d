"""The multiplicity family: which claims' p-values are adjusted together.

Light on purpose (the pytest plugin sizes the family at collection, in every pytest run): statistics
are imported only when claims are judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Family"]


@dataclass
class Family:
    """The claims whose p-values are adjusted together, and what is known of them so far.

    ``size`` is fixed up front (the claims a session collected, or the claims of one call): claims
    not judged yet count as p = 1 (``adjust_p_values(..., family_size=)``), so a selection or a
    re-run is never judged more leniently than the whole family would be. ``support`` and
    ``refute`` keep the claim-level raw p-values of every claim judged so far; a later call (a
    Python claim) is adjusted together with them. If more claims are judged than ``size`` foresaw,
    the family grows to fit and ``grew`` records it (claims judged earlier kept the smaller size).
    """

    name: str = "session"
    size: int = 0
    support: list[float] = field(default_factory=list)
    refute: list[float] = field(default_factory=list)
    grew: bool = False

    def adjust(self, support: list[float], refute: list[float], method: str) -> tuple[list[float], list[float]]:
        """Add claims' raw p-values to the ledger; their adjusted values over the whole family."""
        first = len(self.support)
        self.support += support
        self.refute += refute
        if len(self.support) > self.size:
            self.grew = self.size > 0
            self.size = len(self.support)
        from interp_checks.stats import adjust_p_values  # scipy: only once claims are judged

        adjusted_support = adjust_p_values(self.support, method, family_size=self.size)[first:]
        adjusted_refute = adjust_p_values(self.refute, method, family_size=self.size)[first:]
        return [float(p) for p in adjusted_support], [float(p) for p in adjusted_refute]
