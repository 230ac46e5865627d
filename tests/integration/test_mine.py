"""The miner (``interp_checks.mine`` and ``interp-checks mine``) on tiny random models.

Models: random-weights attention-only native checkpoints with the zoo's tokenizer (so the miner
can compare them token by token), written by the tests; a corpus: a folder of .txt files cut from
the running Python's stdlib. What is checked:

* the streamed aggregates equal a brute-force computation that keeps every per-token gain (and
  runs each row through the models alone, so batching cannot matter), and the heaps hold the true
  top-k contexts;
* the aggregates' size does not depend on how many tokens are read;
* a planted gain (every closing bracket +2 nats) is found, ranked first, and drafted as a claim;
* models with different tokenizers are refused with a message that says what to do instead;
* the draft claims file written by the CLI runs as is through the plugin (corpus inputs, where:
  pattern), with no claim in error, and loads back with yaml as the claims mine.json lists;
* by default (function and CLI) the miner reads only the train split, so the draft's claims, which
  sample the held-out documents, test on text it did not read; the draft's header says truthfully
  what was read in each case (train, all, heldout, a corpus without held-out documents);
* on the zoo (when trained), induction-like tokens dominate the 2L-over-1L gains.
"""

from __future__ import annotations

import json
import math
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import yaml

import interp_checks.mine.run as mine_run
from interp_checks.checks.compare import token_gains
from interp_checks.runner import next_token_logprobs
from interp_checks.cli import main as cli_main
from interp_checks.inputs.corpora import iter_token_batches, split_of
from interp_checks.inputs.generators import InputBatch
from interp_checks.inputs.token_sets import PATTERNS, Where, select
from interp_checks.mine import OTHER, MineAggregator, MineError, mine, token_strings, write_mine_report
from interp_checks.models.native import boot_random, save_native

REPO = Path(__file__).resolve().parents[2]
ZOO_TOKENIZER = REPO / "fixtures" / "zoo" / "tokenizer.json"
ARCH = dict(
    d_model=16, n_heads=2, d_head=8, n_ctx=256, d_vocab=2048, attn_only=True,
    normalization_type="LN", positional_embedding_type="standard", default_prepend_bos=True,
)
SEQ_LEN = 64
FLOOR = -20.0  # random models put ~log(1/2048) = -7.6 on every token: below -5 both gains would be 0

pytestmark = pytest.mark.skipif(not ZOO_TOKENIZER.is_file(), reason="fixtures/zoo/tokenizer.json is missing")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and oversubscribed cores make them many times slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mine-models")
    out = {}
    for layers in (1, 2):
        out[f"{layers}l"] = save_native(
            boot_random({**ARCH, "n_layers": layers}, seed=layers), root / f"rand{layers}l", tokenizer_json=ZOO_TOKENIZER
        )
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Eight documents of ~2,500 characters from stdlib modules, plus a short one (padded row).

    ``heapq.txt`` is in the held-out split (``split_of``), the others in train.
    """
    folder = tmp_path_factory.mktemp("mine-corpus")
    root = Path(sysconfig.get_paths()["stdlib"])
    for name in ("textwrap", "difflib", "fractions", "shlex", "glob", "fnmatch", "heapq", "string"):
        text = (root / f"{name}.py").read_text(encoding="utf-8")
        (folder / f"{name}.txt").write_text(text[:2500], encoding="utf-8")
    (folder / "short.txt").write_text("x = [1, 2, 3]\nprint(x)\n", encoding="utf-8")
    return folder


def spec(path: Path) -> str:
    return f"native:{path}"


def run(models, corpus, **kwargs):
    options = dict(corpus=corpus, seq_len=SEQ_LEN, batch_size=4, floor=FLOOR, top_k=10, max_tokens=None, progress=False)
    options.update(kwargs)
    return mine(spec(models["2l"]), spec(models["1l"]), **options)


# --- exactness -------------------------------------------------------------------------------------


def brute_force(models, corpus):
    """Every scored token's gain and patterns, each row run through the models on its own."""
    import torch

    from interp_checks.models.native import load_native

    bridges = {name: load_native(path) for name, path in models.items()}
    tokenizer = bridges["2l"].tokenizer
    records = []  # (document, position, window, gain, set of patterns)
    for window, batch in enumerate(
        iter_token_batches(corpus, tokenizer.backend_tokenizer, seq_len=SEQ_LEN, batch_size=1, bos_id=0, pad_id=0)
    ):
        tokens, valid = batch.tokens, batch.valid
        with torch.inference_mode():
            logp = {name: next_token_logprobs(b(torch.as_tensor(tokens)), tokens) for name, b in bridges.items()}
        gains = token_gains(logp["2l"], logp["1l"], FLOOR)
        pieces = ["" if i == 0 else tokenizer.decode([int(i)], clean_up_tokenization_spaces=False) for i in tokens[0]]
        pieces = [p if ok else "" for p, ok in zip(pieces, valid[0])]
        stops = np.cumsum([len(p) for p in pieces])
        offsets = np.stack([stops - [len(p) for p in pieces], stops], axis=-1)[None]
        text = InputBatch(tokens, "corpus", {}, 0, valid, {}, ["".join(pieces)], offsets)
        masks = {name: select(Where(pattern=name), text)[0] for name in PATTERNS}
        for p in range(1, tokens.shape[1]):
            if valid[0, p]:
                matched = {name for name in PATTERNS if masks[name][p]}
                records.append((batch.names[0], int(batch.starts[0]) + p - 1, window, float(gains[0, p]), matched))
    return records


