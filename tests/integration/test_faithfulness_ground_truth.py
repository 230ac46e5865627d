"""check: faithfulness on the hand-built induction model (``zoo.handbuilt.induction_2l``), whose
circuit is known by construction: L0H0 (previous token) -> L1H1 (induction), every other head
writes nothing. The known circuit must have f near 1, removing either used head must drop f a lot,
adding unused heads must change nothing, a circuit of unused heads must have f near 0, and the
circuit must beat every other circuit of its size. Every claim is judged through the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from tests.helpers.circuits import KnownCircuit, build_induction_2l

INPUTS = {"kind": "repeated_random_tokens", "seq_len": 32, "n": 48}


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> KnownCircuit:
    return build_induction_2l(tmp_path_factory.mktemp("faithfulness") / "induction-2l")


def claim(known: KnownCircuit, expect: dict, **params) -> ClaimSpec:
    params = {"ablation": "mean", "where": {"region": "repeat"}} | params
    return ClaimSpec(
        id="gt", path=Path(known.spec.removeprefix("native:")).parent / "x.claims.yaml", index=0, check="faithfulness",
        model=known.spec, inputs=INPUTS, expect={k: parse_expectation(v) for k, v in expect.items()}, params=params,
    )


def judge(*specs: ClaimSpec):
    results = Engine(Settings(n_resamples=499)).evaluate(list(specs))
    for result in results:
        assert result.outcome != "error", result.error
    return results


def estimates(result) -> dict[str, float]:
    return {e.statistic: e.evaluation.estimate for e in result.expectations}


@pytest.mark.parametrize("ablation", ["mean", "zero", "resample"])
def test_the_known_circuit_is_faithful_and_each_used_head_is_needed(known, ablation):
    [result] = judge(claim(known, {"faithfulness": ">= 0.9", "drop_without": ">= 0.5"}, circuit=list(known.used_heads), ablation=ablation))
    assert result.outcome == "supported", [(e.statistic, e.evaluation.estimate, e.evaluation.ci) for e in result.expectations]
    assert estimates(result)["faithfulness"] == pytest.approx(1.0, abs=0.02)
    assert ablation in result.notes[0] and "granularity heads" in result.notes[0]  # the setting is printed


def test_adding_unused_heads_changes_nothing_and_unused_heads_alone_recover_nothing(known):
    used, unused = list(known.used_heads), list(known.unused_heads)
    alone, padded, idle = judge(
        claim(known, {"faithfulness": ">= 0.9"}, circuit=used),
        claim(known, {"faithfulness": ">= 0.9"}, circuit=used + unused[:3]),
        claim(known, {"faithfulness": "<= 0.1"}, circuit=unused),
    )
    assert estimates(padded)["faithfulness"] == pytest.approx(estimates(alone)["faithfulness"], abs=1e-6)
    assert abs(estimates(idle)["faithfulness"]) < 0.02 and idle.outcome == "supported"


def test_the_known_circuit_beats_every_other_circuit_of_its_size(known):
    [result] = judge(claim(known, {"beats_random": ">= 0.8"}, circuit=list(known.used_heads)))
    evaluation = result.expectations[0].evaluation
    n_heads = len(known.used_heads) + len(known.unused_heads)
    assert evaluation.n == n_heads * (n_heads - 1) // 2 - 1  # every other pair: fewer than 100, so all of them
    assert evaluation.estimate == 1.0 and result.outcome == "supported"
    assert any("every other circuit" in note for note in result.notes)


def test_a_circuit_missing_the_previous_token_head_is_refuted(known):
    induction_only = [h for h in known.used_heads if known.roles.get(h) == "induction_head"]
    [result] = judge(claim(known, {"faithfulness": ">= 0.8"}, circuit=induction_only + list(known.unused_heads)[:1]))
    assert result.outcome == "refuted"


def test_the_curve_of_the_known_ranking_reaches_one_and_its_areas_say_so(known):
    ranking = ["L1H1", "L0H0"] + list(known.unused_heads)[:2]
    [result] = judge(claim(known, {"cpr": ">= 0.5", "cmd": "<= 0.5"}, circuit=list(known.used_heads), ranking=ranking))
    values = estimates(result)
    # f over k = 0..4: 0, f(L1H1 alone) (small), 1, 1, 1 -> CPR = (f1/4 + 1/4 + 1/4 + 1/8), CMD its complement
    assert values["cpr"] + values["cmd"] == pytest.approx(1.0, abs=0.05)
    assert values["cpr"] >= 0.6 and result.outcome == "supported"
    kinds = [figure.kind for figure in result.figures]
    assert "line" in kinds and "bars" in kinds
