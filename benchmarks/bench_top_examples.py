"""The ``top_examples`` corpus pass at 1M and 5M tokens: tokens per second and peak memory,
against the naive way (keep every token's activations of all neurons, then sort).

**Streamed** (what the harness does): a ``top_examples`` claim run through the engine
(``Engine.evaluate``) on ``zoo:solu-1l`` with ``inputs: {kind: corpus_stream, source: stdlib,
split: train, max_tokens: N}``: one stream through the model keeping, per token, only the claimed
neuron's activation, its match, document and token id (``checks.neurons.NeuronAggregate``), then
the random-weights twins' null streams (``null_tokens`` each), the conclusion (pooled statistics,
both nulls, the pictures) and the judging (document bootstrap of each statistic).

**Naive**: the same rows (``inputs.streams.corpus_rows``, the one streaming path) and the same
hook, keeping every token's activations of *all* the layer's neurons (float32) plus match, document
and token id, concatenated at the end (the stream's length is not known in advance), then the
claimed neuron's column sorted for its top k and bands. It computes no nulls and no intervals, so
its time is a lower bound on a naive claim's; its memory is the point.

Each (way, size) runs in a **fresh subprocess**, so its peak RSS (``ru_maxrss``, the high-water
mark of the whole process: torch, the model, the stream, the conclusion) is its own. Also shown:
the RSS before the pass (after imports and loading the model), and the bytes the pass keeps for the
corpus (the aggregate's buffers with the all-neuron sample of the first ``null_tokens`` tokens, or
the naive lists). A naive run is skipped when its projected peak
(the RSS before + twice the kept bytes: the lists and their concatenation) exceeds half the memory
available; the table then gives the projection instead ("would need X GB").

Corpus size: with the zoo tokenizer the stdlib's train split holds ~3.68M tokens (765 documents;
it depends on the Python version). A size beyond it streams a JSONL file of the train documents
repeated (each copy a new document, ``split: all``): the same work per token as a larger corpus;
the table says which source each row read.

Usage::

    python benchmarks/bench_top_examples.py [--sizes 1000000,5000000] [--naive-sizes 1000000,5000000]
        [--threads 1] [--resamples 9999] [--null-draws 5] [--quick]

``--quick``: 100k and 200k tokens, both ways, 999 resamples and 1 null draw (a smoke test, about a
minute; 77 s at load 3-4 on 2 cores, so no test runs it). Measure with nothing else running: the
load average at the start and the end is printed with the table.

Measured here (2 cores shared with other sessions, load average 3.9 at the start, 4.5 at the end;
1 thread; 9,999 resamples, 5 null draws)::

    way       tokens     pass s  pass tok/s  end to end s  RSS before  peak after pass  peak      kept
    streamed    992,182    36.7      27,038          55.0      506 MB           747 MB  1,087 MB   28 MB
    naive       992,182    39.5      25,105          39.5      483 MB         4,592 MB  4,592 MB  1,946 MB
    streamed  4,960,442   144.9      34,245         161.4      506 MB           807 MB  1,108 MB  115 MB
    naive at 5M: not run, it would need about 19.6 GB (20.7 GB available)

Over the pass, RSS grew 241 MB at 1M tokens and 301 MB at 5M streamed (a fixed part: a batch of
activations, the tokenizer, the corpus's text; plus the aggregate's 13 bytes a token in doubling
buffers), and 4.1 GB at 1M naive (2 x 2,057 bytes a token); top_share@1000 agrees (0.941 at 1M). Speeds moved with the other sessions' load (the 5M pass ran faster per token than
the 1M one); the conclusion (both nulls: ~11 s) and the judging (~4-5 s) do not grow with N.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "zoo:solu-1l"
NEURON, LAYER, INDEX = "L0N216", 0, 216  # the `\bthe\b` neuron (exploratory, discovery split)
REGEX = r"\bthe\b"
K = 1_000  # top examples judged (the check's largest k)
SEQ_LEN, BATCH_SIZE = 128, 64  # corpus_stream's default rows, the engine's default batch
MB = 1024 * 1024
GB = 1024 * MB


# -- measuring, in the child process ------------------------------------------------------------------


def peak_rss_bytes() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024  # Linux reports KiB, macOS bytes


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def source_for(tokens: int, folder: Path) -> tuple[str, str, str]:
    """(source, split, words) of a stream of ``tokens`` tokens: the stdlib's train split when it
    holds enough, else a JSONL of its train documents repeated (written once into ``folder``)."""
    from interp_checks.inputs.corpora import filter_split, stdlib_documents

    train_tokens = 3_677_916  # with the zoo tokenizer (measured; a little more with BOS per row)
    if tokens <= 0.95 * train_tokens:
        return "stdlib", "train", "stdlib train"
    copies = -(-tokens // int(0.95 * train_tokens))
    path = folder / f"stdlib-train-x{copies}.jsonl"
    if not path.exists():
        documents = list(filter_split(stdlib_documents(), "train"))
        with path.open("w", encoding="utf-8") as handle:
            for copy in range(copies):
                for document in documents:
                    handle.write(json.dumps({"text": document.text, "copy": copy}) + "\n")
    return str(path), "all", f"stdlib train x{copies} (JSONL)"


def timed(owner: Any, name: str, log: list[tuple[float, int]]) -> None:
    """Wrap ``owner.name`` so each call appends (its seconds, the process's peak RSS after it) to ``log``."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            log.append((time.perf_counter() - start, peak_rss_bytes()))

    setattr(owner, name, wrapper)


def run_streamed(tokens: int, source: str, split: str, resamples: int, null_draws: int) -> dict[str, Any]:
    """The claim through the engine; seconds per phase from wrapped engine and check methods."""
    import interp_checks.stats.pooled as pooled
    from interp_checks.checks.base import get_check
    from interp_checks.claims.expect import parse_expectation
    from interp_checks.claims.schema import ClaimSpec
    from interp_checks.engine import Engine, Settings
    from interp_checks.models.cache import ModelCache
    from interp_checks.models.spec import parse_model_spec

    cache = ModelCache()
    start = time.perf_counter()
    cache.get(parse_model_spec(MODEL), "cpu")
    load_s = time.perf_counter() - start
    rss_before = current_rss_bytes()
    streams: list[tuple[float, int]] = []
    concluded: list[tuple[float, int]] = []
    judged: list[tuple[float, int]] = []
    kept: dict[str, Any] = {}
    timed(Engine, "_stream", streams)
    check = get_check("top_examples")
    timed(check, "conclude", concluded)
    timed(pooled, "evaluate_pooled", judged)
    make_aggregate = check.aggregate

    def aggregate(prepared: Any, corpus: Any, role: str) -> Any:
        built = make_aggregate(prepared, corpus, role)
        kept.setdefault(role, built)  # the first is the model's
        return built

    check.aggregate = aggregate  # type: ignore[method-assign]
    spec = ClaimSpec(
        id="bench", path=ROOT / "bench.claims.yaml", index=0, check="top_examples", model=MODEL,
        inputs={"kind": "corpus_stream", "source": source, "split": split, "max_tokens": tokens},
        expect={"top_share": parse_expectation(">= 0.5"), "band_share": parse_expectation(">= 0.5")},
        params={"neuron": NEURON, "regex": REGEX, "k": K},
    )
    engine = Engine(Settings(n_resamples=resamples, null_draws=null_draws), models=cache)
    start = time.perf_counter()
    [result] = engine.evaluate([spec])
    total_s = time.perf_counter() - start
    if result.error:
        raise RuntimeError(result.error)
    model = kept["model"]
    arrays = [model.activation.data, model.match.data, model.document.data, model.token.data, *model.sample, *model.sample_match, *model.sample_token]
    return {
        "tokens": int(model.activation.size),
        "documents": len(model.documents),
        "load_s": load_s,
        "pass_s": streams[0][0],
        "nulls_s": sum(seconds for seconds, _ in streams[1:]),
        "conclude_s": sum(seconds for seconds, _ in concluded),
        "judge_s": sum(seconds for seconds, _ in judged),
        "total_s": total_s,
        "rss_before": rss_before,
        "peak_after_pass": streams[0][1],
        "peak_after_nulls": streams[-1][1],
        "peak_after_conclude": concluded[-1][1],
        "kept_bytes": int(sum(a.nbytes for a in arrays)),
        "top_share": float(result.expectations[0].evaluation.estimate),
    }


def run_naive(tokens: int, source: str, split: str) -> dict[str, Any]:
    """Every token's activations of all neurons kept, concatenated, then the neuron's column sorted."""
    import numpy as np
    import torch

    from interp_checks.checks.base import Needs
    from interp_checks.checks.neurons import BANDS, READS
    from interp_checks.inputs.streams import corpus_rows
    from interp_checks.inputs.token_sets import regex_mask
    from interp_checks.models.cache import ModelCache
    from interp_checks.models.spec import parse_model_spec
    from interp_checks.runner import capture

    start = time.perf_counter()
    loaded = ModelCache().get(parse_model_spec(MODEL), "cpu")
    load_s = time.perf_counter() - start
    rss_before = current_rss_bytes()
    hook = READS["pre_ln"].format(layer=LAYER)
    needs = Needs(frozenset({hook}))
    kept: dict[str, list[np.ndarray]] = {"activations": [], "match": [], "document": [], "token": []}
    documents: dict[str, int] = {}
    start = time.perf_counter()
    for rows, batch in corpus_rows(source, loaded, seq_len=SEQ_LEN, batch_size=BATCH_SIZE, max_tokens=tokens, split=split, base_dir=ROOT):
        acts = capture(loaded.bridge, torch.as_tensor(rows.tokens), needs)[hook].float().numpy()
        scored = batch.valid.copy()
        scored[:, 0] = False
        ids = np.array([documents.setdefault(name, len(documents)) for name in batch.sources], dtype=np.int32)
        kept["activations"].append(acts[scored])
        kept["match"].append((regex_mask(batch, REGEX) & scored)[scored])
        kept["document"].append(np.broadcast_to(ids[:, None], scored.shape)[scored])
        kept["token"].append(batch.tokens[scored].astype(np.int32))
    kept_bytes = sum(a.nbytes for arrays in kept.values() for a in arrays)
    everything = {name: np.concatenate(arrays) for name, arrays in kept.items()}
    kept.clear()
    column = everything["activations"][:, INDEX]
    order = np.argsort(-column, kind="stable")
    match = everything["match"][order]
    bands = {band: float(match[int(len(order) * low / 100) : int(len(order) * high / 100)].mean()) for band, (low, high) in BANDS.items()}
    pass_s = time.perf_counter() - start
    peak = peak_rss_bytes()
    return {
        "tokens": int(column.size),
        "documents": len(documents),
        "load_s": load_s,
        "pass_s": pass_s,
        "total_s": pass_s,
        "rss_before": rss_before,
        "peak_after_pass": peak,
        "kept_bytes": int(kept_bytes),
        "top_share": float(match[:K].mean()),
        "bands": bands,
    }


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.child == "streamed":
        out = run_streamed(args.tokens, args.source, args.split, args.resamples, args.null_draws)
    else:
        out = run_naive(args.tokens, args.source, args.split)
    out.update(way=args.child, asked=args.tokens, peak_rss=peak_rss_bytes())
    print(json.dumps(out))


# -- the table, in the parent ---------------------------------------------------------------------


def available_bytes() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def spawn(way: str, tokens: int, args: argparse.Namespace, corpus_dir: Path) -> dict[str, Any]:
    """One measurement in a fresh interpreter (its peak RSS is its own); the parent writes the
    repeated corpus, if one is needed, so no child holds the documents it was written from."""
    source, split, words = source_for(tokens, corpus_dir)
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, RAYON_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", way, "--tokens", str(tokens), "--threads", threads,
        "--resamples", str(args.resamples), "--null-draws", str(args.null_draws), "--source", source, "--split", split,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{way} at {tokens:,} tokens failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), source=words)


