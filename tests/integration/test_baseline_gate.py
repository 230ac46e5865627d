"""The baseline gate end to end: the same claims run on a trained model, then on one where they are weaker.

The pair of reports is made honestly, by measuring: the claims below name heads by position
(``model: subject``), and ``--interp-model subject=...`` binds them first to the zoo's 3-layer model
(the baseline) and then to the 2-layer one. Both are trained zoo models with induction heads in
layer 1; the 2L's are weaker against the random-weights null. Measured with these inputs (seed 0,
n = 64, 5 null draws), effect size 3L -> 2L:

* ``L1H2-induction`` (``score >= 0.5``):        43.6 -> 22.6  (a fall of 48%)
* ``L1H1-induction`` (``score >= 0.5``):        29.9 -> 20.2  (a fall of 32%)
* ``L1-no-prev`` (``max_score < 0.2``): -1.32 -> -0.71 (a rise towards the null: a fall of 46%
  for a claim on the '<' side)
* ``L0-no-induction`` (``max_score < 0.2``):    -3.58 -> -6.04 (further below the null: *stronger*,
  though the number went down by 69%)

so ``--interp-fail-on effect_size:-20%`` must fail exactly the first three, and every verdict stays
"supported". The thresholds are the issue's example (20%), not fitted to these numbers.
"""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from interp_checks.cli import main as cli_main
from interp_checks.models.native import boot_random, save_native
from interp_checks.plugin import OPT_BASELINE, OPT_FAIL_ON, OPT_MODEL, OPT_REPORT, OPT_RESAMPLES

FAST = f"{OPT_RESAMPLES}=999"

CLAIMS = """\
model: subject
seed: 0
inputs: {kind: repeated_random_tokens, seq_len: 32, n: 64}
claims:
  - id: L1H2-induction
    check: induction_head
    head: L1H2
    expect: {score: ">= 0.5"}
  - id: L1H1-induction
    check: induction_head
    head: L1H1
    expect: {score: ">= 0.5"}
  - id: L0-no-induction
    check: induction_head
    layer: 0
    expect: {max_score: "< 0.2"}
  - id: L1-no-prev
    check: previous_token_head
    layer: 1
    expect: {max_score: "< 0.2"}
"""
NEW_CLAIM = """\
  - id: L1H0-induction
    check: induction_head
    head: L1H0
    expect: {score: ">= 0.5"}
"""
WEAKER = {"L1H2-induction", "L1H1-induction", "L1-no-prev"}


def _properties(xml: Path) -> dict[str, list[tuple[str, str]]]:
    return {
        case.get("name"): [(p.get("name"), p.get("value")) for p in case.iter("property")]
        for case in ET.parse(xml).iter("testcase")
    }


