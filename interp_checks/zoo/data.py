"""Training data for the zoo: the running Python's own standard library, plus synthetic copy tasks.

Why the stdlib: it is on every machine that runs this package, so the zoo can be retrained offline
and nothing copyrighted or downloaded is committed. The text is read *at run time* from
``pydoc_data.topics.topics`` (the reference-manual topics pydoc shows) and from the ``.py`` files
under ``sysconfig.get_paths()["stdlib"]``; no copy of it is ever written into the repository. The
corpus therefore depends on the Python version: :func:`corpus_fingerprint` (a SHA-256 of every
document's name and text) is recorded in each model's metadata so a retrain can tell whether it saw
the same text.

Why a mixture: real code teaches the model real next-token statistics (a later comparison of 2L vs
1L log-probs on stdlib text needs that), but real text alone makes induction heads form slowly in
models this small. Synthetic sequences -- BOS + uniformly random tokens in which several spans are
copied to *random* later offsets -- reward exactly one mechanism: "find the earlier occurrence of the
current token and predict what followed it". The copies are at random offsets and of random lengths
on purpose: a fixed offset (say, always a copy of the first half) can be solved by attending to
"the position 32 back", a positional shortcut that scores as induction on one input distribution
and fails on every other.

Determinism: documents are listed in sorted order, the train/held-out split is a hash of each
document's name (not of the text, so an edited file stays in its split), and every random draw goes
through a ``numpy.random.Generator`` passed in by the caller.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
# Fixed ids: the trainer assigns special tokens first, in this order. Claims, generators and the
# checkpoints' config all rely on BOS being 0, so train_tokenizer checks it.
SPECIAL_TOKENS = (BOS, EOS, PAD)
BOS_ID, EOS_ID, PAD_ID = 0, 1, 2

# Why 2048: in an attention-only model of width 64 the embedding and unembedding are most of the
# parameters (2 * 2048 * 64 = 262k of ~300k) and the [batch, pos, vocab] logits are most of the
# compute and memory traffic. Measured on 2 CPU cores, 2L/d_model 64/batch 16x256: ~42k tokens/s at
# 2048 vs ~16k tokens/s at 4096 (the 4096 logits tensor no longer fits in cache). 2048 merges still
# compress stdlib source to ~3.1 characters per token.
TOKENIZER_VOCAB_SIZE = 2048


# The corpus itself (file selection, document names, the held-out split, the fingerprint) lives in
# interp_checks.inputs.corpora, so claims that say `split: heldout` mean exactly the documents the zoo
# never trained on.
from interp_checks.inputs.corpora import (  # noqa: E402,F401  (re-exported: the zoo's corpus API)
    HELDOUT_PERCENT,
    SKIP_DIRS,
    SKIP_FILES,
    Document,
    corpus_fingerprint,
    split_documents,
    split_of,
    stdlib_root,
    stdlib_source_paths,
)
from interp_checks.inputs.corpora import stdlib_documents as _stdlib_documents  # noqa: E402
from interp_checks.models.native import load_tokenizer  # noqa: E402  (one loader for every tokenizer file)


def stdlib_documents() -> list[Document]:
    """The corpus, in a fixed order: pydoc topics (sorted by key), then stdlib sources (sorted by path)."""
    return list(_stdlib_documents("all"))


# --- tokenizer -----------------------------------------------------------------------------------


def train_tokenizer(documents: Sequence[Document], vocab_size: int = TOKENIZER_VOCAB_SIZE) -> Any:
    """A byte-level BPE (GPT-2 style, no prefix space) with the special tokens at ids 0, 1, 2.

    Trained on the train split only, so held-out text is also out-of-sample for the merges.
    Byte-level means every string round-trips exactly: no unknown token is ever needed.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([doc.text for doc in documents], trainer=trainer)
    for expected, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != expected:
            raise RuntimeError(f"tokenizer gave {token} id {tokenizer.token_to_id(token)}, expected {expected}")
    return tokenizer


