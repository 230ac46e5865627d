"""Series claims end to end on tiny series built here: a modular-addition model that memorises its
train pairs in ~100 steps and does not generalise (p = 23, 400 steps), and a series of untrained
random-weights checkpoints. Each check is shown to support a true claim, to refute or leave
unsupported a false one, and to stay unsupported on the random series; the loader's errors name the fix."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.models.native import boot_random, save_native
from interp_checks.models.series import CheckpointWalker, SeriesError, read_series, thin
from interp_checks.models.spec import ModelSpecError, parse_model_spec
from interp_checks.zoo.modular import ModularRecipe, train_series

ROOT = Path(__file__).resolve().parents[2]
TINY = ModularRecipe("tiny", p=23, d_model=32, n_heads=2, d_head=16, d_mlp=128, steps=400, log_every=50, save_every=50, lr=3e-3, train_fraction=0.5)
TRAIN = {"kind": "modular_pairs", "p": 23, "train_fraction": 0.5, "split": "train"}
TEST = {**TRAIN, "split": "test"}


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> dict[str, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("series")
    train_series(TINY, root, log=lambda line: None)
    random = root / "random"
    for step in range(0, 450, 50):  # the same architecture, never trained: a new random init per checkpoint
        save_native(boot_random(TINY.architecture(), seed=step), random / f"step-{step:06d}")
    (random / "series.json").write_text(json.dumps({"axis": "step"}), encoding="utf-8")
    return {"trained": root / "tiny", "random": random}


def claim(check: str, folder: Path, expect: dict, **params) -> ClaimSpec:
    return ClaimSpec(
        id="c", path=ROOT / "x.claims.yaml", index=0, check=check, model=f"series:{folder}", inputs={},
        expect={k: parse_expectation(v) for k, v in expect.items()}, params=params,
    )


def judged(spec: ClaimSpec):
    [result] = Engine(Settings(n_resamples=499)).evaluate([spec])
    assert result.outcome != "error", result.error
    return result


def estimates(result) -> dict[str, float]:
    return {e.statistic: e.evaluation.estimate for e in result.expectations}


def accuracy_reading(inputs: dict) -> dict:
    return {"check": "loss", "statistic": "accuracy", "inputs": inputs}


def test_memorisation_is_a_phase_change_located_where_the_training_log_puts_it(series):
    result = judged(claim("phase_change", series["trained"], {"jump": ">= 0.5", "midpoint": "between 25 175"}, reading=accuracy_reading(TRAIN), window=100))
    assert result.outcome == "supported", result.expectations
    log = json.loads((series["trained"] / "series.json").read_text())["curve"]
    first = next(p["step"] for p in log if p["train_accuracy"] >= (log[0]["train_accuracy"] + 1.0) / 2)
    assert estimates(result)["midpoint"] <= first  # the log's first checkpoint past halfway comes at or after it
    assert any(f.kind == "line" and f.data.get("markers") for f in result.figures)


def test_a_series_that_never_generalises_refutes_grokking(series):
    result = judged(claim("grokking", series["trained"], {"delay_ratio": ">= 2"}, train=TRAIN, test=TEST))
    assert result.outcome == "refuted"
    by_name = {e.statistic: e for e in result.expectations}
    assert by_name["final_test"].outcome == "refuted" and by_name["final_test"].evaluation.estimate < 0.95
    assert by_name["delay_ratio"].evaluation.estimate > 2  # a long "delay" alone would have passed: final_test is what refutes


def test_random_weights_series_supports_nothing(series):
    claims = [
        claim("grokking", series["random"], {"delay_ratio": ">= 2"}, train=TRAIN, test=TEST),
        claim("phase_change", series["random"], {"jump": ">= 0.5"}, reading=accuracy_reading(TRAIN), window=100),
        claim("double_descent", series["random"], {"rise": ">= 0.5", "second_descent": "> 0"}, reading={"check": "loss", "statistic": "loss", "inputs": TEST}),
        claim("logit_pca", series["random"], {"kink_angle": ">= 60", "other_turns": "<= 60"}, probe={"kind": "modular_pairs", "p": 23, "split": "all", "n": 200}),
    ]
    results = Engine(Settings(n_resamples=499)).evaluate(claims)
    for result in results:
        assert result.outcome != "supported", (result.spec.check, result.error, result.expectations)


def test_double_descent_and_coincide_on_the_trained_series(series):
    loss_down = {"check": "loss", "statistic": "loss", "inputs": TRAIN}
    spec = claim(
        "coincide", series["trained"], {"gap": "<= 100", "lead": "between -100 100"},
        first={"check": "phase_change", "statistic": "midpoint", "reading": accuracy_reading(TRAIN)},
        second={"check": "phase_change", "statistic": "midpoint", "reading": loss_down, "direction": "down"},
    )
    result = judged(spec)
    assert result.outcome == "supported", result.expectations
    far = claim("coincide", series["trained"], {"gap": ">= 300"}, first=spec.params["first"], second=spec.params["second"])
    assert judged(far).outcome == "refuted"
    monotone = judged(claim("double_descent", series["trained"], {"rise": ">= 0.5"}, reading=loss_down))
    assert monotone.outcome != "supported"


def test_logit_pca_locates_its_sharpest_turn_inside_the_series(series):
    result = judged(claim("logit_pca", series["trained"], {"kink_at": "between 0 400", "explained": ">= 0.5"}, probe={"kind": "modular_pairs", "p": 23, "split": "all", "n": 200}))
    assert result.outcome != "error"
    at = estimates(result)["kink_at"]
    assert 50 <= at <= 350 and at % 50 == 0  # an inner checkpoint
    assert any(f.data.get("x_label") == "PC1" for f in result.figures)


def test_thinning_and_the_walker(series):
    run = read_series(series["trained"])
    assert run.positions == list(range(0, 450, 50)) and run.axis == "step"
    assert thin(run, every=3).positions == [0, 150, 300, 400]  # the last checkpoint is always kept
    assert thin(run, steps=[400, 0, 200]).positions == [0, 200, 400]
    with pytest.raises(SeriesError, match="no checkpoint at step 75"):
        thin(run, steps=[0, 75, 400])
    models, firsts = set(), []
    for checkpoint, model in CheckpointWalker(thin(run, every=4), "cpu"):
        models.add(id(model))
        firsts.append(float(next(iter(model.bridge.parameters())).detach().flatten()[0]))
    assert len(models) == 1 and len(set(firsts)) == len(firsts)  # one model in memory, new weights each time


def test_errors_name_the_fix(series, tmp_path):
    with pytest.raises(ModelSpecError, match="series: needs a folder"):
        parse_model_spec(f"series:{tmp_path}/nothing*")
    result = Engine(Settings(n_resamples=99)).evaluate([
        ClaimSpec(id="c", path=ROOT / "x.claims.yaml", index=0, check="grokking", model="zoo:attn-only-1l", inputs={},
                  expect={"delay_ratio": parse_expectation(">= 2")}, params={"train": TRAIN, "test": TEST}),
    ])[0]
    assert result.outcome == "error" and "series:PATH" in result.error
    bad = judged_error(claim("phase_change", series["trained"], {"jump": ">= 0.5"}, reading={"check": "inductoin_head", "statistic": "score"}, window=100))
    assert "reading 'reading'" in bad and "induction_head" in bad
    missing = judged_error(claim("phase_change", series["trained"], {"jump": ">= 0.5"}, reading=accuracy_reading(TRAIN), window=100, steps=[0, 75]))
    assert "no checkpoint at step 75" in missing


def judged_error(spec: ClaimSpec) -> str:
    [result] = Engine(Settings(n_resamples=99)).evaluate([spec])
    assert result.outcome == "error"
    return result.error


def test_fourier_progress_measures_on_hand_made_embeddings():
    from interp_checks.checks.modular import fourier_basis, frequency_norms, gini

    p = 23
    basis = fourier_basis(p)
    assert np.allclose(basis @ basis.T, np.eye(p), atol=1e-10)
    a = np.arange(p)
    one_frequency = np.stack([np.cos(2 * np.pi * 5 * a / p), np.sin(2 * np.pi * 5 * a / p)], axis=1)
    norms = frequency_norms(one_frequency, p)
    assert np.argmax(norms) == 4 and gini(norms) == pytest.approx((norms.size - 1) / norms.size)
    assert gini(np.ones(11)) == pytest.approx(0.0)
    assert gini(frequency_norms(np.random.default_rng(0).normal(size=(p, 16)), p)) < 0.4


def test_the_circuit_reading_joins_a_coincide_claim_as_a_fixed_curve(series):
    gini_rises = {"check": "phase_change", "statistic": "midpoint", "reading": {"check": "modular_progress", "statistic": "weight_norm"}}
    loss_falls = {"check": "phase_change", "statistic": "midpoint", "direction": "down", "reading": {"check": "loss", "statistic": "loss", "inputs": TRAIN}}
    result = judged(claim("coincide", series["trained"], {"lead": "between -400 400"}, first=gini_rises, second=loss_falls))
    assert result.outcome != "error"
    assert "evaluation samples" in result.expectations[0].evaluation.ci_method  # the loss curve is resampled; the weights' is fixed


def test_a_grokking_picture_marks_where_the_test_metric_reaches_the_level_even_when_only_the_delay_is_claimed(series):
    result = judged(claim("grokking", series["trained"], {"delay_ratio": ">= 2"}, train=TRAIN, test=TEST))
    [figure] = [f for f in result.figures if f.kind == "line"]
    assert figure.data["markers"][0]["label"] == "test reaches the level"
