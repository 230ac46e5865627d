"""report.html and its figures, from synthetic report records (no model, no browser).

The browser test (tests/integration/test_report_browser.py) opens the page in Chromium; these
check what can be read from the HTML text: every kind draws, bad data cannot lose a report, text
is escaped, the page asks for nothing from elsewhere, and each claim has its section.
"""

from __future__ import annotations

import copy
import re

import pytest

from interp_checks.figures import KINDS
from interp_checks.report import render_html, render_markdown
from interp_checks.report.figures import DRAWERS, draw_figure, token_colour
from interp_checks.report.html import claim_anchor
from tests.helpers.report_records import HOSTILE, claim, figure_of_each_kind, synthetic_report


def test_every_kind_has_a_drawer() -> None:
    assert set(DRAWERS) == set(KINDS)


@pytest.mark.parametrize("figure", figure_of_each_kind(), ids=KINDS)
def test_each_kind_draws_a_picture_with_its_title_and_caption(figure: dict) -> None:
    out = draw_figure(figure)
    assert "cannot draw figure" not in out
    if figure["kind"] == "tokens":
        assert '<div class="tokens">' in out and "<svg" not in out
    else:
        assert '<svg class="plot"' in out
        assert "<?xml" not in out and "<!DOCTYPE" not in out  # inline, not a document
    assert out.startswith(f'<figure class="fig fig-{figure["kind"]}">')
    assert f'<div class="fig-title">{figure["title"]}</div>' in out
    if figure["caption"]:
        assert "<figcaption>" in out


@pytest.mark.parametrize("figure", [f for f in figure_of_each_kind() if f["kind"] != "tokens"], ids=[k for k in KINDS if k != "tokens"])
def test_svg_is_deterministic_keeps_text_as_text_and_has_no_metadata(figure: dict) -> None:
    first, second = draw_figure(figure), draw_figure(figure)
    assert first == second
    assert "<dc:date>" not in first and "<metadata>" not in first
    assert "<text" in first  # svg.fonttype none: labels are text, not glyph outlines
    assert not re.search(r'<path id="[^"]*DejaVu', first)
    axis_label = figure["data"].get("value_label") or figure["data"].get("y_label") or figure["data"].get("x_label")
    assert f">{axis_label}<" in first


def test_ids_are_unique_when_a_page_inlines_many_svgs() -> None:
    page = render_html(synthetic_report())
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    for ref in re.findall(r'url\(#([^)]+)\)', page):
        assert ref in ids, f"url(#{ref}) points at no element"


BAD_FIGURES = [
    ({"kind": "pie", "title": "t", "data": {}}, "unknown kind 'pie'"),
    ({"kind": "strip", "title": "t", "data": {}}, "KeyError"),
    ({"kind": "strip", "title": "t", "data": "not a mapping"}, "'data' must be a mapping"),
    ({"kind": "heatmap", "title": "t", "data": {"values": [[1, 2], [3]]}}, "row 1 has another length"),
    ({"kind": "heatmap", "title": "t", "data": {"values": [[1, 2], [3, 4]], "marked": [[5, 0]]}}, "outside the 2 x 2 matrix"),
    ({"kind": "bars", "title": "t", "data": {"labels": ["a", "b"], "values": [1.0]}}, "labels and values differ in length"),
    ({"kind": "line", "title": "t", "data": {"series": [{"label": "s", "x": [1, 2], "y": ["a", "b"]}]}}, "must be a list of numbers"),
    ({"kind": "tokens", "title": "t", "data": {"rows": [{"tokens": ["a"], "values": [1.0, 2.0]}]}}, "tokens and values differ"),
    ({"kind": "tokens", "title": "t", "data": {"rows": [{"tokens": ["a"], "values": [1.0], "focus": 3}]}}, "focus = 3 is outside"),
    ({"kind": "strip", "title": "t", "data": {"groups": [{"label": "a", "values": [1]}], "intervals": [{"group": "b", "estimate": 1, "low": 0, "high": 2}]}}, "names group 'b'"),
    ("not a record", "must be a mapping"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0, 1, 1], "series": [{"label": "a", "counts": [1, 2]}]}}, "strictly increasing: edges[1] = 1, edges[2] = 1"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0], "series": [{"label": "a", "counts": []}]}}, "at least 2 numbers"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0, 1, 2], "series": [{"label": "a", "counts": [1, 2, 3]}]}}, "has 3 bins, but the 3 edges make 2"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0, 1, 2], "series": [{"label": "a", "counts": [1, -2]}]}}, "must not be negative"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0, 1, 2], "series": [{"label": "a", "counts": [1, float("nan")]}]}}, "counts must be finite"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0, float("inf")], "series": [{"label": "a", "counts": [1]}]}}, "edges must be finite"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0, 1], "series": []}}, "series must be a non-empty list"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0, 1], "series": ["a"]}}, "series[0] must be a mapping"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0, 1], "series": [{"label": "a", "counts": [1]}], "log_y": "yes"}}, "log_y must be true or false"),
    ({"kind": "histogram", "title": "t", "data": {"edges": [0, 1], "series": [{"label": "a", "counts": [1]}], "lines": [{"value": float("nan")}]}}, "lines must have finite values"),
]


