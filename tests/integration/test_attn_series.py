"""Checkpoint series of the zoo's trainer (issue 14): saving during training, the float16 fixtures.

Fast on purpose: the only training is the micro recipe (1L, d_model 16, 30 steps), once without and
once with saving. The committed series (``fixtures/series/attn-only-*``) are read, never retrained:
``python -m interp_checks.zoo series NAME`` does that, in minutes (their README.md).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interp_checks.models.native import boot_random, load_native, load_tokenizer, read_native_config
from interp_checks.zoo import zoo_tokenizer_path
from interp_checks.zoo.recipes import RECIPES, micro_recipe
from interp_checks.zoo.series_fixtures import (
    export_series,
    main as series_fixtures_main,
    parse_keep,
    random_tokens,
    select,
    series_card,
    uniform_grid,
)
from interp_checks.zoo.series_writer import SeriesFolderError, SeriesWriter, checkpoint_position
from interp_checks.zoo.train import train

TOKENIZER = zoo_tokenizer_path()
SAVE_EVERY = 7  # not a divisor of the micro run's length: the last step and the curriculum's end are saved anyway
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "series"
SERIES_NAMES = ("attn-only-2l", "attn-only-3l", "attn-only-4l")


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    """The micro recipe trained twice from the same seed: plainly, and saving a series."""
    if not TOKENIZER.is_file():
        pytest.skip(f"{TOKENIZER} not built (python -m interp_checks.zoo tokenizer)")
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("series")
    recipe = micro_recipe()
    plain = train(recipe, root / "plain", tokenizer_path=TOKENIZER, log=lambda line: None, write_card=False)
    saved = train(recipe, None, tokenizer_path=TOKENIZER, log=lambda line: None, save_every=SAVE_EVERY,
                  series_dir=root / "series" / recipe.name)
    return recipe, plain, saved


def _record(folder: Path) -> dict:
    return json.loads((folder / "series.json").read_text(encoding="utf-8"))


def test_saving_writes_the_contract_layout(micro):
    recipe, _, saved = micro
    folder = saved.series
    record = _record(folder)
    total = recipe.curriculum_steps + recipe.mixture_steps
    expected = sorted({0, *range(SAVE_EVERY, total + 1, SAVE_EVERY), recipe.curriculum_steps, total})
    assert record["checkpoints"] == [f"step-{step:06d}" for step in expected]
    assert {p.name for p in folder.iterdir()} == {"series.json", "tokenizer.json", *record["checkpoints"]}
    assert (folder / "tokenizer.json").read_bytes() == TOKENIZER.read_bytes()
    assert record["axis"] == "step" and record["complete"] is True and record["tokenizer"] == "tokenizer.json"
    assert record["recipe"] == recipe.as_record() and record["threads"] == 1 and record["torch"] == torch.__version__
    assert record["retrain"].startswith(f"python -m interp_checks.zoo series {recipe.name}")
    assert record["wall_time_s"] >= 0 and record["curve"] == saved.meta["training"]["loss_curve"]
    assert record["phases"] == {"curriculum": [1, recipe.curriculum_steps], "mixture": [recipe.curriculum_steps + 1, total]}
    for name in record["checkpoints"]:
        assert {p.name for p in (folder / name).iterdir()} == {"config.json", "model.safetensors"}
        config = read_native_config(folder / name)
        assert config["tokenizer"] is None and config["meta"]["step"] == checkpoint_position(name)


def test_step_zero_is_the_initialisation(micro):
    recipe, _, saved = micro
    init = boot_random(recipe.architecture(), seed=recipe.seed).state_dict()
    stored = load_file(str(saved.series / "step-000000" / "model.safetensors"))
    assert stored.keys() == init.keys()
    assert all(torch.equal(stored[name], init[name]) for name in init)


def test_saving_does_not_change_training(micro):
    _, plain, saved = micro
    final = load_file(str(plain.folder / "model.safetensors"))
    last = load_file(str(saved.series / _record(saved.series)["checkpoints"][-1] / "model.safetensors"))
    assert final.keys() == last.keys()
    assert all(torch.equal(final[name], last[name]) for name in final)
    assert plain.meta["training"]["loss_curve"] == saved.meta["training"]["loss_curve"]
    assert plain.meta["evaluation"] == saved.meta["evaluation"]


def test_a_series_folder_holds_one_run(micro, tmp_path):
    _, _, saved = micro
    with pytest.raises(SeriesFolderError, match="not empty"):
        SeriesWriter(saved.series, {})
    with pytest.raises(ValueError, match="series_dir and save_every"):
        train(micro_recipe(), None, tokenizer_path=TOKENIZER, log=lambda line: None, save_every=5)


@pytest.fixture(scope="module")
def exported(micro, tmp_path_factory):
    _, _, saved = micro
    dst = tmp_path_factory.mktemp("fixture") / "micro"
    record = export_series(saved.series, dst, parse_keep("0,14:28:14,step-000030"), rule="test rule")
    return saved.series, dst, record


def test_thinning_keeps_what_it_was_told(exported):
    src, dst, record = exported
    kept = ["step-000000", "step-000014", "step-000028", "step-000030"]
    assert record == _record(dst)
    assert record["checkpoints"] == kept and record["thinning"] == {"rule": "test rule", "kept": kept, "source_checkpoints": 7}
    assert {p.name for p in dst.iterdir()} == {"series.json", "tokenizer.json", *kept}
    source = _record(src)
    assert record["curve"] == source["curve"] and record["recipe"] == source["recipe"]  # the full curve, not the kept points
    assert record["dtype"] == "float16" and set(record["float16_check"]["per_checkpoint"]) == set(kept)


def test_the_float16_export_loads_with_the_series_tokenizer_and_matches_its_source(exported):
    src, dst, record = exported
    tokenizer = load_tokenizer(dst / record["tokenizer"])
    for name in record["checkpoints"]:
        stored = load_file(str(dst / name / "model.safetensors"))
        assert {t.dtype for t in stored.values()} == {torch.float16}
        copy, source = load_native(dst / name, tokenizer=tokenizer), load_native(src / name, tokenizer=tokenizer)
        assert {p.dtype for p in copy.parameters()} == {torch.float32}
        assert copy.tokenizer is not None and copy.to_tokens("def f():").shape[-1] > 1
        tokens = random_tokens(read_native_config(src / name)["architecture"], n=2, seq_len=16, seed=1)
        with torch.no_grad():
            a, b = source(tokens), copy(tokens)
        assert not torch.equal(a, b)  # it really is a rounded copy ...
        assert float((a - b).abs().max()) <= 0.01 * float(a.abs().max())  # ... that computes the same model
        assert record["float16_check"]["per_checkpoint"][name]["relative"] <= 0.01


def test_the_card_says_the_rule_the_retrain_command_and_the_float16_check(exported):
    _, dst, record = exported
    card = series_card(dst, record, about="A micro series.")
    assert "A micro series." in card and "test rule" in card and record["retrain"] in card
    assert f"{record['float16_check']['worst']['max_abs_logit_diff']:.2e}" in card
    assert all(f"| {name} |" in card for name in record["checkpoints"])


def test_the_command_line_writes_the_fixture_and_its_card(micro, tmp_path, capsys):
    _, _, saved = micro
    dst = tmp_path / "cli"
    assert series_fixtures_main([str(saved.series), str(dst), "--keep", "0:28:14", "--rule", "every 14th", "--card"]) == 0
    record = _record(dst)
    assert record["checkpoints"] == ["step-000000", "step-000014", "step-000028"]
    assert "--keep 0:28:14" in record["thinning"]["command"] and "every 14th" in (dst / "README.md").read_text()
    assert series_fixtures_main([str(saved.series), str(tmp_path / "bad"), "--keep", "3", "--rule", "r"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_thinning_refuses_what_it_cannot_do(exported, tmp_path):
    src, dst, _ = exported
    with pytest.raises(SeriesFolderError, match="no such checkpoint"):
        select(_record(src)["checkpoints"], [5])
    with pytest.raises(SeriesFolderError, match="--replace"):
        export_series(src, dst, [0, 30], rule="again")
    with pytest.raises(SeriesFolderError, match="--rule"):
        export_series(src, tmp_path / "x", [0], rule=" ")
    assert parse_keep("0:21:7,step-000030") == [0, 7, 14, 21, "step-000030"]


def test_replacing_an_export_keeps_its_readme(exported, tmp_path):
    src, _, _ = exported
    dst = tmp_path / "again"
    export_series(src, dst, [0, 7, 30], rule="first")
    (dst / "README.md").write_text("card")
    record = export_series(src, dst, [0, 30], rule="second", replace=True)
    assert {p.name for p in dst.iterdir()} == {"README.md", "series.json", "tokenizer.json", "step-000000", "step-000030"}
    assert record["thinning"]["rule"] == "second"


def test_an_unfinished_series_is_refused(tmp_path):
    folder = tmp_path / "run"
    writer = SeriesWriter(folder, {"recipe": {}})
    writer.save(boot_random(micro_recipe().architecture(), seed=0), 0, {})
    writer.write(curve=[], complete=False)
    with pytest.raises(SeriesFolderError, match="complete"):
        export_series(folder, tmp_path / "fx", [0], rule="r")
    assert export_series(folder, tmp_path / "fx", [0], rule="r", allow_incomplete=True)["checkpoints"] == ["step-000000"]


def test_uniform_grid():
    assert uniform_grid(850, unit=25, count=14) == list(range(0, 976, 75))
    assert uniform_grid(975, unit=25, count=14) == list(range(0, 976, 75))
    assert uniform_grid(976, unit=25, count=14) == list(range(0, 1301, 100))


# The committed fixtures.

def _committed(name: str) -> Path:
    folder = FIXTURES / name
    if not (folder / "series.json").is_file():
        pytest.skip(f"{folder} not committed")
    return folder


@pytest.mark.parametrize("name", SERIES_NAMES)
def test_committed_series_follows_its_thinning_rule(name):
    """The kept grid is the rule written in series.json, recomputed from the run's own log: 14 evenly
    spaced checkpoints from the initialisation to at least 100 steps past the curriculum's end."""
    folder = _committed(name)
    record = _record(folder)
    curriculum_end = record["phases"]["curriculum"][1]
    grid = uniform_grid(curriculum_end + 100, unit=record["save_every"], count=14)
    assert record["checkpoints"] == [f"step-{step:06d}" for step in grid]
    assert "uniform_grid" in record["thinning"]["rule"]
    assert record["recipe"] == RECIPES[name].as_record() and record["complete"] and record["dtype"] == "float16"
    # The log's phase change (best induction score crossing 0.5) lies inside the kept range.
    crossing = next(point["step"] for point in record["curve"] if point["best_induction_score"] >= 0.5)
    assert grid[0] < crossing <= curriculum_end <= grid[-1]


@pytest.mark.parametrize("name", SERIES_NAMES)
def test_committed_series_loads_in_float16_with_one_tokenizer(name):
    folder = _committed(name)
    record = _record(folder)
    assert (folder / record["tokenizer"]).read_bytes() == TOKENIZER.read_bytes()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 10e6, f"{folder} is {size / 1e6:.1f} MB; the budget is about 9 MB per series"
    tokenizer = load_tokenizer(folder / record["tokenizer"])
    for name_ in (record["checkpoints"][0], record["checkpoints"][-1]):
        assert read_native_config(folder / name_)["tokenizer"] is None
        bridge = load_native(folder / name_, tokenizer=tokenizer)
        with torch.no_grad():
            logits = bridge(bridge.to_tokens("x = 1"))
        assert bridge.cfg.n_layers == RECIPES[name].n_layers and math.isfinite(float(logits.sum()))
