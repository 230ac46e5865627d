"""Draws the figure kinds of ``interp_checks.figures`` as HTML fragments for ``report.html``.

One drawing function per kind, registered by kind with ``@drawer``; ``draw_figure`` wraps the
picture in a ``<figure>`` with its title and caption. Matplotlib is imported lazily, here only (the
pytest11 module must stay light), and draws to inline SVG with text kept as text
(``svg.fonttype: none``: small files, selectable labels) and no date or random ids, so the same
figure data always gives the same bytes. ``tokens`` is HTML, not a plot: shaded ``<span>``s read
better than a picture of text and stay searchable.

A report must never be lost to a picture: an unknown kind or malformed data renders a visible
"cannot draw figure" box instead of raising.
"""

from __future__ import annotations

import html
import io
import math
import re
import textwrap
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

from interp_checks.figures import KINDS

__all__ = ["DRAWERS", "draw_figure", "drawer", "text_token", "token_colour"]

Drawer = Callable[[Mapping[str, Any]], str]
DRAWERS: dict[str, Drawer] = {}

# Colour-blind-safe (Okabe-Ito) colours; the first is the subject, the second the null or baseline.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
ACCENT = "#D55E00"  # marked cells, highlighted bars, reference lines
POSITIVE_RGB = (0, 114, 178)  # tokens above ``center``: blue
NEGATIVE_RGB = (213, 94, 0)  # tokens below: vermilion
MAX_TICK_LABELS = 40  # heatmap axes with more labels than this show every k-th one
WHITESPACE = {" ": "·", "\n": "⏎", "\t": "⇥", "\r": "\\r"}  # how tokens show whitespace, in spans and in labels
INCH_PER_CELL = 0.11  # heatmap cell size, so position labels stay legible
LABEL_PT = 7  # heatmap position labels
LABEL_GAP_PT = 2.0  # between the matrix and its position labels
CHAR_WIDTH_EM = 0.68  # a sans-serif character's width at most, in em (DejaVu Sans digits: 0.64)

RC = {
    "svg.fonttype": "none",  # text stays <text>: small, searchable, and the page's font
    "svg.hashsalt": "interp-checks",  # clip-path ids from a fixed salt: deterministic output
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
}


class FigureDataError(ValueError):
    """The figure's data does not follow its kind's contract (``interp_checks.figures``)."""


def drawer(kind: str) -> Callable[[Drawer], Drawer]:
    """Register the drawing function of ``kind``: data -> an HTML fragment (SVG or spans)."""
    if kind not in KINDS:
        raise ValueError(f"unknown figure kind {kind!r}; add it to interp_checks.figures.KINDS first")

    def register(function: Drawer) -> Drawer:
        DRAWERS[kind] = function
        return function

    return register


def draw_figure(figure: Mapping[str, Any], *, index: int = 0) -> str:
    """``<figure>`` with the drawing of one ``report.json`` figure record, its title and caption.

    ``index`` makes the SVG's element ids unique within a page that inlines many figures.
    Never raises on bad data: the box says what is wrong so the rest of the report survives.
    """
    kind = str(figure.get("kind", "")) if isinstance(figure, Mapping) else ""
    title = str(figure.get("title", "")) if isinstance(figure, Mapping) else ""
    caption = str(figure.get("caption", "")) if isinstance(figure, Mapping) else ""
    try:
        if not isinstance(figure, Mapping):
            raise FigureDataError(f"a figure record must be a mapping, not {type(figure).__name__}")
        if kind not in DRAWERS:
            raise FigureDataError(f"unknown kind {kind!r} (kinds: {', '.join(sorted(DRAWERS))})")
        data = figure.get("data")
        if not isinstance(data, Mapping):
            raise FigureDataError(f"'data' must be a mapping, not {type(data).__name__}")
        body = DRAWERS[kind](data)
        if body.lstrip().startswith("<svg"):
            body = _unique_ids(body, f"f{index}")
    except Exception as error:  # noqa: BLE001 - any failure becomes a visible box, never a lost report
        body = (
            f'<div class="fig-error" role="alert">cannot draw figure: {html.escape(kind or "?")} figure '
            f"{html.escape(repr(title))}: {html.escape(type(error).__name__)}: {html.escape(str(error))}</div>"
        )
    parts = [f'<figure class="fig fig-{html.escape(kind or "unknown")}">']
    if title:
        parts.append(f'<div class="fig-title">{html.escape(title)}</div>')
    parts.append(body)
    if caption:
        parts.append(f"<figcaption>{html.escape(caption)}</figcaption>")
    parts.append("</figure>")
    return "\n".join(parts)


