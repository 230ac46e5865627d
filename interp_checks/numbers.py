"""Numbers as reports store them. Pure Python: ``stats/``, ``report/`` and the miner may all import it."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_or_none", "format_number", "ratio_or_none"]


def finite_or_none(x: Any) -> float | None:
    """``float(x)``, or ``None`` for ``None``, NaN and infinities.

    JSON has no NaN or Infinity, so every value a report or ``mine.json`` stores goes through this:
    an undefined number (a mean of nothing, an interval from one sample) is written as ``null``.
    """
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def ratio_or_none(a: float, b: float) -> float | None:
    """``a / b``, or ``None`` when ``b`` is zero (a share of nothing)."""
    return a / b if b else None


def format_number(value: Any, digits: int = 3) -> str:
    """A number as report tables show it: ``digits`` decimals, scientific notation for the very small
    and very large (p-values of 1e-60 and effect sizes of 1e4 stay readable), "–" for a missing
    value and ∞ for an infinite one; anything else as ``str``."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value != 0 and (abs(value) < 10**-digits or abs(value) >= 10**4):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)
