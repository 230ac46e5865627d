"""The miner on millions of tokens: throughput, and peak memory that does not grow with the corpus.

Runs ``interp_checks.mine.mine`` (two logits-only forward passes per batch, pattern masks, bounded
aggregates) over ``--tokens`` tokens of the standard-library corpus's train split (what the miner
reads by default) and prints, at every
``--every`` tokens: the elapsed time, tokens per second (since the previous checkpoint and
overall), the process's peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and its current
RSS. Flat peak RSS from one checkpoint to the next is the claim "memory does not grow with the
corpus".

The naive comparison: a miner that keeps every per-token gain and groups and ranks them at the
end. Its peak is projected as (RSS when streaming starts) + tokens x bytes per token, with the most
compact layout such a miner could use: a float64 gain, one byte per pattern flag, and an int64
location to show the context later (8 + n_patterns + 8 bytes; a Python list of per-token records
would need ~10x more). The ratio naive / measured is printed per checkpoint.

Corpus size: with the zoo tokenizer the stdlib's train split is ~3.7 M tokens (it depends on the
Python version), fewer than the default 5 M. The script counts one pass first and, when more tokens
are asked for, cycles through the train documents again (pass 2 renamed ``pass2/<name>``), which is
the same work per token as a larger corpus; it says so in its output. The cycled documents are
already the train split, so they are mined as given (``split="all"``): a renamed document would
otherwise be assigned a split by its new name.

Usage::

    python benchmarks/bench_miner.py [--tokens 5000000] [--model zoo:attn-only-2l]
        [--baseline zoo:attn-only-1l] [--every 1000000] [--threads N] [--device cpu] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Iterator

from interp_checks.inputs.corpora import Document, filter_split, iter_token_batches, stdlib_documents
from interp_checks.inputs.token_sets import PATTERNS
from interp_checks.mine import MineAggregator, mine, write_mine_report
from interp_checks.models.cache import ModelCache
from interp_checks.models.spec import parse_model_spec

MB = 1024 * 1024


def peak_rss_bytes() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024  # Linux reports KiB, macOS bytes


def current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()
    except OSError:
        return peak_rss_bytes()


def cycled(documents: list[Document], passes: int) -> Iterator[Document]:
    for number in range(1, passes + 1):
        for doc in documents:
            yield doc if number == 1 else Document(f"pass{number}/{doc.name}", doc.text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=5_000_000)
    parser.add_argument("--model", default="zoo:attn-only-2l")
    parser.add_argument("--baseline", default="zoo:attn-only-1l")
    parser.add_argument("--every", type=int, default=1_000_000, help="checkpoint interval in tokens")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="also write mine.md / mine.json here")
    args = parser.parse_args()

    cache = ModelCache()
    start = time.perf_counter()
    model = cache.get(parse_model_spec(args.model), args.device)
    baseline = cache.get(parse_model_spec(args.baseline), args.device)
    seq_len = min(model.n_ctx, baseline.n_ctx)
    print(f"models: {args.model} vs {args.baseline}, loaded in {time.perf_counter() - start:.1f} s; device {model.device}")

    documents = list(filter_split(stdlib_documents(), "train"))  # the miner's default split
    encoder = getattr(model.tokenizer, "backend_tokenizer", model.tokenizer)
    start = time.perf_counter()
    one_pass = sum(
        int(batch.valid.sum())
        for batch in iter_token_batches(documents, encoder, seq_len=seq_len, batch_size=64, bos_id=model.bos_token_id, pad_id=model.bos_token_id or 0)
    )
    passes = -(-args.tokens // one_pass)
    print(
        f"corpus: stdlib, train split (the miner's default), {len(documents)} documents, {one_pass:,} tokens per pass with this tokenizer "
        f"(windows of {seq_len}, BOS included; counted in {time.perf_counter() - start:.1f} s)"
    )
    if passes > 1:
        print(f"  {args.tokens:,} tokens asked for: cycling through the corpus ({passes} passes, later passes renamed passN/...)")
    # One pass: the named corpus on the miner's default split (train). More: the train documents, cycled.
    corpus, split = ("stdlib", "train") if passes == 1 else (cycled(documents, passes), "all")

    n_patterns = len(PATTERNS)
    naive_bytes_per_token = 8 + n_patterns + 8
    checkpoints: list[dict[str, float]] = []
    state = {"next": args.every, "start": 0.0, "rss0": 0}

    def on_batch(aggregator: MineAggregator) -> None:
        if not state["start"]:
            state["start"], state["rss0"] = time.perf_counter(), current_rss_bytes()
        if aggregator.tokens_seen < state["next"]:
            return
        while state["next"] <= aggregator.tokens_seen:
            state["next"] += args.every
        record = {
            "tokens": aggregator.tokens_seen,
            "seconds": time.perf_counter() - state["start"],
            "peak": peak_rss_bytes(),
            "rss": current_rss_bytes(),
        }
        previous = checkpoints[-1] if checkpoints else {"tokens": 0, "seconds": 0.0}
        record["segment_rate"] = (record["tokens"] - previous["tokens"]) / max(record["seconds"] - previous["seconds"], 1e-9)
        naive = state["rss0"] + record["tokens"] * naive_bytes_per_token
        if not checkpoints:
            print(
                f"\n{'tokens':>11} {'elapsed s':>9} {'tok/s (segment)':>15} {'tok/s (all)':>11} {'peak RSS MB':>11} "
                f"{'RSS MB':>7} {'naive peak MB':>13} {'naive/miner':>11}"
            )
        print(
            f"{record['tokens']:>11,} {record['seconds']:>9.1f} {record['segment_rate']:>15,.0f} "
            f"{record['tokens'] / record['seconds']:>11,.0f} {record['peak'] / MB:>11.1f} {record['rss'] / MB:>7.1f} "
            f"{naive / MB:>13.1f} {naive / record['peak']:>11.2f}",
            flush=True,
        )
        checkpoints.append(record)

    result = mine(
        args.model, args.baseline, corpus=corpus, split=split, max_tokens=args.tokens, batch_size=args.batch_size,
        device=args.device, progress=False, models=cache, callback=on_batch, threads=args.threads,
    )
    print(
        f"\nmined {result.tokens_seen:,} tokens ({result.tokens_scored:,} scored, {result.windows:,} windows) in "
        f"{result.seconds:.1f} s: {result.tokens_per_second:,.0f} tokens/s on {result.device}"
        + (f" with {args.threads} torch thread(s)" if args.threads else "")
    )
    print(f"RSS when streaming started: {state['rss0'] / MB:.1f} MB; peak RSS at the end: {peak_rss_bytes() / MB:.1f} MB")
    if len(checkpoints) >= 2:
        first, last = checkpoints[0], checkpoints[-1]
        growth = last["peak"] - first["peak"]
        per_token = growth / max(last["tokens"] - first["tokens"], 1)
        print(
            f"peak RSS from {first['tokens']:,} to {last['tokens']:,} tokens: {growth / MB:+.1f} MB "
            f"({per_token:.3f} bytes per token; the naive miner: {naive_bytes_per_token} bytes per token)"
        )
        naive = state["rss0"] + last["tokens"] * naive_bytes_per_token
        print(
            f"naive (every per-token gain kept, {naive_bytes_per_token} B/token) at {last['tokens']:,} tokens: "
            f"{naive / MB:.1f} MB projected vs {last['peak'] / MB:.1f} MB measured = {naive / last['peak']:.2f}x; "
            f"at 100 M tokens: {(state['rss0'] + 1e8 * naive_bytes_per_token) / MB:,.0f} MB vs the same "
            f"{last['peak'] / MB:.0f} MB"
        )
    top = result.ranked()[:5]
    print("top patterns by total gain: " + ", ".join(f"{s.name} {s.window_mean:+.3f}/window" for s in top))
    if args.out:
        for path in write_mine_report(result, args.out).values():
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