def test_aggregates_and_heaps_equal_brute_force(models, corpus):
    result = run(models, corpus, split="all")  # brute_force reads every document
    records = brute_force(models, corpus)
    assert result.tokens_scored == len(records)
    assert result.windows == len({r[2] for r in records})
    assert result.documents == len({r[0] for r in records}) == 9

    def check(stats, chosen):
        gains = np.array([r[3] for r in chosen])
        assert stats.tokens == len(chosen), stats.name
        assert stats.gain_sum == pytest.approx(gains.sum(), rel=1e-5, abs=1e-3)
        assert stats.gain_sumsq == pytest.approx((gains**2).sum(), rel=1e-5)
        assert stats.above_1 == int((gains > 1).sum()) and stats.below_1 == int((gains < -1).sum())
        per_window: dict[int, list[float]] = {}
        for r in chosen:
            per_window.setdefault(r[2], []).append(r[3])
        means = np.array([np.mean(v) for v in per_window.values()])
        assert stats.windows == len(means), stats.name
        assert stats.window_mean == pytest.approx(means.mean(), rel=1e-5, abs=1e-5)
        assert stats.window_sd == pytest.approx(means.std(ddof=1), rel=1e-4, abs=1e-5)
        lo, hi = stats.window_ci
        half = 1.959963984540054 * means.std(ddof=1) / math.sqrt(len(means))
        assert (lo, hi) == (pytest.approx(means.mean() - half, abs=1e-5), pytest.approx(means.mean() + half, abs=1e-5))

    check(result.overall, records)
    for name in PATTERNS:
        check(result.patterns[name], [r for r in records if name in r[4]])
        assert result.patterns[name].tokens > 0, f"the test corpus should exercise pattern {name}"
    check(result.patterns[OTHER], [r for r in records if not r[4]])

    by_place = {(r[0], r[1]): r for r in records}
    ordered = sorted((r[3] for r in records), reverse=True)
    np.testing.assert_allclose([c.gain for c in result.top_gains], ordered[:10], atol=1e-4)
    np.testing.assert_allclose([c.gain for c in result.top_losses], sorted(r[3] for r in records)[:10], atol=1e-4)
    for context in result.top_gains + result.top_losses:
        record = by_place[(context.document, context.position)]
        assert context.gain == pytest.approx(record[3], abs=1e-4)
        assert set(context.patterns) == record[4]
        assert context.context.endswith(f"⟦{context.token}⟧")
        assert context.model_logp - context.baseline_logp == pytest.approx(context.gain, abs=1e-4)


