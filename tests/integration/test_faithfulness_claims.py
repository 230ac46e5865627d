"""The bundled faithfulness claims say something about the trained model: on a random-weights model
of the same shape none of them is supported (its model does not reliably beat the empty circuit,
so f is undefined and never judged)."""

from __future__ import annotations

from pathlib import Path

from interp_checks.claims.schema import load_claim_file
from interp_checks.engine import Engine, Settings
from interp_checks.models.native import boot_random, save_native

HYPOTHESES = Path(__file__).resolve().parents[2] / "hypotheses"


def test_no_bundled_faithfulness_claim_is_supported_on_a_random_weights_model(tmp_path):
    from interp_checks.models.cache import ModelCache
    from interp_checks.models.native import architecture_of
    from interp_checks.models.spec import parse_model_spec

    for path in sorted(HYPOTHESES.glob("faithfulness_*.claims.yaml")):
        specs = load_claim_file(path).claims
        trained = ModelCache().get(parse_model_spec(specs[0].model, base_dir=path.parent), "cpu").bridge
        folder = tmp_path / path.stem
        save_native(boot_random(architecture_of(trained), seed=7), folder)
        engine = Engine(Settings(n_resamples=499, bindings={specs[0].model: f"native:{folder}"}))
        results = engine.evaluate(specs)
        assert all(r.outcome != "error" for r in results), [r.error for r in results]
        assert not [r.spec.id for r in results if r.outcome == "supported"], path.name
