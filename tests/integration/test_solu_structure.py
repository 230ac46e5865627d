"""ln_smuggling, neuron_family and feature_splitting on tiny models with planted structure: each
statistic equals a direct computation from the model's own hooks on the same rows; a true claim is
supported, a false one refuted, and a random-weights model of the same shape does not support it.

The planted models (one layer, attention silenced, so a token's MLP input is its own embedding):

* smuggling (SoLU, 8 neurons): on class-A tokens neuron 0 alone is active but small before the
  layer norm (x = 0.3 against -6 for every other neuron), so the norm makes it as large as a neuron
  can be; on class-B tokens neurons 0 and 1 share a large activation. Neuron 0's top post-LN
  tokens are A tokens, far below its pre-LN firing threshold (set by B): smuggled. Neuron 2 is
  large only on class-D tokens, large before the norm too: not smuggled.
* family (SoLU, 8 neurons): neurons 3 and 5 have identical input weights and neuron 6 a noisy copy.
* splitting (GELU): a small model (8 neurons) and a larger one (16) with the same embedding and
  attention, whose neurons 3 and 7 are neuron 1's input weights plus a little noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from interp_checks.checks.base import CheckError
from interp_checks.checks.solu_structure import restate_count
from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.models.cache import ModelCache
from interp_checks.models.native import boot_random, save_native
from interp_checks.models.spec import parse_model_spec
from interp_checks.inputs.streams import corpus_rows
from tests.helpers.tiny_models import stdlib_corpus

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "fixtures" / "zoo" / "tokenizer.json"
D_VOCAB = 2048
BASE = dict(d_model=16, n_layers=1, n_heads=2, d_head=8, n_ctx=64, d_vocab=D_VOCAB, normalization_type="LN", positional_embedding_type="standard")
SOLU = dict(BASE, d_mlp=128, act_fn="solu_ln")
INPUTS = {"kind": "corpus_stream", "source": "corpus", "split": "all", "max_tokens": 6000, "seq_len": 64, "null_tokens": 2048}
SETTINGS = dict(n_resamples=999, batch_size=32, null_draws=2)
CLASS_A, CLASS_B, CLASS_D = 0, 1, 2  # token id % 10: planted classes (about a tenth of the tokens each)


# -- building the planted models ---------------------------------------------------------------------


def silenced_attention(state: dict) -> None:
    """No attention output and no positions: a token's residual stream is its embedding."""
    state["blocks.0.attn.o.weight"].zero_()
    state["blocks.0.attn.o.bias"].zero_()
    state["pos_embed.weight"].zero_()


def class_embedding(seed: int) -> torch.Tensor:
    """Class A, B, D tokens: 3 e_0, 3 e_1, 3 e_2; every other token: a random vector in dims 3..15."""
    generator = torch.Generator().manual_seed(seed)
    embed = torch.zeros(D_VOCAB, BASE["d_model"])
    embed[:, 3:] = torch.randn(D_VOCAB, BASE["d_model"] - 3, generator=generator)
    for klass in (CLASS_A, CLASS_B, CLASS_D):
        rows = torch.arange(D_VOCAB) % 10 == klass
        embed[rows] = 0.0
        embed[rows, klass] = 3.0
    return embed


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), eps=1e-5)


