"""Numbers as reports store them. Pure Python: ``stats/``, ``report/`` and the miner may all import it."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_or_none", "ratio_or_none"]


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
