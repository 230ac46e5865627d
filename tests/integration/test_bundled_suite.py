"""The bundled claims in hypotheses/ (the main job) must all get the verdict they state.

True claims carry the default ``expected: supported``, deliberately false ones ``expected: refuted``,
so "every item passed" means every true claim was supported and every false one refuted. This is
the same run as the README's main-job command, with fewer bootstrap resamples. The verdicts must not
depend on the sample either: the same run with every ``seed:`` changed to 1, 2 and 3 must give them too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from interp_checks.plugin import OPT_RESAMPLES

HYPOTHESES = Path(__file__).resolve().parents[2] / "hypotheses"


def test_every_bundled_claim_gets_its_stated_verdict(pytester):
    files = sorted(HYPOTHESES.glob("*.claims.yaml"))
    assert files, "hypotheses/ has no claim files"
    for path in files:
        (pytester.path / path.name).write_text(_with_fixture_paths(path.read_text(encoding="utf-8")), encoding="utf-8")
    result = pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=1999", "-p", "no:randomly")
    text = (pytester.path / "reports" / "report.json").read_text()
    claims = json.loads(text, parse_constant=_refuse_non_json)["claims"]
    wrong = [(c["id"], c["outcome"], c["expected"], c.get("error")) for c in claims if c["outcome"] != c["expected"]]
    assert not wrong, wrong
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == len(claims) and not outcomes.get("failed")
    assert {c["expected"] for c in claims} == {"supported", "refuted"}, "the suite must show both verdicts"
    # a picture for every claim (issue 11): the engine's strip of the deciding expectation first,
    # then the family's own picture, and no picture that failed to draw
    pictures = {c["id"]: [f["kind"] for f in c["figures"]] for c in claims}
    own = {"logprob_gain": "tokens", "faithfulness": "bars", "patching": "line", **STREAMED, **SERIES}
    # no strip where there are no per-sample values on the threshold's axis: a statistic of the
    # weights (composition), a rank, and statistics pooled over a corpus's tokens
    def strip_expected(c: dict) -> bool:
        if c["check"] in STREAMED or c["check"] in SERIES:
            return False
        return c["check"] != "composition" and not any(e["statistic"] == "rank" for e in c["expectations"])

    # the family's own picture: an ablation draws its head grid only for claims about several heads
    def own_expected(c: dict) -> str | None:
        if c["check"] == "ablation" and not any("[" in e["statistic"] or e["statistic"].startswith("max") for e in c["expectations"]):
            return None  # one head: its statistics are not per head
        if c["check"] == "feature_ablation":
            return None  # per-sequence effects: the engine's strip is its picture
        return own.get(c["check"], "heatmap")

    missing = {
        c["id"]: pictures[c["id"]]
        for c in claims
        if (strip_expected(c) and pictures[c["id"]][:1] != ["strip"])
        or (own_expected(c) is not None and own_expected(c) not in pictures[c["id"]])
    }
    assert not missing, missing
    failed = [(c["id"], note) for c in claims for note in c["notes"] if "could not be drawn" in note]
    assert not failed, failed
    assert len(text) < 2_000_000, f"report.json is {len(text):,} bytes"


# Checks whose claims stream a corpus (inputs kind corpus_stream): pooled over tokens, no strip of
# per-sequence values; each with its own picture: the top (or counterexample) contexts, the cosines
# or shares over neurons, the correlations within a family.
STREAMED = {
    "neuron_regex": "tokens", "top_examples": "tokens", "neuron_universal": "tokens", "neuron_polysemantic": "tokens",
    "feature_direction": "bars", "feature_spread": "bars", "feature_splitting": "bars", "neuron_family": "heatmap",
    "ln_smuggling": "strip",
}


# Checks over checkpoint series: a curve (or a trajectory) per run, no strip (a statistic of a curve has
# no per-sample values on the threshold's axis).
SERIES = {check: "line" for check in ("grokking", "phase_change", "double_descent", "logit_pca", "coincide")}
FIXTURES = HYPOTHESES.parent / "fixtures"


def _with_fixture_paths(text: str) -> str:
    """A claim file copied out of hypotheses/: its series paths (relative to hypotheses/) made absolute."""
    return text.replace("series:../fixtures/", f"series:{FIXTURES}/")


def _reads_series(data: dict) -> bool:
    return str(data.get("model", "")).startswith("series:") or any(str(c.get("model", "")).startswith("series:") for c in data["claims"])


def _streams_a_corpus(data: dict) -> bool:
    """A claim file whose inputs are corpus streams: the same documents in the same order whatever
    the seed (the seed moves only the bootstrap), so rerunning it at other seeds tests nothing new."""
    kinds = [(data.get("inputs") or {}).get("kind")] + [(c.get("inputs") or {}).get("kind") for c in data["claims"]]
    return "corpus_stream" in kinds


def _refuse_non_json(constant: str) -> None:
    raise ValueError(f"report.json holds {constant}, which strict JSON does not allow")


# Input seeds other than the claim files' own (0). Fixed here before any claim was (re)written and
# not chosen after looking: a bundled verdict that flips with the inputs' seed was a finding about
# one sample, not about the model.
OTHER_SEEDS = (1, 2, 3)


def _with_seed(data: dict, seed: int) -> dict:
    """A claim file's mapping with the file-level ``seed:`` and every claim-level ``seed:`` set to ``seed``."""
    data = dict(data, seed=seed)
    data["claims"] = [dict(claim, seed=seed) if "seed" in claim else claim for claim in data["claims"]]
    return data


@pytest.mark.parametrize("seed", OTHER_SEEDS)
def test_every_bundled_claim_gets_its_stated_verdict_with_other_input_seeds(pytester, seed):
    files = sorted(HYPOTHESES.glob("*.claims.yaml"))
    assert files, "hypotheses/ has no claim files"
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if _streams_a_corpus(data):
            continue
        if _reads_series(data) and seed != OTHER_SEEDS[0]:
            continue  # series claims walk every checkpoint: one other seed only (CI time), fixed with the others
        assert data.get("seed", 0) != seed, f"{path.name} already uses seed {seed}; pick other seeds"
        text = yaml.safe_dump(_with_seed(data, seed), sort_keys=False)
        (pytester.path / path.name).write_text(_with_fixture_paths(text), encoding="utf-8")
    result = pytester.runpytest_inprocess(f"{OPT_RESAMPLES}=1999", "-p", "no:randomly")
    claims = json.loads((pytester.path / "reports" / "report.json").read_text())["claims"]
    wrong = [
        (c["id"], c["outcome"], c["expected"], [(e["estimate"], e["ci"], e["p_adjusted"]) for e in c.get("expectations", [])], c.get("error"))
        for c in claims
        if c["outcome"] != c["expected"]
    ]
    assert not wrong, f"seed {seed}: {wrong}"
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == len(claims) and not outcomes.get("failed")
