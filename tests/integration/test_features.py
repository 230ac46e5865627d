"""neuron_polysemantic, feature_direction, feature_spread and feature_ablation on a hand-built model
whose answer is known, checked against direct computations, and not supported on random weights.

The model is built here with the recipe of ``zoo.handbuilt.build_token_neurons`` (which gives each
neuron its own token set, an identity ``ln2`` and no output the logits read; these checks need
several neurons on one feature, a non-trivial ``ln2`` and an MLP output that predicts): one layer,
attention writing nothing (``W_O = 0``), so the MLP sees only the current token. Each token's embedding is a flag of 8 in one dimension per feature its text
has (``(``, a digit, ``=``, ``#``) plus Gaussian noise in 26 other dimensions; ReLU neurons read the
flags through ``W_in`` with a bias of -2, so after the layer norm they fire (about 2-3) exactly on
their tokens:

* L0N0 reads ``(`` and digits: polysemantic;
* L0N1 reads ``#`` alone and writes the whole ``#`` prediction: one neuron carries that feature;
* L0N2..L0N5 read ``=`` identically and each writes a quarter of the ``=`` prediction: spread;
* L0N6..L0N11 read random directions of the noise dimensions (distractors).

The MLP's output raises each token's logit by about log(1 + how often it follows ``=`` (or ``#``) in
the test corpus), a smoothed bigram, so ablating it makes the next token after those features less likely.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from interp_checks.claims.expect import parse_expectation
from interp_checks.claims.schema import ClaimSpec
from interp_checks.engine import Engine, Settings
from interp_checks.inputs.generators import Vocabulary, generate
from interp_checks.interventions import Intervention, Site, clean_key
from interp_checks.models.load import load_model, load_random_twin
from interp_checks.models.native import boot_random, save_native
from interp_checks.models.spec import parse_model_spec
from interp_checks.runner import next_token_logprobs, run_interventions
from interp_checks.stats import cluster_means
from interp_checks.stats.pooled import expected_abs_cosine_of_random_direction

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "fixtures" / "zoo" / "tokenizer.json"
FEATURES = {"paren": r"\(", "digit": r"\d", "equals": "=", "hash": "#"}
FLAG = {name: i for i, name in enumerate(FEATURES)}
OUT = {"equals": 4, "hash": 5}
NOISE = slice(6, 32)
ARCH = dict(
    d_model=32, n_layers=1, n_heads=2, d_head=8, d_mlp=12, n_ctx=128, d_vocab=2048, attn_only=False,
    normalization_type="LN", act_fn="relu", positional_embedding_type="standard",
)
FLAG_SIZE, THRESHOLD, UNEMBED_SCALE = 8.0, 2.0, 0.25
SPREAD = [2, 3, 4, 5]
MODULES = ("textwrap", "string", "fractions", "shlex", "glob", "fnmatch", "heapq", "difflib")
MAX_TOKENS = 20_000  # more than the corpus holds: every token is streamed (and the probe samples every other token)


def token_strings() -> list[str]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    return [tokenizer.decode([i]) for i in range(ARCH["d_vocab"])]


def documents() -> list[str]:
    """48 documents of 1,200 characters: 6 from each of 8 stdlib modules' source."""
    import importlib

    out = []
    for name in MODULES:
        text = Path(importlib.import_module(name).__file__).read_text(encoding="utf-8")
        out.extend(text[i : i + 1200] for i in range(0, 6 * 1200, 1200))
    return out


def encode(text: str) -> list[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(TOKENIZER)).encode(text, add_special_tokens=False).ids


def has_feature(strings: list[str]) -> dict[str, np.ndarray]:
    """Per feature, which token ids have it: for these one-character patterns a token matches in
    context exactly when its own text contains the character."""
    return {name: np.array([bool(re.search(pattern, s)) for s in strings]) for name, pattern in FEATURES.items()}