def naive_projection(tokens: int, measured: list[dict[str, Any]]) -> float:
    """Projected peak RSS of the naive way at ``tokens``: the RSS before the pass plus twice the
    kept bytes (lists and their concatenation), per token as measured at a smaller size when there
    is one, else from the model's width (4 bytes a neuron, plus 9 of match, document and token)."""
    smaller = [m for m in measured if m["way"] == "naive"]
    if smaller:
        last = max(smaller, key=lambda m: m["tokens"])
        return last["rss_before"] + 2 * last["kept_bytes"] / last["tokens"] * tokens
    from interp_checks.zoo.recipes import RECIPES

    d_mlp = RECIPES[MODEL.split(":", 1)[1]].architecture()["d_mlp"]
    return 600 * MB + 2 * (4 * d_mlp + 9) * tokens


def row(m: dict[str, Any]) -> str:
    tokens = m["tokens"]
    cells = [
        m["way"], f"{tokens:,}", f"{m['documents']:,}", m["source"], f"{m['pass_s']:.1f}", f"{tokens / m['pass_s']:,.0f}",
        f"{m['total_s']:.1f}", f"{tokens / m['total_s']:,.0f}", f"{m['rss_before'] / MB:,.0f}", f"{m['peak_after_pass'] / MB:,.0f}",
        f"{m['peak_rss'] / MB:,.0f}", f"{m['kept_bytes'] / MB:,.1f}", f"{m['top_share']:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| way | tokens | documents | source | pass s | pass tok/s | end to end s | end-to-end tok/s | RSS before MB | "
    "peak after pass MB | peak MB | kept MB | top_share@1000 |\n|" + "---|" * 13
)


