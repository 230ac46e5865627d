"""``report.html``: the report for people, one self-contained page rendered from ``report.json``'s dict.

Self-contained means no request leaves the page: CSS and the SVG pictures are inline, the only
script is the small inline table filter, and a Content-Security-Policy forbids loading anything
else, so the page opens offline and from a CI artifact. Without JavaScript everything still
reads (the filter controls stay hidden and every row shows).

Like the rest of ``report/``, this knows result records, not checks or models: a claim's pictures
come as figure records (``interp_checks.figures``) drawn by ``report.figures``.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, Iterable, Mapping

from interp_checks.report.figures import draw_figure
from interp_checks.report.format import deciding_p, fmt, interval_text

__all__ = ["claim_anchor", "render_html"]

OUTCOMES = ("supported", "refuted", "inconclusive", "error")
# Icon + word: the verdict reads without colour too.
OUTCOME_LABELS = {"supported": "✓ supported", "refuted": "✗ refuted", "inconclusive": "? inconclusive", "error": "! error"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
FILTERS = (("outcome", "all verdicts"), ("check", "all checks"), ("model", "all models"))
BASELINE_FIELDS = ("outcome", "deciding_statistic", "estimate", "ci", "p_value", "effect_size")

CSS = """
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --soft:#f6f8fa; --link:#0b5cad;
  --supported:#116329; --supported-bg:#dafbe1; --refuted:#a40e26; --refuted-bg:#ffebe9;
  --inconclusive:#7d4e00; --inconclusive-bg:#fff8c5; --error:#6639ba; --error-bg:#fbefff; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.08rem; margin: 0 0 .4rem; display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
a { color: var(--link); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: .88em; }
.muted { color: var(--muted); }
.small { font-size: .8em; }
.subtitle { color: var(--muted); margin: 0 0 1rem; }
.badge { display: inline-block; padding: .05rem .55rem; border-radius: 1rem; border: 1px solid currentColor;
  font-weight: 600; font-size: .85em; white-space: nowrap; }
.v-supported { color: var(--supported); background: var(--supported-bg); }
.v-refuted { color: var(--refuted); background: var(--refuted-bg); }
.v-inconclusive { color: var(--inconclusive); background: var(--inconclusive-bg); }
.v-error { color: var(--error); background: var(--error-bg); }
.differs { display: inline-block; font-weight: 600; font-size: .85em; color: var(--refuted); border: 1px dashed var(--refuted);
  border-radius: .3rem; padding: 0 .4rem; white-space: nowrap; }
.counts { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0 1rem; }
.counts .badge { font-size: 1rem; padding: .2rem .8rem; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: .25rem 2rem; margin: 0 0 .5rem; }
ul.models { display: flex; flex-wrap: wrap; gap: .3rem 1.4rem; list-style: none; padding: 0; margin: .1rem 0 1rem; }
.facts dl, dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .9rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .86rem; }
th, td { padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; text-align: left; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.claims { width: 100%; font-size: .82rem; }
table.claims th.num { text-align: right; }
table.claims td.id { min-width: 9rem; max-width: 16rem; overflow-wrap: anywhere; }
table.claims td.model, table.claims td.check { min-width: 8.5rem; max-width: 13rem; overflow-wrap: break-word; }
table.claims tr.mismatch td.id { border-left: 3px solid var(--refuted); }
.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; margin: .4rem 0 .6rem; }
.filters[hidden] { display: none; }
.filters select { font: inherit; font-size: .9rem; padding: .15rem .3rem; }
section.claim { margin: 1.6rem 0; padding: 1rem 1.1rem; border: 1px solid var(--line); border-radius: .5rem; }
section.claim.c-supported { border-left: 5px solid var(--supported); }
section.claim.c-refuted { border-left: 5px solid var(--refuted); }
section.claim.c-inconclusive { border-left: 5px solid var(--inconclusive); }
section.claim.c-error { border-left: 5px solid var(--error); }
.statement { font-size: 1.02rem; margin: .1rem 0 .7rem; }
table.exp { margin: .7rem 0 .4rem; }
table.exp { font-size: .82rem; }
table.exp th[scope=row] { background: none; color: var(--muted); font-weight: normal; white-space: nowrap; }
dl.method { font-size: .85rem; margin: .3rem 0 .6rem; }
.block-title { font-weight: 600; font-size: .95rem; margin: 1rem 0 .2rem; }
.facts .block-title { margin-top: 0; }
.deciding { color: var(--refuted); }
pre.error { background: var(--error-bg); border: 1px solid var(--error); border-radius: .3rem; padding: .6rem; white-space: pre-wrap; }
ul.notes { margin: .5rem 0; padding-left: 1.2rem; color: var(--muted); font-size: .9rem; }
.drift { color: var(--refuted); }
.figs { display: flex; flex-wrap: wrap; gap: 1rem 1rem; margin-top: .8rem; align-items: flex-start; }
figure.fig { margin: 0; max-width: 100%; }
figure.fig:not(.fig-tokens):not(.fig-unknown) { width: fit-content; }  /* every plotted kind, present and future */
figure.fig:not(.fig-tokens):not(.fig-unknown) > :not(svg) {
  contain: inline-size; }  /* title and caption wrap to the picture's width instead of widening it */
