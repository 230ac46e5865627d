"""Builders of plot-ready figure data from arrays, shared by the engine and the claim families.

``interp_checks.figures`` is the contract (plain data, no numpy); this module holds the numpy
helpers that fill it, so that every family crops, subsamples and rounds the same way:

* :func:`verdict_strip` -- the engine's generic picture of an expectation: the subject's per-sample
  values beside the random-weights null's, the threshold(s) and the estimate with its interval;
* :func:`subsample` -- a deterministic cap on the points a figure carries (``report.json`` stays
  small however large ``n`` is); the caption says when it was applied;
* :func:`crop_around` -- the window of a large matrix (an attention pattern) that shows the cells a
  role marks, for a heatmap of at most ``size`` x ``size`` cells;
* :func:`extreme_positions` -- the positions with the largest and smallest values, at most one per
  row, for "the contexts where the model gains most" pictures;
* :func:`head_grid` -- one value per attention head (e.g. the loss increase when it is ablated) as
  a layer-by-head heatmap, with each cell's interval in the data and the largest in the caption;
* :func:`validated` -- what the engine does with the figures a check returns: rounds them and keeps
  those that are strict JSON, turning the rest into notes (a picture never changes a verdict).

Nothing here draws: ``interp_checks.report`` does. Nothing here knows a claim family either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from interp_checks.figures import Figure, rounded

__all__ = [
    "MAX_POINTS",
    "MAX_STRIP_GROUPS",
    "Window",
    "crop_around",
    "extreme_positions",
    "head_grid",
    "subsample",
    "validated",
    "verdict_strip",
]

MAX_POINTS = 400  # points per strip group in report.json; more are subsampled (the caption says so)
MAX_STRIP_GROUPS = 16  # member groups (heads) in one strip; the deciding member always comes first
SUBSAMPLE_SEED = 0


def subsample(values: np.ndarray, cap: int = MAX_POINTS, seed: int = SUBSAMPLE_SEED) -> np.ndarray:
    """At most ``cap`` of ``values`` (1-D), in their original order: all of them when they fit,
    otherwise a seeded random subset, the same on every run. A random subset, not the first
    ``cap``, so the picture shows the whole distribution (the first rows may share a document)."""
    values = np.asarray(values, dtype=float).ravel()
    if values.size <= cap:
        return values
    keep = np.sort(np.random.default_rng(seed).choice(values.size, size=cap, replace=False))
    return values[keep]


def _threshold_lines(comparison: Any) -> list[dict[str, Any]]:
    """The threshold(s) of a comparison as reference lines, labelled with the claimed side."""
    if comparison.op == "between":
        return [
            {"value": comparison.threshold, "label": f"lower bound {comparison.threshold:g} ({comparison})"},
            {"value": comparison.upper, "label": f"upper bound {comparison.upper:g} ({comparison})"},
        ]
    return [{"value": comparison.threshold, "label": f"threshold: claimed {comparison}"}]


def verdict_strip(
    statistic: str,
    values: np.ndarray,
    evaluation: Any,
    *,
    null: np.ndarray | None = None,
    null_kind: str = "",
    members: Sequence[str] | None = None,
    unit: str | None = None,
    unit_of_sampling: str = "sequence",
    cap: int = MAX_POINTS,
) -> Figure:
    """The strip figure of one judged expectation: what its verdict rests on, for any family.

    ``values`` are the per-sample values the statistics were computed on ([n], or [n, members] for
    a statistic over members such as ``max_score``; rows where the claim is undefined already
    dropped); ``null`` the random-weights null's values on the same samples ([n] or [n, draws],
    pooled over draws in the picture; None when the null is the constant zero, which is then not
    drawn); ``evaluation`` the ``stats.Evaluation`` whose estimate and interval are drawn on the
    subject group (for members: on the deciding member, with the largest-mean interval).
    """
    values = np.asarray(values, dtype=float)
    n = int(values.shape[0])
    shown: list[str] = []
    if values.ndim == 2:
        names = list(members or [f"member {j}" for j in range(values.shape[1])])
        order = [int(j) for j in np.argsort(-np.nanmean(values, axis=0), kind="stable")]
        deciding = getattr(evaluation, "deciding_member", None)
        if deciding in names:
            order.remove(names.index(deciding))
            order.insert(0, names.index(deciding))
        if len(order) > MAX_STRIP_GROUPS:
            shown.append(f"the {MAX_STRIP_GROUPS} of {len(order)} members with the largest means")
            order = order[:MAX_STRIP_GROUPS]
        subject = [(names[j], values[:, j]) for j in order]
        estimand = f"largest member mean ({names[order[0]]})"
        what = f"{n} {unit_of_sampling}s per member, deciding member first"
    else:
        subject = [(f"{statistic} (per {unit_of_sampling})", values)]
        estimand = "mean"
        what = f"{n} {unit_of_sampling}s"
    groups = [(label, column) for label, column in subject]
    caption = f"Each point is one {unit_of_sampling}'s {statistic} ({what})"
    if null is not None:
        null = np.asarray(null, dtype=float)
        draws = 1 if null.ndim == 1 else int(null.shape[1])
        groups.append((f"random-weights null ({draws} draw{'s' if draws != 1 else ''})", null.ravel()))
        caption += f", beside the null: {null_kind} ({null.size} values, {draws} draw{'s' if draws != 1 else ''} pooled)"
    if any(column.size > cap for _, column in groups):
        shown.append(f"groups of more than {cap} points as a seeded random subsample of {cap}")
    level = evaluation.ci_level
    caption += f". Line: the claimed threshold; bar: the {estimand} with its {level:.0%} interval."
    if shown:
        caption += " Shown: " + "; ".join(shown) + "."
    low, high = evaluation.ci
    data = {
        "groups": [{"label": label, "values": subsample(column, cap)} for label, column in groups],
        "lines": _threshold_lines(evaluation.comparison),
        "intervals": [
            {
                "group": groups[0][0],
                "estimate": evaluation.estimate,
                "low": low,
                "high": high,
                "label": f"{estimand}, {level:.0%} interval",
            }
        ],
        "value_label": statistic if not unit else f"{statistic} ({unit})",
    }
    return Figure("strip", f"{statistic}: per-{unit_of_sampling} values", rounded(data), caption, "engine")


@dataclass(frozen=True)
class Window:
    """Rows [row_start, row_stop) and columns [col_start, col_stop) of a matrix."""

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int

    def crops(self, shape: tuple[int, ...]) -> bool:
        """Whether the window leaves out part of a matrix of ``shape`` (a caption must say so)."""
        return (self.row_start, self.col_start, self.row_stop, self.col_stop) != (0, 0, shape[0], shape[1])

    def take(self, matrix: np.ndarray) -> np.ndarray:
        return matrix[self.row_start : self.row_stop, self.col_start : self.col_stop]


def _window_counts(marked: np.ndarray, height: int, width: int) -> np.ndarray:
    """[r0, c0] -> marked cells inside rows r0..r0+height, columns c0..c0+width (summed-area table)."""
    table = np.zeros((marked.shape[0] + 1, marked.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = np.cumsum(np.cumsum(marked.astype(np.int64), axis=0), axis=1)
    return table[height:, width:] - table[:-height, width:] - table[height:, :-width] + table[:-height, :-width]


def crop_around(marked: np.ndarray, size: int = 48, *, square_share: float = 0.75) -> Window:
    """The window of at most ``size`` rows and columns that shows the most ``marked`` cells.

    A square window (the same positions as rows and columns, so a diagonal stays a diagonal) is
    preferred while it shows at least ``square_share`` of what the best free window shows; a role
    far off the diagonal (induction on a long repeated sequence: each query looks one period back)
    gets separate row and column windows instead. Ties go to the window nearest the diagonal, then
    the earliest. With nothing marked: the first ``size`` positions.
    """
    marked = np.asarray(marked, dtype=bool)
    rows, cols = marked.shape
    height, width = min(size, rows), min(size, cols)
    if rows <= size and cols <= size:
        return Window(0, rows, 0, cols)
    if not marked.any():
        return Window(0, height, 0, width)
    counts = _window_counts(marked, height, width)
    r0, c0 = np.meshgrid(np.arange(counts.shape[0]), np.arange(counts.shape[1]), indexing="ij")
    diagonal = r0 == c0
    best_free = counts.max()
    if diagonal.any() and counts[diagonal].max() >= square_share * best_free:
        candidates = diagonal & (counts == counts[diagonal].max())
    else:
        candidates = counts == best_free
    distance = np.where(candidates, np.abs(r0 - c0), np.iinfo(np.int64).max)
    nearest = candidates & (distance == distance.min())
    r, c = (int(x[0]) for x in np.nonzero(nearest))  # row-major: the earliest row, then column
    return Window(r, r + height, c, c + width)


def extreme_positions(values: np.ndarray, eligible: np.ndarray, k: int, *, largest: bool) -> list[tuple[int, int]]:
    """(row, position) of the ``k`` most extreme eligible values, at most one per row (so one
    sequence cannot fill the picture), most extreme first; ties go to the earlier row."""
    values = np.asarray(values, dtype=float)
    ok = np.asarray(eligible, dtype=bool) & np.isfinite(values)
    fill = -np.inf if largest else np.inf
    masked = np.where(ok, values, fill)
    per_row = masked.argmax(axis=1) if largest else masked.argmin(axis=1)
    best = masked[np.arange(values.shape[0]), per_row]
    rows = [i for i in range(values.shape[0]) if ok[i].any()]
    rows.sort(key=lambda i: (-best[i] if largest else best[i], i))
    return [(i, int(per_row[i])) for i in rows[:k]]


def validated(figures: Any, source: str) -> tuple[list[Figure], list[str]]:
    """The figures a check returned, rounded (``figures.rounded``) and each checked to be a
    ``Figure`` whose record is strict JSON (no NaN, nothing that is not plain data); each one that
    is not becomes a note naming it, so a broken picture is visible but harmless."""
    if not isinstance(figures, (list, tuple)):
        return [], [f"figures of {source} could not be drawn: figures() returned {type(figures).__name__}, not a list of Figure"]
    kept: list[Figure] = []
    notes: list[str] = []
    for index, figure in enumerate(figures):
        if not isinstance(figure, Figure):
            notes.append(f"figure {index + 1} of {source} could not be drawn: it is a {type(figure).__name__}, not a Figure")
            continue
        figure = replace(figure, data=rounded(figure.data), source=figure.source or source)
        try:
            json.dumps(figure.to_dict(), allow_nan=False)
        except (TypeError, ValueError) as error:
            notes.append(f"figure {figure.title!r} of {source} could not be drawn: its data is not plain JSON ({error})")
            continue
        kept.append(figure)
    return kept, notes


def head_grid(
    per_head: dict[tuple[int, int], np.ndarray],
    n_layers: int,
    n_heads: int,
    *,
    title: str,
    value_label: str,
    what: str,
    marked: Sequence[tuple[int, int]] = (),
    level: float = 0.95,
    listed: int = 3,
) -> Figure:
    """A layer-by-head ``heatmap`` of per-head per-sequence values ({(layer, head): [n]}): each cell
    the mean over sequences, with its two-sided t-interval at ``level`` in ``data["low"]`` and
    ``data["high"]`` (same shape; None for heads not measured) and the ``listed`` largest means
    with their intervals in the caption, so the picture never shows a point without its
    uncertainty. ``what`` says in words what the values and the sequences are."""
    from scipy import stats

    shape = (n_layers, n_heads)
    mean, low, high = (np.full(shape, np.nan) for _ in range(3))
    for (layer, head), values in per_head.items():
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        mean[layer, head] = values.mean()
        half = 0.0 if values.size < 2 else float(stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))
        low[layer, head], high[layer, head] = mean[layer, head] - half, mean[layer, head] + half
    order = sorted(((float(mean[c]), c) for c in per_head if np.isfinite(mean[c])), reverse=True)[:listed]
    largest = "; ".join(f"L{l}H{h} {m:.3g} [{low[l, h]:.3g}, {high[l, h]:.3g}]" for m, (l, h) in order)
    caption = (
        f"{what}. Each cell is one head's mean over sequences; its {level:.0%} t-interval is in the figure data "
        f"(low, high). Largest: {largest}."
        + (" Outlined: the heads the claim names." if marked else "")
        + (" Blank cells: heads not measured." if np.isnan(mean).any() else "")
    )
    data = {
        "values": mean.tolist(),
        "low": low.tolist(),
        "high": high.tolist(),
        "row_labels": [f"L{l}" for l in range(n_layers)],
        "col_labels": [f"H{h}" for h in range(n_heads)],
        "marked": [[l, h] for l, h in marked],
        "x_label": "head",
        "y_label": "layer",
        "value_label": value_label,
    }
    return Figure("heatmap", title, rounded(data), caption)