def parent(args: argparse.Namespace) -> None:
    sizes = [100_000, 200_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    naive_sizes = sizes if args.quick else [int(s) for s in args.naive_sizes.split(",")]
    print(f"top_examples on {MODEL}, neuron {NEURON}, regex {REGEX!r}, k {K}; {args.threads} thread(s); "
          f"{args.resamples} resamples, {args.null_draws} null draws; load average at start: {load_average()}", flush=True)
    measured: list[dict[str, Any]] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-top-examples-") as folder:
        corpus_dir = Path(folder)
        for tokens in sizes:
            for way in ("streamed", "naive"):
                if way == "naive" and tokens not in naive_sizes:
                    continue
                if way == "naive":
                    projected, available = naive_projection(tokens, measured), available_bytes()
                    if projected > available / 2:
                        skipped.append(
                            f"naive at {tokens:,} tokens not run: it would need about {projected / GB:.1f} GB "
                            f"(RSS before + twice the kept bytes, as measured per token at the largest size run), "
                            f"over half the {available / GB:.1f} GB available"
                        )
                        continue
                started = time.perf_counter()
                measured.append(spawn(way, tokens, args, corpus_dir))
                print(f"  {way} {tokens:,}: {time.perf_counter() - started:.0f} s wall (process)", flush=True)
    print()
    print(HEADER)
    for m in measured:
        print(row(m))
    print()
    print(
        "tokens: scored tokens (BOS excluded); pass: the model's stream (naive: with the concatenation and the sort); "
        "end to end: streamed, the whole claim (twins' null streams, conclusion, judging); naive, the pass (no nulls, "
        "no intervals). kept: the bytes the pass holds for the corpus (streamed: the aggregate's buffers, with the "
        "all-neuron sample of the first null_tokens tokens; naive: every neuron's activations). Peaks: ru_maxrss."
    )
    for m in measured:
        if m["way"] == "streamed":
            print(
                f"streamed {m['tokens']:,}: pass {m['pass_s']:.1f} s (peak RSS after it {m['peak_after_pass'] / MB:,.0f} MB), "
                f"random-weights twins' null streams {m['nulls_s']:.1f} s ({m['peak_after_nulls'] / MB:,.0f} MB), "
                f"conclude (statistics, both nulls, pictures) {m['conclude_s']:.1f} s ({m['peak_after_conclude'] / MB:,.0f} MB), "
                f"judging (document bootstrap) {m['judge_s']:.1f} s ({m['peak_rss'] / MB:,.0f} MB at the end)"
            )
    for line in skipped:
        print(line)
    for tokens in sizes:
        pair = {m["way"]: m for m in measured if m["asked"] == tokens}
        if len(pair) == 2:
            s, n = pair["streamed"], pair["naive"]
            print(
                f"{tokens:,} tokens: RSS growth over the pass, naive / streamed: {(n['peak_after_pass'] - n['rss_before']) / MB:,.0f} MB / "
                f"{(s['peak_after_pass'] - s['rss_before']) / MB:,.0f} MB; kept bytes {n['kept_bytes'] / s['kept_bytes']:.0f}x; "
                f"pass speed naive / streamed {s['pass_s'] / n['pass_s']:.2f}; same top_share@{K}: {abs(s['top_share'] - n['top_share']) < 1e-9}"
            )
    print(f"load average at the end: {load_average()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,5000000", help="tokens per streamed run, comma-separated (default 1M,5M)")
    parser.add_argument("--naive-sizes", default="1000000,5000000", help="sizes to run the naive way at, when it fits in memory (default 1M,5M)")
    parser.add_argument("--threads", type=int, default=1, help="torch, BLAS and tokenizer threads (default 1)")
    parser.add_argument("--resamples", type=int, default=None, help="bootstrap resamples, as --interp-resamples (default 9999; 999 with --quick)")
    parser.add_argument("--null-draws", type=int, default=None, help="random-weights twins, as --interp-null-draws (default 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="100k and 200k tokens, both ways, 999 resamples, 1 null draw: a smoke test")
    parser.add_argument("--child", choices=("streamed", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--split", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.resamples is None:
        args.resamples = 999 if args.quick else 9_999
    if args.null_draws is None:
        args.null_draws = 1 if args.quick else 5
    child(args) if args.child else parent(args)


if __name__ == "__main__":
    main()