def test_baseline_gate_and_compare_catch_claims_whose_effect_size_dropped(pytester, capsys):
    claims = pytester.makefile(".claims.yaml", heads=CLAIMS)
    old = pytester.runpytest_inprocess(FAST, f"{OPT_MODEL}=subject=zoo:attn-only-3l", f"{OPT_REPORT}=old")
    old.assert_outcomes(passed=4)

    claims.write_text(CLAIMS + NEW_CLAIM)  # one claim more: new in this run, so not gated
    new = pytester.runpytest_inprocess(
        FAST, f"{OPT_MODEL}=subject=zoo:attn-only-2l", f"{OPT_REPORT}=new", "--junitxml=out.xml",
        f"{OPT_BASELINE}=old/report.json", f"{OPT_FAIL_ON}=effect_size:-20%", f"{OPT_FAIL_ON}=verdict",
    )
    new.assert_outcomes(failed=3, passed=2)
    failed = {line.split("::")[1].split(" ")[0] for line in new.stdout.lines if line.startswith("FAILED")}
    assert failed == WEAKER

    data = json.loads((pytester.path / "new" / "report.json").read_text())
    assert data["settings"]["baseline"] == str(pytester.path / "old" / "report.json")
    assert data["settings"]["fail_on"] == ["effect_size:-20%", "verdict"]
    records = {c["id"]: c for c in data["claims"]}
    assert {c["outcome"] for c in records.values()} == {"supported"}
    assert records["L1H0-induction"]["baseline"]["status"] == "new" and records["L1H0-induction"]["drift"] == []
    for claim_id in WEAKER | {"L0-no-induction"}:
        record, base = records[claim_id], records[claim_id]["baseline"]
        assert base["status"] == "matched" and base["outcome"] == "supported" and base["statistic"] == record["deciding_statistic"]
        assert (len(record["drift"]) == 1) == (claim_id in WEAKER), (claim_id, record["drift"])
        # the failure message names the baseline file and both numbers
        if claim_id in WEAKER:
            numbers = f"{base['effect_size']:.3f} in the baseline, {record['effect_size']:.3f} now"
            assert numbers in record["drift"][0]
            section = new.stdout.str().split(f"claim {claim_id!r} drifted from the baseline")[1]
            assert section.startswith(f" {pytester.path / 'old' / 'report.json'}") and numbers in section.split("\n")[1]
    # orientation: the '<' claims' effect sizes are negative; one rose (weaker), one fell (stronger)
    below = records["L1-no-prev"], records["L0-no-induction"]
    assert below[0]["baseline"]["effect_size"] < below[0]["effect_size"] < 0
    assert below[1]["effect_size"] < below[1]["baseline"]["effect_size"] < 0
    assert "baseline" in new.stdout.str() and "3 claim(s) drifted" in new.stdout.str()

    markdown = (pytester.path / "new" / "report.md").read_text()
    assert "## Baseline" in markdown and "3 of 5 claims drifted" in markdown

    props = _properties(pytester.path / "out.xml")
    l1h2 = dict(props["L1H2-induction"])
    assert l1h2["interp_baseline_outcome"] == "supported" and l1h2["interp_outcome"] == "supported"
    assert float(l1h2["interp_baseline_effect_size"]) > 1.25 * float(l1h2["interp_effect_size"])
    assert "fell by" in l1h2["interp_drift"] and l1h2["interp_baseline_file"].endswith("report.json")
    assert "interp_drift" not in dict(props["L0-no-induction"])

    # the command finds the same claims in the same pair of files
    old_json, new_json = str(pytester.path / "old" / "report.json"), str(pytester.path / "new" / "report.json")
    capsys.readouterr()
    assert cli_main(["compare", old_json, new_json, "--fail-on", "effect_size:-20%"]) == 1
    out = capsys.readouterr().out
    listed = set(re.findall(r"^  (\S+) \(heads\.claims\.yaml::", out, flags=re.M))
    assert listed == WEAKER, out
    assert re.search(r"^L1H0-induction\s+new: supported", out, flags=re.M), out
    assert cli_main(["compare", old_json, old_json, "--fail-on", "effect_size:-0%,estimate:-0%,verdict"]) == 0


TINY = dict(d_model=32, n_layers=2, n_heads=4, d_head=8, n_ctx=128, d_vocab=100, attn_only=True, normalization_type="LN", act_fn="gelu")
INDUCTION = """\
model: native:./rand2l
seed: 0
claims:
  - id: L1H0-induction
    check: induction_head
    head: L1H0
    inputs: {kind: repeated_random_tokens, seq_len: 16, n: 32}
    expect: {score: ">= 0.4"}
"""


