"""Pictures of claims, checked for being right, not just present (issue 11, the data side).

Each figure's numbers are recomputed here from the model itself, independently of the check's code:
a head's heatmap against ``run_with_cache``'s ``hook_pattern`` on the same tokens, its marked cells
against the planted repeat, the comparison's ranked tokens against log-softmax gains from both
models' logits, the strip's interval against the expectation's own. And a picture must never cost a
verdict: a check whose ``figures`` fails keeps its verdict and gets a note.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_checks import engine as engine_module
from interp_checks.checks.heads import ROLE_MASKS, HeadRoleCheck, role_scores
from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.figures import Figure, rounded
from interp_checks.inputs.generators import Vocabulary, generate
from interp_checks.models.load import load_model
from interp_checks.models.native import boot_random, load_tokenizer, save_native
from interp_checks.models.spec import parse_model_spec
from interp_checks.report.schema import claim_record
from tests.helpers.tiny_models import offline_env

ZOO_TOKENIZER = Path(__file__).resolve().parents[2] / "fixtures" / "zoo" / "tokenizer.json"
ARCH = dict(d_model=32, n_layers=2, n_heads=2, d_head=16, n_ctx=128, d_vocab=300, attn_only=True, normalization_type="LN", act_fn="gelu")
SEQ_LEN, N, CHUNK = 30, 12, 8  # 61 positions (more than a heatmap shows), and a first chunk of 8 of the 12 sequences
SETTINGS = dict(n_resamples=199, batch_size=CHUNK, null_draws=2)


@pytest.fixture(scope="module")
def heads_model(tmp_path_factory) -> Path:
    return save_native(boot_random(ARCH, seed=5), tmp_path_factory.mktemp("figures") / "heads")


@pytest.fixture(scope="module")
def compare_models(tmp_path_factory) -> tuple[Path, Path]:
    offline_env()
    root = tmp_path_factory.mktemp("figures-compare")
    tokenizer = load_tokenizer(ZOO_TOKENIZER)
    arch = dict(ARCH, d_vocab=2048)
    return tuple(  # type: ignore[return-value]
        save_native(boot_random(dict(arch, n_layers=layers), seed=seed, tokenizer=tokenizer), root / name, tokenizer_json=ZOO_TOKENIZER)
        for name, layers, seed in (("two", 2, 1), ("one", 1, 2))
    )


def claim(model: Path, check: str = "induction_head", inputs: dict | None = None, **params) -> ClaimSpec:
    expect = params.pop("expect", {"score": ">= 0.5"})
    return ClaimSpec(
        id=f"{check}-claim",
        path=model.parent / "x.claims.yaml",
        index=0,
        check=check,
        model=f"native:{model}",
        inputs=inputs or {"kind": "repeated_random_tokens", "seq_len": SEQ_LEN, "n": N},
        expect={k: parse_expectation(v) for k, v in expect.items()},
        params=params or {"head": "L1H0"},
    )


def first_chunk(model: Path, inputs: dict) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """The engine's first chunk of tokens for ``model`` and TransformerLens's own cache on it."""
    loaded = load_model(parse_model_spec(f"native:{model}"))
    vocab = Vocabulary(loaded.d_vocab, loaded.n_ctx, loaded.bos_token_id, frozenset(loaded.special_token_ids), loaded.tokenizer)
    tokens = generate(inputs, vocab, seed=0).tokens[:CHUNK]
    with torch.inference_mode():
        _, cache = loaded.bridge.run_with_cache(torch.as_tensor(tokens))
    return tokens, cache


def figures_of(result, kind: str) -> list[Figure]:
    return [figure for figure in result.figures if figure.kind == kind]


def positions(labels: list[str]) -> list[int]:
    return [int(label) for label in labels]


def test_head_heatmap_is_transformer_lens_mean_pattern_over_the_first_chunk_with_the_role_marked(heads_model):
    result = Engine(Settings(**SETTINGS)).evaluate([claim(heads_model)])[0]
    assert result.outcome != "error", result.error
    (heatmap,) = figures_of(result, "heatmap")
    data = heatmap.data
    rows, cols = positions(data["row_labels"]), positions(data["col_labels"])
    assert len(rows) <= 40 and len(cols) <= 40 and (len(rows), len(cols)) != (2 * SEQ_LEN + 1,) * 2
    assert "L1H0" in heatmap.title and "induction" in heatmap.title
    assert f"first {CHUNK} sequences" in heatmap.caption and "cropped" in heatmap.caption

    tokens, cache = first_chunk(heads_model, {"kind": "repeated_random_tokens", "seq_len": SEQ_LEN, "n": N})
    theirs = cache["blocks.1.attn.hook_pattern"][:, 0].mean(0).numpy()
    np.testing.assert_allclose(np.array(data["values"]), theirs[np.ix_(rows, cols)], rtol=5e-3, atol=1e-6)

    # marked: the planted induction cells (each token of the repeat -> the token after its first
    # occurrence), computed here from the layout, not from the check's masks
    planted = {(q, q - SEQ_LEN + 1) for q in range(SEQ_LEN, 2 * SEQ_LEN)}
    marked = {(rows[r], cols[c]) for r, c in data["marked"]}
    assert marked == planted  # the whole role fits the crop, and chance repeats are not marked
    majority = ROLE_MASKS["induction_head"](torch.as_tensor(tokens)).float().mean(0) >= 0.5
    assert marked == {(q, k) for q in rows for k in cols if majority[q, k]}


def test_without_a_shared_structure_the_heatmap_is_one_sequence_with_its_own_mask_and_tokens(heads_model):
    inputs = {"kind": "random_tokens", "seq_len": 24, "n": N}
    result = Engine(Settings(**SETTINGS)).evaluate(
        [claim(heads_model, "duplicate_token_head", inputs, head="L0H1", expect={"score": "< 0.9"})]
    )[0]
    (heatmap,) = figures_of(result, "heatmap")
    tokens, cache = first_chunk(heads_model, inputs)
    mask = ROLE_MASKS["duplicate_token_head"](torch.as_tensor(tokens))
    row = next(i for i in range(CHUNK) if mask[i].any())  # the first sequence with a repeated token
    assert f"sequence {row}" in heatmap.caption
    data = heatmap.data
    assert data["row_labels"] == [f"#{t}" for t in tokens[row]]  # no tokenizer: ids as strings
    np.testing.assert_allclose(np.array(data["values"]), cache["blocks.0.attn.hook_pattern"][row, 1].numpy(), rtol=5e-3, atol=1e-6)
    expected = {(q, k) for q in range(tokens.shape[1]) for k in range(q) if tokens[row, q] == tokens[row, k]}
    assert {tuple(cell) for cell in data["marked"]} == expected and expected


def test_exactly_these_heads_pictures_the_best_claimed_and_the_best_other_head(heads_model):
    result = Engine(Settings(**SETTINGS)).evaluate([claim(heads_model, "previous_token_head", heads_with_role=["L0H0", "L1H1"])])[0]
    heatmaps = figures_of(result, "heatmap")
    tokens, cache = first_chunk(heads_model, {"kind": "repeated_random_tokens", "seq_len": SEQ_LEN, "n": N})
    mask = ROLE_MASKS["previous_token_head"](torch.as_tensor(tokens))
    score = {
        f"L{layer}H{head}": float(role_scores(cache[f"blocks.{layer}.attn.hook_pattern"], mask)[:, head].mean())
        for layer in range(2)
        for head in range(2)
    }
    claimed = max(["L0H0", "L1H1"], key=score.get)
    other = max(["L0H1", "L1H0"], key=score.get)
    assert [figure.title.split()[0] for figure in heatmaps] == [claimed, other]
    assert "outside the claim" in heatmaps[1].caption


def test_strip_shows_every_sequence_the_null_draws_the_threshold_and_the_expectations_interval(heads_model):
    result = Engine(Settings(**SETTINGS)).evaluate([claim(heads_model)])[0]
    strip = result.figures[0]
    assert strip.kind == "strip" and strip.source == "engine"
    evaluation = result.deciding_expectation.evaluation
    subject, null = strip.data["groups"]
    assert len(subject["values"]) == evaluation.n == N
    assert sorted(subject["values"]) == sorted(rounded(float(v)) for v in subject["values"])
    assert null["label"] == "random-weights null (2 draws)" and len(null["values"]) == 2 * N
    assert np.mean(null["values"]) == pytest.approx(evaluation.null_estimate, rel=1e-3)
    assert np.mean(subject["values"]) == pytest.approx(evaluation.estimate, rel=1e-3)
    (interval,) = strip.data["intervals"]
    assert interval["group"] == subject["label"]
    assert [interval["low"], interval["estimate"], interval["high"]] == rounded([evaluation.ci[0], evaluation.estimate, evaluation.ci[1]])
    assert strip.data["lines"] == [{"value": 0.5, "label": "threshold: claimed >= 0.5"}]
    assert strip.data["value_label"] == "score (attention probability)"


def test_strip_is_of_the_expectation_that_decided_the_verdict(heads_model):
    result = Engine(Settings(**SETTINGS)).evaluate([claim(heads_model, heads=["L0H0", "L0H1", "L1H0", "L1H1"])])[0]
    assert result.deciding not in (None, 0)  # so a strip of the first expectation would be caught
    deciding = result.deciding_expectation
    strip = result.figures[0]
    assert strip.title.startswith(f"{deciding.statistic}:")
    interval = strip.data["intervals"][0]
    assert [interval["low"], interval["estimate"], interval["high"]] == rounded([deciding.evaluation.ci[0], deciding.evaluation.estimate, deciding.evaluation.ci[1]])


def test_strip_of_a_largest_member_claim_has_one_group_per_head_deciding_first(heads_model):
    result = Engine(Settings(**SETTINGS)).evaluate([claim(heads_model, layer=1, expect={"max_score": "< 0.9"})])[0]
    strip = result.figures[0]
    evaluation = result.deciding_expectation.evaluation
    labels = [group["label"] for group in strip.data["groups"]]
    assert labels[0] == evaluation.deciding_member and sorted(labels[:2]) == ["L1H0", "L1H1"]
    assert labels[2] == "random-weights null (2 draws)"
    assert all(len(group["values"]) == N for group in strip.data["groups"][:2])
    assert strip.data["intervals"][0]["group"] == evaluation.deciding_member
    assert [strip.data["intervals"][0]["low"], strip.data["intervals"][0]["high"]] == rounded(list(evaluation.ci))


def test_comparison_pictures_the_tokens_with_the_largest_and_smallest_gain_in_the_first_chunk(compare_models):
    two, one = compare_models
    inputs = {"kind": "repeated_random_tokens", "seq_len": SEQ_LEN, "n": N}
    spec = ClaimSpec(
        id="gain",
        path=two.parent / "x.claims.yaml",
        index=0,
        check="logprob_gain",
        model=f"native:{two}",
        inputs=inputs,
        expect={"mean_gain": parse_expectation(">= 0")},
        params={"baseline": f"native:{one}", "where": {"region": "repeat"}, "floor": -5},
    )
    result = Engine(Settings(**SETTINGS)).evaluate([spec])[0]
    assert result.outcome != "error", result.error
    strip, tokens_figure = result.figures
    assert [group["label"] for group in strip.data["groups"]] == ["mean_gain (per sequence)"]  # the zero null is not drawn

    floored = []
    for model in (two, one):
        loaded = load_model(parse_model_spec(f"native:{model}"))
        vocab = Vocabulary(loaded.d_vocab, loaded.n_ctx, loaded.bos_token_id, frozenset(loaded.special_token_ids), loaded.tokenizer)
        batch = generate(inputs, vocab, seed=0)  # the same tokens for both: one tokenizer
        chunk = torch.as_tensor(batch.tokens[:CHUNK])
        with torch.inference_mode():
            logp = torch.log_softmax(loaded.bridge(chunk).double(), dim=-1)[:, :-1].gather(-1, chunk[:, 1:, None])[..., 0]
        floored.append(np.maximum(logp.numpy(), -5.0))
    gain = floored[0] - floored[1]  # gain[i, p - 1] is the gain on the token at position p
    tokenizer = load_tokenizer(ZOO_TOKENIZER)
    repeat = batch.regions["repeat"][:CHUNK, 1:]
    rows = tokens_figure.data["rows"]
    assert len(rows) == 8 and f"first {CHUNK} sequences" in tokens_figure.caption
    for row, extreme in ((rows[0], gain[repeat].max()), (rows[4], gain[repeat].min())):
        focus_value = row["values"][row["focus"]]
        assert focus_value == pytest.approx(extreme, abs=1e-3 + 1e-3 * abs(extreme))
        sequence, position = (int(x) for x in row["label"].split("(sequence ")[1].rstrip(")").split(", token "))
        assert gain[sequence, position - 1] == pytest.approx(extreme, abs=1e-4)
        assert row["tokens"][row["focus"]] == tokenizer.decode([int(batch.tokens[sequence, position])])
    assert [r["values"][r["focus"]] for r in rows[:4]] == sorted((r["values"][r["focus"]] for r in rows[:4]), reverse=True)
    ranked = [tuple(int(x) for x in r["label"].split("(sequence ")[1].rstrip(")").split(", token ")) for r in rows]
    assert all(batch.regions["repeat"][i, p] for i, p in ranked)  # only tokens the claim's where: selects
    assert len({r["label"].split("(sequence ")[1].split(",")[0] for r in rows[:4]}) == 4  # one context per sequence


class Exploding:
    def __call__(self, *args, **kwargs):
        raise RuntimeError("the picture broke")


def test_a_failing_figure_leaves_the_verdict_unchanged_and_adds_a_note(heads_model, monkeypatch):
    specs = [claim(heads_model), claim(heads_model, "previous_token_head", head="L0H1")]
    before = [claim_record(r) for r in Engine(Settings(**SETTINGS)).evaluate(specs)]
    monkeypatch.setattr(HeadRoleCheck, "figures", Exploding(), raising=True)
    after_results = Engine(Settings(**SETTINGS)).evaluate(specs)
    after = [claim_record(r) for r in after_results]
    for old, new, result in zip(before, after, after_results):
        assert new["outcome"] == old["outcome"] != "error"
        assert new["expectations"] == old["expectations"] and new["p_value"] == old["p_value"]
        assert [f["kind"] for f in new["figures"]] == ["strip"]  # the engine's own picture stays
        assert any("could not be drawn" in note and "the picture broke" in note for note in result.notes)


def test_figures_a_check_returns_are_rounded_and_bad_ones_become_notes(heads_model, monkeypatch):
    def odd_figures(self, prepared, activations, batches):
        return [Figure("bars", "fine", {"labels": ["a"], "values": [math.pi, float("nan")]}), "not a figure", Figure("bars", "bad", {"labels": [object()], "values": [1.0]})]

    monkeypatch.setattr(HeadRoleCheck, "figures", odd_figures)
    result = Engine(Settings(**SETTINGS)).evaluate([claim(heads_model)])[0]
    assert result.outcome != "error"
    bars = figures_of(result, "bars")
    assert [f.title for f in bars] == ["fine"] and bars[0].data["values"] == [3.142, None]
    assert bars[0].source == "check induction_head"
    notes = [n for n in result.notes if "could not be drawn" in n]
    assert len(notes) == 2 and "not a Figure" in notes[0] and "'bad'" in notes[1]
    json.dumps(claim_record(result), allow_nan=False)


def test_a_failing_strip_is_a_note_and_a_check_without_figures_has_only_the_strip(heads_model, monkeypatch):
    before = claim_record(Engine(Settings(**SETTINGS)).evaluate([claim(heads_model)])[0])
    monkeypatch.setattr(engine_module, "verdict_strip", Exploding())
    monkeypatch.delattr(HeadRoleCheck, "figures")
    result = Engine(Settings(**SETTINGS)).evaluate([claim(heads_model)])[0]
    record = claim_record(result)
    assert record["outcome"] == before["outcome"] and record["expectations"] == before["expectations"]
    assert record["figures"] == []
    assert any("figure 'per-sample values' could not be drawn" in note for note in result.notes)


def test_figures_come_from_the_activations_the_claim_already_asked_for(heads_model, monkeypatch):
    """No forward pass and no hook is added for pictures: the engine captures what ``needs`` says."""
    calls = []
    real = engine_module.capture

    def counting(bridge, tokens, needs):
        calls.append(needs)
        return real(bridge, tokens, needs)

    monkeypatch.setattr(engine_module, "capture", counting)
    result = Engine(Settings(**SETTINGS)).evaluate([claim(heads_model, head="L0H0")])[0]
    assert figures_of(result, "heatmap")
    assert len(calls) == math.ceil(N / CHUNK) * (1 + SETTINGS["null_draws"])
    assert calls[0].hooks == {"blocks.0.attn.hook_pattern"} and not calls[0].logits


def span_gains_per_token(model, baseline, row: int, floor: float) -> dict[int, float]:
    """{model position of a span's last token: the span's gain per model token}, by plain loops over
    the character offsets both tokenizations end a token at (the README's rule, written out again)."""

    def ends(side) -> list[tuple[int, int, float]]:
        batch, logp = side
        return [
            (p, int(batch.offsets[row, p, 1]), float(logp[row, p]))
            for p in range(1, batch.tokens.shape[1])
            if batch.valid[row, p] and batch.offsets[row, p, 1] > batch.offsets[row, p, 0]
        ]

    ours, theirs = ends(model), ends(baseline)
    shared = sorted({end for _, end, _ in ours} & {end for _, end, _ in theirs})
    out = {}
    for start, stop in zip([0] + shared[:-1], shared):
        m = [(p, x) for p, end, x in ours if start < end <= stop]
        b = [x for _, end, x in theirs if start < end <= stop]
        k = len(m)
        gain = max(sum(x for _, x in m), floor * k) - max(sum(b), floor * k)
        out[max(p for p, _ in m)] = gain / k
    return out


def test_with_different_tokenizers_the_ranked_token_ends_the_span_with_the_largest_gain_per_token(tmp_path):
    from tests.helpers.tiny_models import write_tiny_hf_gpt2

    offline_env()
    gpt2 = write_tiny_hf_gpt2(tmp_path / "gpt2", n_positions=128)
    inputs = {"kind": "corpus", "source": "stdlib", "split": "heldout", "n": 6, "chars": 200}
    spec = ClaimSpec(
        id="spans",
        path=tmp_path / "x.claims.yaml",
        index=0,
        check="logprob_gain",
        model="zoo:attn-only-1l",
        inputs=inputs,
        expect={"mean_gain": parse_expectation(">= 0")},
        params={"baseline": f"hf:{gpt2}"},
    )
    result = Engine(Settings(n_resamples=199, batch_size=4)).evaluate([spec])[0]
    assert result.outcome != "error", result.error
    (figure,) = figures_of(result, "tokens")
    assert "span shared by both tokenizations" in figure.caption

    sides = []
    for text in ("zoo:attn-only-1l", f"hf:{gpt2}"):
        loaded = load_model(parse_model_spec(text))
        vocab = Vocabulary(loaded.d_vocab, loaded.n_ctx, loaded.bos_token_id, frozenset(loaded.special_token_ids), loaded.tokenizer)
        batch = generate(inputs, vocab, seed=0).rows(0, 4)
        with torch.inference_mode():
            logits = loaded.bridge(torch.as_tensor(batch.tokens)).double()
        picked = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, torch.as_tensor(batch.tokens)[:, 1:, None])[..., 0]
        sides.append((batch, np.concatenate([np.full((batch.n, 1), np.nan), picked.numpy()], axis=1)))
    per_span = [span_gains_per_token(sides[0], sides[1], row, -5.0) for row in range(4)]
    everything = [(gain, row, p) for row in range(4) for p, gain in per_span[row].items()]
    for row_figure, (gain, row, p) in ((figure.data["rows"][0], max(everything)), (figure.data["rows"][4], min(everything))):
        assert f"(sequence {row}, token {p})" in row_figure["label"]
        assert row_figure["values"][row_figure["focus"]] == pytest.approx(gain, rel=1e-3, abs=1e-3)
        assert row_figure["tokens"][row_figure["focus"]] == sides[0][0].texts[row][slice(*sides[0][0].offsets[row, p])]
