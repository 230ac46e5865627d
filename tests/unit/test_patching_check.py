"""check: patching's claim keys: what it refuses, and that it says why (no model is run)."""

from __future__ import annotations

import pytest

from interp_checks.checks.base import MODEL, CheckError, ModelShape
from interp_checks.checks.patching import PatchingCheck, parse_site
from interp_checks.claims.expect import parse_expectation
from interp_checks.interventions import Site

SHAPE = {MODEL: ModelShape(n_layers=2, n_heads=4, d_vocab=100, n_ctx=64)}
EXPECT = {"normalized": parse_expectation(">= 0.5")}


def prepare(**params):
    return PatchingCheck().prepare(params, SHAPE, EXPECT)


def test_site_names_map_to_the_seams_sites():
    shape = SHAPE[MODEL]
    assert parse_site("L1H2", shape, None) == Site("head", 1, 2)
    assert parse_site("L1H2.k", shape, (3,)) == Site("head_k", 1, 2, (3,))
    assert parse_site("L0.mlp", shape, None) == Site("mlp", 0)
    assert parse_site("L1.resid", shape, None) == Site("resid", 1)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"site": "L1H2"}, "needs 'direction:'"),
        ({"site": "L1H2", "direction": "sideways"}, "not one of"),
        ({"site": "L2H0", "direction": "noise"}, "outside the model"),
        ({"site": "L1H9", "direction": "noise"}, "outside the model"),
        ({"site": "head 3", "direction": "noise"}, "is not of the form"),
        ({"site": "L1H2.q", "direction": "noise", "path": "direct"}, "direct effect is defined for head and MLP outputs"),
        ({"sites": [], "direction": "noise"}, "non-empty list"),
        ({"site": "L1H2", "sites": ["L1H1"], "direction": "noise"}, "exactly one of site"),
        ({"sites": ["L1H2", "L1H2"], "direction": "noise"}, "twice"),
        ({"site": "L1H2", "direction": "noise", "positions": [99]}, "positions"),
        ({"site": "L1H2", "direction": "noise", "metric": "probability"}, "not one of"),
    ],
)
def test_a_bad_claim_is_refused_with_the_reason(params, message):
    with pytest.raises(CheckError, match=message):
        prepare(**params)


def test_every_result_names_estimand_direction_corruption_and_metric():
    notes = " | ".join(prepare(site="L1H2", direction="denoise", path="direct").notes)
    for word in ("estimand: direct effect", "direction: denoise", "sufficiency", "corruption:", "metric: logprob"):
        assert word in notes
    assert prepare(site="L1H2", direction="denoise").estimators == {"normalized": "ratio_of_means"}
