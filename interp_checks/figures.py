"""Plot-ready figure data: the seam between claim families and the report's pictures.

A check (or the engine, for what every claim has: per-sequence values against the null) describes
a picture as data, a ``Figure`` of one of a few generic *kinds*; ``interp_checks.report`` draws each
kind (matplotlib to SVG, or HTML for shaded tokens). A family never writes HTML or calls a plotting
library, and the report package knows no family: a new family reuses these kinds, and a new kind is
one drawing function in ``report.figures`` plus its entry here.

This module is plain data (no numpy, torch or matplotlib) so results and the JSON report can carry
figures without importing anything heavy. Numbers are rounded when a figure is built
(``rounded``), so ``report.json`` stays small.

Kinds and their ``data`` (every key not marked optional is required):

``heatmap``  a matrix, e.g. a head's attention pattern.
    values: list[list[float]]  rows x cols
    row_labels, col_labels: list[str]            (optional; default 0..n-1)
    marked: list[[row, col]]                     (optional) cells to outline, e.g. the role's keys
    x_label, y_label, value_label: str           (optional)
    vmin, vmax: float                            (optional; default the data's range)

``strip``  per-sample values of several groups (one point per sequence or document), e.g. the
    subject's per-sequence scores beside the random-weights null's.
    groups: list[{"label": str, "values": list[float]}]
    lines: list[{"value": float, "label": str}]  (optional) thresholds and other reference values
    intervals: list[{"group": str, "estimate": float, "low": float, "high": float, "label": str}]
                                                  (optional) an estimate with its interval, drawn on
                                                  the group named ``group``
    value_label: str                              (optional) the axis label, with the unit

``tokens``  text as tokens, each shaded by a value, e.g. the contexts where one model gains most.
    rows: list[{"label": str, "tokens": list[str], "values": list[float | None], "focus": int | None}]
        ``values[i]`` shades ``tokens[i]`` (None: unshaded); ``focus`` (optional) is the index of the
        token the row is about, drawn outlined
    value_label: str                              (optional)
    center: float                                 (optional) values above are shaded one colour,
                                                  below another (default 0); the scale is symmetric
                                                  in the largest |value - center|

``line``  curves over a shared x axis, e.g. a statistic over training steps.
    series: list[{"label": str, "x": list[float], "y": list[float],
                  "low": list[float], "high": list[float]}]   (low/high optional: an interval band)
    x_label, y_label: str                          (optional)
    x_scale, y_scale: "linear" | "log"             (optional; default linear)
    markers: list[{"x": float, "label": str, "low": float, "high": float}]
                                                  (optional) vertical lines, e.g. a located step,
                                                  with an optional interval (low/high)
    lines: list[{"value": float, "label": str}]    (optional) horizontal reference lines

``bars``  one value per labelled item, e.g. the drop in loss when each head is ablated.
    labels: list[str]
    values: list[float]
    low, high: list[float]                         (optional) interval ends per bar
    highlight: list[str]                           (optional) labels drawn in the accent colour
    value_label: str                               (optional)
    lines: list[{"value": float, "label": str}]    (optional)

``histogram``  distributions over shared bins, e.g. a neuron's activations on the tokens that match
    a regex beside those that do not.
    edges: list[float]                             the bins' edges: bins + 1, strictly increasing
                                                  after rounding to 4 significant digits
    series: list[{"label": str, "counts": list[float]}]   raw counts per bin (len(edges) - 1 each,
                                                  finite, >= 0); drawn as each series' share of its
                                                  own total per bin, so a rare class shows beside a
                                                  common one (the y axis says so; the legend gives
                                                  each series' total)
    x_label: str                                   (optional) the binned value, with its unit
    lines: list[{"value": float, "label": str}]    (optional) vertical reference lines on the x
                                                  axis, e.g. a firing threshold
    log_y: bool                                    (optional; default false) a log share axis, for
                                                  the tails
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

KINDS = ("heatmap", "strip", "tokens", "line", "bars", "histogram")

__all__ = ["KINDS", "Figure", "rounded"]


@dataclass(frozen=True)
class Figure:
    """One picture of a claim, as data. ``caption`` says what the reader is looking at and how it
    was chosen (e.g. "the first sequence of the inputs", "the 5 contexts with the largest gain among
    the first 64 sequences"): a picture of a selection must say it is one."""

    kind: str
    title: str
    data: dict[str, Any]
    caption: str = ""
    source: str = ""  # who made it: the check's name, or "engine"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown figure kind {self.kind!r}; kinds: {', '.join(KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "caption": self.caption, "source": self.source, "data": self.data}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Figure":
        return cls(record["kind"], record.get("title", ""), record.get("data", {}), record.get("caption", ""), record.get("source", ""))


def rounded(value: Any, digits: int = 4) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits and non-finite floats as
    None (strict JSON); lists, tuples and dicts are rounded recursively, numpy scalars and arrays
    become plain Python (anything with ``tolist``)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value
