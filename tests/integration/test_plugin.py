"""The pytest plugin end to end, through pytester: collection, verdicts, errors, options, reports.

Models here are tiny random-weights native checkpoints written by the tests, so every head-role
claim that says "this head has the role" must come out refuted (never supported) on them.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from interp_checks.models.native import boot_random, save_native
from interp_checks.plugin import OPT_ADJUST, OPT_INCONCLUSIVE, OPT_MODEL, OPT_REPORT, OPT_RESAMPLES

TINY = dict(d_model=32, n_layers=2, n_heads=4, d_head=8, n_ctx=128, d_vocab=100, attn_only=True, normalization_type="LN", act_fn="gelu")
FAST = f"{OPT_RESAMPLES}=999"


@pytest.fixture(scope="session")
def random_native(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "rand2l"
    save_native(boot_random(TINY, seed=5), folder)
    return folder


def claims_file(pytester: pytest.Pytester, body: str, name: str = "suite", model: str = "native:./rand2l") -> Path:
    text = f"model: {model}\nseed: 0\nclaims:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    return pytester.makefile(".claims.yaml", **{name: text})


def link_model(pytester: pytest.Pytester, folder: Path, name: str = "rand2l") -> None:
    (pytester.path / name).symlink_to(folder, target_is_directory=True)


def report(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "reports" / "report.json").read_text())


INDUCTION = """
- id: L1H0-induction
  statement: Head L1H0 is an induction head
  check: induction_head
  head: L1H0
  inputs: {kind: repeated_random_tokens, seq_len: 16, n: 32}
  expect: {score: ">= 0.4"}