def successor_counts(docs: list[str], has: np.ndarray) -> np.ndarray:
    """[d_vocab]: how often each token follows a token with the feature in ``docs``."""
    counts = np.zeros(ARCH["d_vocab"])
    for text in docs:
        ids = np.array(encode(text), dtype=np.int64)
        np.add.at(counts, ids[1:][has[ids[:-1]]], 1.0)
    return counts


def build_feature_neurons(folder: Path, docs: list[str], seed: int = 0) -> Path:
    strings = token_strings()
    flags = has_feature(strings)
    generator = torch.Generator().manual_seed(seed)
    bridge = boot_random(ARCH, seed=seed)
    d, V, d_mlp = ARCH["d_model"], ARCH["d_vocab"], ARCH["d_mlp"]
    state = {name: torch.zeros_like(value) for name, value in bridge.state_dict().items()}
    embed = torch.zeros(V, d)
    embed[:, NOISE] = torch.randn(V, NOISE.stop - NOISE.start, generator=generator)
    for name, column in FLAG.items():
        embed[torch.as_tensor(flags[name]), column] = FLAG_SIZE
    state["embed.weight"] = embed
    for norm in ("blocks.0.ln1", "blocks.0.ln2", "ln_final"):
        state[f"{norm}.weight"] = torch.ones(d)
    # ln2 scales and shifts the noise dimensions, so the MLP's input (hook_in) is not hook_normalized
    state["blocks.0.ln2.weight"][NOISE] = 0.5 + torch.rand(NOISE.stop - NOISE.start, generator=generator)
    state["blocks.0.ln2.bias"][NOISE] = 0.1 * torch.randn(NOISE.stop - NOISE.start, generator=generator)
    w_in, b_in, w_out = torch.zeros(d_mlp, d), torch.full((d_mlp,), -THRESHOLD), torch.zeros(d, d_mlp)
    w_in[0, FLAG["paren"]] = w_in[0, FLAG["digit"]] = 1.0
    w_in[1, FLAG["hash"]] = 1.0
    w_out[OUT["hash"], 1] = 4.0
    for i in SPREAD:
        w_in[i, FLAG["equals"]] = 1.0
        w_out[OUT["equals"], i] = 4.0 / len(SPREAD)
    random_reads = torch.randn(d_mlp - 6, NOISE.stop - NOISE.start, generator=generator)
    w_in[6:, NOISE] = random_reads / random_reads.norm(dim=1, keepdim=True)
    b_in[6:] = 0.0
    state.update({"blocks.0.mlp.in.weight": w_in, "blocks.0.mlp.in.bias": b_in, "blocks.0.mlp.out.weight": w_out})
    unembed = torch.zeros(V, d)
    for name in ("equals", "hash"):  # logits of about log(1 + count) once the final layer norm has scaled the write
        unembed[:, OUT[name]] = torch.as_tensor(np.log1p(successor_counts(docs, flags[name])) * UNEMBED_SCALE, dtype=torch.float32)
    state["unembed.weight"] = unembed
    bridge.load_state_dict(state, strict=True)
    return save_native(bridge, folder, tokenizer_json=TOKENIZER)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("feature-corpus")
    for i, text in enumerate(documents()):
        (folder / f"doc{i:02d}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("feature-models")
    return {
        "known": build_feature_neurons(root / "known", documents()),
        "random": save_native(boot_random(ARCH, seed=11), root / "random", tokenizer_json=TOKENIZER),
    }


def stream(corpus: Path) -> dict:
    return {"kind": "corpus_stream", "source": str(corpus), "split": "all", "max_tokens": MAX_TOKENS}


def claim(check: str, model: Path, expect: dict, inputs: dict, **params) -> ClaimSpec:
    return ClaimSpec(
        id="c", path=ROOT / "x.claims.yaml", index=0, check=check, model=f"native:{model}", inputs=inputs,
        expect={k: parse_expectation(v) for k, v in expect.items()}, params=params,
    )


def judged(spec: ClaimSpec) -> object:
    [result] = Engine(Settings(n_resamples=499, batch_size=32, null_draws=1)).evaluate([spec])
    assert result.outcome != "error", result.error
    return result


def estimates(result) -> dict[str, float]:
    return {e.statistic: e.evaluation.estimate for e in result.expectations}


# -- direct computations: every token of every document, through the bridge, no streaming code -------


@pytest.fixture(scope="module")
def tokens_read(models, corpus) -> dict[str, np.ndarray]:
    return read_tokens(load_model(parse_model_spec(f"native:{models['known']}")).bridge, corpus)


def read_tokens(bridge, corpus: Path) -> dict[str, np.ndarray]:
    """Per token of the corpus, in rows of BOS + 127 tokens of one document as the stream cuts them:
    its id, document, MLP input and neuron activations, from run_with_cache row by row."""
    ids, docs, mlp_in, post = [], [], [], []
    for d, path in enumerate(sorted(corpus.glob("*.txt"))):
        encoded = encode(path.read_text(encoding="utf-8"))
        for start in range(0, len(encoded), 127):
            chunk = encoded[start : start + 127]
            with torch.inference_mode():
                _, cache = bridge.run_with_cache(torch.tensor([[0] + chunk]))
            mlp_in.append(cache["blocks.0.mlp.hook_in"][0, 1:].numpy())
            post.append(cache["blocks.0.mlp.hook_post"][0, 1:].numpy())
            ids.extend(chunk)
            docs.extend([d] * len(chunk))
    assert len(ids) < MAX_TOKENS
    return {
        "ids": np.array(ids), "document": np.array(docs), "mlp_in": np.concatenate(mlp_in).astype(float),
        "post": np.concatenate(post).astype(float), "W_in": bridge.W_in[0].detach().numpy().astype(float),
    }


def token_features(read: dict) -> dict[str, np.ndarray]:
    flags = has_feature(token_strings())
    return {name: flags[name][read["ids"]] for name in FEATURES}


# -- neuron_polysemantic ---------------------------------------------------------------------------------


def test_polysemantic_auroc_is_each_feature_against_tokens_of_none(models, corpus, tokens_read):
    features = {"paren": FEATURES["paren"], "digit": FEATURES["digit"], "equals": FEATURES["equals"]}
    result = judged(claim("neuron_polysemantic", models["known"], {"auroc": ">= 0.9"}, stream(corpus), neuron="L0N0", features=features))
    has = token_features(tokens_read)
    none = ~(has["paren"] | has["digit"] | has["equals"])
    activation = tokens_read["post"][:, 0]
    measured = estimates(result)
    for name in ("paren", "digit"):  # digit tokens are no negatives of paren, and the reverse: both near 1
        positives, negatives = activation[has[name]], activation[none]
        u = stats.mannwhitneyu(positives, negatives).statistic
        assert measured[f"auroc[{name}]"] == pytest.approx(u / (positives.size * negatives.size), abs=1e-9)
        assert measured[f"auroc[{name}]"] > 0.99
    # L0N0 is exactly 0 on = and on tokens of no feature (a ReLU below its bias): an AUROC of a
    # constant is undefined (stats.pooled), so "L0N0 responds to (, digits and =" is not supported
    assert np.all(activation[has["equals"] | none] == 0.0) and np.isnan(measured["auroc[equals]"])
    assert result.outcome == "inconclusive"


def test_polysemantic_neuron_supported_false_one_refuted_random_weights_unsupported(models, corpus):
    features = {"paren": FEATURES["paren"], "digit": FEATURES["digit"]}
    true = judged(claim("neuron_polysemantic", models["known"], {"auroc": ">= 0.9"}, stream(corpus), neuron="L0N0", features=features))
    false = judged(claim("neuron_polysemantic", models["known"], {"auroc": ">= 0.9"}, stream(corpus), neuron="L0N1", features=features))
    random = judged(claim("neuron_polysemantic", models["random"], {"auroc": ">= 0.9"}, stream(corpus), neuron="L0N0", features=features))
    assert (true.outcome, false.outcome) == ("supported", "refuted")
    assert random.outcome != "supported"
    for expectation in true.expectations:
        assert expectation.evaluation.null_estimate is not None  # the best random-weights neuron, or a random class
        assert "random-weights" in (expectation.evaluation.note or "")


def test_polysemantic_null_is_the_best_neuron_of_the_random_twin(models, corpus):
    inputs = {**stream(corpus), "null_tokens": MAX_TOKENS}  # the twin streams the whole corpus too
    features = {"paren": FEATURES["paren"], "digit": FEATURES["digit"]}
    result = judged(claim("neuron_polysemantic", models["known"], {"auroc": ">= 0.9"}, inputs, neuron="L0N0", features=features))
    twin = load_random_twin(load_model(parse_model_spec(f"native:{models['known']}")), seed=0)  # Settings.null_seed
    read = read_tokens(twin.bridge, corpus)
    has = token_features(read)
    none = ~(has["paren"] | has["digit"])
    for expectation, name in zip(result.expectations, features):
        x, positives = read["post"][has[name] | none], has[name][has[name] | none]
        aurocs = [stats.mannwhitneyu(x[positives, j], x[~positives, j]).statistic / (positives.sum() * (~positives).sum()) for j in range(x.shape[1])]
        pattern = r"best of all 12 neurons of a random-weights model \(mean of 1\) = ([0-9.]+)"
        assert float(re.search(pattern, expectation.evaluation.note).group(1)) == pytest.approx(max(aurocs), abs=5e-4)


def test_polysemantic_aggregate_keeps_each_sampled_token_s_features_with_it(models, corpus):
    """The all-neuron sample stops mid-batch at null_tokens; the features kept for the nulls must be
    those of the same tokens (for these one-character features, a property of the token id)."""
    from interp_checks.checks.base import NULL, Needs
    from interp_checks.checks.features import FeatureBitsAggregate
    from interp_checks.inputs.streams import corpus_rows
    from interp_checks.runner import capture

    loaded = load_model(parse_model_spec(f"native:{models['known']}"))
    aggregate = FeatureBitsAggregate("blocks.0.mlp.hook_post", 0, FEATURES, 1000, NULL)
    for rows, batch in corpus_rows(str(corpus), loaded, seq_len=128, batch_size=3, max_tokens=3000, split="all"):
        aggregate.update(capture(loaded.bridge, torch.as_tensor(rows.tokens), Needs(frozenset({"blocks.0.mlp.hook_post"}))), batch)
    _, _, sampled_tokens = aggregate.all_neuron_sample()
    flags = has_feature(token_strings())
    expected = sum(flags[name][sampled_tokens].astype(np.uint16) << j for j, name in enumerate(FEATURES))
    assert sampled_tokens.size == 1000 and np.any(expected)
    np.testing.assert_array_equal(aggregate.sample_feature_bits(), expected)


# -- feature_direction -------------------------------------------------------------------------------


def direct_direction(method: str, read: dict, has: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    x = read["mlp_in"]
    if method == "mean_diff":
        return x[has].mean(0) - x[~has].mean(0)
    if method == "pca":
        y = x[has] - x[~has].mean(0)
        values, vectors = np.linalg.eigh(y.T @ y / len(y))
        top = vectors[:, -1]
        return top if top @ y.mean(0) >= 0 else -top

    def loss(theta):  # written out again, independently of the check's probe
        z = x @ theta[:-1] + theta[-1]
        return np.mean(np.logaddexp(0, z) - has * z) + 0.5 * l2 * theta[:-1] @ theta[:-1]

    return optimize.minimize(loss, np.zeros(x.shape[1] + 1), method="BFGS", options={"gtol": 1e-9}).x[:-1]


@pytest.mark.parametrize("method", ["mean_diff", "pca", "probe"])
def test_feature_direction_cosine_equals_a_direct_computation(models, corpus, tokens_read, method):
    result = judged(claim("feature_direction", models["known"], {"cosine": ">= 0.8"}, stream(corpus), feature="#", neuron="L0N1", method=method))
    has = token_features(tokens_read)["hash"]
    direction = direct_direction(method, tokens_read, has)
    reference = tokens_read["W_in"][:, 1]
    expected = direction @ reference / np.linalg.norm(direction) / np.linalg.norm(reference)
    assert estimates(result)["cosine"] == pytest.approx(expected, abs=1e-4 if method == "probe" else 1e-6)
    assert result.outcome == "supported"  # L0N1 reads exactly the # flag
    [bars] = [figure for figure in result.figures if figure.kind == "bars"]
    assert bars.data["labels"][0] == "L0N1" and bars.data["highlight"] == ["L0N1"]


def test_feature_direction_false_claim_refuted_and_random_weights_unsupported(models, corpus):
    wrong = judged(claim("feature_direction", models["known"], {"cosine": ">= 0.8"}, stream(corpus), feature="#", neuron="L0N2"))
    random = judged(claim("feature_direction", models["random"], {"cosine": ">= 0.8"}, stream(corpus), feature="#", neuron="L0N1"))
    assert wrong.outcome == "refuted"  # L0N2 reads =, not #
    assert random.outcome != "supported"
    [expectation] = random.expectations
    assert expectation.evaluation.null_estimate > 0  # the best random neuron's |cosine| (or a random direction's)


def test_feature_direction_null_is_the_best_neuron_of_the_random_twin_with_its_own_direction(models, corpus):
    inputs = {**stream(corpus), "null_tokens": MAX_TOKENS}  # the twin streams the whole corpus too
    result = judged(claim("feature_direction", models["known"], {"cosine": ">= 0.8"}, inputs, feature="#", neuron="L0N1"))
    twin = load_random_twin(load_model(parse_model_spec(f"native:{models['known']}")), seed=0)  # Settings.null_seed
    read = read_tokens(twin.bridge, corpus)
    has = token_features(read)["hash"]
    direction = read["mlp_in"][has].mean(0) - read["mlp_in"][~has].mean(0)
    w_in = read["W_in"]
    best = np.max(np.abs(w_in.T @ direction) / (np.linalg.norm(w_in, axis=0) * np.linalg.norm(direction)))
    [note] = [e.evaluation.note for e in result.expectations]
    reported = float(re.search(r"random-weights model with its own feature direction \(mean of 1\) = ([0-9.]+)", note).group(1))
    assert reported == pytest.approx(best, abs=5e-4)  # the note rounds to 4 significant digits
    assert f"E|cosine| of a random direction in 32 dimensions = {expected_abs_cosine_of_random_direction(32):.4g}" in note


# -- feature_spread ----------------------------------------------------------------------------------


def test_max_share_equals_a_direct_computation_and_names_the_spread_neurons(models, corpus, tokens_read):
    result = judged(claim("feature_spread", models["known"], {"max_share": "<= 0.4"}, stream(corpus), feature="=", layer=0, top=4))
    has = token_features(tokens_read)["equals"]
    difference = tokens_read["post"][has].mean(0) - tokens_read["post"][~has].mean(0)
    assert estimates(result)["max_share"] == pytest.approx(np.max(difference**2) / np.sum(difference**2), abs=1e-9)
    assert result.outcome == "supported"  # four neurons carry = equally: about a quarter each
    [bars] = [figure for figure in result.figures if figure.kind == "bars"]
    assert sorted(bars.data["labels"][:4]) == sorted(f"L0N{i}" for i in SPREAD)
    [listed] = [note for note in result.notes if "as a feature_ablation list" in note]
    assert sorted(re.findall(r"L0N\d+", listed.split("neurons: [")[1])) == sorted(f"L0N{i}" for i in SPREAD)


def test_one_neuron_feature_is_not_spread_and_random_weights_do_not_concentrate_it(models, corpus):
    # L0N1's mean difference on # is about 2.8 (it fires at 2-3 on # only); the six distractors move by
    # at most about 0.5 each (the layer norm scales flagged tokens' noise down): a share of at least
    # 7.8 / (7.8 + 6 x 0.25), about 0.84, so "at least 0.8 in one neuron" is true by construction
    concentrated = judged(claim("feature_spread", models["known"], {"max_share": "<= 0.4"}, stream(corpus), feature="#", layer=0))
    one_neuron = judged(claim("feature_spread", models["known"], {"max_share": ">= 0.8"}, stream(corpus), feature="#", layer=0))
    random = judged(claim("feature_spread", models["random"], {"max_share": ">= 0.8"}, stream(corpus), feature="#", layer=0))
    assert (concentrated.outcome, one_neuron.outcome) == ("refuted", "supported")  # L0N1 alone carries #
    assert random.outcome != "supported"


# -- feature_ablation --------------------------------------------------------------------------------

TEXT = {"kind": "corpus", "split": "all", "n": 64, "chars": 600}


def text_inputs(corpus: Path) -> dict:
    return {**TEXT, "source": str(corpus)}


def naive_effects(model: Path, inputs: dict, regex: str, neurons: list[int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per window: the MLP's and each neuron's mean-ablation loss increase after feature tokens, with
    one full run_with_hooks per ablation (mean over the windows' valid positions, per position)."""
    loaded = load_model(parse_model_spec(f"native:{model}"))
    vocab = Vocabulary(loaded.d_vocab, loaded.n_ctx, loaded.bos_token_id, frozenset(loaded.special_token_ids), loaded.tokenizer)
    batch = generate(inputs, vocab, 0)
    tokens, valid = torch.as_tensor(batch.tokens), torch.as_tensor(batch.valid)
    with torch.inference_mode():
        logits, cache = loaded.bridge.run_with_cache(tokens)
    clean = next_token_logprobs(logits, batch.tokens)
    weight = valid[..., None].float()

    def mean_of(name: str) -> torch.Tensor:
        return (cache[name] * weight).sum(0) / weight.sum(0).clamp(min=1)

    has = np.zeros(batch.tokens.shape, bool)
    for i, text in enumerate(batch.texts):
        for match in re.finditer(regex, text):
            has[i] |= (batch.offsets[i, :, 0] < match.end()) & (batch.offsets[i, :, 1] > match.start())
    after = np.zeros_like(has)
    after[:, 1:] = has[:, :-1] & batch.valid[:, 1:] & batch.valid[:, :-1]

    def effect(hook: str, change) -> np.ndarray:
        with torch.inference_mode():
            ablated = loaded.bridge.run_with_hooks(tokens, fwd_hooks=[(hook, change)])
        drop = clean - next_token_logprobs(ablated, batch.tokens)
        with np.errstate(invalid="ignore"):
            return np.where(after.any(1), np.where(after, drop, 0).sum(1) / after.sum(1), np.nan)

    mlp_mean = mean_of("blocks.0.hook_mlp_out")
    whole = effect("blocks.0.hook_mlp_out", lambda a, hook: mlp_mean.expand_as(a).clone())
    post_mean = mean_of("blocks.0.mlp.hook_post")

    def one(i: int):
        def change(a, hook):
            a = a.clone()
            a[:, :, i] = post_mean[:, i]
            return a

        return change

    single = np.stack([effect("blocks.0.mlp.hook_post", one(i)) for i in neurons], axis=1) if neurons else np.zeros((batch.n, 0))
    return whole, single, list(batch.sources)


@pytest.mark.parametrize("method", ["zero", "mean"])
def test_a_neuron_site_changes_only_that_neuron_as_a_naive_run_with_hooks(models, method):
    bridge = load_model(parse_model_spec(f"native:{models['known']}")).bridge
    text = np.array([t for doc in documents() for t in encode(doc)])
    flags = has_feature(token_strings())
    starts = [*np.flatnonzero(flags["equals"][text])[:2], *np.flatnonzero(flags["hash"][text])[:2]]
    tokens = torch.as_tensor(np.stack([text[max(0, i - 5) : max(0, i - 5) + 40] for i in starts]))  # = and # tokens, whose neurons write
    with torch.inference_mode():
        logits, cache = bridge.run_with_cache(tokens)
    means = {"blocks.0.mlp.hook_post": cache["blocks.0.mlp.hook_post"].mean(0)}
    interventions = [Intervention((Site("neuron", 0, neuron=i),), method) for i in (1, 3, 7)]
    readings = run_interventions(bridge, tokens, interventions, means=means)
    clean = next_token_logprobs(logits, tokens.numpy())
    np.testing.assert_allclose(readings[clean_key("logprob")], clean, atol=1e-5)
    for i, intervention in zip((1, 3, 7), interventions):
        def change(a, hook, i=i):
            a = a.clone()
            a[:, :, i] = 0.0 if method == "zero" else means["blocks.0.mlp.hook_post"][:, i]
            return a

        with torch.inference_mode():
            ablated = bridge.run_with_hooks(tokens, fwd_hooks=[("blocks.0.mlp.hook_post", change)])
        np.testing.assert_allclose(readings[intervention.key], next_token_logprobs(ablated, tokens.numpy()), atol=1e-5)
    assert interventions[0].key.endswith(":L0N1")


def test_feature_ablation_effects_equal_naive_ablations(models, corpus):
    inputs = text_inputs(corpus)
    neurons = [1, *SPREAD]
    result = judged(claim("feature_ablation", models["known"], {"mlp_effect": "> 0", "max_neuron_effect": "< 10"}, inputs, feature="=", neurons=[f"L0N{i}" for i in neurons]))
    whole, single, sources = naive_effects(models["known"], inputs, "=", neurons)
    measured = estimates(result)
    by_document = cluster_means(whole, sources)[0]
    assert measured["mlp_effect"] == pytest.approx(float(np.nanmean(by_document)), abs=1e-5)
    per_neuron = cluster_means(single, sources)[0]
    assert measured["max_neuron_effect"] == pytest.approx(float(np.nanmax(np.nanmean(per_neuron, axis=0))), abs=1e-5)


def test_spread_feature_survives_any_one_neuron_but_not_the_mlp_and_a_one_neuron_feature_does_not(models, corpus):
    """By construction each of L0N2..5 writes a quarter of the = prediction, and L0N1 all of the #
    one: removing one = neuron costs well under half of what removing the MLP costs; removing L0N1
    costs what removing the MLP costs for #. The threshold is half the naive whole-MLP effect."""
    inputs = text_inputs(corpus)
    names = [f"L0N{i}" for i in [1, *SPREAD]]
    verdicts = {}
    for feature in ("=", "#"):
        whole, _, sources = naive_effects(models["known"], inputs, feature, [])
        half = 0.5 * float(np.nanmean(cluster_means(whole, sources)[0]))
        assert half > 0.1  # the MLP matters for both features
        expect = {"mlp_effect": f">= {half:.4f}", "max_neuron_effect": f"< {half:.4f}"}
        verdicts[feature] = judged(claim("feature_ablation", models["known"], expect, inputs, feature=feature, neurons=names))
        if feature == "=":
            random = judged(claim("feature_ablation", models["random"], {"mlp_effect": f">= {half:.4f}"}, inputs, feature=feature, layer=0))
            assert random.outcome != "supported"
    assert verdicts["="].outcome == "supported"
    assert verdicts["#"].outcome == "refuted"
