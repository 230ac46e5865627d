"""``report.json`` (schema in ``report.schema``), ``report.md`` and ``report.html``, from claim-result records.

The JSON keys are a contract: add keys, never rename or drop them within a schema version.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from interp_checks.report.compare import diff_from_record, render_markdown_table
from interp_checks.report.figures import text_token
from interp_checks.report.format import deciding_p as _deciding_p
from interp_checks.report.format import effect_text as _effect
from interp_checks.report.format import fmt as _fmt
from interp_checks.report.format import interval_text as _interval
from interp_checks.report.html import render_html
from interp_checks.report.schema import SCHEMA


def _git_revision(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def build_report(claims: Iterable[dict[str, Any]], *, settings: dict[str, Any] | None = None, root: Path | None = None) -> dict[str, Any]:
    """The report document: run metadata, a summary count per outcome, and every claim."""
    claims = list(claims)
    summary: dict[str, int] = {}
    for claim in claims:
        summary[claim["outcome"]] = summary.get(claim["outcome"], 0) + 1
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_revision": _git_revision(root or Path.cwd()),
        "python": platform.python_version(),
        "settings": settings or {},
        "summary": summary,
        "claims": claims,
    }


def _verdict_cell(claim: dict[str, Any]) -> str:
    outcome = claim["outcome"]
    if outcome == "error":
        return "**error**"
    if claim.get("expected") == "refuted":
        return f"{outcome} (expected refuted)"
    return outcome


def _deciding_first(claim: dict[str, Any]) -> list[tuple[dict[str, Any] | None, bool]]:
    """The claim's expectations with the deciding one first (it goes on the claim's own row)."""
    expectations = claim["expectations"]
    if not expectations:
        return [(None, False)]
    name = claim.get("deciding_statistic")
    first = [e for e in expectations if e["statistic"] == name][:1]
    rest = [e for e in expectations if not (first and e is first[0])]
    return [(e, True) for e in first] + [(e, False) for e in rest]


def _baseline_section(report: dict[str, Any]) -> list[str]:
    """Each claim beside the baseline run's numbers (``--interp-baseline``), and what drifted."""
    diffs = [d for d in (diff_from_record(c) for c in report["claims"]) if d is not None]
    if not diffs:
        return []
    settings = report.get("settings", {})
    files = sorted({str(c["baseline"]["file"]) for c in report["claims"] if c.get("baseline")})
    gate = ", ".join(f"`{e}`" for e in settings.get("fail_on") or []) or "none (the baseline is only shown)"
    drifted = sum(1 for d in diffs if d.violations)
    return [
        "",
        "## Baseline",
        "",
        f"Compared with {', '.join(f'`{f}`' for f in files)}; gate (`--interp-fail-on`): {gate}; "
        f"{drifted} of {len(diffs)} claims drifted. Cells read baseline → now; numbers are the deciding "
        "statistic's (the baseline's for the same statistic); `*` marks a changed verdict.",
        "",
        *render_markdown_table(diffs),
    ]


MARKDOWN_TOKEN_ROWS = 3  # rows of each ``tokens`` figure shown as text in report.md (report.html shows all)
CONTEXT_CHARS = 80  # characters of context kept on each side of the marked token in report.md
FOCUS_OPEN, FOCUS_CLOSE = "⟦", "⟧"


INLINE_MARKUP = re.compile(r"([\\`*_\[\]<>#|~&])")  # emphasis, code, links, HTML, entities, tables
BLOCK_START = re.compile(r"^([-+]|\d{1,9}[.)])(?= |$)")  # what would open a nested list item


def _markdown_escaped(text: Any) -> str:
    """Free text (a label, a title) on one Markdown line with its markup escaped: a file name's
    underscores must not italicise the rest of the line, nor a label starting "- " or "1. " open a
    list. Only what CommonMark would read as markup is escaped, so the raw file stays readable."""
    text = INLINE_MARKUP.sub(r"\\\1", " ".join(str(text).split()))
    return BLOCK_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], text)


