"""The toy model of superposition end to end: a toy checkpoint loads through the normal model specs
and weight reading, a bad toy config is refused with the file and the fix, the ``superposition``
check's statistics equal hand-computed answers on hand-made weights, and a tiny sweep writes a
series folder whose checkpoints reproduce the losses it logged."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from interp_checks.checks.base import MODEL, CheckError, ModelShape, get_check
from interp_checks.checks.superposition import dimensionalities, params_from_meta
from interp_checks.inputs.sparse_features import fresh_points, training_points
from interp_checks.models.load import load_model, load_random_twin
from interp_checks.models.native import CONFIG_FILE
from interp_checks.models.spec import ModelSpecError, parse_model_spec
from interp_checks.models.toy import ToyConfig, random_toy, save_toy
from interp_checks.runner import read_weights
from interp_checks.zoo.superposition import SuperpositionRecipe, card, checkpoint_name, sweep

TOY_SHAPE = ModelShape(0, 0, 0, 0, None)


def polygon(k: int, n_features: int | None = None) -> torch.Tensor:
    """W [2, n] whose first k columns are unit vectors at angles 2 pi j / k (the rest zero)."""
    angles = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    W = torch.zeros(2, n_features or k, dtype=torch.float64)
    W[:, :k] = torch.stack([angles.cos(), angles.sin()])
    return W


def reading(weights: dict[str, torch.Tensor], **params):
    check = get_check("superposition")
    prepared = check.prepare(params, {MODEL: TOY_SHAPE}, {})
    return check.measure(prepared, {MODEL: weights}, {})


# --- loading -----------------------------------------------------------------------------------


def test_a_toy_checkpoint_round_trips_through_native_specs_and_read_weights(tmp_path):
    toy = random_toy(ToyConfig(n_features=12, d_hidden=3), seed=5)
    with torch.no_grad():
        toy.b.copy_(torch.linspace(-1, 1, 12))
    save_toy(toy, tmp_path / "toy", meta={"dataset_size": 7, "data_seed": 2, "recipe": {"sparsity": 0.9}})
    loaded = load_model(parse_model_spec(f"native:{tmp_path / 'toy'}"))
    assert loaded.tokenizer is None and (loaded.n_layers, loaded.n_heads, loaded.d_vocab) == (0, 0, 0)
    weights = read_weights(loaded.bridge, {"W", "b"})
    assert torch.equal(weights["W"], toy.W.detach()) and torch.equal(weights["b"], toy.b.detach())
    x = torch.as_tensor(fresh_points(12, 0.5, 4, seed=0))
    assert torch.allclose(loaded.bridge(x), torch.relu(x @ toy.W.T @ toy.W + toy.b))
    assert params_from_meta(loaded.meta) == {"dataset_size": 7, "data_seed": 2, "sparsity": 0.9}
    twin = load_random_twin(loaded, seed=5)
    assert torch.equal(twin.bridge.W, toy.W) and not torch.equal(load_random_twin(loaded, seed=6).bridge.W, toy.W)


@pytest.mark.parametrize(
    "architecture, says",
    [
        ({"family": "toy_relu", "n_features": 4, "d_hidden": 2}, "the only toy family is 'toy_superposition'"),
        ({"family": "toy_superposition", "n_features": 0, "d_hidden": 2}, "needs positive integers n_features"),
        ({"family": "toy_superposition", "n_features": 4}, "needs positive integers d_hidden"),
        ({"family": "toy_superposition", "n_features": 4, "d_hidden": 2, "d_model": 3}, "keys a toy_superposition toy does not take: d_model"),
        ({"family": "toy_superposition", "n_features": 5, "d_hidden": 2}, "W has shape \\[2, 4\\], the config needs \\[2, 5\\]"),
    ],
)
def test_a_bad_toy_config_names_the_file_and_the_fix(tmp_path, architecture, says):
    folder = save_toy(random_toy(ToyConfig(4, 2)), tmp_path / "toy")
    config = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps(dict(config, architecture=architecture)))
    with pytest.raises(ModelSpecError, match=says) as error:
        load_model(parse_model_spec(f"native:{folder}"))
    assert str(folder / CONFIG_FILE) in str(error.value)
    assert "write {" in str(error.value) or "Fix:" in str(error.value)


# --- the statistics on hand-made weights -------------------------------------------------------


def test_a_pentagon_gives_each_feature_two_fifths_of_a_dimension():
    values = reading({"W": polygon(5), "b": torch.zeros(5)})
    assert values["feature_dimensionality"] == pytest.approx(2 / 5) and values["max_feature_dimensionality"] == pytest.approx(2 / 5)
    assert values["features_stored"] == 5 and values["weight_norm"] == pytest.approx(math.sqrt(5))
    assert np.allclose(dimensionalities(polygon(5).T.numpy()), 2 / 5)


def test_an_antipodal_pair_gives_each_half_and_ignored_features_none():
    W = torch.zeros(2, 6, dtype=torch.float64)
    W[0, 0], W[0, 1] = 2.0, -2.0  # one antipodal pair on the first axis, 4 features left at zero
    assert np.allclose(dimensionalities(W.T.numpy()), [0.5, 0.5, 0, 0, 0, 0])
    values = reading({"W": W, "b": torch.zeros(6)})
    assert values["feature_dimensionality"] == pytest.approx(1 / 6) and values["features_stored"] == 2
    assert values["max_feature_dimensionality"] == pytest.approx(1 / 2)


def test_orthogonal_features_of_unequal_length_each_get_a_whole_dimension():
    W = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.4, 0.0]], dtype=torch.float64)
    values = reading({"W": W, "b": torch.zeros(3)})
    assert values["feature_dimensionality"] == pytest.approx(2 / 3) and values["max_feature_dimensionality"] == pytest.approx(1)
    assert values["features_stored"] == 1  # 0.4 is below the stored-norm bar of 0.5


def test_test_loss_is_each_fresh_points_summed_squared_error():
    n = 8
    weights = {"W": polygon(3, n), "b": torch.full((n,), -0.1, dtype=torch.float64)}
    losses = reading(weights, sparsity=0.5, test_points=32, seed=9)["test_loss"]
    x = torch.as_tensor(fresh_points(n, 0.5, 32, seed=9)).double()
    expected = ((torch.relu(x @ weights["W"].T @ weights["W"] + weights["b"]) - x) ** 2).sum(-1)
    assert losses.shape == (32,) and np.allclose(losses, expected.numpy())
    zero = reading({"W": torch.zeros(2, n), "b": torch.zeros(n)}, sparsity=0.5, test_points=32, seed=9)["test_loss"]
    nonzero = np.linalg.norm(x.numpy(), axis=1) > 0
    assert np.allclose(zero[nonzero], 1.0)  # predicting zero for a unit-norm point costs exactly 1


def test_data_points_stored_as_a_triangle_each_get_two_thirds_of_a_dimension():
    # W maps the 3 training points of (T=3, seed 1) onto the vertices of a triangle: W x_i = v_i
    n, x = 6, training_points(6, 0.5, 3, data_seed=1).astype(np.float64)
    targets = polygon(3).numpy()  # [2, 3]
    W = torch.as_tensor(targets @ np.linalg.pinv(x.T))  # [2, n]: W x_i = v_i (x has rank 3)
    values = reading({"W": W, "b": torch.zeros(n)}, sparsity=0.5, dataset_size=3, data_seed=1)
    assert values["datapoint_dimensionality"].shape == (3,)
    assert np.allclose(values["datapoint_dimensionality"], 2 / 3)


def test_the_check_refuses_what_it_cannot_measure():
    check = get_check("superposition")
    with pytest.raises(CheckError, match="give dataset_size"):
        check.prepare({}, {MODEL: TOY_SHAPE}, {"datapoint_dimensionality": object()})
    with pytest.raises(CheckError, match="give both dataset_size"):
        check.prepare({"data_seed": 1}, {MODEL: TOY_SHAPE}, {})
    with pytest.raises(CheckError, match="not a transformer with 2 layers"):
        check.prepare({}, {MODEL: ModelShape(2, 4, 100, 32)}, {})
    with pytest.raises(CheckError, match="sparsity must be"):
        check.prepare({"sparsity": 1.0}, {MODEL: TOY_SHAPE}, {})
    prepared = check.prepare({}, {MODEL: TOY_SHAPE}, {})
    assert "datapoint_dimensionality" not in prepared.statistics and prepared.sampling == "weights"


def test_the_null_is_a_random_toy_of_the_same_shape():
    check = get_check("superposition")
    prepared = check.prepare({"test_points": 64}, {MODEL: TOY_SHAPE}, {"weight_norm": object()})
    twin = random_toy(ToyConfig(50, 2), seed=0)
    null = check.measure_null(prepared, read_weights(twin, {"W", "b"}), None)
    assert null.shape == (1,) and null[0] == pytest.approx(float(torch.linalg.norm(twin.W.detach())))


# --- the sweep ---------------------------------------------------------------------------------


def test_a_tiny_sweep_writes_a_series_whose_checkpoints_reproduce_its_losses(tmp_path):
    recipe = SuperpositionRecipe(n_features=20, sparsity=0.8, steps=40, lr=1e-2, test_points=64, dataset_sizes=(3, 8), data_seeds=(1,))
    sweep(recipe, tmp_path, log=lambda line: None)
    folder = tmp_path / "tms-dd-s1"
    record = json.loads((folder / "series.json").read_text())
    assert record["axis"] == "dataset size T" and record["complete"] and record["checkpoints"] == ["T-000003", "T-000008"]
    for point in record["curve"]:
        loaded = load_model(parse_model_spec(f"native:{folder / checkpoint_name(point['T'])}"))
        assert json.loads((folder / checkpoint_name(point["T"]) / CONFIG_FILE).read_text())["tokenizer"] is None
        params = dict(params_from_meta(loaded.meta), test_points=64, seed=recipe.test_seed)
        values = reading(read_weights(loaded.bridge, {"W", "b"}), **params)
        assert values["test_loss"].mean() == pytest.approx(point["test_loss"], rel=1e-5)
        x = torch.as_tensor(training_points(20, 0.8, point["T"], 1))
        with torch.no_grad():
            assert float(((loaded.bridge(x) - x) ** 2).sum(-1).mean()) == pytest.approx(point["train_loss"], rel=1e-5)
    x = torch.as_tensor(training_points(20, 0.8, 3, 1))
    with torch.no_grad():
        untrained = float(((random_toy(ToyConfig(20, 2), seed=1)(x) - x) ** 2).sum(-1).mean())
    assert record["curve"][0]["train_loss"] < untrained - 0.1  # it trained, from the init of its data seed
    table = [line for line in card(folder).splitlines() if line.startswith("| 3 |") or line.startswith("| 8 |")]
    assert len(table) == 2 and f"{record['curve'][1]['test_loss']:.4f} [" in table[1]
