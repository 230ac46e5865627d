"""check: patching on the hand-built induction model, whose circuit is known by construction
(``interp_checks.zoo.handbuilt.build_induction_2l``: previous-token head L0H0, induction head L1H1
that K-composes with it; every other head writes nothing). Patching must find both used heads
(necessary; the induction head also sufficient), put L0H0's effect on the path through L1H1, not on
its direct path, and call no unused head important."""

from __future__ import annotations

from pathlib import Path

import pytest

from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from tests.helpers.circuits import build_induction_2l

INPUTS = {"kind": "induction_pairs", "seq_len": 16, "n": 24}


@pytest.fixture(scope="module")
def circuit(tmp_path_factory):
    return build_induction_2l(tmp_path_factory.mktemp("handbuilt") / "induction_2l")


def claim(circuit, cid: str, expect: dict, **params) -> ClaimSpec:
    return ClaimSpec(
        id=cid, path=Path(circuit.spec.removeprefix("native:")).parent / "x.claims.yaml", index=0, check="patching",
        model=circuit.spec, inputs=INPUTS, expect={k: parse_expectation(v) for k, v in expect.items()},
        params={"where": {"region": "repeat"}, **params},
    )


@pytest.fixture(scope="module")
def outcomes(circuit) -> dict[str, str]:
    specs = [claim(circuit, f"noise-{head}", {"normalized": ">= 0.5"}, site=head, direction="noise") for head in circuit.used_heads]
    specs += [claim(circuit, f"unused-{head}", {"normalized": ">= 0.1"}, site=head, direction="noise") for head in circuit.unused_heads]
    specs += [claim(circuit, f"unused-denoise-{head}", {"normalized": ">= 0.1"}, site=head, direction="denoise") for head in circuit.unused_heads]
    specs.append(claim(circuit, "denoise-L1H1", {"normalized": ">= 0.8"}, site="L1H1", direction="denoise"))
    specs.append(claim(circuit, "direct-L0H0", {"normalized": ">= 0.1"}, site="L0H0", direction="noise", path="direct"))
    specs.append(claim(circuit, "noise-L0H0.k-FALSE", {"normalized": ">= 0.1"}, site="L0H0.k", direction="noise"))
    results = Engine(Settings(n_resamples=999, batch_size=24, null_draws=1)).evaluate(specs)
    assert all(r.outcome != "error" for r in results), [r.error for r in results if r.outcome == "error"]
    return {r.spec.id: r.outcome for r in results}


def test_every_used_head_is_necessary(circuit, outcomes):
    assert {head: outcomes[f"noise-{head}"] for head in circuit.used_heads} == {head: "supported" for head in circuit.used_heads}


def test_the_induction_head_is_sufficient(outcomes):
    assert outcomes["denoise-L1H1"] == "supported"


def test_no_unused_head_is_called_important_in_either_direction(circuit, outcomes):
    called = {cid: outcome for cid, outcome in outcomes.items() if cid.startswith("unused") and outcome != "refuted"}
    assert not called, called


def test_the_previous_token_head_acts_through_the_induction_head_not_directly(outcomes):
    assert outcomes["direct-L0H0"] == "refuted"


def test_the_previous_token_heads_key_is_not_what_matters(outcomes):
    """L0H0 is read by L1H1's key, but L0H0's *own* key (which position it attends to) is fixed by
    position alone, so it is the same in both inputs: patching it changes nothing."""
    assert outcomes["noise-L0H0.k-FALSE"] == "refuted"
