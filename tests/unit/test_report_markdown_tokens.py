"""report.md shows the first rows of every ``tokens`` figure as text, the focused token marked ⟦ ⟧.

A reader of the Markdown report (a CI log, a pull request) sees a neuron claim's top examples and
a universal claim's minimal counterexample without opening report.html. The report knows figure
kinds, not checks: any claim's ``tokens`` figure is shown. What a CommonMark reader makes of the
text is checked with markdown-it-py (installed with rich; skipped where it is missing).
"""

from __future__ import annotations

import html

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from interp_checks.report import render_markdown
from interp_checks.report.writers import CONTEXT_CHARS, MARKDOWN_TOKEN_ROWS, _token_row_line, token_row_text
from tests.helpers.report_records import HOSTILE, claim, figure_of_each_kind, synthetic_report


def tokens_figure(rows: list[dict], title: str = "L0N7: its largest activations") -> dict:
    return {"kind": "tokens", "title": title, "caption": "", "source": "top_examples", "data": {"rows": rows, "value_label": "activation"}}


def row(label: str, tokens: list[str], focus: int | None) -> dict:
    return {"label": label, "tokens": tokens, "values": [0.0] * len(tokens), "focus": focus}


def section(text: str) -> str:
    """The "Token examples" section of a report.md, up to the next section."""
    start = text.index("## Token examples")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_the_first_rows_of_a_tokens_figure_show_with_the_focus_marked_and_the_label() -> None:
    rows = [row(f"{5 - i}.5 (matches; doc{i}.py)", ["x", " =", " the", " path", "\n"], 2) for i in range(5)]
    text = render_markdown(synthetic_report([claim("L0N7-the", check="top_examples", figures=[tokens_figure(rows)])]))
    shown = section(text)
    assert "**`L0N7-the`**: L0N7: its largest activations (the first 3 of 5 rows)" in shown
    for i in range(MARKDOWN_TOKEN_ROWS):
        assert f"- {5 - i}.5 (matches; doc{i}.py): `x =⟦ the⟧ path⏎`" in shown
    assert "doc3.py" not in shown and "doc4.py" not in shown  # only the first rows: report.html has them all


def test_every_tokens_figure_of_every_claim_shows_and_other_kinds_do_not() -> None:
    counterexample = tokens_figure([row("activation 0.01 <= threshold 1 on a match", ["1", "2", "x"], 1)], "minimal counterexample")
    others = [f for f in figure_of_each_kind() if f["kind"] != "tokens"]
    report = synthetic_report([claim("a", figures=others), claim("b", check="neuron_universal", figures=[*others, counterexample])])
    shown = section(render_markdown(report))
    assert "**`b`**: minimal counterexample" in shown and "`1⟦2⟧x`" in shown
    assert "**`a`**" not in shown  # no tokens figure, no entry
    assert "## Token examples" not in render_markdown(synthetic_report([claim("a", figures=others)]))


def test_whitespace_tokens_are_visible_and_spaces_stay_spaces() -> None:
    assert token_row_text(row("", ["def", " f", "():", "\n", "    ", "return", "\t", "\x19"], 4)) == "def f():⏎⟦    ⟧return⇥\\x19"
    assert token_row_text(row("", ["", "a"], 0)) == "⟦∅⟧a"
    assert token_row_text(row("", [], None)) == "∅"


def test_long_contexts_are_cropped_around_the_focus() -> None:
    before, after = ["a"] * (CONTEXT_CHARS + 10), ["b"] * (CONTEXT_CHARS + 10)
    text = token_row_text(row("", [*before, "X", *after], len(before)))
    assert text == "…" + "a" * CONTEXT_CHARS + "⟦X⟧" + "b" * CONTEXT_CHARS + "…"
    assert token_row_text(row("", ["c"] * (3 * CONTEXT_CHARS), None)) == "c" * (2 * CONTEXT_CHARS) + "…"


def test_a_malformed_tokens_figure_says_so_and_the_report_survives() -> None:
    broken = {"kind": "tokens", "title": "t", "data": {"rows": "not rows"}}
    text = render_markdown(synthetic_report([claim("odd", figures=[broken, tokens_figure([row("fine", ["a"], 0)])])]))
    assert "cannot show this figure's rows: ValueError: rows must be a list" in text
    assert "- fine: `⟦a⟧`" in text and "## Method" in text


def test_hostile_labels_are_escaped() -> None:
    text = section(render_markdown(synthetic_report()))
    assert HOSTILE not in text and "\\<script\\>" in text


# --- what a CommonMark reader sees -----------------------------------------------------------------

markdown_it = pytest.importorskip("markdown_it")
COMMONMARK = markdown_it.MarkdownIt("commonmark")
PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"))
MARKUP = st.sampled_from(list("-+*_`[]()<>#|~&!.:=1 a\\"))  # what CommonMark could read as markup
TEXT = st.text(PRINTABLE, max_size=30) | st.text(MARKUP, max_size=12)


def escaped(text: str) -> str:
    """Text as markdown-it writes it in HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@settings(max_examples=300, deadline=None)
@given(label=TEXT, tokens=st.lists(TEXT, min_size=1, max_size=8), focus=st.none() | st.integers(0, 7))
@example(label="_os_ *bold* [link](x) <b> &amp; `code` # ~~s~~ | \\", tokens=["``", " `a` ", "b"], focus=0)
@example(label="- a nested list?", tokens=["x"], focus=0)
@example(label="1. an ordered one?", tokens=["x"], focus=0)
@example(label="+ x", tokens=[" ", "  "], focus=None)
@example(label="", tokens=[" def", " "], focus=None)
def test_a_row_reads_back_exactly_as_label_and_code_in_commonmark(label: str, tokens: list[str], focus: int | None) -> None:
    record = row(label, tokens, None if focus is None else focus % len(tokens))
    rendered = COMMONMARK.render(_token_row_line(record))
    clean_label = " ".join(label.split())
    prefix = f"{escaped(clean_label)}: " if clean_label else ""
    assert rendered == f"<ul>\n<li>{prefix}<code>{escaped(token_row_text(record))}</code></li>\n</ul>\n"
