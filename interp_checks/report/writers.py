"""``report.json`` (schema ``interp-checks/1``) and ``report.md``, from claim-result dicts.

The JSON keys are a contract: add keys, never rename or drop them within a schema version.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

SCHEMA = "interp-checks/1"


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


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 10**4):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def _interval(ci: Any) -> str:
    if not ci or ci[0] is None:
        return "–"
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _verdict_cell(claim: dict[str, Any]) -> str:
    outcome = claim["outcome"]
    if outcome == "error":
        return "**error**"
    if claim.get("expected") == "refuted":
        return f"{outcome} (expected refuted)"
    return outcome


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
    lines += [
        "",
        "| claim | model | statistic | expect | estimate | CI | p (adj.) | effect size | n | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for claim in report["claims"]:
        rows = claim["expectations"] or [None]
        for i, exp in enumerate(rows):
            head = f"`{claim['id']}`" if i == 0 else ""
            model = claim["model"] if i == 0 else ""
            verdict = _verdict_cell(claim) if i == 0 else ""
            if exp is None:
                lines.append(f"| {head} | {model} | – | – | – | – | – | – | – | {verdict} |")
                continue
            effect = _fmt(exp.get("effect_size"), 2)
            lines.append(
                f"| {head} | {model} | {exp['statistic']} | {exp['comparison']} | {_fmt(exp.get('estimate'))} | "
                f"{_interval(exp.get('ci'))} | {_fmt(exp.get('p_adjusted'))} | {effect} | {_fmt(exp.get('n'))} | "
                f"{verdict or exp['outcome']} |"
            )
    errors = [c for c in report["claims"] if c.get("error")]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- `{c['id']}`: {c['error']}" for c in errors]
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
        lines.append("- test: one-sided test against the stated threshold over sequences (see report.json for each claim's H0)")
        lines.append("- verdict: supported when the adjusted one-sided p < alpha and the interval lies on the claimed side; refuted when the same holds for the opposite side; otherwise inconclusive")
    return "\n".join(lines) + "\n"


def write_reports(claims: Iterable[dict[str, Any]], folder: Path, *, settings: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    report = build_report(claims, settings=settings, root=folder)
    json_path, md_path = folder / "report.json", folder / "report.md"
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