@pytest.mark.parametrize(("figure", "message"), BAD_FIGURES, ids=[m for _, m in BAD_FIGURES])
def test_bad_figure_data_renders_a_visible_box_not_an_exception(figure: object, message: str) -> None:
    out = draw_figure(figure)  # type: ignore[arg-type]
    assert 'class="fig-error"' in out and "cannot draw figure" in out
    assert message.replace("'", "&#x27;") in out, out


def test_a_bad_figure_does_not_lose_the_claim_or_the_page() -> None:
    report = synthetic_report([claim("a", figures=[{"kind": "pie", "title": "x", "data": {}}, figure_of_each_kind()[0]])])
    page = render_html(report)
    assert page.count('class="fig-error"') == 1 and page.count('<svg class="plot"') == 1
    assert f'id="{claim_anchor(report["claims"][0])}"' in page


def test_tokens_are_escaped_whitespace_visible_and_shaded_around_center() -> None:
    tokens = next(f for f in figure_of_each_kind() if f["kind"] == "tokens")
    out = draw_figure(tokens)
    assert HOSTILE not in out and "<b>bold?</b>" not in out
    assert "&lt;script&gt;" in out and "&lt;b&gt;bold?&lt;/b&gt;" in out
    assert '<span class="ws">⏎</span><br>' in out and '<span class="ws">⇥</span>' in out and '<span class="ws">·</span>' in out
    assert 'class="tok focus"' in out
    assert "gain (nats)" in out and 'class="tok-legend"' in out
    # values 2.0 (largest |value - 0|) and -1.0: blue, half-strength vermilion; None unshaded
    assert f'style="background:{token_colour(2.0, 0.0, 2.5)}"' in out
    unshaded = re.findall(r'<span class="tok"( style="[^"]*")?>&lt;bos&gt;', out)
    assert unshaded == [""], unshaded


def test_control_characters_show_as_escapes_and_labels_show_whitespace() -> None:
    out = draw_figure({"kind": "tokens", "title": "t", "data": {"rows": [{"label": "r", "tokens": ["a\x19", "\u00a0"], "values": [1.0, 2.0]}]}})
    assert "\x19" not in out and '<span class="ws">\\x19</span>' in out and "\u00a0" not in out
    svg = draw_figure({"kind": "heatmap", "title": "t", "data": {"values": [[1.0, 0.0], [0.0, 1.0]], "row_labels": [" x", "\n"], "col_labels": ["\t", "\x00"]}})
    for label in (">·x<", ">⏎<", ">⇥<", ">\\x00<"):
        assert label in svg, label


def test_token_colour_diverges_around_center_and_is_symmetric() -> None:
    assert token_colour(1.0, 1.0, 2.0) == "#ffffff"
    up, down = token_colour(3.0, 1.0, 2.0), token_colour(-1.0, 1.0, 2.0)
    assert up != down
    r, g, b = (int(up[i : i + 2], 16) for i in (1, 3, 5))
    assert b > r  # above center: blue
    r, g, b = (int(down[i : i + 2], 16) for i in (1, 3, 5))
    assert r > b  # below: vermilion
    assert token_colour(10.0, 1.0, 2.0) == up  # clipped at the scale
    assert token_colour(None, 0.0, 1.0) is None and token_colour(float("nan"), 0.0, 1.0) is None


def test_page_has_a_section_per_claim_linked_from_the_table() -> None:
    report = synthetic_report()
    page = render_html(report)
    anchors = re.findall(r'<section class="claim[^"]*" id="([^"]+)"', page)
    assert anchors == [claim_anchor(c) for c in report["claims"]]
    assert re.findall(r'<td class="id"><a href="#([^"]+)"', page) == anchors
    assert anchors[0] == "claim-hypotheses-synthetic.claims.yaml-all-kinds"
    assert page.count('<svg class="plot"') + page.count('<div class="tokens">') == sum(len(c["figures"]) for c in report["claims"])


def test_duplicate_node_ids_get_distinct_anchors() -> None:
    page = render_html(synthetic_report([claim("same"), claim("same")]))
    anchors = re.findall(r'<section class="claim[^"]*" id="([^"]+)"', page)
    assert len(anchors) == 2 and len(set(anchors)) == 2