def test_aggregate_size_does_not_depend_on_the_corpus(models, corpus):
    def sizes_seen(max_tokens):
        seen = []

        def record(aggregator: MineAggregator) -> None:
            seen.append(aggregator.size())

        result = run(models, corpus, max_tokens=max_tokens, callback=record, top_k=5)
        return result, seen

    small, small_sizes = sizes_seen(600)
    large, large_sizes = sizes_seen(None)
    assert large.tokens_seen > 5 * small.tokens_seen
    bound = {"patterns": len(PATTERNS) + 1, "top_gains": 5, "top_losses": 5, "token_strings": 2048}
    for sizes in small_sizes + large_sizes:
        assert all(sizes[key] <= bound[key] for key in bound), sizes
    assert large_sizes[-1] == bound and small_sizes[-1] == bound
    # Nothing else in the result grows either: every list and dict has the same length.
    for key in ("patterns", "top_gains", "top_losses"):
        assert len(small.to_dict()[key]) == len(large.to_dict()[key])


# --- finding a planted pattern -------------------------------------------------------------------


@pytest.fixture
def planted(monkeypatch, models):
    """Gains of +2 nats on every closing bracket and 0 elsewhere, instead of the models' gains."""
    from interp_checks.models.native import load_tokenizer

    strings = token_strings(load_tokenizer(ZOO_TOKENIZER))
    closing = np.array([bool(PATTERNS["closing_bracket"][1](_one_token_batch(s))[0, 1]) for s in strings])

    def fake_scores(model, baseline, tokens, floor, device):
        gains = np.where(closing[tokens], 2.0, 0.0)
        gains[:, 0] = np.nan
        return gains, gains - 3.0, np.full(gains.shape, -3.0)

    monkeypatch.setattr(mine_run, "score_batch", fake_scores)
    return closing


def _one_token_batch(piece: str) -> InputBatch:
    tokens = np.array([[0, 5]])
    return InputBatch(tokens, "probe", {}, 0, None, {}, [piece], np.array([[[0, 0], [0, len(piece)]]]))


def test_a_planted_pattern_is_found_ranked_first_and_drafted(planted, models, corpus, tmp_path):
    result = run(models, corpus)
    first = result.ranked()[0]
    assert first.name == "closing_bracket"
    assert first.token_mean == 2.0 and first.window_mean == 2.0 and first.gain_sum == result.overall.gain_sum
    assert result.patterns["whitespace"].gain_sum == 0 and result.patterns[OTHER].gain_sum == 0
    assert all("closing_bracket" in c.patterns and c.gain == 2.0 for c in result.top_gains)
    assert result.top_losses == []
    paths = write_mine_report(result, tmp_path)
    report = json.loads(paths["json"].read_text())
    assert report["patterns"][0]["pattern"] == "closing_bracket"
    assert report["patterns"][0]["share_of_total_gain"] == 1.0
    markdown = paths["markdown"].read_text()
    assert markdown.index("| `closing_bracket` |") < markdown.index("| `whitespace` |")
    claims = {c["id"]: c for c in report["draft_claims"]["claims"]}
    assert claims["gain-closing_bracket"]["expect"] == {"mean_gain": ">= 1"}  # half of 2, rounded down
    assert claims["gain-closing_bracket"]["where"] == {"pattern": "closing_bracket"}
    assert "gain-whitespace" not in claims and "gain-all-tokens" in claims
    # The draft file is YAML written by yaml.safe_dump after a # header: it loads back as the claims
    # mine.json lists, under the model it was mined for.
    draft = yaml.safe_load(paths["claims"].read_text())
    assert draft == {"model": result.model, "seed": 0, "claims": report["draft_claims"]["claims"]}
    assert paths["claims"].read_text().startswith("# Draft claims written by `interp-checks mine`")
    # mine.md is rendered from mine.json alone: `interp-checks report mine.json` gives the same file.
    assert cli_main(["report", str(paths["json"]), "--out", str(tmp_path / "again.md")]) == 0
    assert (tmp_path / "again.md").read_text() == markdown