def write_tokenizer(path: str | Path, vocab_size: int = TOKENIZER_VOCAB_SIZE) -> Path:
    """Train the zoo tokenizer on the train split of the stdlib corpus and save it as ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    train_docs = split_documents(stdlib_documents())["train"]
    train_tokenizer(train_docs, vocab_size).save(str(path))
    return path


# --- token streams -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenizedCorpus:
    """Each split as one stream: documents' tokens joined by EOS (so windows may cross documents,
    but the model is told where one ends)."""

    train: np.ndarray
    heldout: np.ndarray
    n_documents: dict[str, int]
    fingerprint: str
    python_version: str

    def describe(self) -> dict[str, Any]:
        return {
            "source": "pydoc_data.topics.topics + stdlib .py sources of the Python that trained it",
            "python_version": self.python_version,
            "fingerprint_sha256": self.fingerprint,
            "documents": dict(self.n_documents),
            "tokens": {"train": int(self.train.size), "heldout": int(self.heldout.size)},
            "heldout_rule": f"sha256(document name) % 100 < {HELDOUT_PERCENT}",
        }


def _stream(tokenizer: Any, documents: Sequence[Document]) -> np.ndarray:
    if not documents:
        return np.zeros(0, dtype=np.int32)
    encodings = tokenizer.encode_batch([doc.text for doc in documents], add_special_tokens=False)
    parts = []
    for enc in encodings:
        parts.append(np.asarray(enc.ids, dtype=np.int32))
        parts.append(np.asarray([EOS_ID], dtype=np.int32))
    return np.concatenate(parts)


def tokenize_corpus(tokenizer_path: str | Path, max_documents: int | None = None) -> TokenizedCorpus:
    """Tokenize both splits. ``max_documents`` keeps only the first N documents *of each split*
    (for fast tests; the zoo recipes use everything)."""
    return _tokenize_corpus_cached(str(Path(tokenizer_path).resolve()), _file_digest(tokenizer_path), max_documents)


def _file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@lru_cache(maxsize=4)
def _tokenize_corpus_cached(tokenizer_path: str, digest: str, max_documents: int | None) -> TokenizedCorpus:
    # Cached so ``train all`` encodes the 12 MB corpus once, not once per model.
    documents = stdlib_documents()
    splits = split_documents(documents)
    if max_documents is not None:
        splits = {name: docs[:max_documents] for name, docs in splits.items()}
    tokenizer = load_tokenizer(tokenizer_path).backend_tokenizer  # the raw `tokenizers` object: encode_batch
    return TokenizedCorpus(
        train=_stream(tokenizer, splits["train"]),
        heldout=_stream(tokenizer, splits["heldout"]),
        n_documents={name: len(docs) for name, docs in splits.items()},
        fingerprint=corpus_fingerprint(documents),
        python_version=sys.version.split()[0],
    )


# --- batches -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mixture:
    """What each training batch is made of.

    ``synthetic_fraction`` of every batch's *tokens* are synthetic copy sequences, the rest windows
    of real stdlib text; the row counts are fixed (rounded), so the mixture is exact, not random.
    Synthetic rows are ``synthetic_seq_len`` tokens long, text rows the recipe's ``seq_len``.

    Why short synthetic rows: at the start of training attention is spread evenly over all earlier
    keys, so the gradient that grows the previous-token -> induction circuit scales with one over
    the number of keys. In 2L trials (4096 tokens per step, synthetic only) the circuit had not
    formed after 900 steps on 128-token rows and formed at step ~450 on 64-token rows; on 256-token
    rows mixed with text the model settled into an "in-context unigram" solution (attend
    everywhere, boost tokens already seen). Hence the recipes' curriculum: 64-token rows until the
    circuit exists, then 128-token rows (copy distances up to ~120) next to 256-token text rows.
    The circuit is content-based and positions are rotary (relative), so it carries over to the
    longer rows.

    A synthetic row is BOS + uniformly random tokens in which ``min_spans``..``max_spans`` spans of
    ``min_span_len``..``max_span_len`` tokens are copied from a random source offset to a random later
    destination. A destination never overlaps an earlier span (source or destination), so every
    copy matches its source exactly. In trials, long clean copies mattered: an LZ77-style generator
    (many short copies, copies of copies) left a 2L model in the in-context-unigram solution where
    this one formed induction heads.
    """

    synthetic_fraction: float = 0.5
    synthetic_seq_len: int = 128
    min_spans: int = 1
    max_spans: int = 2
    min_span_len: int = 8
    max_span_len: int = 48
    # Whether the fresh (unpredictable) tokens of synthetic rows carry loss; see ``Batch``.
    loss_on_fresh: bool = False

    def rows(self, batch_size: int, seq_len: int) -> tuple[int, int]:
        """(synthetic rows, text rows) for a batch of ``batch_size`` x ``seq_len`` tokens."""
        syn_len = min(self.synthetic_seq_len, seq_len)
        n_text = int(round((1 - self.synthetic_fraction) * batch_size))
        n_syn = int(round(self.synthetic_fraction * batch_size * seq_len / syn_len))
        return n_syn, n_text


@dataclass(frozen=True)
class Span:
    """One planted copy: tokens[dst:dst+length] == tokens[src:src+length] (positions include BOS)."""

    src: int
    dst: int
    length: int


def synthetic_copy_sequences(
    n: int, seq_len: int, sampleable_ids: np.ndarray, mixture: Mixture, rng: np.random.Generator
) -> tuple[np.ndarray, list[list[Span]]]:
    """``n`` rows of BOS + random tokens with copied spans at random offsets; returns the spans too."""
    tokens = np.empty((n, seq_len), dtype=np.int64)
    tokens[:, 0] = BOS_ID
    tokens[:, 1:] = rng.choice(sampleable_ids, size=(n, seq_len - 1))
    max_len = min(mixture.max_span_len, (seq_len - 1) // 2)
    min_len = min(mixture.min_span_len, max_len)
    all_spans: list[list[Span]] = []
    for row in range(n):
        used = np.zeros(seq_len, dtype=bool)
        spans: list[Span] = []
        for _ in range(int(rng.integers(mixture.min_spans, mixture.max_spans + 1))):
            for _attempt in range(20):  # a later span may not fit next to earlier ones: retry
                length = int(rng.integers(min_len, max_len + 1))
                src = int(rng.integers(1, seq_len - 2 * length + 1))
                dst = int(rng.integers(src + length, seq_len - length + 1))
                if not used[dst : dst + length].any():
                    tokens[row, dst : dst + length] = tokens[row, src : src + length]
                    used[src : src + length] = True
                    used[dst : dst + length] = True
                    spans.append(Span(src, dst, length))
                    break
        all_spans.append(spans)
    return tokens, all_spans


def text_windows(stream: np.ndarray, n: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` windows of ``seq_len`` tokens: BOS followed by ``seq_len - 1`` tokens of the stream
    starting at a uniformly random offset."""
    body = seq_len - 1
    if stream.size < body:
        raise ValueError(f"token stream has {stream.size} tokens, fewer than one window of {body}")
    starts = rng.integers(0, stream.size - body + 1, size=n)
    out = np.empty((n, seq_len), dtype=np.int64)
    out[:, 0] = BOS_ID
    for i, start in enumerate(starts):
        out[i, 1:] = stream[start : start + body]
    return out


