"""Two runs of the same claims, side by side: what drifted since a baseline ``report.json``.

Pure functions over ``report.json`` dicts (no checks, models or statistics code), shared by
``interp-checks compare OLD.json NEW.json`` and by the pytest gate (``--interp-baseline`` with
``--interp-fail-on``), so that the command and the gate can never disagree about a claim.

**Matching.** A claim of one report matches the claim of the other with the same ``nodeid``; records
without one (or whose node ids moved) fall back to the same ``file`` and ``id``. Claims found on one
side only are listed as *new* or *removed*, never as failures.

**Which numbers.** A claim's headline numbers are those of the expectation that decided its verdict
(``deciding_statistic``). The baseline's numbers are read for *the same statistic* as the new run's
deciding one (for "exactly these heads" claims the weakest head can change from run to run, and a
fall of ``score[L1H2]`` must be compared with ``score[L1H2]``); when the baseline lacks that
statistic, its own deciding expectation is used and the comparison says so.

**Gate expressions** (``--interp-fail-on`` / ``compare --fail-on``), parsed into typed checks::

    verdict                  the claim's verdict differs from the baseline's
    effect_size:-20%         the effect size fell by more than 20% of the baseline's |effect size|
    effect_size:-0.5         the effect size fell by more than 0.5 (it is in standard deviations)
    estimate:-10%            the estimate fell by more than 10% of the baseline's |estimate|
    estimate:-0.05           the estimate fell by more than 0.05 in the statistic's own unit
    estimate:-0.2nats        ... only for claims whose unit starts with "nats" (``_`` for a space:
                             ``estimate:-0.05attention_probability``), since one absolute number
                             cannot mean the same for attention probabilities and nats

**What "fell" means.** A claim is weaker when its statistic moved *towards or across its threshold*,
whatever the sign of the numbers. The direction is the deciding expectation's comparison: for
``>=``/``>`` a fall is a decrease; for ``<``/``<=`` (e.g. "layer 0 has no induction head:
``max_score < 0.2``", usually a negative effect size: below the random-weights null) a fall is an
*increase* of the estimate and of the effect size. For a deliberately false claim (``expected:
refuted``) the claim the test defends is the opposite one, so the direction flips. For ``between``
the estimate's fall is the fall of its margin (the distance to the nearer edge of the band) and the
effect size has no direction, so ``effect_size:`` checks skip such claims (``verdict`` still
applies). A fall is always a positive number; its relative form divides by the baseline's absolute
value (a baseline of exactly 0 makes any fall infinite). A number the baseline had and the new run
lacks (the claim errored) violates ``effect_size:``/``estimate:`` checks: nothing shows it did not fall.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Union

from interp_checks.numbers import format_number

__all__ = [
    "GRAMMAR",
    "BaselineError",
    "ClaimDiff",
    "ClaimNumbers",
    "FailOnSyntaxError",
    "FallCheck",
    "VerdictCheck",
    "baseline_record",
    "compare_reports",
    "diff_claim",
    "load_report",
    "match_claims",
    "parse_fail_on",
    "render_compare",
]

GRAMMAR = (
    "verdict | effect_size:-N% | effect_size:-X | estimate:-N% | estimate:-X | estimate:-XUNIT "
    "(N, X: non-negative numbers; the minus sign says 'fell by more than'; UNIT: the start of the "
    "claim's unit, '_' for a space, e.g. estimate:-0.2nats); several expressions: comma-separated or repeated"
)
FIELDS = ("effect_size", "estimate")
Field = Literal["effect_size", "estimate"]

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_FALL = re.compile(rf"^(?P<field>effect_size|estimate):\s*-\s*(?P<amount>{_NUMBER})\s*(?:(?P<pct>%)|(?P<unit>[A-Za-z][A-Za-z_ ]*))?$")
_LABELS = {"effect_size": "effect size", "estimate": "estimate"}


class FailOnSyntaxError(ValueError):
    """An expression that is not in :data:`GRAMMAR`."""


class BaselineError(ValueError):
    """A baseline or compared report that cannot be read as a claims ``report.json``."""


# -- the numbers of one claim -------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimNumbers:
    """One side's numbers for a claim: its verdict and one expectation's estimate, interval, p, effect."""

    outcome: str | None
    expected: str = "supported"
    statistic: str | None = None
    comparison: str | None = None
    unit: str | None = None
    estimate: float | None = None
    ci: tuple[float | None, float | None] | None = None
    ci_level: float | None = None
    p_value: float | None = None
    effect_size: float | None = None
    effect_size_kind: str | None = None
    margin: float | None = None
    error: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], statistic: str | None = None) -> "ClaimNumbers":
        """A claim record's numbers for ``statistic`` (default: its deciding statistic).

        The claim-level ``p_value`` is the deciding expectation's adjusted p; for another
        expectation the p on the side that expectation came out on is used.
        """
        expectations = [e for e in record.get("expectations") or [] if isinstance(e, Mapping)]
        deciding = record.get("deciding_statistic")
        wanted = statistic or deciding
        exp = next((e for e in expectations if e.get("statistic") == wanted), None) if wanted else None
        if exp is None:
            return cls(record.get("outcome"), record.get("expected") or "supported", error=record.get("error"))
        if wanted == deciding:
            p_value = record.get("p_value")
        else:
            p_value = exp.get("p_adjusted_refute") if exp.get("outcome") == "refuted" else exp.get("p_adjusted")
        return cls._from_fields(exp, outcome=record.get("outcome"), expected=record.get("expected"), p_value=p_value, error=record.get("error"))

    @classmethod
    def from_baseline(cls, baseline: Mapping[str, Any]) -> "ClaimNumbers":
        """The numbers a claim record's ``"baseline"`` entry (:func:`baseline_record`) keeps."""
        return cls._from_fields(
            baseline, outcome=baseline.get("outcome"), expected=baseline.get("expected"),
            p_value=baseline.get("p_value"), error=baseline.get("error"),
        )

    @classmethod
    def _from_fields(cls, fields: Mapping[str, Any], *, outcome: Any, expected: Any, p_value: Any, error: Any) -> "ClaimNumbers":
        """An expectation record and a baseline entry spell the per-statistic numbers alike."""
        ci = fields.get("ci")
        return cls(
            outcome=outcome,
            expected=expected or "supported",
            statistic=fields.get("statistic"),
            comparison=fields.get("comparison"),
            unit=fields.get("unit"),
            estimate=_number(fields.get("estimate")),
            ci=(_number(ci[0]), _number(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None,
            ci_level=_number(fields.get("ci_level")),
            p_value=_number(p_value),
            effect_size=_number(fields.get("effect_size")),
            effect_size_kind=fields.get("effect_size_kind"),
            margin=_number(fields.get("margin")),
            error=error,
        )

    def value(self, name: Field) -> float | None:
        return self.effect_size if name == "effect_size" else self.estimate


def _number(value: Any) -> float | None:
    """A finite float, or None (reports store undefined numbers as null; be lenient with old files)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def direction(numbers: ClaimNumbers) -> int | None:
    """+1 when the claim the test defends is stronger for a larger statistic, -1 for a smaller one,
    None for a ``between`` band (or an unknown comparison). See the module docstring."""
    op = (numbers.comparison or "").split(" ", 1)[0]
    sign = {">=": 1, ">": 1, "<=": -1, "<": -1}.get(op)
    if sign is None:
        return None
    return -sign if numbers.expected == "refuted" else sign


# -- one claim compared ------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """How one number moved: ``delta`` = new - old; ``fall`` > 0 when the claim got weaker."""

    old: float | None
    new: float | None
    delta: float | None
    relative: float | None  # delta / |old|
    fall: float | None  # in the claim's direction (see the module docstring); None: no direction
    relative_fall: float | None  # fall / |old|; inf when old is 0 and it fell


@dataclass(frozen=True)
class ClaimDiff:
    """A claim in both runs (or in one: ``status`` new / removed) and how its numbers moved."""

    key: str
    claim_id: str
    status: Literal["matched", "new", "removed"]
    old: ClaimNumbers | None
    new: ClaimNumbers | None
    note: str = ""
    violations: tuple[str, ...] = ()

    @property
    def verdict_changed(self) -> bool:
        return self.status == "matched" and self.old is not None and self.new is not None and self.old.outcome != self.new.outcome

    def change(self, name: Field) -> Change | None:
        """How ``name`` moved, or None when a side is missing."""
        if self.old is None or self.new is None:
            return None
        return _change(self.old, self.new, name)


def _change(old: ClaimNumbers, new: ClaimNumbers, name: Field) -> Change:
    a, b = old.value(name), new.value(name)
    delta = None if a is None or b is None else b - a
    relative = None if delta is None or a == 0 else delta / abs(a)  # type: ignore[operator]
    sign = direction(new if new.comparison else old)
    fall: float | None = None
    if name == "estimate" and sign is None and old.margin is not None and new.margin is not None:
        flip = -1 if (new.expected or old.expected) == "refuted" else 1
        fall = flip * (old.margin - new.margin)  # a band: the margin to its nearer edge shrank
    elif sign is not None and delta is not None:
        fall = -sign * delta
    relative_fall = None
    if fall is not None and a is not None:
        relative_fall = fall / abs(a) if a != 0 else (math.inf if fall > 0 else 0.0)
    return Change(a, b, delta, relative, fall, relative_fall)


def diff_claim(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, key: str = "") -> ClaimDiff:
    """Compare one claim's records (either may be None: the claim is new or removed)."""
    record = new if new is not None else old
    assert record is not None, "diff_claim needs at least one record"
    claim_id = str(record.get("id") or key)
    if old is None:
        return ClaimDiff(key, claim_id, "new", None, ClaimNumbers.from_record(new))  # type: ignore[arg-type]
    if new is None:
        return ClaimDiff(key, claim_id, "removed", ClaimNumbers.from_record(old), None)
    new_numbers = ClaimNumbers.from_record(new)
    old_numbers, note = _baseline_numbers(old, new_numbers.statistic)
    return ClaimDiff(key, claim_id, "matched", old_numbers, new_numbers, note)


def _baseline_numbers(old: Mapping[str, Any], statistic: str | None) -> tuple[ClaimNumbers, str]:
    """The baseline's numbers for ``statistic``, else its own deciding ones (with a note saying so)."""
    if statistic:
        same = ClaimNumbers.from_record(old, statistic)
        if same.statistic == statistic:
            return same, ""
    own = ClaimNumbers.from_record(old)
    if statistic and own.statistic and own.statistic != statistic:
        return own, f"the baseline has no {statistic}; compared with its deciding {own.statistic}"
    return own, ""


# -- gate expressions --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictCheck:
    """``verdict``: a claim whose verdict differs from the baseline's fails."""

    def __str__(self) -> str:
        return "verdict"

    def violation(self, diff: ClaimDiff) -> str | None:
        if not diff.verdict_changed:
            return None
        assert diff.old is not None and diff.new is not None
        return f"verdict changed: {diff.old.outcome} in the baseline, {diff.new.outcome} now"


@dataclass(frozen=True)
class FallCheck:
    """``effect_size:-20%``, ``estimate:-0.05``, ``estimate:-0.2nats``: fails when the number fell by
    more than ``amount`` (percent of the baseline's absolute value when ``relative``)."""

    field: Field
    amount: float
    relative: bool = False
    unit: str | None = None

    def __post_init__(self) -> None:
        # one spelling per unit, so a check equals its parsed text: "_" and runs of spaces are one
        # space, case is ignored (units are matched case-insensitively anyway)
        if self.unit is not None:
            object.__setattr__(self, "unit", " ".join(self.unit.replace("_", " ").lower().split()) or None)

    def __str__(self) -> str:
        suffix = "%" if self.relative else (self.unit.replace(" ", "_") if self.unit else "")
        return f"{self.field}:-{_amount(self.amount)}{suffix}"

    def applies_to(self, numbers: ClaimNumbers) -> bool:
        """A unit-qualified check applies only to claims whose unit starts with that unit."""
        if self.unit is None:
            return True
        unit = " ".join((numbers.unit or "").lower().split())
        return unit.startswith(self.unit)

    def violation(self, diff: ClaimDiff) -> str | None:
        if diff.status != "matched" or diff.old is None or diff.new is None:
            return None
        if not self.applies_to(diff.new):
            return None
        label = f"{_LABELS[self.field]} of {diff.new.statistic or diff.old.statistic or 'the claim'}"
        change = _change(diff.old, diff.new, self.field)
        if change.old is None:
            return None
        if change.new is None:
            why = f" (the claim's outcome is {diff.new.outcome})" if diff.new.outcome else ""
            return f"{label}: {_num(change.old)} in the baseline, none now{why}; {self} cannot show it did not fall"
        fall = change.relative_fall * 100 if self.relative and change.relative_fall is not None else change.fall
        if fall is None or not fall > self.amount:
            return None
        unit = f" {diff.new.unit}" if self.field == "estimate" and diff.new.unit else ""
        claim = f"{diff.new.statistic} {diff.new.comparison}" if diff.new.comparison else "the claim"
        if diff.new.expected == "refuted":
            claim += ", expected refuted"
        return (
            f"{label} fell by {_num(change.fall)}{unit} ({_pct(change.relative_fall, signed=False)} of the baseline's), "
            f"towards the threshold of {claim}: {_num(change.old)} in the baseline, {_num(change.new)} now; "
            f"{self} allows a fall of at most {_amount(self.amount)}{'%' if self.relative else unit}"
        )


def _amount(value: float) -> str:
    """The shortest text that reads back as ``value`` (``20``, ``0.5``, ``1e-05``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


Check = Union[VerdictCheck, FallCheck]


def parse_fail_on(values: str | Iterable[str]) -> list[Check]:
    """Typed checks from expressions (one string with commas, or several); raises FailOnSyntaxError."""
    texts = [values] if isinstance(values, str) else list(values)
    checks: list[Check] = []
    for text in texts:
        for part in str(text).split(","):
            part = part.strip()
            if part:
                checks.append(_parse_one(part))
    return checks


def _parse_one(text: str) -> Check:
    if text == "verdict":
        return VerdictCheck()
    match = _FALL.match(text)
    if match is None:
        raise FailOnSyntaxError(f"cannot read the gate expression {text!r}; write one of: {GRAMMAR}")
    name, pct, unit = match["field"], match["pct"], match["unit"]
    if unit is not None and name != "estimate":
        raise FailOnSyntaxError(
            f"cannot read {text!r}: only estimate: thresholds take a unit (an effect size is in standard "
            f"deviations); write one of: {GRAMMAR}"
        )
    return FallCheck(name, float(match["amount"]), relative=pct is not None, unit=unit)


def violations(diff: ClaimDiff, checks: Iterable[Check]) -> tuple[str, ...]:
    """What each check finds wrong with one claim (empty: nothing)."""
    return tuple(message for check in checks if (message := check.violation(diff)) is not None)


# -- reports -----------------------------------------------------------------------------------


def load_report(path: str | Path) -> dict[str, Any]:
    """A claims ``report.json``; BaselineError with the file and the fix when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such file; give the report.json of an earlier run (reports/report.json by default)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: cannot read it ({error})") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not JSON ({error}); give the report.json of an earlier run") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith("interp-checks/") or not isinstance(data.get("claims"), list):
        raise BaselineError(
            f"{path}: not a claims report (schema {schema!r}; expected 'interp-checks/N' with a 'claims' list); "
            "give the report.json that a pytest run with interp_checks wrote"
        )
    return data


def _key(record: Mapping[str, Any]) -> str:
    return str(record.get("nodeid") or f"{record.get('file', '')}::{record.get('id', '')}")


def match_claims(old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]]:
    """Pairs (key, old, new) in the new report's order, then removed claims: by ``nodeid``, falling
    back to ``file`` + ``id`` for records that no node id pairs."""
    old, new = list(old), list(new)
    by_node = {r["nodeid"]: r for r in old if r.get("nodeid")}
    by_file = {(r.get("file"), r.get("id")): r for r in old}
    used: set[int] = set()
    pairs: list[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]] = []
    for record in new:
        match = by_node.get(record.get("nodeid")) if record.get("nodeid") else None
        if match is None or id(match) in used:
            match = by_file.get((record.get("file"), record.get("id")))
        if match is not None and id(match) in used:
            match = None
        if match is not None:
            used.add(id(match))
        pairs.append((_key(record), match, record))
    pairs += [(_key(r), r, None) for r in old if id(r) not in used]
    return pairs