figure.fig-tokens, figure.fig-unknown { flex: 1 1 100%; }
.fig-title { font-weight: 600; font-size: .95rem; margin-bottom: .2rem; }
figcaption { color: var(--muted); font-size: .85rem; max-width: 46rem; margin-top: .2rem; }
svg.plot { max-width: 100%; height: auto; display: block; }
.fig-error { border: 2px dashed var(--refuted); background: var(--refuted-bg); color: var(--refuted);
  padding: .6rem .8rem; border-radius: .3rem; font-family: ui-monospace, monospace; font-size: .85rem; }
.tokens { max-width: 58rem; }
.tok-row { margin: .35rem 0; }
.tok-label { font-size: .8rem; color: var(--muted); }
.tok-text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; line-height: 1.9; overflow-wrap: anywhere; }
.tok { padding: .1rem .05rem; border-radius: .15rem; white-space: pre-wrap; box-decoration-break: clone; }
.tok + .tok { margin-left: 1px; }
.tok.focus { outline: 2px solid var(--fg); outline-offset: 1px; }
.tok .ws { opacity: .5; }
.tok-legend { font-size: .8rem; color: var(--muted); margin-top: .3rem; }
.tok.swatch { display: inline-block; min-width: 3.2rem; text-align: center; color: var(--fg); border: 1px solid var(--line); }
.back { font-size: .85rem; margin: .6rem 0 0; }
@media print { .filters { display: none; } section.claim { break-inside: avoid; } }
"""

SCRIPT = """
(function () {
  var box = document.getElementById("filters");
  if (!box) { return; }
  box.hidden = false;
  var selects = box.querySelectorAll("select");
  var rows = document.querySelectorAll("#claims-table tbody tr");
  var sections = document.querySelectorAll("section.claim");
  var count = document.getElementById("filter-count");
  function matches(el, wanted) {
    for (var key in wanted) { if (wanted[key] && el.dataset[key] !== wanted[key]) { return false; } }
    return true;
  }
  function apply() {
    var wanted = {};
    selects.forEach(function (s) { wanted[s.dataset.key] = s.value; });
    var shown = 0;
    rows.forEach(function (r) { var ok = matches(r, wanted); r.hidden = !ok; if (ok) { shown += 1; } });
    sections.forEach(function (s) { s.hidden = !matches(s, wanted); });
    count.textContent = "showing " + shown + " of " + rows.length + " claims";
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  apply();
})();
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def claim_anchor(claim: Mapping[str, Any]) -> str:
    """The claim's section id: a slug of its pytest node id (its id when it has none)."""
    raw = str(claim.get("nodeid") or claim.get("id") or "claim")
    return "claim-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-") or "unnamed")


def _anchors(claims: Iterable[Mapping[str, Any]]) -> list[str]:
    """One unique anchor per claim, in order (a duplicate node id gets a counter)."""
    seen: dict[str, int] = {}
    out = []
    for claim in claims:
        anchor = claim_anchor(claim)
        seen[anchor] = seen.get(anchor, 0) + 1
        out.append(anchor if seen[anchor] == 1 else f"{anchor}-{seen[anchor]}")
    return out


