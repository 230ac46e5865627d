"""``report.json`` (schema in ``report.schema``), ``report.md`` and ``report.html``, from claim-result records.

The JSON keys are a contract: add keys, never rename or drop them within a schema version.
"""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from interp_checks.report.compare import diff_from_record, render_markdown_table
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