def compare_reports(old: Mapping[str, Any], new: Mapping[str, Any], checks: Iterable[Check] = ()) -> list[ClaimDiff]:
    """Every claim of two reports compared, with the checks' violations on each."""
    checks = list(checks)
    diffs = []
    for key, a, b in match_claims(old.get("claims") or [], new.get("claims") or []):
        diff = diff_claim(a, b, key)
        diffs.append(ClaimDiff(diff.key, diff.claim_id, diff.status, diff.old, diff.new, diff.note, violations(diff, checks)))
    return diffs


def baseline_record(old: Mapping[str, Any] | None, new: Mapping[str, Any], file: str, checks: Iterable[Check] = ()) -> tuple[dict[str, Any], list[str]]:
    """``(baseline, drift)`` for a claim record: the baseline's numbers beside the new ones (the same
    statistic as the new deciding one) and the gate's messages. ``old`` None: the claim is new."""
    diff = diff_claim(old, new)
    numbers = diff.old
    entry: dict[str, Any] = {
        "file": file,
        "status": "matched" if old is not None else "new",
        "outcome": numbers.outcome if numbers else None,
        "expected": numbers.expected if numbers else None,
        "deciding_statistic": old.get("deciding_statistic") if old is not None else None,
        "statistic": numbers.statistic if numbers else None,
        "comparison": numbers.comparison if numbers else None,
        "unit": numbers.unit if numbers else None,
        "estimate": numbers.estimate if numbers else None,
        "ci": list(numbers.ci) if numbers and numbers.ci else None,
        "ci_level": numbers.ci_level if numbers else None,
        "margin": numbers.margin if numbers else None,
        "p_value": numbers.p_value if numbers else None,
        "effect_size": numbers.effect_size if numbers else None,
        "effect_size_kind": numbers.effect_size_kind if numbers else None,
        "error": numbers.error if numbers else None,
        "note": diff.note,
    }
    return entry, list(violations(diff, checks))