def heldout_windows(stream: np.ndarray, n: int, seq_len: int) -> np.ndarray:
    """``n`` evenly spaced BOS-prefixed windows of the held-out stream: no randomness at all, so
    every model (and every retrain) is scored on exactly the same tokens."""
    body = seq_len - 1
    if stream.size < body:
        raise ValueError(f"held-out stream has {stream.size} tokens, fewer than one window of {body}")
    n = min(n, stream.size // body)
    starts = np.linspace(0, stream.size - body, num=n).astype(np.int64)
    out = np.empty((n, seq_len), dtype=np.int64)
    out[:, 0] = BOS_ID
    for i, start in enumerate(starts):
        out[i, 1:] = stream[start : start + body]
    return out


def sampleable_ids(d_vocab: int) -> np.ndarray:
    """Token ids synthetic sequences draw from: every id except the special tokens (as the
    ``repeated_random_tokens`` input generator does)."""
    ids = np.arange(d_vocab)
    return ids[~np.isin(ids, [BOS_ID, EOS_ID, PAD_ID])]


@dataclass
class Batch:
    """One training batch: synthetic rows with their loss mask and planted copies, and text rows.

    ``synthetic_mask[i, t]`` says whether predicting ``synthetic[i, t + 1]`` counts. Unless the
    mixture has ``loss_on_fresh``, only targets inside a copy (after its first token) count: the
    fresh random tokens are unpredictable by construction and their loss is pure gradient noise
    (~log(vocab) whatever the model does). In a 2L trial, masking that noise out moved the induction
    phase change from "not within 1000 steps" to ~650. Once the circuit exists the noise is
    harmless, and counting fresh tokens keeps the model calibrated on unpredictable tokens (without
    it, the loss on the first half of repeated random tokens rose to ~17 nats: the model had only
    ever been graded where copying works). Every target of a text row counts.
    """

    synthetic: np.ndarray
    synthetic_mask: np.ndarray
    spans: list[list[Span]]
    text: np.ndarray


def copy_loss_mask(spans: list[list[Span]], seq_len: int) -> np.ndarray:
    """[rows, seq_len - 1] mask of the targets an induction head can predict: tokens dst+1 .. dst+len-1."""
    mask = np.zeros((len(spans), seq_len - 1), dtype=bool)
    for row, row_spans in enumerate(spans):
        for span in row_spans:
            mask[row, span.dst : span.dst + span.length - 1] = True  # target t sits at index t - 1
    return mask


class BatchSampler:
    """Seeded batches of a mixture (see :class:`Mixture`); all randomness from one Generator.

    ``sample(mixture)`` may be given another mixture than the default, which is how the training
    curriculum switches from synthetic-only to mixed batches without disturbing the random stream.
    """

    def __init__(self, stream: np.ndarray, d_vocab: int, seq_len: int, batch_size: int, mixture: Mixture, seed: int):
        self.stream = stream
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.mixture = mixture
        self.ids = sampleable_ids(d_vocab)
        self.rng = np.random.default_rng(seed)

    def shape(self, mixture: Mixture | None = None) -> dict[str, int]:
        """Rows and row lengths of a batch of ``mixture`` (default: this sampler's)."""
        mixture = mixture or self.mixture
        n_syn, n_text = mixture.rows(self.batch_size, self.seq_len)
        syn_len = min(mixture.synthetic_seq_len, self.seq_len)
        return {
            "synthetic_rows": n_syn,
            "synthetic_row_len": syn_len,
            "text_rows": n_text,
            "text_row_len": self.seq_len,
            "tokens": n_syn * syn_len + n_text * self.seq_len,
        }

    def sample(self, mixture: Mixture | None = None) -> Batch:
        mixture = mixture or self.mixture
        shape = self.shape(mixture)
        synthetic, spans = synthetic_copy_sequences(
            shape["synthetic_rows"], shape["synthetic_row_len"], self.ids, mixture, self.rng
        )
        text = text_windows(self.stream, shape["text_rows"], self.seq_len, self.rng) if shape["text_rows"] else (
            np.zeros((0, self.seq_len), dtype=np.int64)
        )
        if mixture.loss_on_fresh:
            mask = np.ones((shape["synthetic_rows"], shape["synthetic_row_len"] - 1), dtype=bool)
        else:
            mask = copy_loss_mask(spans, shape["synthetic_row_len"])
        return Batch(synthetic, mask, spans, text)