def _code_span(text: str) -> str:
    """``text`` as a Markdown code span that no token can break out of: fenced by one backtick more
    than its longest run of them, and padded by a space on each side where CommonMark would
    otherwise eat a leading or trailing backtick or space (the padding is what it strips)."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = text.strip(" ") != "" and (text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " "))
    return f"{fence} {text} {fence}" if pad else f"{fence}{text}{fence}"


def _cropped(text: str, limit: int, *, keep_end: bool) -> str:
    """At most ``limit`` characters of ``text`` and an ellipsis where it was cut: the end of the
    context before the marked token, the start of the context after it."""
    if len(text) <= limit:
        return text
    return "…" + text[-limit:] if keep_end else text[:limit] + "…"


def token_row_text(row: dict[str, Any]) -> str:
    """One row of a ``tokens`` figure as one line of text, its focused token marked ⟦token⟧, with at
    most CONTEXT_CHARS characters of context on each side (whitespace shown as in report.html)."""
    tokens = [text_token(str(token)) for token in row.get("tokens") or []]
    if not tokens:
        return "∅"
    focus = row.get("focus")
    if not isinstance(focus, int) or isinstance(focus, bool) or not 0 <= focus < len(tokens):
        return _cropped("".join(tokens), 2 * CONTEXT_CHARS, keep_end=False)
    before = _cropped("".join(tokens[:focus]), CONTEXT_CHARS, keep_end=True)
    after = _cropped("".join(tokens[focus + 1 :]), CONTEXT_CHARS, keep_end=False)
    return f"{before}{FOCUS_OPEN}{tokens[focus]}{FOCUS_CLOSE}{after}"


def _token_row_line(row: dict[str, Any]) -> str:
    """``- label: `text with ⟦focus⟧` ``: one list item per row (no label, no prefix)."""
    label = _markdown_escaped(row.get("label") or "")
    return f"- {label + ': ' if label else ''}{_code_span(token_row_text(row))}"


def _token_figure_lines(claim_id: Any, figure: dict[str, Any]) -> list[str]:
    """The heading and first rows of one ``tokens`` figure; a malformed one says so in one line
    (report.md must never be lost to a picture, as report.html never is)."""
    head = f"**`{str(claim_id).replace('`', '')}`**: {_markdown_escaped(figure.get('title') or 'tokens')}"
    try:
        rows = figure["data"]["rows"]
        if not isinstance(rows, list) or not all(isinstance(item, dict) for item in rows[:MARKDOWN_TOKEN_ROWS]):
            raise ValueError("rows must be a list of {label, tokens, values, focus}")
        shown = [_token_row_line(row) for row in rows[:MARKDOWN_TOKEN_ROWS]]
    except Exception as error:  # noqa: BLE001 - one bad figure must not lose the report
        return [head, "", f"- (cannot show this figure's rows: {type(error).__name__}: {_markdown_escaped(error)})", ""]
    count = f" (the first {len(shown)} of {len(rows)} rows)" if len(rows) > len(shown) else ""
    return [head + count, "", *shown, ""]


def _token_examples_section(report: dict[str, Any]) -> list[str]:
    """The first rows of every claim's ``tokens`` figures (top examples, counterexamples, contexts
    of largest gain) as text, so a reader of the Markdown report sees what the pictures show. Only
    figure kinds are known here, never checks."""
    lines: list[str] = []
    for claim in report["claims"]:
        for figure in claim.get("figures") or []:
            if isinstance(figure, dict) and figure.get("kind") == "tokens":
                lines += _token_figure_lines(claim.get("id"), figure)
    if not lines:
        return []
    return [
        "",
        "## Token examples",
        "",
        f"The first {MARKDOWN_TOKEN_ROWS} rows of each claim's `tokens` figures, as text: {FOCUS_OPEN} {FOCUS_CLOSE} mark "
        "the token a row is about, ⏎ a newline, ⇥ a tab. report.html shows every row, shaded by value.",
        "",
        *lines[:-1],
    ]


def render_markdown(report: dict[str, Any]) -> str:
    """A table a person reads in a CI log, then the errors and the method."""
    lines = ["# interp_checks report", ""]
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(report["summary"].items()))
    settings = report.get("settings", {})
    lines.append(f"{len(report['claims'])} claims: {summary or 'none'}.  ")
    lines.append(
        f"alpha {settings.get('alpha', '–')}, p-values adjusted by {settings.get('adjust', '–')} over each family; "
        f"git {(report.get('git_revision') or 'unknown')[:10]}, {report['created']}"
    )
    families = sorted({(c.get("family"), c.get("family_size")) for c in report["claims"] if c.get("family_size")}, key=str)
    if families:
        lines.append(
            "Multiplicity family: "
            + "; ".join(f"{name}, {size} claims" for name, size in families)
            + " (claims not run in this session count as p = 1)."
        )
    lines += [
        "",
        "The claim's row shows the expectation that decided its verdict (★ where a claim has several). "
        "p is adjusted, on the side that decided: the refutation p for a refuted expectation, else the support p. "
        "margin: how far the estimate lies inside the claimed region (negative: outside). "
        "effect size: against the null, positive when the statistic is above it.",
        "",
        "| claim | model | statistic | expect | estimate | CI | margin | p (adj.) | effect size | n | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for claim in report["claims"]:
        rows = _deciding_first(claim)
        for i, (exp, deciding) in enumerate(rows):
            head = f"`{claim['id']}`" if i == 0 else ""
            model = claim["model"] if i == 0 else ""
            verdict = _verdict_cell(claim) if i == 0 else ""
            if exp is None:
                lines.append(f"| {head} | {model} | – | – | – | – | – | – | – | – | {verdict} |")
                continue
            star = " ★" if deciding and len(claim["expectations"]) > 1 else ""
            if exp.get("deciding_member"):
                star += f" (largest: {exp['deciding_member']})"
            lines.append(
                f"| {head} | {model} | {exp['statistic']}{star} | {exp['comparison']} | {_fmt(exp.get('estimate'))} | "
                f"{_interval(exp.get('ci'))} | {_fmt(exp.get('margin'))} | {_fmt(_deciding_p(exp))} | "
                f"{_effect(exp)} | {_fmt(exp.get('n'))} | {verdict or exp['outcome']} |"
            )
    units = sorted({(e["statistic"].split("[")[0], e.get("unit")) for c in report["claims"] for e in c["expectations"] if e.get("unit")})
    if units:
        lines += ["", "Units: " + "; ".join(f"`{stat}` in {unit}" for stat, unit in units) + "."]
    lines += _baseline_section(report)
    errors = [c for c in report["claims"] if c.get("error")]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- `{c['id']}`: {c['error']}" for c in errors]
    lines += _token_examples_section(report)
    timed = [c for c in report["claims"] if c.get("duration_s")]
    if timed:
        load = sum(c.get("load_s") or 0.0 for c in timed)
        measure = sum(c.get("measure_s") or 0.0 for c in timed)
        slowest = sorted(timed, key=lambda c: -(c.get("measure_s") or 0.0))[:3]
        lines += [
            "",
            "## Time",
            "",
            f"Loading models (and random-weights twins): {load:.2f} s; measuring: {measure:.2f} s "
            f"(shared forward passes split between the claims that share them). Slowest to measure: "
            + ", ".join(f"`{c['id']}` {c.get('measure_s', 0):.2f} s" for c in slowest)
            + ".",
        ]
    methods = sorted(
        {
            (e.get("ci_method") or "", e.get("test") or "", e.get("effect_size_kind") or "", c.get("null") or "")
            for c in report["claims"]
            for e in c["expectations"]
        }
    )
    if methods:
        lines += ["", "## Method", ""]
        seen: set[str] = set()
        for ci_method, test, kind, null in methods:
            for label, text in (("interval", ci_method.split(" over ")[0]), ("effect size", kind), ("null", null)):
                if text and (label, text) not in seen:
                    seen.add((label, text))
                    lines.append(f"- {label}: {text}")
        lines.append(
            "- test: one-sided test against the stated threshold over sequences or documents; for a statistic of the "
            "weights (no input sequences), a bootstrap of its z over the null's draws (see report.json for each claim's H0)"
        )
        lines.append("- verdict: supported when the adjusted one-sided p < alpha and the interval lies on the claimed side; refuted when the same holds for the opposite side; otherwise inconclusive")
    return "\n".join(lines) + "\n"


def write_reports(claims: Iterable[dict[str, Any]], folder: Path, *, settings: dict[str, Any] | None = None) -> tuple[Path, Path, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    report = build_report(claims, settings=settings, root=folder)
    json_path = folder / "report.json"
    # Compact: figure data is most of the file (indented, the bundled suite's report is 2.7x larger);
    # read it with ``python -m json.tool report.json`` or ``interp-checks report``.
    json_path.write_text(json.dumps(report, separators=(",", ":"), allow_nan=False) + "\n", encoding="utf-8")
    return (json_path, *render_reports(report, folder))


def render_reports(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` for a report dict (a fresh run or a saved report.json)."""
    md_path, html_path = Path(folder) / "report.md", Path(folder) / "report.html"
    md_path.write_text(render_markdown(report), encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return md_path, html_path
