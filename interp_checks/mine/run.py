"""Mining: stream two models over a corpus, score every token's gain, fold it into the aggregates."""

from __future__ import annotations

import datetime as _dt
import math
import os
import time
from typing import Any, Callable, Iterable

import numpy as np

from interp_checks.checks.compare import DEFAULT_FLOOR, token_gains
from interp_checks.inputs.corpora import SPLITS, Document, iter_documents, resolve_source, split_of
from interp_checks.inputs.streams import corpus_rows
from interp_checks.mine.aggregate import MineAggregator, MineError
from interp_checks.mine.result import MineResult

__all__ = ["mine", "score_batch"]


def score_batch(model: Any, baseline: Any, tokens: np.ndarray, floor: float, device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gains, model logp, baseline logp) for a batch of token rows: one logits-only pass per model."""
    import torch

    from interp_checks.checks.base import Needs
    from interp_checks.runner import capture, next_token_logprobs

    needs = Needs(frozenset(), logits=True)
    batch = torch.as_tensor(tokens, device=device)
    with torch.inference_mode():
        model_logp = next_token_logprobs(capture(model.bridge, batch, needs)["logits"], batch)
        baseline_logp = next_token_logprobs(capture(baseline.bridge, batch, needs)["logits"], batch)
    return token_gains(model_logp, baseline_logp, floor), model_logp, baseline_logp


def mine(
    model: str,
    baseline: str,
    *,
    corpus: str | os.PathLike | Iterable[Document] = "stdlib",
    split: str = "train",
    max_tokens: int | None = 1_000_000,
    seq_len: int | None = None,
    batch_size: int = 16,
    floor: float = DEFAULT_FLOOR,
    top_k: int = 50,
    context_chars: int = 60,
    device: str = "cpu",
    base_dir: str | os.PathLike | None = None,
    progress: bool = True,
    models: Any = None,
    callback: Callable[[MineAggregator], None] | None = None,
    threads: int | None = None,
) -> MineResult:
    """Run ``model`` and ``baseline`` over ``corpus`` and aggregate their per-token gains by pattern.

    ``model``/``baseline``: model specs (``zoo:``, ``hf:``, ``gguf:``, ``native:``; relative paths
    against ``base_dir``). They must share a tokenizer. ``corpus``: ``"stdlib"`` (also
    ``stdlib-docs``, ``stdlib-code``), a path (``.txt``/``.jsonl`` file, folder, saved dataset), or
    any iterable of :class:`Document`. ``split``: ``train`` (default), ``all`` or ``heldout`` (by document,
    :func:`~interp_checks.inputs.corpora.split_of`); the draft claims sample the held-out documents,
    so the default leaves them unread.
    ``max_tokens``: stop after this many tokens (BOS included; ``None``: the whole corpus).
    ``seq_len``: window length (default: the smaller context of the two models); each window is BOS
    + ``seq_len - 1`` document tokens, the last window of a document padded. ``models``: a
    :class:`ModelCache` to load through. ``callback(aggregator)`` is called after every batch.
    ``threads``: torch CPU threads while mining (restored afterwards); on a machine whose cores are
    busy with other work, 1 thread can be several times faster than oversubscribed ones.
    """
    from interp_checks.models.cache import ModelCache
    from interp_checks.models.load import resolve_device
    from interp_checks.models.spec import parse_model_spec

    if split not in SPLITS:
        raise MineError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not isinstance(floor, (int, float)) or isinstance(floor, bool) or not math.isfinite(floor) or floor > 0:
        raise MineError(f"floor must be a number <= 0 (a log-prob), got {floor!r}")
    if max_tokens is not None and max_tokens < 1:
        raise MineError(f"max_tokens must be positive (or None for the whole corpus), got {max_tokens}")
    if threads is not None and threads < 1:
        raise MineError(f"threads must be >= 1, got {threads}")
    if batch_size < 1 or top_k < 1 or context_chars < 0:
        raise MineError(f"need batch_size >= 1, top_k >= 1, context_chars >= 0; got {batch_size}, {top_k}, {context_chars}")
    device = resolve_device(device)
    model_spec = parse_model_spec(model, base_dir=base_dir)
    baseline_spec = parse_model_spec(baseline, base_dir=base_dir)
    if isinstance(corpus, (str, os.PathLike)):
        resolved = resolve_source(corpus, base_dir=base_dir)
        source: Any = resolved
        corpus_name: str | None = str(resolved)
        corpus_label = str(corpus)
    else:
        source, corpus_name, corpus_label = corpus, None, "documents given by the caller"

    cache = models if models is not None else ModelCache()
    subject = cache.get(model_spec, device)
    other = cache.get(baseline_spec, device)
    _check_same_tokenizer(subject, other)
    n_ctx = min(subject.n_ctx, other.n_ctx)
    seq_len = n_ctx if seq_len is None else int(seq_len)
    if not 2 <= seq_len <= n_ctx:
        raise MineError(f"seq_len must be between 2 and {n_ctx} (the smaller context of the two models), got {seq_len}")
    tokenizer = subject.tokenizer
    bos = subject.bos_token_id
    pad = bos if bos is not None else 0
    prefix = 0 if bos is None else 1
    aggregator = MineAggregator(
        tokenizer, top_k=top_k, context_chars=context_chars, prefix=prefix, special_ids=subject.special_token_ids
    )
    import torch

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    start = time.perf_counter()
    try:
        for batch, rows in corpus_rows(
            source, subject, seq_len=seq_len, batch_size=batch_size, max_tokens=max_tokens,
            split=split, row_text=aggregator.row_text, progress=progress,
        ):
            gains, model_logp, baseline_logp = score_batch(subject, other, batch.tokens, float(floor), device)
            aggregator.update(batch, gains, model_logp, baseline_logp, text=rows)
            if callback is not None:
                callback(aggregator)
    finally:
        torch.set_num_threads(previous_threads)
    seconds = time.perf_counter() - start
    if aggregator.overall.tokens == 0:
        raise MineError(
            f"corpus {corpus_label!r} (split {split}) gave no tokens to score: it is empty, or every document "
            f"of the split is blank"
        )
    return MineResult(
        model=str(model_spec),
        baseline=str(baseline_spec),
        model_text=model,
        baseline_text=baseline,
        corpus=corpus_name,
        corpus_label=corpus_label,
        split=split,
        floor=float(floor),
        seq_len=seq_len,
        batch_size=batch_size,
        max_tokens=max_tokens,
        top_k=top_k,
        context_chars=context_chars,
        device=device,
        tokens_seen=aggregator.tokens_seen,
        windows=aggregator.windows,
        documents=aggregator.documents,
        seconds=seconds,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        patterns=dict(aggregator.stats),
        overall=aggregator.overall,
        top_gains=[entry[2] for entry in sorted(aggregator.top_gains, reverse=True, key=lambda e: (e[0], e[1]))],
        top_losses=[entry[2] for entry in sorted(aggregator.top_losses, reverse=True, key=lambda e: (e[0], e[1]))],
        heldout_available=_has_heldout(corpus_name) if corpus_name is not None else None,
    )


def _check_same_tokenizer(model: Any, baseline: Any) -> None:
    advice = (
        "the miner compares the two models token by token, so they must share one tokenizer. To compare "
        "models with different tokenizers, write a logprob_gain claim on text inputs instead (baseline: SPEC, "
        "inputs: {kind: corpus, ...}): it lines the two tokenizations up on character spans"
    )
    for loaded in (model, baseline):
        if loaded.tokenizer is None:
            raise MineError(f"{loaded.spec.describe()} has no tokenizer, and the miner reads text: {advice}")
    vocab_m, vocab_b = model.tokenizer.get_vocab(), baseline.tokenizer.get_vocab()
    if vocab_m != vocab_b:
        differ = sorted(set(vocab_m.items()) ^ set(vocab_b.items()), key=lambda kv: (kv[1], kv[0]))[:3]
        shown = ", ".join(f"{t!r}={i}" for t, i in differ)
        raise MineError(
            f"{model.spec.describe()} and {baseline.spec.describe()} have different tokenizers "
            f"({len(vocab_m)} vs {len(vocab_b)} tokens; e.g. {shown} is in only one): {advice}"
        )


def _has_heldout(corpus: str) -> bool:
    """Whether the corpus has any held-out document (a small folder may have none)."""
    try:
        return any(split_of(doc.name) == "heldout" for doc in iter_documents(corpus))
    except ValueError:
        return False