def planted_inputs(embed: torch.Tensor, targets: dict[int, tuple[float, float, float]], d_mlp: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_in [d_mlp, d_model], b_in) giving each neuron its target pre-activation on class A, B and D
    tokens (default -6 on each), and about N(0, 1) on every other token."""
    generator = torch.Generator().manual_seed(seed)
    normed = layer_norm(embed[[CLASS_A, CLASS_B, CLASS_D]].double())  # [3 classes, d_model]; ids 0, 1, 2 are those classes
    w_in = torch.zeros(d_mlp, BASE["d_model"], dtype=torch.float64)
    w_in[:, 3:] = torch.randn(d_mlp, BASE["d_model"] - 3, generator=generator, dtype=torch.float64) / 4.0
    for neuron in range(d_mlp):
        want = torch.tensor(targets.get(neuron, (-6.0, -6.0, -6.0)), dtype=torch.float64)
        rest = normed[:, 3:] @ w_in[neuron, 3:]
        w_in[neuron, :3] = torch.linalg.solve(normed[:, :3], want - rest)
    return w_in.float(), torch.zeros(d_mlp)


def write_model(folder: Path, architecture: dict, seed: int, edit=None) -> str:
    bridge = boot_random(architecture, seed=seed)
    if edit is not None:
        state = {name: tensor.detach().clone() for name, tensor in bridge.state_dict().items()}
        edit(state)
        bridge.load_state_dict(state, strict=True)
    save_native(bridge, folder, tokenizer_json=TOKENIZER)
    return f"native:{folder}"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """Every model of this module, by name, and the corpus folder under "corpus"."""
    root = tmp_path_factory.mktemp("solu_structure")
    corpus = root / "corpus"
    corpus.mkdir()
    lines = stdlib_corpus(600)
    for i in range(24):
        (corpus / f"doc{i:02d}.txt").write_text("\n".join(lines[25 * i : 25 * i + 25]) + "\n", encoding="utf-8")

    def smuggling(state: dict) -> None:
        silenced_attention(state)
        embed = class_embedding(seed=1)
        state["embed.weight"].copy_(embed)
        w_in, b_in = planted_inputs(embed, {0: (0.3, 6.0, -6.0), 1: (-6.0, 6.0, -6.0), 2: (-6.0, -6.0, 6.0)}, SOLU["d_mlp"], seed=2)
        state["blocks.0.mlp.in.weight"].copy_(w_in)
        state["blocks.0.mlp.in.bias"].copy_(b_in)

    def family(state: dict) -> None:
        w, b = state["blocks.0.mlp.in.weight"], state["blocks.0.mlp.in.bias"]
        w[5], b[5] = w[3], b[3]
        w[6] = w[3] + 0.01 * torch.randn(w.shape[1], generator=torch.Generator().manual_seed(4))
        b[6] = b[3]

    gelu = dict(BASE, d_mlp=8, act_fn="gelu")
    small_state = {k: v.detach().clone() for k, v in boot_random(gelu, seed=5).state_dict().items()}

    def larger(state: dict) -> None:
        for name, tensor in small_state.items():
            if not name.startswith("blocks.0.mlp."):
                state[name].copy_(tensor)
        generator = torch.Generator().manual_seed(6)
        for neuron in (3, 7):
            noise = 0.05 * torch.randn(BASE["d_model"], generator=generator)
            state["blocks.0.mlp.in.weight"][neuron] = small_state["blocks.0.mlp.in.weight"][1] + noise
            state["blocks.0.mlp.in.bias"][neuron] = small_state["blocks.0.mlp.in.bias"][1]

    return {
        "corpus": str(corpus),
        "smuggling": write_model(root / "smuggling", SOLU, 0, smuggling),
        "family": write_model(root / "family", SOLU, 3, family),
        "solu_random": write_model(root / "solu_random", SOLU, 11),
        "small": write_model(root / "small", gelu, 5),
        "larger": write_model(root / "larger", dict(gelu, d_mlp=16), 7, larger),
        "small_random": write_model(root / "small_random", gelu, 12),
        "larger_random": write_model(root / "larger_random", dict(gelu, d_mlp=16), 13),
    }


# -- running claims, and the direct computation ------------------------------------------------------


def claim(models: dict, check: str, model: str, expect: dict, **params) -> ClaimSpec:
    return ClaimSpec(
        id=f"{check}-{model}-{len(params)}", path=ROOT / "x.claims.yaml", index=0, check=check, model=models[model],
        inputs=dict(INPUTS, source=models["corpus"]), expect={k: parse_expectation(v) for k, v in expect.items()}, params=params,
    )


def judged(*specs: ClaimSpec) -> list:
    results = Engine(Settings(**SETTINGS)).evaluate(list(specs))
    for result in results:
        assert result.outcome != "error", result.error
    return results


def estimates(result) -> dict[str, float]:
    return {e.statistic: e.evaluation.estimate for e in result.expectations}


def hooks_on_the_stream(spec: str, corpus: str, names: list[str], twin_seed: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each hook's [tokens, neurons] values on the claim's rows (BOS and padding left out), read with
    ``run_with_cache`` from the model (or its random-weights twin of ``twin_seed``, as the engine
    builds them for the nulls), and each token's document index."""
    cache = ModelCache()
    loaded = cache.get(parse_model_spec(spec), "cpu")
    runner = loaded if twin_seed is None else cache.random_twin(parse_model_spec(spec), "cpu", twin_seed)
    values: dict[str, list[np.ndarray]] = {name: [] for name in names}
    documents: list[np.ndarray] = []
    index: dict[str, int] = {}
    for rows, batch in corpus_rows(corpus, loaded, seq_len=INPUTS["seq_len"], batch_size=32, max_tokens=INPUTS["max_tokens"], split="all"):
        scored = rows.valid.copy()
        scored[:, 0] = False
        with torch.inference_mode():
            _, hooks = runner.bridge.run_with_cache(torch.as_tensor(rows.tokens))
        for name in names:
            values[name].append(hooks[name].float().numpy()[scored])
        ids = np.array([index.setdefault(n, len(index)) for n in batch.sources])
        documents.append(np.broadcast_to(ids[:, None], scored.shape)[scored])
    return {name: np.concatenate(v) for name, v in values.items()}, np.concatenate(documents)