def test_different_tokenizers_are_refused(models, corpus, tmp_path):
    from tests.helpers.tiny_models import train_tiny_tokenizer

    tokenizer_json = tmp_path / "other-tokenizer.json"
    train_tiny_tokenizer(300).save(str(tokenizer_json))
    other = save_native(boot_random({**ARCH, "n_layers": 1, "d_vocab": 300}, seed=3), tmp_path / "other", tokenizer_json=tokenizer_json)
    with pytest.raises(MineError, match=r"different tokenizers.*token by token.*logprob_gain claim on text inputs"):
        mine(spec(models["2l"]), spec(other), corpus=corpus, progress=False)


# --- the CLI and the draft claims ------------------------------------------------------------------


def test_cli_writes_a_draft_that_runs_as_is(planted, models, corpus, pytester, capsys):
    out = pytester.path / "mined"
    code = cli_main([
        "mine", "--model", spec(models["2l"]), "--baseline", spec(models["1l"]), "--corpus", str(corpus),
        "--max-tokens", "0", "--seq-len", str(SEQ_LEN), "--batch-size", "8", "--floor", str(FLOOR),
        "--top-k", "5", "--out", str(out), "--device", "cpu", "--quiet",
    ])
    printed = capsys.readouterr().out
    assert code == 0
    assert str(out / "mine.md") in printed and str(out / "draft.claims.yaml") in printed
    lines = printed.splitlines()
    ranked = lines[next(i for i, line in enumerate(lines) if line.startswith("top patterns")) + 2 :]
    assert ranked[0].split()[0] == "closing_bracket"
    draft = (out / "draft.claims.yaml").read_text()
    assert f"model: native:{models['2l']}" in draft and "where: {pattern: closing_bracket}" in draft
    # The draft runs with the real (random) models: the planted gain is not theirs, so the claims
    # may come out refuted or inconclusive; what matters is that every claim runs.
    result = pytester.runpytest_inprocess(str(out / "draft.claims.yaml"), "--interp-resamples=999", "--interp-inconclusive=skip")
    report = json.loads((pytester.path / "reports" / "report.json").read_text())
    outcomes = {claim["id"]: claim["outcome"] for claim in report["claims"]}
    assert "gain-closing_bracket" in outcomes and "gain-all-tokens" in outcomes
    assert "error" not in outcomes.values(), [c.get("error") for c in report["claims"]]
    assert result.ret in (0, 1)


# --- which documents the miner reads, and what the draft says about it ----------------------------


def _record_documents(monkeypatch) -> list[str]:
    """The names of the documents the miner streams (one entry per window)."""
    names: list[str] = []
    stream = mine_run.corpus_rows

    def recording(*args, **kwargs):
        for batch, rows in stream(*args, **kwargs):
            names.extend(batch.names)
            yield batch, rows

    monkeypatch.setattr(mine_run, "corpus_rows", recording)
    return names


def _splits(corpus: Path) -> dict[str, str]:
    return {path.name: split_of(path.name) for path in corpus.iterdir()}


def test_the_miner_reads_no_heldout_document_by_default(planted, monkeypatch, models, corpus, tmp_path, capsys):
    splits = _splits(corpus)
    train = {name for name, split in splits.items() if split == "train"}
    assert "heldout" in splits.values() and train, "the corpus must have documents in both splits"
    names = _record_documents(monkeypatch)
    result = mine(spec(models["2l"]), spec(models["1l"]), corpus=corpus, seq_len=SEQ_LEN, floor=FLOOR, progress=False)
    assert result.split == "train"
    assert set(names) == train
    names.clear()
    out = tmp_path / "mined"
    code = cli_main([
        "mine", "--model", spec(models["2l"]), "--baseline", spec(models["1l"]), "--corpus", str(corpus),
        "--seq-len", str(SEQ_LEN), "--floor", str(FLOOR), "--out", str(out), "--quiet",
    ])
    assert code == 0
    assert set(names) == train
    assert json.loads((out / "mine.json").read_text())["split"] == "train"
    assert "(split train" in capsys.readouterr().out


