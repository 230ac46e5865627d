"""The named estimators: statistics that are not a mean of per-sequence values, chosen by name.

A check says, as data (``Prepared.estimators``: statistic -> name), which estimator judges a
statistic and returns per-sequence arrays in that estimator's layout; the engine calls
:func:`evaluate_with` and draws :func:`display_values` in the claim's strip. The estimators
themselves live with their statistics (``stats.ratios``, ``stats.rank``); this module only names
them and reads their layouts, so a new estimator is one entry here and never an edit to the engine.

Layouts ([sequences, ...] per-sequence values, one row per sequence):

* ``rank``: [n, members], the claimed member first, names in ``members`` ("among the k largest
  means", :func:`stats.rank.evaluate_rank`);
* ``ratio_of_means``: [n, 2], numerator and denominator (a patching effect's share of the
  clean-corrupted gap, a circuit's faithfulness; :func:`stats.ratios.evaluate_ratio_of_means`);
* ``share_beaten_of_ratios``: [n, 2 + draws], the common denominator, the observed numerator, the
  draws' numerators (a circuit against random circuits of its size);
* ``curve_area`` / ``curve_gap_area``: [n, 1 + (K + 1)], the common denominator, then the numerators
  at circuit sizes 0..K (MIB's CPR / CMD).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from interp_checks.stats.comparison import Comparison
from interp_checks.stats.evaluate import Evaluation
from interp_checks.stats.rank import evaluate_rank
from interp_checks.stats.ratios import (
    curve_areas,
    evaluate_curve_area,
    evaluate_ratio_of_means,
    evaluate_share_beaten_of_ratios,
    ratio_of_means,
    ratio_shares,
)

__all__ = ["ESTIMATORS", "display_unit", "display_values", "evaluate_with"]


def _pairs(samples: npt.ArrayLike, statistic: str) -> tuple[np.ndarray, np.ndarray]:
    """(numerators, denominators) from [n, 2] per-sequence values."""
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{statistic} needs [sequences, 2] (numerator, denominator) values, got shape {x.shape}")
    return x[:, 0], x[:, 1]


def _ratio_of_means(samples: npt.ArrayLike, comparison: Comparison, *, statistic: str = "ratio", null_samples: Any = None, **common: Any) -> Evaluation:
    """A ratio is not judged against the null's samples (its gap is about 0 there), so they are dropped."""
    return evaluate_ratio_of_means(*_pairs(samples, statistic), comparison, statistic=statistic, **common)


def _without_null(estimator: Callable[..., Evaluation], **fixed: Any) -> Callable[..., Evaluation]:
    """``estimator`` called with only the arguments it takes from the engine's common set."""

    def call(samples: npt.ArrayLike, comparison: Comparison, *, null_samples: Any = None, null_kind: Any = None, **common: Any) -> Evaluation:
        return estimator(samples, comparison, **fixed, **common)

    return call


def _share_beaten(samples: npt.ArrayLike, comparison: Comparison, *, statistic: str = "share_beaten", alpha: float = 0.05, **_: Any) -> Evaluation:
    """The share of random draws beaten has no resamples and no seed: only the level is passed on."""
    return evaluate_share_beaten_of_ratios(samples, comparison, statistic=statistic, alpha=alpha)


_OVER_MEMBERS = frozenset({"rank"})

ESTIMATORS: dict[str, Callable[..., Evaluation]] = {
    "rank": evaluate_rank,
    "ratio_of_means": _ratio_of_means,
    "share_beaten_of_ratios": _share_beaten,
    "curve_area": _without_null(evaluate_curve_area, gap=False),
    "curve_gap_area": _without_null(evaluate_curve_area, gap=True),
}


def _ratios_against_common_denominator(x: np.ndarray) -> np.ndarray:
    """Per numerator column 1.. of ``x``, its ratio of means over column 0 (the common denominator)."""
    return ratio_of_means(x[:, 1:].T, np.broadcast_to(x[:, 0], x[:, 1:].T.shape))


def display_values(estimator: str, samples: npt.ArrayLike) -> np.ndarray | None:
    """One value per sampled unit for a picture of an estimator's statistic (the engine's strip),
    chosen so that their mean is the estimate (or, for CMD, its jackknife bias-corrected value):

    * ``ratio_of_means``: each sequence's numerator over the mean denominator;
    * ``share_beaten_of_ratios``: per draw, 1 if the observed ratio beats it, else 0;
    * ``curve_area`` (CPR, linear in the numerators): each sequence's weighted numerators over the
      mean denominator; ``curve_gap_area`` (CMD): the jackknife pseudo-values over sequences;
    * ``rank``: None (a rank has no threshold on the values' axis: no strip)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    if estimator in _OVER_MEMBERS:
        return None
    x = np.asarray(samples, dtype=float)
    if estimator == "ratio_of_means":
        return ratio_shares(x[:, 0], x[:, 1])
    if estimator == "share_beaten_of_ratios":
        ratios = _ratios_against_common_denominator(x)
        return (ratios[0] > ratios[1:]).astype(float)
    points = x.shape[1] - 1
    weights = np.full(points, 1.0 / (points - 1))
    weights[[0, -1]] /= 2
    if estimator == "curve_area":
        return ratio_shares(x[:, 1:] @ weights, x[:, 0])
    n = x.shape[0]  # curve_gap_area
    full = curve_areas(_ratios_against_common_denominator(x))[1]
    leave_one_out = np.array([curve_areas(_ratios_against_common_denominator(np.delete(x, i, 0)))[1] for i in range(n)])
    return n * full - (n - 1) * leave_one_out


def display_unit(estimator: str | None, default: str) -> str:
    """What one value of :func:`display_values` is: a random circuit for a share of draws beaten,
    else ``default`` (the sequence or document)."""
    return "random circuit" if estimator == "share_beaten_of_ratios" else default


def evaluate_with(
    estimator: str, samples: npt.ArrayLike, comparison: Comparison, *, members: list[str] | None = None, **common: Any
) -> Evaluation:
    """Judge per-sequence ``samples`` with a named estimator (``Prepared.estimators``). ``members``
    names the columns for estimators over several members (``rank``: the claimed member first)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    if estimator in _OVER_MEMBERS:
        if not members:
            raise ValueError(f"estimator {estimator!r} needs the member names (Prepared.members)")
        return ESTIMATORS[estimator](samples, comparison, members, **common)
    return ESTIMATORS[estimator](samples, comparison, **common)
