"""The numpy helpers behind every figure: subsampling, cropping, ranking, the verdict strip, validation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from interp_checks.figure_data import (
    MAX_STRIP_GROUPS,
    Window,
    crop_around,
    extreme_positions,
    subsample,
    validated,
    verdict_strip,
)
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import InputBatch
from interp_checks.stats import Comparison, evaluate, evaluate_largest_mean


def test_subsample_keeps_small_groups_whole_and_caps_large_ones_reproducibly_in_order():
    small = np.arange(10.0)
    np.testing.assert_array_equal(subsample(small, cap=10), small)
    large = np.arange(1000.0)
    picked = subsample(large, cap=400)
    assert picked.size == 400 and np.all(np.diff(picked) > 0) and set(picked) <= set(large)
    np.testing.assert_array_equal(picked, subsample(large, cap=400))
    assert picked.max() > 900 and picked.min() < 100  # the whole range, not the first 400


def induction_cells(period: int, pos: int) -> np.ndarray:
    """The planted induction cells of a repeated sequence: query q looks at key q - period + 1."""
    marked = np.zeros((pos, pos), dtype=bool)
    for q in range(period, pos):
        marked[q, q - period + 1] = True
    return marked


def test_crop_keeps_a_small_matrix_whole():
    window = crop_around(induction_cells(8, 17), size=40)
    assert window == Window(0, 17, 0, 17) and not window.crops((17, 17)) and crop_around(induction_cells(32, 65), 40).crops((65, 65))


def test_crop_shows_every_induction_cell_of_a_long_repeated_sequence_with_separate_row_and_key_windows():
    marked = induction_cells(32, 65)  # BOS-less: 32 tokens twice and one more
    window = crop_around(marked, size=40)
    assert window.row_stop - window.row_start == 40 and window.col_stop - window.col_start == 40
    assert window.take(marked).sum() == marked.sum() == 33
    assert window.row_start < 32  # rows from before the repeat too: the contrast with the role's rows


def test_crop_keeps_a_diagonal_role_on_a_square_window():
    marked = np.eye(65, k=-1, dtype=bool)  # previous token
    window = crop_around(marked, size=40)
    assert window.row_start == window.col_start and window.take(marked).sum() == 39


def test_crop_with_nothing_marked_shows_the_start():
    assert crop_around(np.zeros((65, 65), dtype=bool), size=40) == Window(0, 40, 0, 40)


def test_extreme_positions_rank_eligible_values_one_per_row():
    values = np.array([[1.0, 9.0, 8.0], [5.0, np.nan, 7.0], [0.0, -3.0, 2.0], [100.0, 4.0, 6.0]])
    eligible = np.array([[True, True, True], [True, True, True], [True, True, True], [False, True, True]])
    assert extreme_positions(values, eligible, 2, largest=True) == [(0, 1), (1, 2)]
    assert extreme_positions(values, eligible, 10, largest=False) == [(2, 1), (0, 0), (3, 1), (1, 0)]
    assert extreme_positions(values, np.zeros_like(eligible), 3, largest=True) == []


def test_verdict_strip_draws_the_values_the_null_the_threshold_and_the_interval():
    rng = np.random.default_rng(0)
    values, null = rng.normal(0.6, 0.1, 50), rng.normal(0.1, 0.05, (50, 3))
    evaluation = evaluate(values, Comparison(">=", 0.5), null_samples=null, n_resamples=199)
    strip = verdict_strip("score", values, evaluation, null=null, null_kind="random heads", unit="attention probability")
    subject, null_group = strip.data["groups"]
    assert subject["values"] == rounded(list(values)) and len(null_group["values"]) == 150
    assert null_group["label"] == "random-weights null (3 draws)"
    (interval,) = strip.data["intervals"]
    assert (interval["group"], interval["low"], interval["high"]) == (subject["label"], *rounded(list(evaluation.ci)))
    assert strip.data["lines"] == [{"value": 0.5, "label": "threshold: claimed >= 0.5"}]
    assert strip.data["value_label"] == "score (attention probability)" and "random heads" in strip.caption
    json.dumps(strip.to_dict(), allow_nan=False)


def test_verdict_strip_without_a_model_null_draws_no_null_group_and_marks_both_bounds_of_between():
    values = np.linspace(-1, 1, 30)
    evaluation = evaluate(values, Comparison("between", -0.5, 0.5), n_resamples=199)
    strip = verdict_strip("mean_gain", values, evaluation, unit_of_sampling="document")
    assert [g["label"] for g in strip.data["groups"]] == ["mean_gain (per document)"]
    assert [line["value"] for line in strip.data["lines"]] == [-0.5, 0.5]
    assert "document" in strip.title and "null" not in strip.caption


def test_verdict_strip_of_members_puts_the_deciding_member_first_and_caps_groups_and_points():
    rng = np.random.default_rng(1)
    members = [f"L0H{h}" for h in range(20)]
    values = rng.normal(np.linspace(0, 0.2, 20), 0.05, (500, 20))
    evaluation = evaluate_largest_mean(values, Comparison("<", 0.5), members, n_resamples=99)
    strip = verdict_strip("max_score", values, evaluation, members=members)
    labels = [g["label"] for g in strip.data["groups"]]
    assert labels[0] == evaluation.deciding_member == "L0H19" and len(labels) == MAX_STRIP_GROUPS
    assert all(len(g["values"]) == 400 for g in strip.data["groups"])
    assert "subsample of 400" in strip.caption and f"{MAX_STRIP_GROUPS} of 20 members" in strip.caption
    assert strip.data["intervals"][0]["group"] == "L0H19"


def test_validated_rounds_good_figures_and_names_bad_ones():
    good = Figure("line", "curve", {"series": [{"label": "a", "x": [1, 2], "y": [math.e, float("inf")]}]})
    kept, notes = validated([good, 3, Figure("bars", "odd", {"labels": [{1, 2}], "values": [1.0]})], "check x")
    assert [f.title for f in kept] == ["curve"] and kept[0].data["series"][0]["y"] == [2.718, None]
    assert kept[0].source == "check x"
    assert len(notes) == 2 and "figure 2 of check x" in notes[0] and "'odd'" in notes[1]
    assert validated(None, "check x") == ([], ["figures of check x could not be drawn: figures() returned NoneType, not a list of Figure"])


class OneByOne:
    """A tokenizer stub that decodes a list of ids as the text of their sum."""

    def decode(self, ids):
        return f"<{sum(ids)}>"


def test_token_strings_come_from_the_text_then_the_tokenizer_then_the_ids():
    tokens = np.array([[0, 5, 6]])
    text = InputBatch(tokens, "k", {}, 0, texts=["ab cd"], offsets=np.array([[[0, 0], [0, 2], [2, 5]]]), tokenizer=OneByOne())
    assert text.token_strings(0) == ["<0>", "ab", " cd"] and text.token_strings(0, 1, 2) == ["ab"]
    assert InputBatch(tokens, "k", {}, 0, tokenizer=OneByOne()).token_strings(0) == ["<0>", "<5>", "<6>"]
    assert InputBatch(tokens, "k", {}, 0).token_strings(0) == ["#0", "#5", "#6"]
    assert InputBatch(tokens, "k", {}, 0, tokenizer=OneByOne()).rows(0, 1).tokenizer is not None