def test_page_requests_nothing_from_elsewhere_and_escapes_text() -> None:
    page = render_html(synthetic_report())
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"\bsrc\s*=", page)  # no scripts, images or frames by URL
    links = {h for h in re.findall(r'\bhref="([^"]*)"', page) if not h.startswith("data:image/png;base64,")}  # heatmaps
    assert links <= {f"#{a}" for a in re.findall(r'\bid="([^"]+)"', page)}
    assert not re.search(r"@import|url\((?!#)", page)
    assert page.count("<script>") == 1  # the filter script, inline
    assert HOSTILE not in page and "&lt;script&gt;alert" in page


def test_page_reads_without_javascript() -> None:
    page = render_html(synthetic_report())
    assert '<div class="filters" id="filters" hidden>' in page  # controls appear only when the script runs
    assert not re.search(r"<tr[^>]*\bhidden\b", page) and not re.search(r"<section[^>]*\bhidden\b", page)
    for outcome in ("supported", "refuted", "inconclusive", "error"):
        assert f'<option value="{outcome}">' in page


def test_summary_verdicts_expected_verdicts_errors_and_baseline() -> None:
    report = synthetic_report()
    page = render_html(report)
    assert "git 0123456789" in page and "<code>0123456789ab</code>" in page and "2025-01-01 00:00:00 UTC" in page
    for label in ("1 ✓ supported", "1 ✗ refuted", "1 ? inconclusive", "1 ! error", "2 differ from the expected verdict"):
        assert label in page
    unsure = page[page.index('id="claim-hypotheses-synthetic.claims.yaml-unsure"') :]
    assert "≠ expected supported" in unsure[: unsure.index("</section>")]
    refuted = page[page.index('id="claim-hypotheses-synthetic.claims.yaml-refuted-as-expected"') :]
    assert "(expected refuted)" in refuted[: refuted.index("</section>")]
    assert "ValueError: head L9H0 is out of range" in page
    # every expectation's numbers, both p sides, effect size range, interval level and method
    for text in ("<code>max_score</code>", "1.00e-12 / <b>4.00e-12</b>", "1.000 / <b>1.000</b>", "8.90..10.10 (5 draws)", "[0.790, 0.810]", "90% BCa bootstrap", "one-sided t-test"):
        assert text in page, text
    baseline = page[page.index("Against the baseline") :]
    assert "12.00" in baseline and "effect size fell by 21% (12.00 -&gt; 9.50)" in baseline and "baseline/report.json" in baseline


def test_a_claim_new_since_the_baseline_says_so() -> None:
    report = synthetic_report([claim("fresh", baseline={"file": "old.json", "status": "new"})])
    assert "A new claim: the baseline has no claim with this id." in render_html(report)


def test_a_claim_without_baseline_shows_no_baseline_table() -> None:
    report = synthetic_report()
    report["claims"][0].pop("baseline")
    assert "Against the baseline" not in render_html(report)


def test_a_malformed_record_renders_a_box_in_its_section() -> None:
    report = synthetic_report([claim("odd", expectations="not a list of dicts")])
    page = render_html(report)
    assert "cannot render this claim's record" in page
    assert 'id="claim-hypotheses-synthetic.claims.yaml-odd"' in page


def test_markdown_still_renders_and_names_the_git_revision() -> None:
    report = synthetic_report()
    text = render_markdown(copy.deepcopy(report))
    assert "git 0123456789," in text and "`all-kinds`" in text


# --- histogram -----------------------------------------------------------------------------------


def _step_path(svg: str, colour: str) -> str:
    """The ``d`` of the outlined steps of the series drawn in ``colour`` (its longest stroked path:
    the legend's sample line is shorter)."""
    paths = re.findall(rf'<path d="([^"]+)"[^>]*style="fill: none; stroke: {colour}[;"]', svg)
    assert paths, f"no stroked path in {colour}"
    return max(paths, key=len)


def _histogram(counts: list[list[float]], **extra: object) -> dict:
    series = [{"label": f"series {i}", "counts": c} for i, c in enumerate(counts)]
    return {"kind": "histogram", "title": "t", "data": {"edges": [0.0, 1.0, 2.0, 3.0], "series": series, **extra}}


def test_histogram_draws_each_series_as_its_share_of_its_own_total() -> None:
    # a rare class of the same shape as a common one draws the same steps (shares, not counts) ...
    out = draw_figure(_histogram([[100, 200, 700], [1, 2, 7]], lines=[{"value": 1.5, "label": "firing threshold"}]))
    assert "cannot draw" not in out
    assert _step_path(out, "#0072b2") == _step_path(out, "#e69f00")
    assert ">share of the series' total, per bin<" in out
    assert ">series 0 (total 1,000)<" in out and ">series 1 (total 10)<" in out and ">firing threshold<" in out
    # ... and another shape draws other steps
    other = draw_figure(_histogram([[100, 200, 700], [7, 2, 1]]))
    assert _step_path(other, "#0072b2") != _step_path(other, "#e69f00")