PRE, POST = "blocks.0.mlp.ln.hook_in", "blocks.0.mlp.hook_post"
TWIN_SEEDS = tuple(range(SETTINGS["null_draws"]))  # the engine's random twins: null_seed 0, 1, ...
FIRST = INPUTS["null_tokens"]  # the nulls are measured on the stream's first tokens


def named_nulls(evaluation) -> dict[str, float]:
    """The nulls an evaluation's note lists ("nulls: name = value; ..."), values as printed (4 digits)."""
    out: dict[str, float] = {}
    for item in evaluation.note.split("nulls: ", 1)[1].split("; "):
        name, _, value = item.rpartition(" = ")
        try:
            out[name] = float(value)
        except ValueError:  # the next note
            break
    return out


# -- ln_smuggling ------------------------------------------------------------------------------------


def direct_shares(pre: np.ndarray, post: np.ndarray, top_pct: float) -> tuple[float, float]:
    """(smuggled, displaced): of the top post-LN tokens, the share below half the pre-LN maximum
    (none without a positive maximum), and the share below the pre-LN top-``top_pct``% cut."""
    top = post >= np.quantile(post, 1 - top_pct / 100)
    smuggled = float(np.mean(pre[top] < 0.5 * pre.max())) if pre.max() > 0 else np.nan
    return smuggled, float(np.mean(pre[top] < np.quantile(pre, 1 - top_pct / 100)))


SMUGGLED = {"smuggled_share": ">= 0.5", "displaced_share": ">= 0.5"}
HONEST = {"smuggled_share": "<= 0.05", "displaced_share": "<= 0.05"}


def test_ln_smuggling_finds_the_planted_smuggled_neuron_and_not_the_honest_one(models):
    smuggled, honest_false, honest_true = judged(
        claim(models, "ln_smuggling", "smuggling", {**SMUGGLED, "rank_agreement": "> -1"}, neuron="L0N0", top_pct=2),
        claim(models, "ln_smuggling", "smuggling", SMUGGLED, neuron="L0N2", top_pct=2),
        claim(models, "ln_smuggling", "smuggling", HONEST, neuron="L0N2", top_pct=2),
    )
    hooks, documents = hooks_on_the_stream(models["smuggling"], models["corpus"], [PRE, POST])
    pre, post = hooks[PRE], hooks[POST]
    assert min(direct_shares(pre[:, 0], post[:, 0], 2)) > 0.9 and max(direct_shares(pre[:, 2], post[:, 2], 2)) == 0.0  # the plant
    share, displaced = direct_shares(pre[:, 0], post[:, 0], 2)
    assert estimates(smuggled) == pytest.approx(
        {"smuggled_share": share, "displaced_share": displaced, "rank_agreement": stats.spearmanr(pre[:, 0], post[:, 0]).statistic}, abs=1e-9
    )
    assert smuggled.n == len(set(documents.tolist()))
    assert smuggled.outcome == "supported"
    assert honest_false.outcome == "refuted"
    assert honest_true.outcome == "supported"
    assert {f.kind for f in smuggled.figures} == {"strip"}


def test_ln_smuggling_s_planted_claims_are_not_supported_on_a_random_weights_model(models):
    displaced, honest = judged(
        claim(models, "ln_smuggling", "solu_random", {"displaced_share": ">= 0.5"}, neuron="L0N0", top_pct=2),
        claim(models, "ln_smuggling", "solu_random", HONEST, neuron="L0N2", top_pct=2),
    )
    assert displaced.outcome != "supported"
    assert honest.outcome != "supported"
    hooks, _ = hooks_on_the_stream(models["solu_random"], models["corpus"], [PRE, POST])
    share, displaced_share = direct_shares(hooks[PRE][:, 2], hooks[POST][:, 2], 2)  # a neuron with a spread of values
    assert estimates(honest) == pytest.approx({"smuggled_share": share, "displaced_share": displaced_share}, abs=1e-12)