# --- data checks -------------------------------------------------------------------------------


def _numbers(values: Any, name: str, *, allow_none: bool = False) -> list[float]:
    """``values`` as floats (None -> NaN where allowed), or a FigureDataError naming ``name``."""
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise FigureDataError(f"{name} must be a list of numbers")
    out = []
    for value in values:
        if value is None and allow_none:
            out.append(math.nan)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FigureDataError(f"{name} must be a list of numbers, found {value!r}")
        else:
            out.append(float(value))
    return out


def _same_length(a: Sequence[Any], b: Sequence[Any], what: str) -> None:
    if len(a) != len(b):
        raise FigureDataError(f"{what}: {len(a)} against {len(b)}")


def _labels(values: Any, n: int, name: str) -> list[str]:
    if values is None:
        return [str(i) for i in range(n)]
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != n:
        raise FigureDataError(f"{name} must be a list of {n} labels")
    return [str(v) for v in values]


def _reference_lines(data: Mapping[str, Any]) -> list[tuple[float, str]]:
    lines = data.get("lines") or []
    return [(float(line["value"]), str(line.get("label", ""))) for line in lines if line.get("value") is not None]


# --- matplotlib to SVG -------------------------------------------------------------------------


@contextmanager
def _matplotlib() -> Iterator[Any]:
    """Matplotlib's ``Figure`` class under the report's style; imported here, on first use only.

    Figures are built with the object API (``matplotlib.figure.Figure``), never pyplot, so drawing
    a report neither needs a display nor switches the backend of a user's own plots."""
    import matplotlib
    from cycler import cycler
    from matplotlib.figure import Figure

    style = dict(RC, **{"axes.prop_cycle": cycler(color=PALETTE)})
    with matplotlib.rc_context(style):
        yield Figure


def _svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element: no XML prologue, date or creator, scalable.

    Trimmed to its content like ``bbox_inches="tight"``, but measured with the Agg renderer's
    cached text metrics instead of a first SVG draw: 35-45% less time for the same picture (the
    box comes out within 1% of the SVG-measured one)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    box = fig.get_tightbbox(FigureCanvasAgg(fig).get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches=box, metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)
    return re.sub(r"^<svg ", '<svg class="plot" role="img" ', text, count=1)


