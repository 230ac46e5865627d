"""Multiplicity correction across the claims tested in one run.

A run typically tests many claims (every expectation of every hypothesis
file); at a per-claim alpha of 0.05, some false claims would be "supported" by
chance alone. Adjusting the claim p-values before deciding controls that:

* ``"holm"`` (default): Holm's step-down procedure, controlling the
  family-wise error rate (the chance of supporting *any* false claim) under
  arbitrary dependence between claims. Claims about the same model share
  inputs, so they are dependent, and Holm needs no assumption about how.
  It is uniformly more powerful than plain Bonferroni.
* ``"bh"``: Benjamini-Hochberg, controlling the false discovery rate; more
  lenient, for exploratory sweeps over many heads/layers.
* ``"none"``: no adjustment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats

__all__ = ["adjust_p_values", "AdjustMethod"]

AdjustMethod = Literal["holm", "bh", "none"]


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values.

    With p sorted ascending p_(1) <= ... <= p_(m), the adjusted value of the
    i-th smallest is ``max_{j <= i} min(1, (m - j + 1) * p_(j))``: the running
    maximum makes the adjustment monotone in the raw p (a smaller raw p never
    gets a larger adjusted one), and rejecting "adjusted < alpha" is exactly
    Holm's step-down rule.
    """
    m = p.size
    order = np.argsort(p, kind="stable")
    multipliers = np.arange(m, 0, -1, dtype=float)  # m, m-1, ..., 1
    stepped = np.minimum(1.0, np.maximum.accumulate(multipliers * p[order]))
    adjusted = np.empty_like(stepped)
    adjusted[order] = stepped
    return adjusted


def adjust_p_values(
    p_values: Sequence[float], method: AdjustMethod = "holm", *, family_size: int | None = None
) -> np.ndarray:
    """Adjusted p-values in the input order (a new float array).

    ``family_size`` is the number of hypotheses in the whole family when only some of them are
    given (a re-run of the failed claims, a ``-k`` selection, claims made from Python one test at a
    time). The missing ones are taken to have p = 1, the least favourable value: Holm and BH are
    monotone in every p, so each adjusted p is then at least what the whole family would give, and
    re-running a subset can never judge a claim more leniently than the full run.

    Raises:
        ValueError: unknown ``method``, p-values not 1-D, NaN or outside [0, 1], or a
            ``family_size`` smaller than the number of p-values.
    """
    if method not in ("holm", "bh", "none"):
        raise ValueError(f"unknown p-value adjustment {method!r}; expected 'holm', 'bh' or 'none'")
    p = np.array(p_values, dtype=float)  # a copy: never alias the caller's array
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if p.size == 0:
        return p
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1] and not be NaN, got {p.tolist()}")
    if family_size is not None and family_size != p.size:
        if family_size < p.size:
            raise ValueError(f"family_size {family_size} is smaller than the {p.size} p-values given")
        padded = np.concatenate([p, np.ones(family_size - p.size)])
        return adjust_p_values(padded, method)[: p.size]
    if method == "holm":
        return _holm(p)
    if method == "bh":
        return np.asarray(stats.false_discovery_control(p, method="bh"), dtype=float)
    return p