@pytest.mark.parametrize(
    "split, with_heldout, said, not_said",
    [
        (None, True, ["(split train)", "held-out documents, which the miner did not read"], ["no held-out documents", "confirm"]),
        (
            "all", True,
            ["(split all)", "the miner read every document, the held-out ones included", "confirm them on text the miner did not read"],
            ["held-out documents, which the miner did not read", "no held-out documents"],
        ),
        (
            "heldout", True,
            ["(split heldout)", "the miner read only the held-out documents", "confirm them on text the miner did not read"],
            ["held-out documents, which the miner did not read", "no held-out documents"],
        ),
        (None, False, ["(split train)", "this corpus has no held-out documents"], ["the miner did not read", "confirm"]),
    ],
)
def test_the_draft_header_says_what_the_miner_read(planted, models, corpus, tmp_path, split, with_heldout, said, not_said):
    if not with_heldout:
        folder = tmp_path / "train-only"
        folder.mkdir()
        for name, which in _splits(corpus).items():
            if which == "train":
                (folder / name).write_text((corpus / name).read_text(encoding="utf-8"), encoding="utf-8")
        corpus = folder
    options = {} if split is None else {"split": split}
    result = run(models, corpus, **options)
    paths = write_mine_report(result, tmp_path / "out")
    text = paths["claims"].read_text()
    header = " ".join(line[2:] for line in text.splitlines() if line.startswith("# ")).lower()
    for phrase in said:
        assert phrase.lower() in header, (phrase, header)
    for phrase in not_said:
        assert phrase.lower() not in header, (phrase, header)
    sampled = "heldout" if with_heldout else "all"
    assert {claim["inputs"]["split"] for claim in yaml.safe_load(text)["claims"]} == {sampled}
    report = json.loads(paths["json"].read_text())
    assert report["draft_claims"]["split"] == sampled and report["heldout_available"] is with_heldout
    assert report["draft_claims"]["note"].lower() in header  # mine.json says the same


def test_cli_reports_bad_input_as_an_error(models, capsys):
    code = cli_main(["mine", "--model", spec(models["2l"]), "--baseline", "zoo:no-such-model", "--quiet"])
    assert code == 2
    assert "interp-checks mine: error:" in capsys.readouterr().err


# --- the zoo ------------------------------------------------------------------------------------------


@pytest.mark.skipif(
    not all((REPO / "fixtures" / "zoo" / name / "config.json").is_file() for name in ("attn-only-1l", "attn-only-2l")),
    reason="the zoo is not trained (python -m interp_checks.zoo train)",
)
def test_zoo_2l_over_1l_gains_are_induction_like():
    result = mine("zoo:attn-only-2l", "zoo:attn-only-1l", max_tokens=20_000, top_k=20, progress=False)
    induction = result.patterns["induction_like"]
    best_mean = max((s for s in result.patterns.values() if s.name != OTHER), key=lambda s: s.window_mean)
    assert best_mean.name == "induction_like"
    assert induction.window_ci[0] > 0.1
    assert sum("induction_like" in c.patterns for c in result.top_gains) > len(result.top_gains) / 2


@pytest.mark.parametrize("mined, sampled", [("discovery", "confirmation"), ("confirmation", "discovery")])
def test_a_draft_mined_on_one_held_out_half_samples_the_other(mined, sampled):
    from types import SimpleNamespace

    from interp_checks.mine.draft import _sampled_split

    split, note = _sampled_split(SimpleNamespace(heldout_available=True, split=mined))
    assert split == sampled and f"the {mined} half" in note and "did not read" in note
