"""Baseline comparison (``report.compare``): gate expressions, what "fell" means, matching, rendering.

Hand-made ``report.json`` dicts for the edge cases; ``tests/integration/test_baseline_gate.py`` makes
a real pair of reports from two trained models.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interp_checks.cli import main as cli_main
from interp_checks.report import render_markdown
from interp_checks.report.compare import (
    GRAMMAR,
    BaselineError,
    FailOnSyntaxError,
    FallCheck,
    VerdictCheck,
    baseline_record,
    compare_reports,
    diff_claim,
    load_report,
    match_claims,
    parse_fail_on,
    render_compare,
)
from interp_checks.report.junit import junit_properties


def claim(
    id: str = "c",
    *,
    outcome: str = "supported",
    comparison: str = ">= 0.5",
    estimate: float | None = 0.8,
    effect: float | None = 10.0,
    p: float | None = 1e-6,
    statistic: str = "score",
    expected: str = "supported",
    nodeid: str | None = None,
    unit: str | None = "attention probability",
    margin: float | None = None,
    extra: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A claim record as report.json stores it, with one (deciding) expectation."""
    exp = {
        "statistic": statistic,
        "comparison": comparison,
        "unit": unit,
        "estimate": estimate,
        "ci": [None if estimate is None else estimate - 0.01, None if estimate is None else estimate + 0.01],
        "ci_level": 0.9,
        "p_adjusted": p,
        "p_adjusted_refute": 1.0,
        "margin": margin,
        "effect_size": effect,
        "effect_size_kind": "Cohen's d_z",
        "outcome": outcome,
    }
    return {
        "id": id,
        "nodeid": f"suite.claims.yaml::{id}" if nodeid is None else nodeid,
        "file": "/repo/suite.claims.yaml",
        "model": "zoo:attn-only-2l",
        "outcome": outcome,
        "expected": expected,
        "deciding_statistic": statistic,
        "p_value": p,
        "effect_size": effect,
        "effect_size_kind": "Cohen's d_z",
        "error": None,
        "expectations": [exp] + (extra or []),
    }


def report(*claims: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "interp-checks/2", "claims": list(claims)}


def violations(old: dict[str, Any], new: dict[str, Any], expr: str) -> tuple[str, ...]:
    (diff,) = compare_reports(report(old), report(new), parse_fail_on(expr))
    return diff.violations


# -- parsing -------------------------------------------------------------------------------------


def test_expressions_parse_into_typed_checks():
    assert parse_fail_on(["verdict, effect_size:-20%", "effect_size:-0.5", "estimate:-10%,estimate:-0.05"]) == [
        VerdictCheck(),
        FallCheck("effect_size", 20.0, relative=True),
        FallCheck("effect_size", 0.5),
        FallCheck("estimate", 10.0, relative=True),
        FallCheck("estimate", 0.05),
    ]
    assert parse_fail_on("estimate:-0.2nats") == [FallCheck("estimate", 0.2, unit="nats")]
    assert parse_fail_on("estimate:-0.05attention_probability") == [FallCheck("estimate", 0.05, unit="attention probability")]
    assert parse_fail_on("estimate:-0.05 Attention  Prob") == [FallCheck("estimate", 0.05, unit="attention_prob")]
    assert parse_fail_on(["", " , "]) == []


@pytest.mark.parametrize(
    "text",
    ["effect_size:20%", "effect_size:+20%", "effect:-20%", "verdicts", "effect_size:-", "effect_size:-20%%",
     "effect_size:-0.5nats", "estimate:-abc", "effect_size:-inf", "estimate:-nan", "estimate:-5%nats", "p_value:-0.1"],
)
def test_a_bad_expression_names_the_grammar(text):
    with pytest.raises(FailOnSyntaxError) as info:
        parse_fail_on(text)
    assert repr(text) in str(info.value) and GRAMMAR in str(info.value)


amounts = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
units = st.from_regex(r"[A-Za-z][A-Za-z_ ]{0,12}", fullmatch=True)
fall_checks = st.one_of(
    st.builds(FallCheck, st.sampled_from(["effect_size", "estimate"]), amounts, st.booleans()),
    st.builds(lambda a, u: FallCheck("estimate", a, unit=u), amounts, units),
)


@given(st.lists(st.one_of(st.just(VerdictCheck()), fall_checks), min_size=1, max_size=5))
def test_checks_round_trip_through_their_text(checks):
    text = ",".join(str(c) for c in checks)
    assert parse_fail_on(text) == checks


@given(st.from_regex(r"(effect_size|estimate):-(\d{1,4}(\.\d{0,3})?|\.\d{1,3})%?", fullmatch=True))
def test_every_expression_of_the_grammar_parses_and_renders_back(text):
    (check,) = parse_fail_on(text)
    assert parse_fail_on(str(check)) == [check]
    assert float(re.findall(r"[\d.]+", text)[0]) == check.amount