def _badge(outcome: str) -> str:
    label = OUTCOME_LABELS.get(outcome, outcome)
    return f'<span class="badge v-{_e(outcome)}">{_e(label)}</span>'


def _differs(claim: Mapping[str, Any]) -> bool:
    expected = claim.get("expected") or "supported"
    return claim.get("outcome") != expected


def _deciding(claim: Mapping[str, Any]) -> dict[str, Any] | None:
    name = claim.get("deciding_statistic")
    for exp in claim.get("expectations") or []:
        if isinstance(exp, Mapping) and exp.get("statistic") == name:
            return exp
    return None


# --- summary -----------------------------------------------------------------------------------


def _summary(report: Mapping[str, Any]) -> str:
    claims = report.get("claims") or []
    counts = report.get("summary") or {}
    ordered = [o for o in OUTCOMES if o in counts] + sorted(o for o in counts if o not in OUTCOMES)
    badges = "".join(f'<span class="badge v-{_e(o)}">{counts[o]} {_e(OUTCOME_LABELS.get(o, o))}</span>' for o in ordered)
    differ = sum(1 for c in claims if _differs(c))
    if differ:
        badges += f'<span class="differs">{differ} differ from the expected verdict</span>'
    revision = report.get("git_revision")
    run = {
        "created": _when(report.get("created")),
        "git revision": f"<code>{_e(revision[:12])}</code>" if revision else "unknown (not a git checkout)",
        "python": report.get("python"),
        "schema": report.get("schema"),
    }
    settings = report.get("settings") or {}
    models: dict[str, int] = {}
    for claim in claims:
        models[str(claim.get("model"))] = models.get(str(claim.get("model")), 0) + 1
    load = sum(c.get("load_s") or 0.0 for c in claims)
    measure = sum(c.get("measure_s") or 0.0 for c in claims)
    facts = [
        _dl("Run", {k: v if k == "git revision" else _e(v) for k, v in run.items()}),
        _dl("Settings", {_e(k): _e(_compact(v)) for k, v in settings.items()}),
        _dl("Time", {"loading models": f"{load:.2f} s", "measuring": f"{measure:.2f} s"}),
    ]
    model_list = "".join(f"<li><code>{_e(m)}</code> <span class=\"muted\">{n} claim{'s' if n != 1 else ''}</span></li>" for m, n in sorted(models.items()))
    alpha, adjust = settings.get("alpha", "–"), settings.get("adjust", "–")
    return "\n".join(
        [
            "<h1>interp_checks report</h1>",
            f'<p class="subtitle">{len(claims)} claims · {_e(_when(report.get("created")))} · git {_e((revision or "unknown")[:10])}</p>',
            f'<div class="counts">{badges}</div>',
            f'<div class="facts">{"".join(facts)}</div>',
            f'<div class="block-title">Models</div><ul class="models">{model_list}</ul>',
            f'<p class="muted">A claim is <b>supported</b> when its adjusted one-sided p &lt; alpha ({_e(alpha)}) and its interval '
            "lies on the claimed side, <b>refuted</b> when the same holds for the opposite side, otherwise <b>inconclusive</b>. "
            f"p-values are adjusted by {_e(adjust)} over each multiplicity family. Effect sizes are against the null, "
            "positive when the statistic is above it.</p>",
        ]
    )


def _when(created: Any) -> str:
    """report.json's ISO time (UTC) as people write it: 2025-01-01 12:00:00 UTC."""
    text = str(created or "–")
    return text.replace("T", " ").replace("+00:00", " UTC") if text.endswith("+00:00") else text


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _dl(title: str, items: Mapping[str, str]) -> str:
    """A titled definition list; keys and values are already HTML."""
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items.items()) or "<dt>–</dt><dd></dd>"
    return f'<div><div class="block-title">{_e(title)}</div><dl>{body}</dl></div>'


# --- the table -----------------------------------------------------------------------------------