def diff_from_record(record: Mapping[str, Any]) -> ClaimDiff | None:
    """A claim record that carries a ``"baseline"`` entry, as a diff (for rendering); None without one."""
    baseline = record.get("baseline")
    if not isinstance(baseline, Mapping):
        return None
    new = ClaimNumbers.from_record(record)
    if baseline.get("status") == "new":
        return ClaimDiff(_key(record), str(record.get("id")), "new", None, new, violations=tuple(record.get("drift") or ()))
    old = ClaimNumbers.from_baseline(baseline)
    return ClaimDiff(_key(record), str(record.get("id")), "matched", old, new, baseline.get("note") or "", tuple(record.get("drift") or ()))


# -- rendering ---------------------------------------------------------------------------------

COLUMNS = ("claim", "verdict", "statistic", "estimate [CI]", "effect size", "p (adj.)")


def _num(value: float | None, digits: int = 3) -> str:
    return format_number(value, digits)


def _pct(value: float | None, *, signed: bool = True) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞%"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.1f}%"


def _estimate(numbers: ClaimNumbers | None) -> str:
    if numbers is None:
        return "–"
    if numbers.estimate is None:
        return numbers.outcome or "–"
    ci = numbers.ci
    interval = f" [{_num(ci[0])}, {_num(ci[1])}]" if ci and ci[0] is not None and ci[1] is not None else ""
    return f"{_num(numbers.estimate)}{interval}"