# -- what "fell" means -----------------------------------------------------------------------------


def test_a_claim_above_a_threshold_falls_when_its_numbers_decrease():
    old, new = claim(effect=10.0), claim(effect=7.0)
    (message,) = violations(old, new, "effect_size:-20%")
    assert "fell by 3.000 (30.0% of the baseline's)" in message and "10.000 in the baseline, 7.000 now" in message
    assert violations(old, new, "effect_size:-40%") == ()
    assert violations(old, new, "effect_size:-2.5") and not violations(old, new, "effect_size:-3.5")
    assert violations(new, old, "effect_size:-0%") == ()  # a rise is no fall


def test_a_claim_below_a_threshold_falls_when_its_numbers_rise():
    # "max_score < 0.2": supported when the statistic is low; its effect size is negative (below the null)
    weaker = claim(comparison="< 0.2", estimate=0.05, effect=-2.0), claim(comparison="< 0.2", estimate=0.15, effect=-1.0)
    (message,) = violations(*weaker, "effect_size:-20%")
    assert "fell by 1.000 (50.0% of the baseline's)" in message and "-2.000 in the baseline, -1.000 now" in message
    assert violations(*weaker, "estimate:-0.05") and not violations(*weaker, "estimate:-0.2")
    # the same claim getting stronger (further below the null) is not a fall, though the number went down by 50%
    stronger = claim(comparison="< 0.2", effect=-2.0), claim(comparison="< 0.2", effect=-3.0)
    assert violations(*stronger, "effect_size:-20%") == ()


def test_a_deliberately_false_claim_falls_when_it_moves_towards_its_claimed_side():
    old = claim(comparison=">= 0.5", estimate=0.1, effect=1.0, outcome="refuted", expected="refuted")
    new = claim(comparison=">= 0.5", estimate=0.3, effect=4.0, outcome="refuted", expected="refuted")
    assert violations(old, new, "estimate:-0.1") and violations(old, new, "effect_size:-50%")
    assert violations(new, old, "estimate:-0.1,effect_size:-50%") == ()


def test_a_band_claim_gates_its_estimate_on_the_margin_and_has_no_effect_direction():
    old = claim(comparison="between 0.2 0.6", estimate=0.4, margin=0.2, effect=5.0)
    new = claim(comparison="between 0.2 0.6", estimate=0.55, margin=0.05, effect=1.0)
    (message,) = violations(old, new, "estimate:-0.1")
    assert "fell by 0.150" in message  # the margin to the nearer edge shrank by 0.15, though the estimate rose
    assert violations(old, new, "effect_size:-10%") == ()


def test_a_unit_restricts_an_absolute_estimate_check_to_claims_in_that_unit():
    old, new = claim(estimate=2.0, unit="nats per model token"), claim(estimate=1.5, unit="nats per model token")
    assert violations(old, new, "estimate:-0.2nats") and violations(old, new, "estimate:-0.2nats_per_model")
    assert violations(old, new, "estimate:-0.2attention") == ()
    assert violations(old, new, "estimate:-0.2") and violations(old, new, "estimate:-10%")


def test_a_relative_fall_from_zero_is_infinite():
    assert violations(claim(effect=0.0), claim(effect=-0.1), "effect_size:-1000%")
    assert violations(claim(effect=0.0), claim(effect=0.0), "effect_size:-0%") == ()


# -- edge cases ------------------------------------------------------------------------------------


def test_verdict_flip_fails_only_the_verdict_check():
    old, new = claim(), claim(outcome="inconclusive")
    (message,) = violations(old, new, "verdict")
    assert "supported in the baseline, inconclusive now" in message
    assert violations(old, claim(), "verdict") == ()
    (diff,) = compare_reports(report(old), report(new))
    assert diff.verdict_changed and "supported → inconclusive *" in render_compare([diff], fmt="text", old_label="a", new_label="b")


def test_an_errored_claim_lacks_the_numbers_the_baseline_had():
    errored = {"id": "c", "nodeid": "suite.claims.yaml::c", "outcome": "error", "error": "boom", "expectations": []}
    (message,) = violations(claim(), errored, "effect_size:-20%")
    assert "10.000 in the baseline, none now (the claim's outcome is error)" in message
    assert violations(claim(), errored, "verdict")
    # an errored baseline has nothing to fall from
    assert violations(errored, claim(), "effect_size:-20%,estimate:-0.1") == ()
    text = render_compare(compare_reports(report(errored), report(claim())), fmt="text", old_label="a", new_label="b")
    assert "error → supported *" in text