"""


def test_random_weights_model_never_supports_a_head_role(pytester, random_native):
    link_model(pytester, random_native)
    body = INDUCTION
    for check in ("previous_token_head", "duplicate_token_head"):
        body += INDUCTION.replace("L1H0-induction", f"L1H0-{check}").replace("induction_head", check)
    claims_file(pytester, body)
    result = pytester.runpytest_inprocess(FAST)
    result.assert_outcomes(failed=3)
    outcomes = {c["id"]: c["outcome"] for c in report(pytester)["claims"]}
    assert set(outcomes.values()) == {"refuted"}, outcomes


def test_items_have_claim_node_ids_and_k_selects(pytester, random_native):
    link_model(pytester, random_native)
    claims_file(pytester, INDUCTION + INDUCTION.replace("L1H0-induction", "other").replace(">= 0.4", "< 0.4"))
    result = pytester.runpytest_inprocess(FAST, "--collect-only", "-q")
    result.stdout.fnmatch_lines(["suite.claims.yaml::L1H0-induction", "suite.claims.yaml::other"])
    result = pytester.runpytest_inprocess(FAST, "-k", "other")
    result.assert_outcomes(passed=1, deselected=1)
    assert [c["id"] for c in report(pytester)["claims"]] == ["other"]


def test_expected_refuted_passes_when_refuted_and_report_keeps_both(pytester, random_native):
    link_model(pytester, random_native)
    claims_file(pytester, INDUCTION.rstrip() + "\n  expected: refuted\n")
    result = pytester.runpytest_inprocess(FAST)
    result.assert_outcomes(passed=1)
    (claim,) = report(pytester)["claims"]
    assert (claim["outcome"], claim["expected"]) == ("refuted", "refuted")


def test_expected_refuted_fails_when_supported(pytester, random_native):
    link_model(pytester, random_native)
    claims_file(pytester, INDUCTION.replace(">= 0.4", "< 0.4").rstrip() + "\n  expected: refuted\n")
    result = pytester.runpytest_inprocess(FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*SUPPORTED, expected refuted*"])


def test_failure_message_states_the_numbers(pytester, random_native):
    link_model(pytester, random_native)
    claims_file(pytester, INDUCTION)
    result = pytester.runpytest_inprocess(FAST)
    result.stdout.fnmatch_lines(
        [
            "*claim 'L1H0-induction'*REFUTED, expected supported*",
            "*score >= 0.4: estimate 0.*, 90% CI [[]0.*, 0.*[]], p=*(adj. *), p_refute=*",
            "*estimate is * SD) outside the claimed region >= 0.4",
            "*effect size -*: the statistic is below the null (null mean 0.*; Cohen's d_z, paired by sequence, against 5 "
            "independent draws*max over all heads*random weights*); against single null draws * to *",
        ]
    )


def test_inconclusive_fails_by_default_and_skips_on_request(pytester, random_native):
    link_model(pytester, random_native)
    # two sequences: too few for any verdict at alpha 0.05 with a threshold inside the noise
    body = INDUCTION.replace("n: 32", "n: 2").replace(">= 0.4", ">= 0.05")
    claims_file(pytester, body)
    result = pytester.runpytest_inprocess(FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*INCONCLUSIVE*", "*--interp-inconclusive=skip*"])
    result = pytester.runpytest_inprocess(FAST, f"{OPT_INCONCLUSIVE}=skip")
    result.assert_outcomes(skipped=1)
    assert report(pytester)["claims"][0]["outcome"] == "inconclusive"


BAD_CLAIMS = {
    "unknown-check": ("check: induction_hed\n  head: L1H0", "unknown check 'induction_hed'. Did you mean 'induction_head'?"),
    "unknown-key": ("check: induction_head\n  head: L1H0\n  layers: 3", "unknown key 'layers' for check induction_head"),
    "head-outside": ("check: induction_head\n  head: L9H0", "head L9H0 is outside the model, which has 2 layer(s)"),
    "missing-model": ("check: induction_head\n  head: L1H0\n  model: native:./nowhere", "folder*nowhere not found"),
    "bad-expect": ("check: induction_head\n  head: L1H0\n  expect: {score: 'at least 0.4'}", "cannot parse expectation 'at least 0.4'"),
    "wrong-statistic": ("check: induction_head\n  head: L1H0\n  expect: {loss: '< 2'}", "does not produce statistic 'loss'; it produces score, max_score"),
    "bad-inputs": ("check: induction_head\n  head: L1H0\n  inputs: {kind: repeated_random_token}", "unknown inputs kind 'repeated_random_token'. Did you mean"),
}


def test_each_bad_input_gets_a_clear_error_and_the_other_claims_still_run(pytester, random_native):
    link_model(pytester, random_native)
    body = INDUCTION.replace(">= 0.4", "< 0.4")  # a good claim, supported on random weights
    for claim_id, (fields, _) in BAD_CLAIMS.items():
        entry = f"- id: {claim_id}\n  {fields}\n"
        if "inputs:" not in fields:
            entry += "  inputs: {kind: repeated_random_tokens, seq_len: 16, n: 32}\n"
        if "expect:" not in fields:
            entry += "  expect: {score: '>= 0.4'}\n"
        body += entry
    path = claims_file(pytester, body)
    result = pytester.runpytest_inprocess(FAST)
    result.assert_outcomes(passed=1, failed=len(BAD_CLAIMS))
    for claim_id, (_, message) in BAD_CLAIMS.items():
        result.stdout.fnmatch_lines([f"*{path}, claim '{claim_id}'*{message}*"])
    errors = {c["id"]: c for c in report(pytester)["claims"] if c["outcome"] == "error"}
    assert set(errors) == set(BAD_CLAIMS)


def test_malformed_yaml_fails_one_item_and_other_files_still_run(pytester, random_native):
    link_model(pytester, random_native)
    claims_file(pytester, INDUCTION.replace(">= 0.4", "< 0.4"), name="good")
    pytester.makefile(".claims.yaml", broken="model: x\nclaims:\n  - id: a\n    check: [unclosed\n")
    result = pytester.runpytest_inprocess(FAST)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*broken.claims.yaml: malformed YAML at line*", "FAILED broken.claims.yaml::file-error*"])


def test_interp_model_binding_runs_the_same_claims_on_another_checkpoint(pytester, random_native, tmp_path):
    other = tmp_path / "other"
    save_native(boot_random(TINY, seed=6), other)
    claims_file(pytester, INDUCTION.replace(">= 0.4", "< 0.4"), model="candidate")
    result = pytester.runpytest_inprocess(FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*'candidate'*--interp-model*"])
    result = pytester.runpytest_inprocess(FAST, f"{OPT_MODEL}=candidate=native:{other}")
    result.assert_outcomes(passed=1)
    assert report(pytester)["claims"][0]["model"] == f"native:{other}"


def test_bad_binding_is_a_usage_error(pytester):
    result = pytester.runpytest_inprocess(f"{OPT_MODEL}=no-equals-sign")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--interp-model expects NAME=SPEC*"])


def test_junit_xml_carries_the_verdict(pytester, random_native):
    link_model(pytester, random_native)
    claims_file(pytester, INDUCTION)
    pytester.runpytest_inprocess(FAST, "--junitxml=out.xml")
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "out.xml").iter("property")}
    assert props["interp_outcome"] == "refuted"
    assert json.loads(props["interp_claim"])["id"] == "L1H0-induction"


def test_report_schema_and_markdown(pytester, random_native):
    link_model(pytester, random_native)
    claims_file(pytester, INDUCTION)
    pytester.runpytest_inprocess(FAST, f"{OPT_REPORT}=out", f"{OPT_ADJUST}=bh")
    data = json.loads((pytester.path / "out" / "report.json").read_text())
    assert data["schema"] == "interp-checks/2"
    (claim,) = data["claims"]
    for key in (
        "id", "nodeid", "statement", "check", "model", "outcome", "effect_size", "effect_size_kind", "n", "seed",
        "duration_s", "load_s", "measure_s", "family_size", "p_value", "deciding_statistic", "expectations",
    ):
        assert key in claim
    # time is split into loading and measuring, and they add up
    assert claim["load_s"] > 0 and claim["measure_s"] > 0
    assert claim["duration_s"] == pytest.approx(claim["load_s"] + claim["measure_s"], abs=1e-3)
    # a refuted claim reports the refutation p that decided it, in JSON and in Markdown (not the support side's 1.000)
    assert claim["outcome"] == "refuted" and claim["p_value"] < 0.05
    assert claim["p_value"] == claim["expectations"][0]["p_adjusted_refute"]
    (exp,) = claim["expectations"]
    for key in ("statistic", "comparison", "estimate", "ci", "p_value", "p_adjusted", "outcome"):
        assert exp[key] is not None
    assert claim["nodeid"].endswith("suite.claims.yaml::L1H0-induction")
    assert data["settings"]["adjust"] == "bh"
    assert data["settings"]["null_draws"] == 5 and data["settings"]["max_input_tokens"] == 2**22
    markdown = (pytester.path / "out" / "report.md").read_text()
    assert "| `L1H0-induction` |" in markdown and "refuted" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| `L1H0-induction` |"))
    assert f"{claim['p_value']:.2e}" in row and "| 1.000 |" not in row


def test_python_claims_through_the_fixture_join_the_report(pytester, random_native):
    link_model(pytester, random_native)
    pytester.makepyfile(
        test_custom=f"""
        def test_layer_has_no_induction_head(interp):
            result = interp.check(
                id="no-induction-L0", model="native:{random_native}", check="induction_head", layer=0,
                inputs={{"kind": "repeated_random_tokens", "seq_len": 16, "n": 32}},
                expect={{"max_score": "< 0.4"}},
            )
            assert result.outcome == "supported"

        def test_false_claim_fails_with_numbers(interp):
            interp.check(
                id="false", model="native:{random_native}", check="induction_head", head="L1H1",
                inputs={{"kind": "repeated_random_tokens", "seq_len": 16, "n": 32}},
                expect={{"score": ">= 0.5"}},
            )
        """
    )
    result = pytester.runpytest_inprocess(FAST)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*claim 'false'*REFUTED, expected supported*"])
    claims = {c["id"]: c for c in report(pytester)["claims"]}
    # Python claims join the session family: one slot per test that uses the fixture
    assert {c["family"] for c in claims.values()} == {"session"}
    assert {c["family_size"] for c in claims.values()} == {2}


def test_inconclusive_python_claims_skip_on_request(pytester, random_native):
    pytester.makepyfile(
        test_inconclusive=f"""
        def test_two_sequences_decide_nothing(interp):
            interp.check(
                id="too-few", model="native:{random_native}", check="induction_head", head="L1H0",
                inputs={{"kind": "repeated_random_tokens", "seq_len": 16, "n": 2}},
                expect={{"score": ">= 0.05"}},
            )
        """
    )
    pytester.runpytest_inprocess(FAST).assert_outcomes(failed=1)
    pytester.runpytest_inprocess(FAST, f"{OPT_INCONCLUSIVE}=skip").assert_outcomes(skipped=1)


def test_the_family_does_not_shrink_with_the_selection(pytester, random_native):
    """A claim re-run alone (-k, --lf) is judged against the whole family, never more leniently."""
    link_model(pytester, random_native)
    body = "".join(
        INDUCTION.replace("L1H0-induction", f"no-induction-{head}").replace("head: L1H0", f"head: {head}").replace(">= 0.4", "< 0.4")
        for head in ("L0H0", "L0H1", "L1H0")
    )
    claims_file(pytester, body)
    pytester.makepyfile(test_more="def test_one_more(interp):\n    pass\n")
    pytester.runpytest_inprocess(FAST)
    full = {c["id"]: c for c in report(pytester)["claims"]}
    assert {c["family_size"] for c in full.values()} == {4}  # three claims and one test using `interp`
    for selection in (["-k", "L0H1"], ["--deselect", "suite.claims.yaml::no-induction-L0H0"]):
        pytester.runpytest_inprocess(FAST, *selection)
        rerun = {c["id"]: c for c in report(pytester)["claims"]}
        assert "no-induction-L0H1" in rerun and len(rerun) < 3
        for claim_id, claim in rerun.items():
            assert claim["family_size"] == 4
            assert claim["p_value"] >= full[claim_id]["p_value"] - 1e-15
    # --lf: make one claim fail, then re-run the failures only
    pytester.makefile(".claims.yaml", suite=(pytester.path / "suite.claims.yaml").read_text().replace("head: L0H1\n    inputs", "head: L0H1\n    expected: refuted\n    inputs"))
    pytester.runpytest("-p", "cacheprovider", FAST)
    result = pytester.runpytest("-p", "cacheprovider", FAST, "--lf")
    result.assert_outcomes(failed=1)  # --lf collects only the failed claim and skips the Python file
    assert [c["family_size"] for c in report(pytester)["claims"]] == [4]
