"""The comparison a claim makes about a statistic: ``>= 0.4``, ``between 0.2 0.5`` ...

A :class:`Comparison` is only the *shape* of a claim (which side of which
threshold the population mean is said to lie on). Parsing the textual form is
done by the claims layer; this module only validates and renders it, so that
the statistics code never has to cope with a malformed claim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["Comparison", "ComparisonOp"]

ComparisonOp = Literal[">=", ">", "<=", "<", "between"]
_OPS: frozenset[str] = frozenset(get_args(ComparisonOp))


def _format_number(x: float) -> str:
    """Shortest text that round-trips to the same float (``0.4``, ``1``, ``1e-05``).

    ``repr`` is used rather than ``:g`` because ``:g`` rounds to 6 significant
    digits, and the rendered comparison is what a report shows next to the
    verdict: it must name the exact threshold that was tested.
    """
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _as_finite_float(value: object, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"Comparison {what} must be a number, got bool {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"Comparison {what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"Comparison {what} must be finite, got {number!r}")
    return number


@dataclass(frozen=True)
class Comparison:
    """Which side of a threshold (or which interval) a claimed mean lies on.

    ``op`` is one of ``">="``, ``">"``, ``"<="``, ``"<"``, ``"between"``.
    For ``"between"``, ``threshold`` is the lower bound and ``upper`` the upper
    bound (inclusive on both ends, ``threshold < upper``); for every other op
    ``upper`` must be ``None``.
    """

    op: ComparisonOp
    threshold: float
    upper: float | None = None

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(
                f"unknown comparison operator {self.op!r}; expected one of "
                f"{', '.join(repr(o) for o in sorted(_OPS))}"
            )
        # Normalise to plain floats so that equality, hashing and JSON output
        # do not depend on whether the caller passed an int or a numpy scalar.
        object.__setattr__(self, "threshold", _as_finite_float(self.threshold, "threshold"))
        if self.op == "between":
            if self.upper is None:
                raise ValueError(
                    "a 'between' comparison needs an upper bound: Comparison('between', lower, upper)"
                )
            upper = _as_finite_float(self.upper, "upper bound")
            if not self.threshold < upper:
                raise ValueError(
                    f"'between' needs lower < upper, got lower={_format_number(self.threshold)} "
                    f"and upper={_format_number(upper)}"
                )
            object.__setattr__(self, "upper", upper)
        elif self.upper is not None:
            raise ValueError(
                f"only 'between' takes an upper bound; got op {self.op!r} with upper={self.upper!r}"
            )

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies on the claimed side (NaN never does).

        This is a plain point check with no uncertainty; the statistical
        decision lives in :func:`interp_checks.stats.verdict.decide`.
        """
        v = float(value)
        if math.isnan(v):
            return False
        t = self.threshold
        if self.op == ">=":
            return v >= t
        if self.op == ">":
            return v > t
        if self.op == "<=":
            return v <= t
        if self.op == "<":
            return v < t
        assert self.upper is not None  # guaranteed by __post_init__
        return t <= v <= self.upper

    def __str__(self) -> str:
        if self.op == "between":
            assert self.upper is not None
            return f"between {_format_number(self.threshold)} {_format_number(self.upper)}"
        return f"{self.op} {_format_number(self.threshold)}"