def _unique_ids(svg: str, prefix: str) -> str:
    """Prefix every id (and its references) so several inlined SVGs cannot capture each other's."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    if not ids:
        return svg
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    return re.sub(r"(url\(#|href=\"#)([^\")]+)", lambda m: m.group(1) + (f"{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(2)), svg)


def _legend_if_labelled(ax: Any) -> None:
    """The legend outside the axes, on the right: inside, it can hide the points it explains."""
    handles, labels = ax.get_legend_handles_labels()
    if any(label and not label.startswith("_") for label in labels):
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _draw_reference_lines(ax: Any, data: Mapping[str, Any], *, horizontal: bool = True) -> None:
    for i, (value, label) in enumerate(_reference_lines(data)):
        style = dict(color=ACCENT if i == 0 else "#555555", linestyle="--" if i == 0 else ":", linewidth=1.2, label=label or None)
        (ax.axhline if horizontal else ax.axvline)(value, **style)


def _axis_labels(ax: Any, col_labels: list[str], row_labels: list[str]) -> None:
    """Row and column labels as plain texts beside the matrix: matplotlib's tick objects cost
    twice as much to draw, and an attention pattern has one label per position."""
    from matplotlib.transforms import offset_copy

    ax.set_xticks([])
    ax.set_yticks([])
    below = offset_copy(ax.get_xaxis_transform(), fig=ax.figure, y=-LABEL_GAP_PT, units="points")
    left = offset_copy(ax.get_yaxis_transform(), fig=ax.figure, x=-LABEL_GAP_PT, units="points")
    for labels, transform, place in (
        (col_labels, below, lambda i: dict(x=i, y=0, rotation=90, ha="center", va="top")),
        (row_labels, left, lambda i: dict(x=0, y=i, ha="right", va="center")),
    ):
        step = max(1, math.ceil(len(labels) / MAX_TICK_LABELS))
        for i in range(0, len(labels), step):
            ax.figure.text(s=_short(labels[i]), transform=transform, fontsize=LABEL_PT, **place(i))  # unclipped: cheaper than ax.text


def _outline_cells(ax: Any, cells: Sequence[Sequence[int]], n_rows: int, n_cols: int) -> None:
    """Outline each ``[row, col]`` cell: one line broken by NaNs, not a patch per cell (a heatmap
    can mark dozens, and each patch costs as much to draw as a label)."""
    xs: list[float] = []
    ys: list[float] = []
    for cell in cells:
        r, c = int(cell[0]), int(cell[1])
        if not (0 <= r < n_rows and 0 <= c < n_cols):
            raise FigureDataError(f"marked cell {[r, c]} lies outside the {n_rows} x {n_cols} matrix")
        xs += [c - 0.5, c + 0.5, c + 0.5, c - 0.5, c - 0.5, math.nan]
        ys += [r - 0.5, r - 0.5, r + 0.5, r + 0.5, r - 0.5, math.nan]
    if xs:
        ax.plot(xs, ys, color=ACCENT, linewidth=1.2, solid_joinstyle="miter", scalex=False, scaley=False)


def _short(label: str, limit: int = 12) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _label_pad(labels: list[str]) -> float:
    """Points between the axis and its title: past the longest position label. Measured from
    the characters, not by drawing (a draw pass per figure would double the time)."""
    longest = max((len(_short(label)) for label in labels), default=1)
    return LABEL_GAP_PT + CHAR_WIDTH_EM * LABEL_PT * longest + 3.0


@drawer("heatmap")
def draw_heatmap(data: Mapping[str, Any]) -> str:
    """A matrix (e.g. a head's attention pattern), with the role's cells outlined."""
    rows = data["values"]
    if not isinstance(rows, Sequence) or not rows:
        raise FigureDataError("values must be a non-empty list of rows")
    matrix = [_numbers(row, f"values row {i}", allow_none=True) for i, row in enumerate(rows)]
    n_cols = len(matrix[0])
    for i, row in enumerate(matrix):
        _same_length(row, matrix[0], f"values row {i} has another length than row 0")
    row_labels = [_plain_visible(t) for t in _labels(data.get("row_labels"), len(matrix), "row_labels")]
    col_labels = [_plain_visible(t) for t in _labels(data.get("col_labels"), n_cols, "col_labels")]
    import numpy as np

    array = np.array(matrix, dtype=float)
    finite = array[np.isfinite(array)]
    vmin = float(data["vmin"]) if data.get("vmin") is not None else float(finite.min()) if finite.size else 0.0
    vmax = float(data["vmax"]) if data.get("vmax") is not None else float(finite.max()) if finite.size else 1.0
    width = min(10.0, max(3.5, 1.4 + INCH_PER_CELL * n_cols))
    height = min(10.0, max(2.8, 1.2 + INCH_PER_CELL * len(matrix)))
    with _matplotlib() as Figure:
        fig = Figure(figsize=(width, height))
        ax = fig.add_subplot()
        image = ax.imshow(np.ma.masked_invalid(array), cmap="Blues", vmin=vmin, vmax=vmax, aspect="auto", interpolation="none")
        _axis_labels(ax, col_labels, row_labels)
        _outline_cells(ax, data.get("marked") or [], len(matrix), n_cols)
        ax.set_xlabel(str(data.get("x_label", "")), labelpad=_label_pad(col_labels))
        ax.set_ylabel(str(data.get("y_label", "")), labelpad=_label_pad(row_labels))
        ax.spines[:].set_visible(False)
        bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
        bar.set_label(str(data.get("value_label", "")))
        return _svg(fig)


@drawer("strip")
def draw_strip(data: Mapping[str, Any]) -> str:
    """Per-sample values of each group as jittered points, with reference lines and intervals."""
    groups = data["groups"]
    if not isinstance(groups, Sequence) or not groups:
        raise FigureDataError("groups must be a non-empty list of {label, values}")
    labels = [str(g["label"]) for g in groups]
    import numpy as np

    jitter = np.random.default_rng(0)  # fixed: the same data draws the same picture
    with _matplotlib() as Figure:
        fig = Figure(figsize=(max(3.4, 1.0 + 1.3 * len(groups)), 3.2))
        ax = fig.add_subplot()
        for i, group in enumerate(groups):
            values = np.array(_numbers(group["values"], f"groups[{i}].values", allow_none=True))
            values = values[np.isfinite(values)]
            offsets = jitter.uniform(-0.18, 0.18, size=values.size) - 0.08
            ax.scatter(i + offsets, values, s=12, alpha=0.55, color=PALETTE[i % len(PALETTE)], linewidths=0, label=None)
        for interval in data.get("intervals") or []:
            if interval.get("group") not in labels:
                raise FigureDataError(f"interval names group {interval.get('group')!r}; groups: {labels}")
            x = labels.index(interval["group"]) + 0.25
            est, low, high = (float(interval[k]) for k in ("estimate", "low", "high"))
            ax.errorbar([x], [est], yerr=[[est - low], [high - est]], fmt="o", color="#222222", markersize=5, capsize=4, linewidth=1.5, label=interval.get("label") or None)
        _draw_reference_lines(ax, data)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels([textwrap.fill(label, 18) for label in labels])
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_ylabel(str(data.get("value_label", "")))
        _legend_if_labelled(ax)
        return _svg(fig)


@drawer("line")
def draw_line(data: Mapping[str, Any]) -> str:
    """Curves over a shared x axis with interval bands, vertical markers and reference lines."""
    series = data["series"]
    if not isinstance(series, Sequence) or not series:
        raise FigureDataError("series must be a non-empty list of {label, x, y}")
    with _matplotlib() as Figure:
        fig = Figure(figsize=(6.0, 3.4))
        ax = fig.add_subplot()
        for i, line in enumerate(series):
            x = _numbers(line["x"], f"series[{i}].x")
            y = _numbers(line["y"], f"series[{i}].y", allow_none=True)
            _same_length(x, y, f"series[{i}]: x and y differ in length")
            colour = PALETTE[i % len(PALETTE)]
            ax.plot(x, y, color=colour, linewidth=1.5, marker="o" if len(x) <= 30 else None, markersize=3, label=str(line.get("label", "")) or None)
            if line.get("low") is not None and line.get("high") is not None:
                low, high = _numbers(line["low"], f"series[{i}].low", allow_none=True), _numbers(line["high"], f"series[{i}].high", allow_none=True)
                _same_length(x, low, f"series[{i}]: x and low differ in length")
                _same_length(x, high, f"series[{i}]: x and high differ in length")
                ax.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
        for marker in data.get("markers") or []:
            x = float(marker["x"])
            ax.axvline(x, color=ACCENT, linewidth=1.2, label=str(marker.get("label", "")) or None)
            if marker.get("low") is not None and marker.get("high") is not None:
                ax.axvspan(float(marker["low"]), float(marker["high"]), color=ACCENT, alpha=0.12, linewidth=0)
        _draw_reference_lines(ax, data)
        ax.set_xscale(str(data.get("x_scale", "linear")))
        ax.set_yscale(str(data.get("y_scale", "linear")))
        ax.set_xlabel(str(data.get("x_label", "")))
        ax.set_ylabel(str(data.get("y_label", "")))
        _legend_if_labelled(ax)
        return _svg(fig)


@drawer("bars")
def draw_bars(data: Mapping[str, Any]) -> str:
    """One bar per labelled item (horizontal when there are many), interval whiskers, highlights."""
    labels = [str(label) for label in data["labels"]]
    values = _numbers(data["values"], "values", allow_none=True)
    _same_length(labels, values, "labels and values differ in length")
    if not labels:
        raise FigureDataError("labels must not be empty")
    highlight = {str(h) for h in data.get("highlight") or []}
    colours = [ACCENT if label in highlight else PALETTE[0] for label in labels]
    errors = None
    if data.get("low") is not None and data.get("high") is not None:
        low, high = _numbers(data["low"], "low", allow_none=True), _numbers(data["high"], "high", allow_none=True)
        _same_length(labels, low, "labels and low differ in length")
        _same_length(labels, high, "labels and high differ in length")
        errors = [[max(0.0, v - lo) for v, lo in zip(values, low)], [max(0.0, hi - v) for v, hi in zip(values, high)]]
    horizontal = len(labels) > 12
    with _matplotlib() as Figure:
        if horizontal:
            fig = Figure(figsize=(6.0, min(12.0, 1.0 + 0.22 * len(labels))))
            ax = fig.add_subplot()
            ax.barh(range(len(labels)), values, color=colours, xerr=errors, ecolor="#333333", capsize=2)
            ax.set_yticks(range(len(labels)))
            ax.set_yticklabels(labels, fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel(str(data.get("value_label", "")))
        else:
            fig = Figure(figsize=(max(3.5, 1.5 + 0.5 * len(labels)), 3.4))
            ax = fig.add_subplot()
            ax.bar(range(len(labels)), values, color=colours, yerr=errors, ecolor="#333333", capsize=3)
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=45 if len(labels) > 5 else 0, ha="right" if len(labels) > 5 else "center")
            ax.set_ylabel(str(data.get("value_label", "")))
        _draw_reference_lines(ax, data, horizontal=not horizontal)
        _legend_if_labelled(ax)
        return _svg(fig)


HISTOGRAM_SHARE_LABEL = "share of the series' total, per bin"


def _finite_numbers(values: Any, name: str) -> list[float]:
    """``values`` as finite floats, or a FigureDataError naming ``name`` (a NaN bin cannot be drawn)."""
    numbers = _numbers(values, name)
    bad = [value for value in numbers if not math.isfinite(value)]
    if bad:
        raise FigureDataError(f"{name} must be finite numbers, found {bad[0]!r}")
    return numbers


def _histogram_edges(values: Any) -> list[float]:
    edges = _finite_numbers(values, "edges")
    if len(edges) < 2:
        raise FigureDataError(f"edges must hold at least 2 numbers (bins + 1), found {len(edges)}")
    for i, (left, right) in enumerate(zip(edges, edges[1:])):
        if not left < right:
            raise FigureDataError(
                f"edges must be strictly increasing: edges[{i}] = {left:g}, edges[{i + 1}] = {right:g} (report.json keeps 4 "
                "significant digits, so narrower bins merge: choose edges that survive the rounding)"
            )
    return edges


def _histogram_series(series: Any, bins: int) -> list[tuple[str, list[float]]]:
    """[(label, counts)] of the ``series`` list, each with ``bins`` finite, non-negative counts."""
    if not isinstance(series, Sequence) or isinstance(series, (str, bytes)) or not series:
        raise FigureDataError("series must be a non-empty list of {label, counts}")
    parsed = []
    for i, item in enumerate(series):
        if not isinstance(item, Mapping):
            raise FigureDataError(f"series[{i}] must be a mapping {{label, counts}}, not {type(item).__name__}")
        counts = _finite_numbers(item["counts"], f"series[{i}].counts")
        if len(counts) != bins:
            raise FigureDataError(f"series[{i}].counts has {len(counts)} bins, but the {bins + 1} edges make {bins}")
        if any(count < 0 for count in counts):
            raise FigureDataError(f"series[{i}].counts must not be negative, found {min(counts):g}")
        parsed.append((str(item.get("label", "")), counts))
    return parsed


def _shares(counts: list[float]) -> list[float]:
    """Each bin's share of the series' total (all zeros for an empty series: nothing to show)."""
    total = sum(counts)
    return [count / total for count in counts] if total > 0 else [0.0] * len(counts)


@drawer("histogram")
def draw_histogram(data: Mapping[str, Any]) -> str:
    """Distributions over shared bins as outlined, lightly filled steps, each series as its share of
    its own total per bin: raw counts would flatten the rare class (the few tokens that match) next
    to the common one. The legend gives each series' total so the shares can be read back as counts."""
    edges = _histogram_edges(data["edges"])
    series = _histogram_series(data["series"], len(edges) - 1)
    log_y = data.get("log_y", False)
    if not isinstance(log_y, bool):
        raise FigureDataError(f"log_y must be true or false, not {log_y!r}")
    for value, _ in _reference_lines(data):
        if not math.isfinite(value):
            raise FigureDataError(f"lines must have finite values, found {value!r}")
    shares = [_shares(counts) for _, counts in series]
    positive = [share for row in shares for share in row if share > 0]
    floor = min(positive, default=1.0) / 2 if log_y else 0.0  # a log axis has no zero: empty bins sit on the floor
    with _matplotlib() as Figure:
        fig = Figure(figsize=(5.6, 3.2))
        ax = fig.add_subplot()
        for i, ((label, counts), row) in enumerate(zip(series, shares)):
            colour = PALETTE[i % len(PALETTE)]
            heights = [max(share, floor) for share in row]
            ax.stairs(heights, edges, baseline=floor, fill=True, color=colour, alpha=0.25, linewidth=0)
            total = f"{round(sum(counts)):,}"
            ax.stairs(heights, edges, baseline=floor, color=colour, linewidth=1.4, label=f"{label} (total {total})" if label else f"total {total}")
        _draw_reference_lines(ax, data, horizontal=False)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(str(data.get("x_label", "")))
        ax.set_ylabel(HISTOGRAM_SHARE_LABEL + (" (log)" if log_y else ""))
        _legend_if_labelled(ax)
        return _svg(fig)


# --- tokens as HTML ----------------------------------------------------------------------------

def token_colour(value: float | None, center: float, scale: float) -> str | None:
    """The background of a token: blue above ``center``, vermilion below, stronger further away;
    None for an unshaded token. The strongest shade keeps dark text readable on it."""
    if value is None or not math.isfinite(value) or scale <= 0:
        return None
    t = max(-1.0, min(1.0, (value - center) / scale))
    rgb = POSITIVE_RGB if t >= 0 else NEGATIVE_RGB
    alpha = 0.75 * abs(t)
    mixed = (round(255 + (c - 255) * alpha) for c in rgb)
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _mark(char: str) -> str | None:
    """The visible mark of a whitespace or control character (None: the character shows as itself)."""
    if char in WHITESPACE:
        return WHITESPACE[char]
    if char.isspace():  # no-break and other Unicode spaces
        return "·"
    if not char.isprintable():  # control characters, as Python escapes them (\x19): common fonts lack the control pictures
        return repr(char)[1:-1]
    return None


def text_token(token: str) -> str:
    """A token as plain text on one line (report.md): spaces stay spaces, so code reads as code;
    newlines, tabs and control characters show as the marks of token rows; an empty token as ∅."""
    return "".join(char if char == " " else _mark(char) or char for char in token) or "∅"


def _plain_visible(token: str) -> str:
    """A token as a plot label: whitespace and control characters shown as in token rows."""
    return "".join(_mark(char) or char for char in token) or "∅"


def _visible_token(token: str) -> str:
    """The token escaped, whitespace and control characters shown as marks (a newline also breaks the line)."""
    out = []
    for char in token:
        mark = _mark(char)
        if mark:
            out.append(f'<span class="ws">{mark}</span>' + ("<br>" if char == "\n" else ""))
        else:
            out.append(html.escape(char))
    return "".join(out) or '<span class="ws">∅</span>'


def _fmt_value(value: float) -> str:
    return f"{value:+.3g}" if value else "0"


@drawer("tokens")
def draw_tokens(data: Mapping[str, Any]) -> str:
    """Rows of tokens shaded by value around ``center``, with the colour scale as a legend."""
    rows = data["rows"]
    if not isinstance(rows, Sequence) or not rows:
        raise FigureDataError("rows must be a non-empty list of {label, tokens, values}")
    center = float(data.get("center", 0.0) or 0.0)
    parsed = []
    for i, row in enumerate(rows):
        tokens = [str(t) for t in row["tokens"]]
        values = _numbers(row["values"], f"rows[{i}].values", allow_none=True)
        _same_length(tokens, values, f"rows[{i}]: tokens and values differ in length")
        focus = row.get("focus")
        if focus is not None and not 0 <= int(focus) < len(tokens):
            raise FigureDataError(f"rows[{i}].focus = {focus} is outside its {len(tokens)} tokens")
        parsed.append((str(row.get("label", "")), tokens, values, None if focus is None else int(focus)))
    deviations = [abs(v - center) for _, _, values, _ in parsed for v in values if math.isfinite(v)]
    scale = max(deviations, default=0.0)
    unit = str(data.get("value_label", ""))
    out = ['<div class="tokens">']
    for label, tokens, values, focus in parsed:
        out.append('<div class="tok-row">')
        if label:
            out.append(f'<div class="tok-label">{html.escape(label)}</div>')
        spans = []
        for j, (token, value) in enumerate(zip(tokens, values)):
            colour = token_colour(value, center, scale)
            style = f' style="background:{colour}"' if colour else ""
            tip = f' title="{_fmt_value(value)}{(" " + html.escape(unit)) if unit else ""}"' if math.isfinite(value) else ""
            cls = "tok focus" if j == focus else "tok"
            spans.append(f'<span class="{cls}"{style}{tip}>{_visible_token(token)}</span>')
        out.append(f'<div class="tok-text">{"".join(spans)}</div></div>')
    out.append(_token_legend(center, scale, unit))
    out.append("</div>")
    return "\n".join(out)


def _token_legend(center: float, scale: float, unit: str) -> str:
    """Swatches from -scale to +scale around ``center``, labelled, so the shading can be read."""
    steps = (-1.0, -0.5, 0.0, 0.5, 1.0)
    swatches = []
    for step in steps:
        value = center + step * scale
        colour = token_colour(value, center, scale) or "#ffffff"
        swatches.append(f'<span class="tok swatch" style="background:{colour}">{html.escape(_fmt_value(value))}</span>')
    label = f" {html.escape(unit)}" if unit else ""
    return (
        f'<div class="tok-legend">scale{label}: {"".join(swatches)} '
        '<span class="muted">(hover a token for its value; · space, ⏎ newline, ⇥ tab, \\x19 a control character; outlined: the token the row is about)</span></div>'
    )