def _filters(claims: list[Mapping[str, Any]]) -> str:
    """The filter controls: hidden until the script shows them, so a page without JS shows no dead controls."""
    selects = []
    for key, everything in FILTERS:
        values = sorted({str(c.get(key)) for c in claims})
        if key == "outcome":
            values = [o for o in OUTCOMES if o in values] + [v for v in values if v not in OUTCOMES]
        options = f'<option value="">{everything}</option>' + "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
        selects.append(f'<label>{key} <select id="filter-{key}" data-key="{key}">{options}</select></label>')
    return f'<div class="filters" id="filters" hidden>{"".join(selects)}<span id="filter-count" class="muted"></span></div>'


def _data_attributes(claim: Mapping[str, Any]) -> str:
    return " ".join(f'data-{key}="{_e(claim.get(key))}"' for key, _ in FILTERS)


def _table(claims: list[Mapping[str, Any]], anchors: list[str]) -> str:
    head = "".join(f'<th scope="col">{h}</th>' for h in ("claim", "check", "model", "verdict", "expected", "deciding statistic"))
    head += "".join(f'<th scope="col" class="num">{h}</th>' for h in ("estimate", "CI", "p (adj.)", "effect size"))
    rows = []
    for claim, anchor in zip(claims, anchors):
        exp = _deciding(claim) or {}
        differs = _differs(claim)
        verdict = _badge(str(claim.get("outcome")))
        baseline = claim.get("baseline")
        if isinstance(baseline, Mapping) and baseline.get("outcome") and baseline.get("outcome") != claim.get("outcome"):
            verdict += f'<div class="muted">was {_e(baseline.get("outcome"))}</div>'
        drift = claim.get("drift") or (baseline.get("drift") if isinstance(baseline, Mapping) else None)
        if drift:
            verdict += f'<div class="differs" title="{_e("; ".join(map(str, drift)))}">drifted</div>'
        expected = _e(claim.get("expected") or "supported") + (' <span class="differs">≠ verdict</span>' if differs else "")
        effect = fmt(exp.get("effect_size"), 2)
        if isinstance(baseline, Mapping) and "effect_size" in baseline:
            effect += f'<div class="muted">was {fmt(baseline.get("effect_size"), 2)}</div>'
        mismatch = ' class="mismatch"' if differs else ""
        rows.append(
            f"<tr {_data_attributes(claim)}{mismatch}>"
            f'<td class="id"><a href="#{anchor}"><code>{_e(claim.get("id"))}</code></a></td>'
            f'<td class="check">{_e(claim.get("check"))}</td>'
            f'<td class="model"><code>{_e(claim.get("model"))}</code></td>'
            f"<td>{verdict}</td><td>{expected}</td>"
            f"<td>{_e(claim.get('deciding_statistic') or '–')}</td>"
            f'<td class="num">{fmt(exp.get("estimate"))}</td>'
            f'<td class="num">{interval_text(exp.get("ci"))}</td>'
            f'<td class="num">{fmt(deciding_p(exp))}</td>'
            f'<td class="num">{effect}</td></tr>'
        )
    return (
        '<div class="scroll"><table class="claims" id="claims-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# --- a claim's section ---------------------------------------------------------------------------


def _p_pair(raw: Any, adjusted: Any) -> str:
    return f"{fmt(raw)} / <b>{fmt(adjusted)}</b>"


EXPECTATION_COLUMNS = (
    "statistic", "expectation", "estimate", "interval", "margin",
    "p: raw / adjusted", "effect size", "null estimate", "outcome",
)


def _expectation_cells(e: Mapping[str, Any], deciding: bool) -> list[str]:
    """One expectation's numbers, in ``EXPECTATION_COLUMNS`` order."""
    star = ' <span class="deciding" title="decided the claim\'s verdict">★</span>' if deciding else ""
    return [
        f"<code>{_e(e.get('statistic'))}</code>{star}",
        f"<code>{_e(e.get('comparison'))}</code>",
        f"<b>{fmt(e.get('estimate'))}</b>",
        interval_text(e.get("ci")),
        fmt(e.get("margin")),
        f'<span class="muted">supports</span> {_p_pair(e.get("p_value"), e.get("p_adjusted"))}<br>'
        f'<span class="muted">refutes</span> {_p_pair(e.get("p_value_refute"), e.get("p_adjusted_refute"))}',
        _effect_cell(e),
        fmt(e.get("null_estimate")),
        _badge(str(e.get("outcome"))) if e.get("outcome") else "–",
    ]


def _effect_cell(e: Mapping[str, Any]) -> str:
    """The effect size, its range over the null draws on a second, smaller line."""
    spread = e.get("effect_size_range")
    if not (spread and spread[0] is not None and e.get("effect_size") is not None):
        return fmt(e.get("effect_size"), 2)
    return f'{fmt(e.get("effect_size"), 2)}<div class="muted small" title="the effect size against each null draw">{fmt(spread[0], 2)}..{fmt(spread[1], 2)} ({_e(e.get("null_draws"))} draws)</div>'


def _interval_method(e: Mapping[str, Any]) -> str | None:
    level = f"{100 * e['ci_level']:g}% " if isinstance(e.get("ci_level"), (int, float)) else ""
    return f"{level}{e['ci_method']}" if e.get("ci_method") else None


METHOD_FIELDS: tuple[tuple[str, Any], ...] = (
    ("estimand", lambda e: e.get("estimand")),
    ("unit", lambda e: e.get("unit")),
    ("interval", _interval_method),
    ("test", lambda e: e.get("test")),
    ("effect size", lambda e: e.get("effect_size_kind")),
    ("n", lambda e: e.get("n")),
    ("null draws", lambda e: e.get("null_draws")),
    ("members", lambda e: ", ".join(map(str, e["members"])) if isinstance(e.get("members"), list) else e.get("members")),
    ("deciding member", lambda e: e.get("deciding_member")),
    ("note", lambda e: e.get("note")),
)


def _method(exps: list[Mapping[str, Any]]) -> str:
    """How the expectations were measured: said once when they share it, else a line per statistic."""
    items = {}
    for label, get in METHOD_FIELDS:
        values = [(e.get("statistic"), _compact(get(e))) for e in exps if get(e) not in (None, "", [])]
        if not values:
            continue
        if len({v for _, v in values}) == 1 and len(values) == len(exps):
            items[label] = _e(values[0][1])
        else:
            items[label] = "<br>".join(f"<code>{_e(stat)}</code>: {_e(v)}" for stat, v in values)
    return f'<dl class="meta method">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items.items())}</dl>' if items else ""


def _expectations(claim: Mapping[str, Any]) -> str:
    """A row per expectation (the deciding one starred), then how they were measured."""
    exps = list(claim.get("expectations") or [])
    if not exps:
        return ""
    deciding = claim.get("deciding_statistic")
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in EXPECTATION_COLUMNS)
    rows = []
    for e in exps:
        cells = _expectation_cells(e, len(exps) > 1 and e.get("statistic") == deciding)
        rows.append("<tr>" + "".join(f'<td class="num">{c}</td>' if 2 <= i <= 7 else f"<td>{c}</td>" for i, c in enumerate(cells)) + "</tr>")
    return (
        f'<div class="scroll"><table class="exp"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
        + _method(exps)
    )


