"""The modular-addition series recipe (issue 14 groundwork): a tiny run trains, logs its curve and
writes checkpoints that load back as the model that was evaluated."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from interp_checks.models.native import load_native
from interp_checks.inputs.modular import all_pairs, answers
from interp_checks.zoo.modular import ModularRecipe, modular_recipes, split_of, train_series


def test_the_split_is_seeded_disjoint_and_covers_every_pair():
    recipe = ModularRecipe("t", p=13, train_fraction=0.4, split_seed=3)
    train, test = split_of(recipe)
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == 13 * 13
    assert train.size == round(0.4 * 169)
    assert np.array_equal(split_of(recipe)[0], train)
    assert not np.array_equal(split_of(replace(recipe, split_seed=4))[0], train)


def test_the_recipes_are_the_grokking_runs_and_their_controls():
    recipes = modular_recipes()
    grokking = [r for r in recipes.values() if r.weight_decay == 1.0 and r.train_fraction == 0.4]
    assert len({r.seed for r in grokking}) == 3
    assert any(r.weight_decay == 0.0 for r in recipes.values()) and any(r.train_fraction == 0.6 for r in recipes.values())


def test_a_tiny_run_learns_logs_and_saves_checkpoints_that_reload(tmp_path):
    recipe = ModularRecipe("tiny", p=13, d_model=32, n_heads=2, d_head=16, d_mlp=64, steps=60, log_every=20, save_every=30, lr=1e-2)
    record = train_series(recipe, tmp_path, log=lambda line: None)
    folder = tmp_path / "tiny"
    saved = json.loads((folder / "series.json").read_text())
    assert saved["checkpoints"] == ["step-000000", "step-000030", "step-000060"]
    steps = [point["step"] for point in record["curve"]]
    assert steps == [0, 20, 40, 60]
    assert record["curve"][-1]["train_loss"] < record["curve"][0]["train_loss"]
    bridge = load_native(folder / "step-000060")
    inputs = torch.as_tensor(all_pairs(13)[split_of(recipe)[0]])
    with torch.no_grad():
        logits = bridge(inputs)[:, -1, :13].float()
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(answers(inputs.numpy(), 13)))
    assert float(loss) == pytest.approx(record["curve"][-1]["train_loss"], rel=1e-4, abs=1e-5)
