"""Text corpora for text-based inputs: documents streamed from disk with bounded memory.

Why a module of its own: claims that compare models' log-probs on *real* text need the same text
on every machine, without downloading anything. A corpus ``source`` is therefore either the running
Python's standard library (read at run time, never committed; see :func:`stdlib_documents`) or a
path the user supplies: a ``.txt`` file, a ``.jsonl`` file, a folder of those, or a Hugging Face
dataset saved with ``datasets.Dataset.save_to_disk``.

Memory: corpora for a miner may hold millions of tokens, so everything here *streams*
(:func:`iter_documents` holds at most one file's text; :func:`sample_documents` keeps only its
sample). The stdlib list is the exception: it is ~12 MB, read once per process and cached, because
every seeded sample walks all of it.

Determinism: documents come in a fixed order (sorted paths, file line order, dataset row order),
every random draw goes through the ``numpy.random.Generator`` the caller passes, and the
train/held-out split is a hash of the document *name* -- the rule and percentage the zoo trains
with, so text held out from zoo training stays held out here. The held-out documents are further
cut in two halves, ``discovery`` and ``confirmation``, by a second, independent (salted) hash of the
name: look at one half to find a claim, state it on the other (see :func:`heldout_half_of`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

# Percentage of documents held out (by hash of the document name). Must equal the zoo's: the zoo
# trains on the "train" split, and held-out claims must score text the zoo never saw.
HELDOUT_PERCENT = 5

# Directory names under the stdlib that are not "the library": test suites (their text is largely
# generated fixtures), third-party packages, caches, and the build-config directory.
SKIP_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"})
# pydoc_data/topics.py *is* the docs corpus, already read as pydoc_data.topics.topics.
SKIP_FILES = frozenset({"pydoc_data/topics.py"})

STDLIB_SOURCES = {"stdlib": "all", "stdlib-docs": "docs", "stdlib-code": "code"}
# The held-out documents cut in two by a second hash: find claims on "discovery", test them on
# "confirmation". Both are subsets of "heldout", which stays their union (the zoo's split is unchanged).
HELDOUT_HALVES = ("discovery", "confirmation")
SPLITS = ("all", "train", "heldout", *HELDOUT_HALVES)
# Salt of the second hash: any fixed bytes make it independent of the train/held-out hash; changing
# them would move documents between the halves, so they are fixed for good.
_HALF_SALT = b"interp_checks heldout half\0"
_DOCS_PREFIX = "pydoc_data.topics/"
_CODE_PREFIX = "stdlib/"


class CorpusError(ValueError):
    """A corpus source is missing, of an unknown kind, or malformed (the message says where)."""


@dataclass(frozen=True)
class Document:
    """One document: a stable name (the split is a hash of it) and its text."""

    name: str
    text: str


# --- the standard library ------------------------------------------------------------------------
# The selection, order and names below are copied from interp_checks/zoo/data.py on purpose: the
# zoo will import them from here, and any difference would silently move documents between splits.


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


@lru_cache(maxsize=1)
def _stdlib_all() -> tuple[Document, ...]:
    # Cached: a seeded sample walks every document, and the engine may sample many times per run.
    from pydoc_data.topics import topics

    documents = [Document(f"{_DOCS_PREFIX}{key}", topics[key]) for key in sorted(topics)]
    root = stdlib_root()
    for path in stdlib_source_paths(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            documents.append(Document(f"{_CODE_PREFIX}{path.relative_to(root).as_posix()}", text))
    return tuple(documents)


def stdlib_documents(part: str = "all") -> list[Document]:
    """The stdlib corpus in a fixed order: pydoc topics (sorted by key), then sources (sorted by path).

    ``part="docs"`` keeps only the reference-manual topics (prose with code examples), ``"code"``
    only the ``.py`` sources. Names (``pydoc_data.topics/<key>``, ``stdlib/<relative path>``) are
    identical to the zoo's, so :func:`split_of` puts each document in the split the zoo used.
    """
    if part not in ("all", "docs", "code"):
        raise CorpusError(f"stdlib part must be 'all', 'docs' or 'code', got {part!r}")
    documents = _stdlib_all()
    if part == "docs":
        return [d for d in documents if d.name.startswith(_DOCS_PREFIX)]
    if part == "code":
        return [d for d in documents if d.name.startswith(_CODE_PREFIX)]
    return list(documents)


def split_of(name: str) -> str:
    """``"heldout"`` for ~HELDOUT_PERCENT% of document names, ``"train"`` otherwise (hash-based).

    A hash of the name, not the text, so an edited file stays in its split.
    """
    bucket = int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "heldout" if bucket < HELDOUT_PERCENT else "train"


def heldout_half_of(name: str) -> str:
    """``"discovery"`` or ``"confirmation"``: which half of the held-out documents ``name`` is in.

    A second hash of the name, salted so that it is independent of :func:`split_of`'s; each half
    gets about half of the held-out documents. Defined for every name, but it only means something
    for held-out ones (``split_of(name) == "heldout"``): use :func:`in_split` to select a half.
    """
    bucket = int(hashlib.sha256(_HALF_SALT + name.encode("utf-8")).hexdigest()[:8], 16) % 2
    return HELDOUT_HALVES[bucket]


def in_split(name: str, split: str) -> bool:
    """Whether the document ``name`` belongs to ``split`` (one of :data:`SPLITS`)."""
    if split == "all":
        return True
    if split in HELDOUT_HALVES:
        return split_of(name) == "heldout" and heldout_half_of(name) == split
    return split_of(name) == split


def split_documents(documents: Iterable[Document]) -> dict[str, list[Document]]:
    out: dict[str, list[Document]] = {"train": [], "heldout": []}
    for doc in documents:
        out[split_of(doc.name)].append(doc)
    return out


def corpus_fingerprint(documents: Iterable[Document]) -> str:
    """SHA-256 over names and texts: equal fingerprints mean the same text."""
    digest = hashlib.sha256()
    for doc in documents:
        digest.update(doc.name.encode("utf-8") + b"\0" + doc.text.encode("utf-8") + b"\0")
    return digest.hexdigest()


# --- any source ----------------------------------------------------------------------------------


def resolve_source(source: str | os.PathLike, *, base_dir: str | os.PathLike | None = None) -> str | Path:
    """A stdlib source name unchanged, or the absolute path a path source refers to.

    Raises :class:`CorpusError` at once (before any streaming) if the path does not exist, so a
    claim with a typo fails when it is loaded rather than halfway through a run.
    """
    if isinstance(source, str) and source in STDLIB_SOURCES:
        return source
    if not isinstance(source, (str, os.PathLike)) or not str(source):
        raise CorpusError(
            f"corpus source must be one of {sorted(STDLIB_SOURCES)} or a path, got {source!r}"
        )
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = Path(base_dir if base_dir is not None else Path.cwd()) / path
    path = path.resolve()
    if not path.exists():
        raise CorpusError(
            f"corpus source {str(source)!r} not found: {path} does not exist (corpora are read from disk; "
            f"nothing is downloaded). Use {', '.join(sorted(STDLIB_SOURCES))}, a .txt or .jsonl file, a folder "
            "of them, or a folder written by datasets.Dataset.save_to_disk"
        )
    if path.is_file() and path.suffix not in (".txt", ".jsonl"):
        raise CorpusError(f"corpus file {path} is neither .txt nor .jsonl")
    return path


def iter_documents(source: str | os.PathLike, *, base_dir: str | os.PathLike | None = None) -> Iterator[Document]:
    """Stream the documents of ``source`` in a fixed order, holding at most one file's text.

    ``source``: ``"stdlib"``, ``"stdlib-docs"``, ``"stdlib-code"``, or a path (relative paths are
    resolved against ``base_dir``, default the working directory):

    - a ``.txt`` file: one document, named by the file name;
    - a ``.jsonl`` file: one document per non-blank line, text in field ``"text"``, named
      ``<file>:<line number>``;
    - a folder written by ``datasets.Dataset.save_to_disk``: one document per row, column
      ``"text"``, named ``<folder>:<row>``;
    - any other folder: every ``*.txt`` and ``*.jsonl`` inside, recursively, sorted by relative path
      (hidden files and folders skipped), names relative to the folder.

    Names are relative to the source, so moving a corpus does not move documents between splits.
    Blank documents are skipped (a window of nothing is no input). The path is checked now; a
    malformed file raises :class:`CorpusError` when the stream reaches it.
    """
    resolved = resolve_source(source, base_dir=base_dir)
    return _iter_resolved(resolved)


def _iter_resolved(resolved: str | Path) -> Iterator[Document]:
    if isinstance(resolved, str):
        yield from stdlib_documents(STDLIB_SOURCES[resolved])
        return
    if resolved.is_file():
        yield from _iter_file(resolved, resolved.name)
    elif _is_hf_dataset(resolved):
        yield from _iter_hf_dataset(resolved)
    else:
        for path in _corpus_files(resolved):
            yield from _iter_file(path, path.relative_to(resolved).as_posix())


def _corpus_files(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for filename in filenames:
            if not filename.startswith(".") and filename.endswith((".txt", ".jsonl")):
                found.append(Path(dirpath) / filename)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _iter_file(path: Path, name: str) -> Iterator[Document]:
    if path.suffix == ".txt":
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            yield Document(name, text)
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise CorpusError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict) or "text" not in record:
                raise CorpusError(f'{path}:{number}: expected a JSON object with a "text" field')
            text = record["text"]
            if not isinstance(text, str):
                raise CorpusError(f'{path}:{number}: field "text" must be a string, got {type(text).__name__}')
            if text.strip():
                yield Document(f"{name}:{number}", text)


def _is_hf_dataset(folder: Path) -> bool:
    return any((folder / marker).is_file() for marker in ("dataset_info.json", "state.json", "dataset_dict.json"))


def _iter_hf_dataset(folder: Path, batch_size: int = 256) -> Iterator[Document]:
    if (folder / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in folder.iterdir() if p.is_dir())
        raise CorpusError(
            f"{folder} holds a DatasetDict with splits {splits}; point the source at one split's folder, "
            f"e.g. {folder / (splits[0] if splits else 'train')}"
        )
    try:
        import datasets
    except ImportError:
        raise CorpusError(f"{folder} is a Hugging Face dataset; reading it needs `pip install datasets`") from None
    dataset = datasets.load_from_disk(str(folder))  # memory-mapped Arrow: rows are read on demand
    if not isinstance(dataset, datasets.Dataset):
        raise CorpusError(f"{folder} did not load as a datasets.Dataset (got {type(dataset).__name__})")
    if "text" not in dataset.column_names:
        raise CorpusError(f'{folder}: dataset has no "text" column (columns: {dataset.column_names})')
    row = 0
    for batch in dataset.select_columns(["text"]).iter(batch_size=batch_size):
        for text in batch["text"]:
            if text is not None and not isinstance(text, str):
                raise CorpusError(f'{folder}: row {row}: column "text" must hold strings, got {type(text).__name__}')
            if text and text.strip():
                yield Document(f"{folder.name}:{row}", text)
            row += 1


def filter_split(documents: Iterable[Document], split: str) -> Iterator[Document]:
    """Only the documents of ``split`` (one of :data:`SPLITS`: ``"all"``, ``"train"``, ``"heldout"``, or
    its halves ``"discovery"`` and ``"confirmation"``), still streaming."""
    if split not in SPLITS:
        raise CorpusError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if split == "all":
        return iter(documents)
    return (doc for doc in documents if in_split(doc.name, split))


def _split_stream(source: Any, split: str, base_dir: Any) -> Iterator[Document]:
    """The documents of ``split`` from a source name/path or an iterable of documents, streamed."""
    documents = iter_documents(source, base_dir=base_dir) if isinstance(source, (str, os.PathLike)) else source
    return filter_split(documents, split)


def sample_documents(
    source: str | os.PathLike | Iterable[Document],
    n: int,
    rng: np.random.Generator,
    *,
    split: str = "all",
    base_dir: str | os.PathLike | None = None,
) -> list[Document]:
    """A uniform random sample of ``n`` documents (without replacement), in stream order.

    Reservoir sampling (Li's "Algorithm L") in one pass, so memory is O(n) however large the corpus
    and the number of random draws is O(n log(N/n)) rather than one per document. Every draw comes
    from ``rng``, so a seed gives the same sample on every machine. ``source`` may also be any
    iterable of documents. Fewer than ``n`` documents available: all of them, no error (the caller
    reports how many it got).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    stream = _split_stream(source, split, base_dir)
    if n == 0:
        return []
    reservoir: list[tuple[int, Document]] = []
    for index, doc in enumerate(stream):
        reservoir.append((index, doc))
        if len(reservoir) == n:
            break
    else:
        return [doc for _, doc in reservoir]
    # Algorithm L: the gap to the next replacement is geometric, so skip ahead without drawing.
    weight = math.exp(math.log(_open_unit(rng)) / n)
    next_pick = index + _gap(weight, rng) + 1
    for index, doc in enumerate(stream, start=index + 1):
        if index == next_pick:
            reservoir[int(rng.integers(n))] = (index, doc)
            weight *= math.exp(math.log(_open_unit(rng)) / n)
            next_pick = index + _gap(weight, rng) + 1
    reservoir.sort(key=lambda item: item[0])
    return [doc for _, doc in reservoir]


def _open_unit(rng: np.random.Generator) -> float:
    """Uniform on (0, 1]: ``rng.random()`` may return 0, whose log is -inf."""
    return 1.0 - rng.random()


def _gap(weight: float, rng: np.random.Generator) -> int:
    """How many documents to skip before the next replacement (geometric with success ``weight``)."""
    u = _open_unit(rng)
    if weight >= 1.0:
        return 0
    if weight <= 0.0:  # float underflow after very many replacements: nothing more will be picked
        return 2**62
    return int(math.floor(math.log(u) / math.log1p(-weight)))


# --- token streams for miners --------------------------------------------------------------------


@dataclass
class TokenBatch:
    """Rows of ``seq_len`` tokens cut from documents, one document per row.

    ``starts[i]`` is the index, in its document's token sequence (without BOS), of row ``i``'s first
    content token, so a miner can map a hit back to the text. ``valid`` is False only on padding
    (when ``pad_id`` was given).
    """

    tokens: np.ndarray  # int64 [batch, seq_len]
    names: list[str]
    starts: np.ndarray  # int64 [batch]
    valid: np.ndarray  # bool [batch, seq_len]


def iter_token_batches(
    source: str | os.PathLike | Iterable[Document],
    tokenizer: Any,
    *,
    seq_len: int,
    batch_size: int,
    max_tokens: int | None = None,
    bos_id: int | None = None,
    pad_id: int | None = None,
    split: str = "all",
    base_dir: str | os.PathLike | None = None,
    progress: bool = False,
    rows_per_document: int | None = None,
) -> Iterator[TokenBatch]:
    """Stream a corpus as batches of token rows, for scanning millions of tokens.

    Each document is tokenized on its own (no special tokens) and cut into consecutive,
    non-overlapping rows of ``seq_len`` tokens; with ``bos_id`` every row is BOS followed by
    ``seq_len - 1`` document tokens, as the models saw text in training. Rows never span two
    documents, so each row has one name. A document's last partial row is dropped unless ``pad_id``
    is given, in which case it is right-padded and ``valid`` marks the real tokens.
    ``rows_per_document`` keeps only each document's first rows: a sample spread over more
    documents, where the document is the unit of sampling.

    Stops once ``max_tokens`` (counting every valid position, BOS included) have been yielded: the
    last batch may be short and the total overshoots by less than one row. Memory: one document's
    text and tokens plus one batch. ``tokenizer`` is a ``tokenizers.Tokenizer`` or a Hugging Face
    tokenizer (anything whose ``encode(text, add_special_tokens=False)`` gives ids or an object
    with ``.ids``). ``progress=True`` shows a tqdm bar over ``max_tokens``.
    """
    if seq_len < 1 + (bos_id is not None) or batch_size < 1:
        raise ValueError(f"need seq_len >= {1 + (bos_id is not None)} and batch_size >= 1, got {seq_len}, {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    if rows_per_document is not None and rows_per_document < 1:
        raise ValueError(f"rows_per_document must be positive (or None for every row), got {rows_per_document}")
    stream = _split_stream(source, split, base_dir)
    return _token_batches(stream, tokenizer, seq_len, batch_size, max_tokens, bos_id, pad_id, progress, rows_per_document)


def _token_batches(stream, tokenizer, seq_len, batch_size, max_tokens, bos_id, pad_id, progress, rows_per_document=None) -> Iterator[TokenBatch]:
    prefix = 0 if bos_id is None else 1
    body = seq_len - prefix
    fill = pad_id if pad_id is not None else 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_tokens, unit="tok", desc="tokens")
    tokens = np.full((batch_size, seq_len), fill, dtype=np.int64)
    valid = np.zeros((batch_size, seq_len), dtype=bool)
    starts = np.zeros(batch_size, dtype=np.int64)
    names: list[str] = []
    seen = 0  # valid positions already yielded
    pending = 0  # valid positions in the batch being filled

    def flush(rows: int) -> TokenBatch:
        nonlocal seen, pending
        batch = TokenBatch(tokens[:rows].copy(), list(names), starts[:rows].copy(), valid[:rows].copy())
        count, pending = pending, 0
        seen += count
        if bar is not None:
            bar.update(count if max_tokens is None else max(0, min(count, max_tokens - bar.n)))
        tokens[:] = fill
        valid[:] = False
        names.clear()
        return batch

    try:
        for doc in stream:
            encoded = tokenizer.encode(doc.text, add_special_tokens=False)
            ids = np.asarray(getattr(encoded, "ids", encoded), dtype=np.int64)
            stop = len(ids) if pad_id is not None else len(ids) - len(ids) % body
            if rows_per_document is not None:
                stop = min(stop, rows_per_document * body)
            for start in range(0, stop, body):
                chunk = ids[start : start + body]
                row = len(names)
                if prefix:
                    tokens[row, 0] = bos_id
                tokens[row, prefix : prefix + len(chunk)] = chunk
                valid[row, : prefix + len(chunk)] = True
                starts[row] = start
                names.append(doc.name)
                pending += prefix + len(chunk)
                if len(names) == batch_size or (max_tokens is not None and seen + pending >= max_tokens):
                    yield flush(len(names))
                    if max_tokens is not None and seen >= max_tokens:
                        return
        if names:
            yield flush(len(names))
    finally:
        if bar is not None:
            bar.close()