def _baseline(claim: Mapping[str, Any]) -> str:
    """The baseline's numbers beside this run's, and the drift messages (optional ``baseline`` key)."""
    baseline = claim.get("baseline")
    if not isinstance(baseline, Mapping):
        return ""
    exp = _deciding(claim) or {}
    now = {
        "outcome": claim.get("outcome"),
        "deciding_statistic": claim.get("deciding_statistic"),
        "estimate": exp.get("estimate"),
        "ci": exp.get("ci"),
        "p_value": claim.get("p_value"),
        "effect_size": claim.get("effect_size"),
    }

    def show(key: str, value: Any) -> str:
        if key == "ci":
            return interval_text(value)
        if key in ("outcome", "deciding_statistic"):
            return _e(value if value is not None else "–")
        return fmt(value, 2 if key == "effect_size" else 3)

    rows = "".join(
        f'<tr><th scope="row">{_e(key.replace("_", " "))}</th><td>{show(key, baseline.get(key))}</td><td>{show(key, now[key])}</td></tr>'
        for key in BASELINE_FIELDS
    )
    drift = claim.get("drift") or baseline.get("drift") or []  # the record's own key; accepted inside baseline too
    messages = "".join(f"<li>{_e(m)}</li>" for m in drift)
    source = baseline.get("file") or baseline.get("path")
    source = f' <span class="muted">({_e(source)})</span>' if source else ""
    if baseline.get("status") == "new":
        return f'<div class="block-title">Against the baseline{source}</div><p class="muted">A new claim: the baseline has no claim with this id.</p>'
    note = f'<p class="muted">{_e(baseline["note"])}</p>' if baseline.get("note") else ""
    return (
        f'<div class="block-title">Against the baseline{source}</div>'
        f'<div class="scroll"><table class="exp baseline"><thead><tr><th></th><th>baseline</th><th>this run</th></tr></thead><tbody>{rows}</tbody></table></div>'
        + note
        + (f'<ul class="notes drift">{messages}</ul>' if messages else "")
    )


