"""The zoo: recipe pipeline end to end (micro recipe), committed checkpoints, tokenizer, sampler.

Fast on purpose (CI, 2 cores): the only training here is the micro recipe (1L, d_model 16,
30 steps of 4 x 64 tokens on the first 3 documents of each split), twice, to check determinism.
The committed models' *mechanism* (induction scores) is recorded in their metadata by the trainer;
here we check that what is committed loads, matches its recorded architecture, and still produces
the induction-head split the zoo promises.
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_checks.inputs.corpora import iter_token_batches
from interp_checks.models.native import load_native, load_tokenizer, read_native_config
from interp_checks.zoo import ZOO_NAMES, zoo_dir, zoo_tokenizer_path
from interp_checks.zoo.data import (
    BOS_ID,
    Document,
    EOS_ID,
    PAD_ID,
    BatchSampler,
    Mixture,
    sampleable_ids,
    split_of,
    synthetic_copy_sequences,
)
from interp_checks.zoo.recipes import RECIPES, micro_recipe
from interp_checks.zoo.train import train

TOKENIZER = zoo_tokenizer_path()


@pytest.fixture(scope="module")
def micro_runs(tmp_path_factory):
    """The micro recipe trained twice with the same seed, into two folders."""
    if not TOKENIZER.is_file():
        pytest.skip(f"{TOKENIZER} not built (python -m interp_checks.zoo tokenizer)")
    root = tmp_path_factory.mktemp("zoo")
    recipe = micro_recipe()
    a = train(recipe, root / "a", tokenizer_path=TOKENIZER, log=lambda line: None)
    b = train(recipe, root / "b", tokenizer_path=TOKENIZER, log=lambda line: None, write_card=False)
    return recipe, a, b


def test_micro_recipe_writes_a_loadable_checkpoint(micro_runs):
    recipe, a, _ = micro_runs
    assert {p.name for p in a.folder.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json", "README.md"}
    config = read_native_config(a.folder)
    assert config["architecture"]["n_layers"] == 1 and config["architecture"]["d_model"] == 16
    assert config["tokenizer"] == "tokenizer.json"
    meta = config["meta"]
    assert meta["recipe"]["name"] == "micro" and meta["training"]["steps"] == recipe.curriculum_steps + recipe.mixture_steps
    assert set(meta["evaluation"]["head_scores"]["induction"]) == {f"L0H{h}" for h in range(4)}
    assert "Best induction head" in (a.folder / "README.md").read_text()

    bridge = load_native(a.folder)
    tokens = torch.tensor([[BOS_ID, 10, 11, 12, 10, 11]])
    with torch.no_grad():
        logits = bridge(tokens)
    assert logits.shape == (1, 6, recipe.d_vocab) and torch.isfinite(logits).all()


def test_same_seed_gives_identical_weights(micro_runs):
    from safetensors.torch import load_file

    _, a, b = micro_runs
    wa = load_file(str(a.folder / "model.safetensors"))
    wb = load_file(str(b.folder / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    assert a.meta["evaluation"] == b.meta["evaluation"]


def test_recipes_are_the_zoo():
    assert tuple(RECIPES) == ZOO_NAMES
    attention_only = [name for name in ZOO_NAMES if RECIPES[name].attn_only]
    solu = [name for name in ZOO_NAMES if not RECIPES[name].attn_only]
    assert [RECIPES[n].n_layers for n in attention_only] == [1, 2, 3, 4]
    assert len({r.seed for r in RECIPES.values()}) == len(RECIPES)
    for recipe in RECIPES.values():
        arch = recipe.architecture()
        assert arch["normalization_type"] == "LN"
        # Rotary positions (why: recipes.py). GPT-2 cannot express them, so the export refuses the
        # zoo models; tests/integration/test_formats_e2e.py checks that refusal.
        assert arch["positional_embedding_type"] == "rotary"
    for name in attention_only:
        arch = RECIPES[name].architecture()
        assert arch["attn_only"] and "d_mlp" not in arch
        # Same width everywhere: a 2L-vs-1L comparison isolates depth.
        assert (RECIPES[name].d_model, RECIPES[name].n_heads, RECIPES[name].d_head) == (64, 4, 16)
    # The SoLU models differ only in the MLP's width, so a feature-splitting claim compares widths.
    assert len(solu) == 2
    small, wide = (RECIPES[name] for name in solu)
    assert small.architecture()["act_fn"] == wide.architecture()["act_fn"] == "solu_ln"
    assert {k: v for k, v in small.architecture().items() if k != "d_mlp"} == {k: v for k, v in wide.architecture().items() if k != "d_mlp"}
    assert wide.d_mlp == 4 * small.d_mlp


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_committed_zoo_checkpoint_loads_with_recorded_architecture(name):
    folder = zoo_dir() / name
    if not (folder / "config.json").is_file():
        pytest.skip(f"{folder} not built (python -m interp_checks.zoo train {name})")
    config = json.loads((folder / "config.json").read_text())
    recipe = RECIPES[name]
    for key, value in recipe.architecture().items():
        assert config["architecture"][key] == value, key
    assert config["meta"]["recipe"]["seed"] == recipe.seed
    assert (folder / "tokenizer.json").read_bytes() == TOKENIZER.read_bytes()

    bridge = load_native(folder)
    cfg = bridge.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_vocab, cfg.n_ctx) == (
        recipe.n_layers, recipe.n_heads, recipe.d_model, recipe.d_vocab, recipe.n_ctx)
    # The mechanism the zoo promises, re-measured on the committed weights.
    scores = _induction_scores(bridge, recipe)
    recorded = config["meta"]["evaluation"]["head_scores"]["induction"]
    for head, value in scores.items():
        assert value == pytest.approx(recorded[head], abs=1e-3), head
    if recipe.expect_induction:
        assert max(scores.values()) >= 0.5
    else:
        assert max(scores.values()) < 0.3


def _induction_scores(bridge, recipe) -> dict[str, float]:
    from interp_checks.checks.heads import induction_mask, role_scores
    from interp_checks.inputs.generators import Vocabulary, generate

    vocab = Vocabulary(recipe.d_vocab, recipe.n_ctx, BOS_ID, frozenset({BOS_ID, EOS_ID, PAD_ID}))
    batch = generate({"kind": "repeated_random_tokens", "seq_len": recipe.eval_repeat_seq_len,
                      "n": recipe.eval_repeat_n}, vocab, recipe.eval_seed)
    tokens = torch.as_tensor(batch.tokens)
    names = [f"blocks.{l}.attn.hook_pattern" for l in range(recipe.n_layers)]
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda n: n in names)
    mask = induction_mask(tokens)
    out = {}
    for layer, name in enumerate(names):
        per_head = role_scores(cache[name].float(), mask).nanmean(0)
        for head in range(recipe.n_heads):
            out[f"L{layer}H{head}"] = float(per_head[head])
    return out


def _stdlib_line() -> str:
    source = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip().startswith("def ")]
    return lines[0] + "  # ünïcode ✓"


def test_tokenizer_round_trips_stdlib_text_and_fixes_special_ids():
    if not TOKENIZER.is_file():
        pytest.skip(f"{TOKENIZER} not built")
    tokenizer = load_tokenizer(TOKENIZER)  # the one loader: a transformers fast tokenizer
    raw = tokenizer.backend_tokenizer  # the `tokenizers` object the zoo trains and tokenizes with
    assert len(tokenizer) == raw.get_vocab_size() == RECIPES["attn-only-2l"].d_vocab
    assert [raw.token_to_id(t) for t in ("<|bos|>", "<|eos|>", "<|pad|>")] == [BOS_ID, EOS_ID, PAD_ID]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (BOS_ID, EOS_ID, PAD_ID)
    line = _stdlib_line()
    ids = raw.encode(line, add_special_tokens=False).ids
    assert tokenizer.encode(line, add_special_tokens=False) == ids
    assert raw.decode(ids) == tokenizer.decode(ids, clean_up_tokenization_spaces=False) == line
    assert len(ids) < len(line.encode("utf-8"))  # the merges compress code
    assert not {BOS_ID, EOS_ID, PAD_ID} & set(ids)


def test_token_batches_are_the_same_with_the_loader_and_its_backend():
    if not TOKENIZER.is_file():
        pytest.skip(f"{TOKENIZER} not built")
    tokenizer = load_tokenizer(TOKENIZER)
    documents = [Document("a.txt", _stdlib_line() * 5), Document("b.txt", "x = [1, 2, 3]\nprint(x)\n")]

    def batches(encoder):
        return list(iter_token_batches(documents, encoder, seq_len=16, batch_size=3, bos_id=BOS_ID, pad_id=PAD_ID))

    with_hf, with_raw = batches(tokenizer), batches(tokenizer.backend_tokenizer)
    assert len(with_hf) == len(with_raw) > 1
    for a, b in zip(with_hf, with_raw):
        np.testing.assert_array_equal(a.tokens, b.tokens)
        np.testing.assert_array_equal(a.valid, b.valid)
        assert a.names == b.names


def test_sampler_is_deterministic_and_mixes_as_documented():
    stream = np.arange(5000, dtype=np.int32) % 2000 + 3
    mixture = Mixture(synthetic_fraction=0.75, synthetic_seq_len=32)
    make = lambda seed: BatchSampler(stream, 2048, 64, 8, mixture, seed)  # noqa: E731
    a, b, c = make(0), make(0), make(1)
    for _ in range(3):
        ba, bb, bc = a.sample(), b.sample(), c.sample()
        np.testing.assert_array_equal(ba.synthetic, bb.synthetic)
        np.testing.assert_array_equal(ba.text, bb.text)
        np.testing.assert_array_equal(ba.synthetic_mask, bb.synthetic_mask)
        assert ba.spans == bb.spans
        assert not np.array_equal(ba.synthetic, bc.synthetic) and not np.array_equal(ba.text, bc.text)
    # 3/4 of the 8 x 64 tokens synthetic (in 32-token rows), 1/4 text (in 64-token rows).
    assert ba.synthetic.shape == (12, 32) and ba.text.shape == (2, 64)
    assert ba.synthetic.size == 3 * ba.text.size
    assert (ba.synthetic[:, 0] == BOS_ID).all() and (ba.text[:, 0] == BOS_ID).all()
    for row in ba.text:  # text rows are contiguous windows of the stream
        assert (np.diff(row[1:]) % 2000 == 1).all()
    # Loss counts exactly the copied tokens after each copy's first (target t at index t - 1).
    for row_mask, row_spans in zip(ba.synthetic_mask, ba.spans):
        expected = np.zeros_like(row_mask)
        for s in row_spans:
            expected[s.dst : s.dst + s.length - 1] = True
        np.testing.assert_array_equal(row_mask, expected)


def test_synthetic_copies_are_at_random_offsets():
    rng = np.random.default_rng(0)
    tokens, spans = synthetic_copy_sequences(300, 128, sampleable_ids(2048), Mixture(), rng)
    flat = [s for row in spans for s in row]
    assert len({s.dst - s.src for s in flat}) > 50  # not a fixed-offset copy task
    assert len({s.src for s in flat}) > 30 and len({s.length for s in flat}) > 20
    assert any(len(row) > 1 for row in spans)
    for row, row_spans in zip(tokens, spans):
        for s in row_spans:  # every copy is intact: destinations never overwrite earlier spans
            assert s.dst >= s.src + s.length and s.dst + s.length <= 128
            np.testing.assert_array_equal(row[s.dst : s.dst + s.length], row[s.src : s.src + s.length])
    assert not np.isin(tokens[:, 1:], [BOS_ID, EOS_ID, PAD_ID]).any()


def test_split_is_by_name_and_stable():
    assert split_of("stdlib/ast.py") == split_of("stdlib/ast.py")
    names = [f"stdlib/m{i}.py" for i in range(2000)]
    held = sum(split_of(n) == "heldout" for n in names)
    assert 50 < held < 150  # ~5%