def test_none_effect_sizes_and_missing_keys_are_not_compared():
    assert violations(claim(effect=None), claim(effect=1.0), "effect_size:-0%") == ()
    assert violations(claim(effect=5.0), claim(effect=None), "effect_size:-0%")  # the new run lost it
    bare_old, bare_new = {"id": "c", "outcome": "supported"}, {"id": "c", "outcome": "supported"}
    (diff,) = compare_reports(report(bare_old), report(bare_new), parse_fail_on("verdict,effect_size:-1%,estimate:-1%"))
    assert diff.status == "matched" and diff.violations == ()
    for fmt in ("text", "md", "json"):
        render_compare([diff], fmt=fmt, old_label="a", new_label="b")


def test_new_and_removed_claims_are_listed_never_failed():
    old = report(claim("kept"), claim("gone"))
    new = report(claim("kept"), claim("added", effect=0.1))
    diffs = compare_reports(old, new, parse_fail_on("verdict,effect_size:-1%"))
    assert [(d.claim_id, d.status, d.violations) for d in diffs] == [
        ("kept", "matched", ()), ("added", "new", ()), ("gone", "removed", ())
    ]
    text = render_compare(diffs, fmt="text", old_label="a", new_label="b")
    assert "new: supported" in text and "removed: supported" in text and "1 new, 1 removed" in text


def test_claims_match_by_node_id_then_by_file_and_id():
    moved = dict(claim("c", effect=1.0), nodeid="elsewhere/suite.claims.yaml::c")
    pairs = match_claims([claim("c"), claim("d")], [moved, dict(claim("d"), nodeid="")])
    assert [(old["id"] if old else None, new["id"] if new else None) for _, old, new in pairs] == [("c", "c"), ("d", "d")]
    other_file = dict(claim("c", nodeid=""), file="/other.claims.yaml")
    assert [p[1] is None for p in match_claims([claim("c", nodeid="")], [other_file])] == [True, False]


def test_the_baseline_is_read_for_the_same_statistic_as_the_new_deciding_one():
    # "exactly these heads": the weakest head moved from L1H0 to L1H2; L1H2 fell from 0.95 to 0.6
    def heads(h0, h2, deciding):
        rec = claim(statistic=f"score[{deciding}]", estimate=min(h0, h2))
        rec["expectations"] = [
            dict(rec["expectations"][0], statistic="score[L1H0]", estimate=h0, effect_size=h0 * 10),
            dict(rec["expectations"][0], statistic="score[L1H2]", estimate=h2, effect_size=h2 * 10),
        ]
        return rec

    (diff,) = compare_reports(report(heads(0.7, 0.95, "L1H0")), report(heads(0.9, 0.6, "L1H2")), parse_fail_on("estimate:-0.2"))
    assert diff.old.statistic == diff.new.statistic == "score[L1H2]" and diff.old.estimate == 0.95
    assert len(diff.violations) == 1 and "score[L1H2] fell by 0.350" in diff.violations[0]
    # a baseline without that statistic: its own deciding one, and the comparison says so
    old = claim(statistic="score[L1H0]")
    diff = diff_claim(old, claim(statistic="score[L1H3]"))
    assert diff.old.statistic == "score[L1H0]" and "the baseline has no score[L1H3]" in diff.note


def test_baseline_record_keeps_the_baseline_numbers_and_marks_new_claims():
    entry, drift = baseline_record(claim(effect=10.0), claim(effect=5.0), "old/report.json", parse_fail_on("effect_size:-20%"))
    assert entry["status"] == "matched" and entry["file"] == "old/report.json"
    assert (entry["outcome"], entry["effect_size"], entry["estimate"], entry["p_value"]) == ("supported", 10.0, 0.8, 1e-6)
    assert entry["ci"] == [pytest.approx(0.79), pytest.approx(0.81)] and entry["deciding_statistic"] == "score"
    assert len(drift) == 1
    entry, drift = baseline_record(None, claim(), "old/report.json", parse_fail_on("verdict,effect_size:-1%"))
    assert entry["status"] == "new" and entry["effect_size"] is None and drift == []
    json.dumps(entry, allow_nan=False)


# -- files, rendering, the command ------------------------------------------------------------------


