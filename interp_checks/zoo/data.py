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
import os
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

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

# Percentage of documents held out (by hash of the document name) for the held-out loss.
HELDOUT_PERCENT = 5

# Directory names under the stdlib that are not "the library": test suites (their text is largely
# generated fixtures), third-party packages, caches, and the build-config directory.
SKIP_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"})
# pydoc_data/topics.py *is* the docs corpus, already read as pydoc_data.topics.topics.
SKIP_FILES = frozenset({"pydoc_data/topics.py"})


@dataclass(frozen=True)
class Document:
    """One training document: a stable name (used for the split) and its text."""

    name: str
    text: str


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _skip_dir(name: str) -> bool:
    return name in SKIP_DIRS or name.startswith("config-") or name.startswith(".")


def stdlib_source_paths(root: Path | None = None) -> list[Path]:
    """Sorted ``.py`` files of the stdlib, without test suites, site-packages or the docs module."""
    root = Path(root) if root is not None else stdlib_root()
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skip_dir(d))
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = Path(dirpath) / filename
            if path.relative_to(root).as_posix() in SKIP_FILES:
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def stdlib_documents() -> list[Document]:
    """The corpus, in a fixed order: pydoc topics (sorted by key), then stdlib sources (sorted by path)."""
    from pydoc_data.topics import topics

    documents = [Document(f"pydoc_data.topics/{key}", topics[key]) for key in sorted(topics)]
    root = stdlib_root()
    for path in stdlib_source_paths(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            documents.append(Document(f"stdlib/{path.relative_to(root).as_posix()}", text))
    return documents


def split_of(name: str) -> str:
    """``"heldout"`` for ~HELDOUT_PERCENT% of document names, ``"train"`` otherwise (hash-based)."""
    bucket = int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "heldout" if bucket < HELDOUT_PERCENT else "train"


def split_documents(documents: Iterable[Document]) -> dict[str, list[Document]]:
    out: dict[str, list[Document]] = {"train": [], "heldout": []}
    for doc in documents:
        out[split_of(doc.name)].append(doc)
    return out


def corpus_fingerprint(documents: Iterable[Document]) -> str:
    """SHA-256 over names and texts: equal fingerprints mean the same training text."""
    digest = hashlib.sha256()
    for doc in documents:
        digest.update(doc.name.encode("utf-8") + b"\0" + doc.text.encode("utf-8") + b"\0")
    return digest.hexdigest()


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


def load_tokenizer(path: str | Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


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
    tokenizer = load_tokenizer(tokenizer_path)
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

    ``synthetic_fraction`` of every batch's rows (rounded, the same count in every batch, so the
    mixture is exact rather than random) are synthetic copy sequences; the rest are windows of real
    stdlib text.

    A synthetic row is written left to right as a sequence of segments (LZ77-style): after BOS and a
    fresh run of at least ``min_span_len`` random tokens, each next segment is, with probability
    ``copy_prob``, a *copy* of ``min_span_len``..``max_span_len`` tokens taken from a uniformly random
    earlier offset of the same row, and otherwise a fresh run of 1..``max_fresh_len`` random tokens.
    So every row holds several copies, each at its own random distance from its source, and a copy
    always matches its source exactly (nothing is overwritten afterwards).
    """

    synthetic_fraction: float = 0.5
    min_span_len: int = 4
    max_span_len: int = 48
    copy_prob: float = 0.5
    max_fresh_len: int = 32


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
    all_spans: list[list[Span]] = []
    for row in range(n):
        spans = []
        pos = 1 + int(rng.integers(mixture.min_span_len, mixture.max_fresh_len + mixture.min_span_len + 1))
        while pos < seq_len:
            if rng.random() < mixture.copy_prob and pos - 1 >= mixture.min_span_len:
                length = int(rng.integers(mixture.min_span_len, mixture.max_span_len + 1))
                length = min(length, seq_len - pos, pos - 1)
                src = int(rng.integers(1, pos - length + 1))  # the source ends at or before pos
                tokens[row, pos : pos + length] = tokens[row, src : src + length]
                spans.append(Span(src, pos, length))
                pos += length
            else:
                pos += int(rng.integers(1, mixture.max_fresh_len + 1))  # keep the random tokens there
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


class BatchSampler:
    """Seeded batches of the mixture: the first ``n_synthetic`` rows synthetic, the rest real text.

    Row order within a batch does not matter to the loss, so rows are not shuffled.
    """

    def __init__(self, stream: np.ndarray, d_vocab: int, seq_len: int, batch_size: int, mixture: Mixture, seed: int):
        self.stream = stream
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.mixture = mixture
        self.ids = sampleable_ids(d_vocab)
        self.n_synthetic = int(round(mixture.synthetic_fraction * batch_size))
        self.rng = np.random.default_rng(seed)

    def sample(self) -> tuple[np.ndarray, list[list[Span]]]:
        synthetic, spans = synthetic_copy_sequences(self.n_synthetic, self.seq_len, self.ids, self.mixture, self.rng)
        real = text_windows(self.stream, self.batch_size - self.n_synthetic, self.seq_len, self.rng)
        return np.concatenate([synthetic, real], axis=0), spans