def _effect_cell(diff: ClaimDiff) -> str:
    old = diff.old.effect_size if diff.old else None
    new = diff.new.effect_size if diff.new else None
    if diff.status != "matched":
        return _num(new if diff.status == "new" else old, 2)
    change = diff.change("effect_size")
    text = f"{_num(old, 2)} → {_num(new, 2)}"
    if change is not None and change.delta is not None:
        strength = "" if not change.fall else "; weaker" if change.fall > 0 else "; stronger"
        text += f" ({change.delta:+.2f}, {_pct(change.relative)}{strength})"
    return text


def row(diff: ClaimDiff) -> dict[str, str]:
    """One claim's cells (same text in the terminal, Markdown and report.md)."""
    old, new = diff.old, diff.new
    if diff.status == "matched":
        assert old is not None and new is not None
        verdict = f"{old.outcome} → {new.outcome} *" if diff.verdict_changed else str(new.outcome)
        statistic = new.statistic or old.statistic or "–"
        if old.statistic and new.statistic and old.statistic != new.statistic:
            statistic = f"{old.statistic} → {new.statistic}"
        estimate = f"{_estimate(old)} → {_estimate(new)}"
        p_value = f"{_num(old.p_value)} → {_num(new.p_value)}"
    else:
        side = new if diff.status == "new" else old
        assert side is not None
        verdict = f"{diff.status}: {side.outcome}"
        statistic, estimate, p_value = side.statistic or "–", _estimate(side), _num(side.p_value)
    return {
        "claim": diff.claim_id,
        "verdict": verdict,
        "statistic": statistic,
        "estimate [CI]": estimate,
        "effect size": _effect_cell(diff),
        "p (adj.)": p_value,
    }