def test_load_report_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(BaselineError, match="missing.json: no such file"):
        load_report(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(BaselineError, match="bad.json: not JSON"):
        load_report(tmp_path / "bad.json")
    (tmp_path / "mine.json").write_text(json.dumps({"schema": "interp-checks-mine/1"}))
    with pytest.raises(BaselineError, match="mine.json: not a claims report"):
        load_report(tmp_path / "mine.json")


def test_text_columns_are_aligned_and_long_ids_keep_both_ends():
    long_id = "2l-induction-heads-exactly-layer-1-" + "x" * 40 + "-end"
    diffs = compare_reports(report(claim("short"), claim(long_id)), report(claim("short", effect=5.0), claim(long_id)))
    text = render_compare(diffs, fmt="text", old_label="a", new_label="b", id_width=30)
    table = [line for line in text.splitlines() if line.startswith(("claim", "short", "2l-"))]
    assert len(table) == 3
    starts = [[m.start() for m in re.finditer(r"(?<=  )\S", line)][:4] for line in table]
    assert starts[0] == starts[1] == starts[2], text
    shown = table[2].split()[0]
    assert len(shown) == 30 and shown.startswith("2l-induction") and shown.endswith("x-end") and "…" in shown
    assert "10.00 → 5.00 (-5.00, -50.0%; weaker)" in text


def test_markdown_and_json_formats():
    diffs = compare_reports(report(claim()), report(claim(effect=5.0)), parse_fail_on("effect_size:-20%"))
    md = render_compare(diffs, fmt="md", old_label="a", new_label="b")
    assert "| `c` | supported | score |" in md and "fell by 5.000" in md
    data = json.loads(render_compare(diffs, fmt="json", old_label="a", new_label="b", checks=parse_fail_on("effect_size:-20%")))
    (entry,) = data["claims"]
    assert data["fail_on"] == ["effect_size:-20%"] and data["violations"] == 1
    assert entry["effect_size_change"] == {"delta": -5.0, "relative": -0.5, "fall": 5.0, "relative_fall": 0.5}
    assert entry["baseline"]["effect_size"] == 10.0 and entry["new"]["effect_size"] == 5.0


def test_compare_command_exit_codes(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(report(claim(effect=10.0))))
    new.write_text(json.dumps(report(claim(effect=7.0))))
    assert cli_main(["compare", str(old), str(new)]) == 0
    assert cli_main(["compare", str(old), str(new), "--fail-on", "effect_size:-50%"]) == 0
    capsys.readouterr()
    assert cli_main(["compare", str(old), str(new), "--fail-on", "verdict", "--fail-on", "effect_size:-20%"]) == 1
    out = capsys.readouterr().out
    assert "1 claim(s) violate the gate" in out and "fell by 3.000" in out
    assert cli_main(["compare", str(old), str(new), "--fail-on", "effect_size:20%"]) == 2
    assert "effect_size:-N%" in capsys.readouterr().err
    assert cli_main(["compare", str(old), str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err
    assert cli_main(["compare", str(old), str(new), "--format", "json", "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["claims"][0]["status"] == "matched"


def test_report_markdown_shows_the_baseline_beside_the_new_numbers():
    new = claim(effect=5.0)
    new["baseline"], new["drift"] = baseline_record(claim(), new, "old/report.json", parse_fail_on("effect_size:-20%"))
    text = render_markdown({"summary": {"supported": 1}, "created": "now", "settings": {"fail_on": ["effect_size:-20%"]}, "claims": [new]})
    section = text.split("## Baseline", 1)[1]
    assert "`old/report.json`" in section and "`effect_size:-20%`" in section and "1 of 1 claims drifted" in section
    assert "10.00 → 5.00" in section and "fell by 5.000" in section
    plain = claim()
    plain["baseline"], plain["drift"] = None, []
    assert "## Baseline" not in render_markdown({"summary": {}, "created": "now", "claims": [plain]})


# -- junit -------------------------------------------------------------------------------------------


def test_junit_properties_are_readable_numbers():
    props = junit_properties(claim(effect=12.3456789))
    names = [name for name, _ in props]
    assert dict(props) == {
        "interp_outcome": "supported", "interp_expected": "supported", "interp_model": "zoo:attn-only-2l",
        "interp_statistic": "score", "interp_comparison": ">= 0.5", "interp_estimate": "0.8",
        "interp_unit": "attention probability", "interp_ci_low": "0.79", "interp_ci_high": "0.81",
        "interp_ci_level": "0.9", "interp_p_adjusted": "1e-06", "interp_effect_size": "12.3457",
        "interp_effect_size_kind": "Cohen's d_z",
    }
    assert len(names) == len(set(names))
    new = claim(effect=5.0)
    new["baseline"], new["drift"] = baseline_record(claim(), new, "old/report.json", parse_fail_on("effect_size:-20%,effect_size:-10%"))
    props = junit_properties(new, suffix="[c]")
    assert ("interp_baseline_effect_size[c]", "10") in props and ("interp_baseline_file[c]", "old/report.json") in props
    assert [name for name, _ in props].count("interp_drift[c]") == 2
    errored = {"id": "c", "outcome": "error", "error": "boom", "expectations": []}
    assert dict(junit_properties(errored)) == {"interp_outcome": "error", "interp_error": "boom"}