def _section(claim: Mapping[str, Any], anchor: str, figure_offset: int) -> str:
    outcome = str(claim.get("outcome"))
    expected = claim.get("expected") or "supported"
    title = f'<h3><a href="#{anchor}"><code>{_e(claim.get("id"))}</code></a> {_badge(outcome)}'
    if _differs(claim):
        title += f'<span class="differs">≠ expected {_e(expected)}</span>'
    else:
        title += f'<span class="muted">(expected {_e(expected)})</span>'
    title += "</h3>"
    meta = {
        "check": f"<code>{_e(claim.get('check'))}</code>",
        "model": f"<code>{_e(claim.get('model'))}</code>",
        "test": f"<code>{_e(claim.get('nodeid') or claim.get('file'))}</code>",
        "null": _e(claim.get("null") or "–"),
        "inputs": f"<code>{_e(_compact(claim.get('inputs')))}</code> (n {_e(claim.get('n'))}, seed {_e(claim.get('seed'))})",
        "family": f"{_e(claim.get('family'))} ({_e(claim.get('family_size'))} claims; {_e(claim.get('adjust'))}, alpha {_e(claim.get('alpha'))})",
        "time": f"load {fmt(claim.get('load_s'), 2)} s, measure {fmt(claim.get('measure_s'), 2)} s",
    }
    parts = [
        f'<section class="claim c-{_e(outcome)}" id="{anchor}" {_data_attributes(claim)}>',
        title,
        f'<p class="statement">{_e(claim.get("statement") or "(no statement)")}</p>',
        f'<dl class="meta">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta.items())}</dl>',
    ]
    if claim.get("error"):
        parts.append(f'<pre class="error">{_e(claim["error"])}</pre>')
    parts.append(_expectations(claim))
    parts.append(_baseline(claim))
    notes = claim.get("notes") or []
    if isinstance(notes, str):
        notes = [notes]
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    figures = claim.get("figures") or []
    if figures:
        drawn = [draw_figure(figure, index=figure_offset + i) for i, figure in enumerate(figures)]
        parts.append(f'<div class="figs">{"".join(drawn)}</div>')
    parts.append('<p class="back"><a href="#claims-table">↑ back to the table</a></p></section>')
    return "\n".join(parts)


def _safe_section(claim: Mapping[str, Any], anchor: str, figure_offset: int) -> str:
    """A section, or, should a record be malformed, a section that says so (the page survives)."""
    try:
        return _section(claim, anchor, figure_offset)
    except Exception as error:  # noqa: BLE001 - one bad record must not lose the whole report
        return (
            f'<section class="claim c-error" id="{anchor}" {_data_attributes(claim)}><h3><code>{_e(claim.get("id"))}</code></h3>'
            f'<div class="fig-error">cannot render this claim\'s record: {_e(type(error).__name__)}: {_e(error)}</div></section>'
        )


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page for ``report.json``'s dict: summary, filterable table, a section per claim."""
    claims = list(report.get("claims") or [])
    anchors = _anchors(claims)
    sections, offset = [], 0
    for claim, anchor in zip(claims, anchors):
        sections.append(_safe_section(claim, anchor, offset))
        offset += len(claim.get("figures") or [])
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>interp_checks report: {len(claims)} claims</title>",
            f"<style>{CSS}</style></head><body><main>",
            _summary(report),
            '<h2 id="claims">Claims</h2>',
            _filters(claims),
            _table(claims, anchors),
            '<h2 id="details">Each claim</h2>',
            *sections,
            "</main>",
            f"<script>{SCRIPT}</script>",
            "</body></html>",
        ]
    )
