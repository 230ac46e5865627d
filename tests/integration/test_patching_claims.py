"""The bundled patching claims (hypotheses/patching_attn_only_*.claims.yaml) on a random-weights
model of the same shape: none may be supported (the verdicts of the real model are checked, on four
input seeds, by test_bundled_suite)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from interp_checks.claims.schema import load_claim_file
from interp_checks.engine import Engine, Settings
from interp_checks.models.cache import ModelCache
from interp_checks.models.load import load_random_twin
from interp_checks.models.native import save_native
from interp_checks.models.spec import parse_model_spec

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "hypotheses").glob("patching_*.claims.yaml"))
TOKENIZER = ROOT / "fixtures" / "zoo" / "tokenizer.json"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_bundled_patching_claim_is_supported_on_a_random_weights_model(path, tmp_path):
    specs = load_claim_file(path).claims
    assert specs, f"{path.name} has no claims"
    models = ModelCache()
    loaded = models.get(parse_model_spec(specs[0].model, base_dir=path.parent), "cpu")
    twin = load_random_twin(loaded, seed=123)
    folder = save_native(twin.bridge, tmp_path / "random", tokenizer_json=TOKENIZER)
    random_specs = [dataclasses.replace(spec, model=f"native:{folder}") for spec in specs]
    results = Engine(Settings(n_resamples=999, null_draws=1)).evaluate(random_specs)
    assert all(r.outcome != "error" for r in results), [r.error for r in results if r.outcome == "error"]
    supported = [r.spec.id for r in results if r.outcome == "supported"]
    assert not supported, supported