def test_ln_smuggling_s_nulls_are_the_best_random_neuron_and_this_model_s_median(models):
    [result] = judged(claim(models, "ln_smuggling", "smuggling", {"smuggled_share": ">= 0.5"}, neuron="L0N0", top_pct=2))

    def shares(hooks: dict) -> np.ndarray:
        return np.array([direct_shares(hooks[PRE][:FIRST, j], hooks[POST][:FIRST, j], 2)[0] for j in range(SOLU["d_mlp"])])

    own = shares(hooks_on_the_stream(models["smuggling"], models["corpus"], [PRE, POST])[0])
    best = np.mean([np.nanmax(shares(hooks_on_the_stream(models["smuggling"], models["corpus"], [PRE, POST], seed)[0])) for seed in TWIN_SEEDS])
    nulls = named_nulls(result.expectations[0].evaluation)
    assert nulls == pytest.approx({
        "best of all 128 neurons of a random-weights model (mean of 2)": best, "median of this model's 128 neurons": np.nanmedian(own),
    }, rel=1e-3)


def test_ln_smuggling_refuses_a_model_without_solu(models):
    results = Engine(Settings(**SETTINGS)).evaluate([claim(models, "ln_smuggling", "small", {"smuggled_share": ">= 0.5"}, neuron="L0N0")])
    assert results[0].outcome == "error" and "solu_ln" in results[0].error


# -- neuron_family -----------------------------------------------------------------------------------


def direct_family(acts: np.ndarray, members: list[int]) -> tuple[float, float]:
    r = np.corrcoef(acts, rowvar=False)
    within = np.mean([r[a, b] for i, a in enumerate(members) for b in members[i + 1 :]])
    outside = [j for j in range(acts.shape[1]) if j not in members]
    return float(within), float(within - np.mean(r[np.ix_(members, outside)]))


def test_neuron_family_finds_the_planted_family(models):
    family, unrelated = judged(
        claim(models, "neuron_family", "family", {"mean_correlation": ">= 0.9", "separation": ">= 0.5"}, neurons=["L0N3", "L0N5", "L0N6"]),
        claim(models, "neuron_family", "family", {"mean_correlation": ">= 0.9"}, neurons=["L0N0", "L0N1", "L0N3"]),
    )
    hooks, _ = hooks_on_the_stream(models["family"], models["corpus"], [PRE])
    mean, separation = direct_family(hooks[PRE], [3, 5, 6])
    measured = estimates(family)
    assert measured["mean_correlation"] == pytest.approx(mean, abs=1e-9)
    assert measured["separation"] == pytest.approx(separation, abs=1e-9)
    assert estimates(unrelated)["mean_correlation"] == pytest.approx(direct_family(hooks[PRE], [0, 1, 3])[0], abs=1e-9)
    assert family.outcome == "supported"
    assert unrelated.outcome == "refuted"
    assert {f.kind for f in family.figures} == {"heatmap"}
    nulls = named_nulls(family.expectations[0].evaluation)
    twins = [direct_family(hooks_on_the_stream(models["family"], models["corpus"], [PRE], seed)[0][PRE][:FIRST], [3, 5, 6])[0] for seed in TWIN_SEEDS]
    assert nulls["the listed neurons in a random-weights model (mean of 2)"] == pytest.approx(np.mean(twins), rel=1e-3)
    assert abs(nulls["3 random neurons of this model (mean of 8 sets)"]) < 0.5


def test_neuron_family_is_not_supported_on_a_random_weights_model(models):
    [result] = judged(claim(models, "neuron_family", "solu_random", {"mean_correlation": ">= 0.9"}, neurons=["L0N3", "L0N5", "L0N6"]))
    assert result.outcome != "supported"


# -- feature_splitting -------------------------------------------------------------------------------


GELU_POST = "blocks.0.mlp.hook_post"


@pytest.mark.parametrize("text, expected", [
    (">= 2", [(2, ">=")]), ("> 2", [(3, ">=")]), ("> 1.5", [(2, ">=")]), (">= 1.5", [(2, ">=")]),
    ("<= 2", [(3, "<")]), ("< 2", [(2, "<")]), ("< 2.5", [(3, "<")]),
    ("between 1 3", [(1, ">="), (4, "<")]), ("between 0 3", [(4, "<")]), ("between 2 16", [(2, ">=")]),
])
def test_a_count_claim_is_restated_about_order_statistics(text, expected):
    restated = restate_count(parse_expectation(text), 0.5, 16)
    assert [(rank, comparison.op) for rank, comparison in restated] == expected
    assert all(comparison.threshold == 0.5 for _, comparison in restated)