def _truncate(text: str, width: int) -> str:
    """Keep both ends of a long id (``2l-induction…-layer-1``): they are what tells ids apart."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def render_text(diffs: list[ClaimDiff], *, old_label: str, new_label: str, id_width: int = 36) -> str:
    """Aligned columns for a terminal, then the violations."""
    rows = [row(d) for d in diffs]
    for r in rows:
        r["claim"] = _truncate(r["claim"], id_width)
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in COLUMNS}
    lines = [f"baseline: {old_label}", f"new:      {new_label}", ""]
    lines.append("  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip())
    lines.append("  ".join("-" * widths[c] for c in COLUMNS))
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip())
    lines += [""] + [textwrap.fill(part, width=100) for part in _legend(diffs).split("\n")]
    lines += _violation_lines(diffs)
    return "\n".join(lines) + "\n"


def _legend(diffs: list[ClaimDiff]) -> str:
    counts = {s: sum(1 for d in diffs if d.status == s) for s in ("matched", "new", "removed")}
    changed = sum(1 for d in diffs if d.verdict_changed)
    notes = [f"{d.claim_id}: {d.note}" for d in diffs if d.note]
    units = sorted({(n.statistic.split("[")[0], n.unit) for d in diffs for n in (d.old, d.new) if n and n.statistic and n.unit})
    text = (
        f"{counts['matched']} claims in both ({changed} verdicts changed, marked *), {counts['new']} new, "
        f"{counts['removed']} removed. Numbers are the deciding expectation's (the baseline's for the same "
        "statistic); effect size: new - baseline, that change relative to |baseline|, and whether the claim got "
        "weaker or stronger (moved towards or away from its threshold; for a '<' claim a rise is weaker)."
    )
    if units:
        text += " Units: " + "; ".join(f"{stat} in {unit}" for stat, unit in units) + "."
    return text + "".join(f"\nnote: {n}" for n in notes)


def _violation_lines(diffs: list[ClaimDiff]) -> list[str]:
    failed = [d for d in diffs if d.violations]
    if not failed:
        return []
    lines = ["", f"{len(failed)} claim(s) violate the gate:"]
    for d in failed:
        lines += [f"  {d.claim_id} ({d.key}):"] + [f"    - {message}" for message in d.violations]
    return lines


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown_table(diffs: list[ClaimDiff]) -> list[str]:
    """The comparison as Markdown table lines (``report.md``'s baseline section uses it too)."""
    lines = ["| " + " | ".join(COLUMNS) + " | drift |", "|" + "---|" * (len(COLUMNS) + 1)]
    for d in diffs:
        r = row(d)
        r["claim"] = f"`{r['claim']}`"
        drift = "<br>".join(_md_cell(v) for v in d.violations) or "–"
        lines.append("| " + " | ".join(_md_cell(r[c]) if c != "claim" else r[c] for c in COLUMNS) + f" | {drift} |")
    return lines


def render_md(diffs: list[ClaimDiff], *, old_label: str, new_label: str) -> str:
    lines = ["# interp_checks: comparison with a baseline", "", f"Baseline `{old_label}`, new `{new_label}`.", ""]
    lines += render_markdown_table(diffs)
    lines += ["", _legend(diffs).replace("\n", "  \n")]
    lines += _violation_lines(diffs)
    return "\n".join(lines) + "\n"


def to_json(diffs: list[ClaimDiff], *, old_label: str, new_label: str, checks: Iterable[Check] = ()) -> dict[str, Any]:
    """The comparison as plain data (``compare --format json``)."""

    def side(numbers: ClaimNumbers | None) -> dict[str, Any] | None:
        if numbers is None:
            return None
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in numbers.__dict__.items()}

    def change(diff: ClaimDiff, name: Field) -> dict[str, Any] | None:
        c = diff.change(name)
        if c is None:
            return None
        fix = lambda x: None if x is None or not math.isfinite(x) else x  # noqa: E731 - strict JSON
        return {"delta": c.delta, "relative": c.relative, "fall": c.fall, "relative_fall": fix(c.relative_fall)}

    return {
        "baseline": old_label,
        "new": new_label,
        "fail_on": [str(c) for c in checks],
        "claims": [
            {
                "key": d.key,
                "id": d.claim_id,
                "status": d.status,
                "verdict_changed": d.verdict_changed,
                "baseline": side(d.old),
                "new": side(d.new),
                "effect_size_change": change(d, "effect_size"),
                "estimate_change": change(d, "estimate"),
                "note": d.note,
                "violations": list(d.violations),
            }
            for d in diffs
        ],
        "violations": sum(len(d.violations) for d in diffs),
    }


def render_compare(diffs: list[ClaimDiff], *, fmt: str, old_label: str, new_label: str, checks: Iterable[Check] = (), id_width: int = 36) -> str:
    """The comparison in ``fmt``: ``text`` (aligned columns), ``md`` or ``json``."""
    if fmt == "json":
        return json.dumps(to_json(diffs, old_label=old_label, new_label=new_label, checks=checks), indent=2, allow_nan=False) + "\n"
    if fmt == "md":
        return render_md(diffs, old_label=old_label, new_label=new_label)
    return render_text(diffs, old_label=old_label, new_label=new_label, id_width=id_width)
