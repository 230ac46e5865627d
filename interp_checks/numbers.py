"""Small numeric helpers shared by statistics, the miner and reports."""

from __future__ import annotations

import math

__all__ = ["finite_or_none"]


def finite_or_none(value: float | None) -> float | None:
    """``float(value)`` when finite, else None: JSON has no NaN or Infinity, so reports write null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