@pytest.fixture(scope="module")
def random_native(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "rand2l"
    save_native(boot_random(TINY, seed=5), folder)
    return folder


def test_junit_xml_has_one_readable_property_per_number(pytester, random_native):
    (pytester.path / "rand2l").symlink_to(random_native, target_is_directory=True)
    pytester.makefile(".claims.yaml", suite=INDUCTION)
    pytester.runpytest_inprocess(FAST, "--junitxml=out.xml")
    props = dict(_properties(pytester.path / "out.xml")["L1H0-induction"])
    record = json.loads(props["interp_claim"])  # the JSON record stays: the report collector reads it
    (exp,) = record["expectations"]
    assert props["interp_outcome"] == record["outcome"] == "refuted" and props["interp_expected"] == "supported"
    assert props["interp_model"] == record["model"] and props["interp_model"].startswith("native:")
    assert props["interp_statistic"] == "score"
    assert props["interp_comparison"] == ">= 0.4" and props["interp_unit"] == "attention probability"
    assert float(props["interp_estimate"]) == pytest.approx(exp["estimate"], rel=1e-5)
    assert float(props["interp_ci_low"]) == pytest.approx(exp["ci"][0], rel=1e-5)
    assert float(props["interp_ci_high"]) == pytest.approx(exp["ci"][1], rel=1e-5)
    assert float(props["interp_ci_level"]) == pytest.approx(0.9)
    assert float(props["interp_p_adjusted"]) == pytest.approx(record["p_value"], rel=1e-5)
    assert float(props["interp_effect_size"]) == pytest.approx(record["effect_size"], rel=1e-5)
    assert props["interp_effect_size_kind"] == record["effect_size_kind"]
    assert not any(name.startswith("interp_baseline") for name in props)
    # figures ride on the test report, not in junit (they would swell the XML), and still reach report.json
    assert record["figures"] == [] and "<svg" not in (pytester.path / "out.xml").read_text()
    written = json.loads((pytester.path / "reports" / "report.json").read_text())["claims"][0]
    assert {figure["kind"] for figure in written["figures"]} == {"strip", "heatmap"}


def test_the_interp_fixture_gets_the_same_properties_and_gate(pytester, random_native):
    (pytester.path / "rand2l").symlink_to(random_native, target_is_directory=True)
    claim = dict(id="L1H0", model="native:./rand2l", check="induction_head", head="L1H0",
                 inputs={"kind": "repeated_random_tokens", "seq_len": 16, "n": 32}, expect={"score": "< 0.4"})
    pytester.makepyfile(test_py=f"def test_claim(interp):\n    interp.check(**{claim!r})\n")
    pytester.runpytest_inprocess(FAST, "--junitxml=a.xml", f"{OPT_REPORT}=a").assert_outcomes(passed=1)
    props = dict(_properties(pytester.path / "a.xml")["test_claim"])
    assert props["interp_outcome[L1H0]"] == "supported" and "interp_estimate[L1H0]" in props
    # the baseline says the claim was refuted: the verdict gate fails the test, naming the file
    data = json.loads((pytester.path / "a" / "report.json").read_text())
    data["claims"][0]["outcome"] = "refuted"  # a hand-made baseline for the verdict flip only
    (pytester.path / "flipped.json").write_text(json.dumps(data))
    result = pytester.runpytest_inprocess(FAST, f"{OPT_BASELINE}=flipped.json", f"{OPT_FAIL_ON}=verdict")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*claim 'L1H0' drifted from the baseline*flipped.json*", "*verdict changed: refuted in the baseline, supported now*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([f"{OPT_FAIL_ON}=verdict"], f"*{OPT_FAIL_ON} compares with a baseline: also pass {OPT_BASELINE}=PATH*"),
        ([f"{OPT_BASELINE}=missing.json"], f"*{OPT_BASELINE}: *missing.json: no such file*"),
        ([f"{OPT_BASELINE}=mine.json"], f"*{OPT_BASELINE}: *mine.json: not a claims report*"),
        ([f"{OPT_BASELINE}=base.json", f"{OPT_FAIL_ON}=verdict,effect_size:20%"],
         f"*{OPT_FAIL_ON}: cannot read the gate expression 'effect_size:20%'; write one of: verdict | effect_size:-N%*"),
    ],
)
def test_bad_gate_options_are_usage_errors(pytester, args, message):
    (pytester.path / "mine.json").write_text(json.dumps({"schema": "interp-checks-mine/1"}))
    (pytester.path / "base.json").write_text(json.dumps({"schema": "interp-checks/2", "claims": []}))
    result = pytester.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_each_xdist_worker_reads_the_baseline_and_gates_its_own_items(pytester, random_native):
    pytest.importorskip("xdist")
    (pytester.path / "rand2l").symlink_to(random_native, target_is_directory=True)
    body = INDUCTION.replace(">= 0.4", "< 0.4") + textwrap.indent(
        "- id: L1H1-induction\n  check: induction_head\n  head: L1H1\n"
        "  inputs: {kind: repeated_random_tokens, seq_len: 16, n: 32}\n  expect: {score: '< 0.4'}\n", "  "
    )
    pytester.makefile(".claims.yaml", suite=body)
    pytester.runpytest_inprocess(FAST, f"{OPT_REPORT}=old").assert_outcomes(passed=2)
    data = json.loads((pytester.path / "old" / "report.json").read_text())
    for record in data["claims"]:  # a hand-made baseline in which both claims were refuted
        record["outcome"] = "refuted"
    (pytester.path / "flipped.json").write_text(json.dumps(data))
    result = pytester.runpytest_subprocess(FAST, "-n", "2", f"{OPT_BASELINE}=flipped.json", f"{OPT_FAIL_ON}=verdict", f"{OPT_REPORT}=new")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*drifted from the baseline*flipped.json*"])
    records = json.loads((pytester.path / "new" / "report.json").read_text())["claims"]
    assert [len(r["drift"]) for r in records] == [1, 1]
    assert {(r["outcome"], r["baseline"]["outcome"]) for r in records} == {("supported", "refuted")}