@pytest.mark.parametrize("text", [">= 17", "< 0", "<= 16", ">= 0", "between 2.2 2.8"])
def test_a_count_claim_that_cannot_fail_or_cannot_hold_is_refused(text):
    with pytest.raises(CheckError):
        restate_count(parse_expectation(text), 0.5, 16)


def test_feature_splitting_counts_the_two_planted_copies(models):
    two, three, best = judged(
        claim(models, "feature_splitting", "small", {"matches": ">= 2"}, neuron="L0N1", larger=models["larger"], min_correlation=0.8),
        claim(models, "feature_splitting", "small", {"matches": ">= 3"}, neuron="L0N1", larger=models["larger"], min_correlation=0.8),
        claim(models, "feature_splitting", "small", {"best_correlation": ">= 0.9", "matches": "between 1 2"}, neuron="L0N1",
              larger=models["larger"], min_correlation=0.8),
    )
    small, _ = hooks_on_the_stream(models["small"], models["corpus"], [GELU_POST])
    large, _ = hooks_on_the_stream(models["larger"], models["corpus"], [GELU_POST])
    r = np.array([np.corrcoef(small[GELU_POST][:, 1], large[GELU_POST][:, j])[0, 1] for j in range(16)])
    ranked = np.sort(r)[::-1]
    assert set(np.flatnonzero(r >= 0.8)) == {3, 7}  # the plant
    assert estimates(two) == pytest.approx({"matches[2nd largest r]": ranked[1]}, abs=1e-9)
    assert estimates(three) == pytest.approx({"matches[3rd largest r]": ranked[2]}, abs=1e-9)
    assert estimates(best) == pytest.approx(
        {"best_correlation": ranked[0], "matches[1st largest r]": ranked[0], "matches[3rd largest r]": ranked[2]}, abs=1e-9
    )
    assert [e.comparison for e in best.expectations] == [">= 0.9", ">= 0.8", "< 0.8"]
    assert two.outcome == "supported"
    assert three.outcome == "refuted"
    assert best.outcome == "supported"
    assert any("observed: 2 of the larger model's 16 neurons have r >= 0.8" in note for note in two.notes)
    assert {f.kind for f in two.figures} == {"bars"}


def test_feature_splitting_s_null_is_a_random_weights_twin_of_the_larger_model(models):
    [result] = judged(claim(models, "feature_splitting", "small", {"matches": ">= 2"}, neuron="L0N1", larger=models["larger"], min_correlation=0.8))
    evaluation = result.expectations[0].evaluation
    small = hooks_on_the_stream(models["small"], models["corpus"], [GELU_POST])[0][GELU_POST][:FIRST, 1]
    second = []
    for seed in TWIN_SEEDS:
        twin = hooks_on_the_stream(models["larger"], models["corpus"], [GELU_POST], seed)[0][GELU_POST][:FIRST]
        second.append(np.sort([np.corrcoef(small, twin[:, j])[0, 1] for j in range(16)])[-2])
    assert named_nulls(evaluation) == pytest.approx({"the same against a random-weights twin of the larger model (mean of 2)": np.mean(second)}, rel=1e-3)
    assert evaluation.null_estimate == pytest.approx(np.mean(second), abs=1e-6)
    assert evaluation.null_estimate < 0.8 < evaluation.estimate


def test_feature_splitting_is_not_supported_on_random_weights_models(models):
    [result] = judged(
        claim(models, "feature_splitting", "small_random", {"matches": ">= 2"}, neuron="L0N1", larger=models["larger_random"], min_correlation=0.8)
    )
    assert result.outcome != "supported"


def test_feature_splitting_needs_one_vocabulary(models, tmp_path):
    other = tmp_path / "no_tokenizer"
    save_native(boot_random(dict(BASE, d_mlp=16, act_fn="gelu"), seed=1), other)
    results = Engine(Settings(**SETTINGS)).evaluate([claim(models, "feature_splitting", "small", {"matches": ">= 1"}, neuron="L0N1", larger=f"native:{other}")])
    assert results[0].outcome == "error" and "tokenizer" in results[0].error