def test_histogram_log_axis_keeps_empty_bins_and_says_it_is_log() -> None:
    linear, log = draw_figure(_histogram([[0, 5, 995], [3, 0, 0]])), draw_figure(_histogram([[0, 5, 995], [3, 0, 0]], log_y=True))
    assert "cannot draw" not in log and "cannot draw" not in linear
    assert ">share of the series' total, per bin (log)<" in log and "(log)" not in linear
    assert r"$\mathdefault{10^{-1}}$" in log and "10^{" not in linear  # ticks at powers of ten
    assert _step_path(log, "#0072b2") != _step_path(linear, "#0072b2")


def test_histogram_of_an_empty_series_draws_and_says_its_total() -> None:
    out = draw_figure(_histogram([[1, 2, 3], [0, 0, 0]]))
    assert "cannot draw" not in out and ">series 1 (total 0)<" in out


# --- a neuron claim's pictures: tokens, histogram, bars ------------------------------------------


def _neuron_claim_figures() -> list:
    """The pictures a neuron claim draws, built the way a check builds them: numpy float64 values
    with all their digits, rounded only by the engine's ``figure_data.validated``."""
    import numpy as np

    from interp_checks.figure_data import validated
    from interp_checks.figures import Figure

    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):  # checks.neurons shows 12 contexts of 12 + 1 + 3 tokens
        values = rng.normal(0.0, 1.0, size=16) * np.pi
        rows.append({"label": f"{values[12]:.3g} (matches; Lib/os_path{i}.py)", "tokens": [f" tok{j}" for j in range(16)], "values": values.tolist(), "focus": 12})
    edges = np.linspace(-17.0 / 3.0, 31.0 / 3.0, 65)  # wide enough for every value
    matched, other = rng.normal(4.0, 1.0, 3_000), rng.normal(0.0, 1.0, 997_000)
    bands = rng.uniform(0.2, 0.9, 4)
    figures = [
        Figure("tokens", "L0N216: its largest activations", {"rows": rows, "value_label": "L0N216 activation", "center": 0.0}, "top 12"),
        Figure(
            "histogram",
            "L0N216 on matching and other tokens",
            {
                "edges": edges,
                "series": [{"label": "matches", "counts": np.histogram(matched, edges)[0]}, {"label": "does not match", "counts": np.histogram(other, edges)[0]}],
                "x_label": "L0N216 activation",
                "lines": [{"value": np.float64(np.pi), "label": "firing threshold"}],
            },
            "every token, binned",
        ),
        Figure("bars", "share that matches, per band", {"labels": ["top 1%", "1-5%", "5-20%", "20-50%"], "values": bands, "low": bands - 0.1 / 3, "high": bands + 0.1 / 3, "value_label": "share"}, ""),
    ]
    kept, notes = validated(figures, "check top_examples")
    assert not notes
    return [figure.to_dict() for figure in kept]


def _floats(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats(item)]
    if isinstance(value, list):
        return [f for item in value for f in _floats(item)]
    return []


def test_a_neuron_claim_with_tokens_histogram_and_bars_renders_and_its_json_stays_small(tmp_path) -> None:
    import json

    from interp_checks.report import write_reports

    figures = _neuron_claim_figures()
    json_path, md_path, html_path = write_reports([claim("L0N216-the", check="top_examples", figures=figures)], tmp_path)
    saved = json.loads(json_path.read_text(encoding="utf-8"))
    assert [f["kind"] for f in saved["claims"][0]["figures"]] == ["tokens", "histogram", "bars"]
    # round numbers: at most 4 significant digits however many the check computed; counts exact
    numbers = _floats([f["data"] for f in saved["claims"][0]["figures"]])
    assert len(numbers) > 250
    assert all(len(f"{abs(x):.15g}".replace(".", "").lstrip("0").split("e")[0]) <= 4 for x in numbers), [x for x in numbers if len(repr(x)) > 8][:5]
    assert sum(saved["claims"][0]["figures"][1]["data"]["series"][1]["counts"]) == 997_000
    # small: the three pictures of a neuron claim in under 16 KB, so 100 such claims stay under 2 MB
    assert json_path.stat().st_size < 16_000, json_path.stat().st_size
    page = html_path.read_text(encoding="utf-8")
    assert 'class="fig-error"' not in page
    assert page.count('<figure class="fig fig-histogram">') == 1 and page.count('<figure class="fig fig-bars">') == 1
    assert page.count('<div class="tokens">') == 1 and page.count('<svg class="plot"') == 2
    assert ">L0N216 activation<" in page and "(total 997,000)" in page
    assert "⟦ tok12⟧" in md_path.read_text(encoding="utf-8")
