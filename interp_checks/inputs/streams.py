"""The one streaming path over corpora: documents -> token rows -> rows with their text.

The miner and every corpus claim (``checks.base.CorpusPass``) read corpora through here, so a row,
a token's text and a regex match in context mean the same in ``interp-checks mine`` and in a neuron
claim. Memory is bounded by one document and one batch (:func:`corpora.iter_token_batches`); the
rows' text is rebuilt from each token's decoded string (:class:`RowText`), never kept per corpus.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from interp_checks.checks.base import CorpusPass
from interp_checks.inputs.corpora import SPLITS, Document, TokenBatch, iter_token_batches
from interp_checks.inputs.generators import InputBatch, InputSpecError, register_generator

__all__ = ["STREAM_KIND", "RowText", "corpus_passes", "corpus_rows", "token_strings"]


def token_strings(tokenizer: Any, special_ids: Iterable[int] = ()) -> np.ndarray:
    """Every token id's text, decoded once (special tokens -> ""), as an object array indexed by id.

    Byte-level tokens that hold part of a multi-byte character decode to U+FFFD on their own; the
    concatenated strings then differ from the original text there, which only the text patterns
    (brackets, digits, identifiers) can notice.
    """
    vocab = tokenizer.get_vocab()
    size = max(vocab.values()) + 1 if vocab else 0
    special = set(int(i) for i in special_ids)
    try:
        special.update(int(i) for i in (getattr(tokenizer, "all_special_ids", None) or []))
    except Exception:  # some tokenizers raise for unset roles
        pass
    out = np.empty(size, dtype=object)
    for i in range(size):
        out[i] = "" if i in special else decode(tokenizer, [i])
    return out


def decode(tokenizer: Any, ids: Iterable[int]) -> str:
    """Token ids as text, special tokens kept, no clean-up (what the model saw)."""
    ids = [int(i) for i in ids]
    try:
        return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    except TypeError:  # a raw ``tokenizers.Tokenizer``
        return tokenizer.decode(ids, skip_special_tokens=False)


class RowText:
    """Turns token rows into an :class:`InputBatch` whose ``texts`` are the rows' tokens' strings
    concatenated and whose ``offsets`` are each token's span in that text: what ``where:`` patterns
    and regexes read. ``sources`` names each row's document (the unit of sampling)."""

    def __init__(self, tokenizer: Any, special_ids: Iterable[int] = ()):
        self.tokenizer = tokenizer
        self.strings = token_strings(tokenizer, special_ids)
        self.lengths = np.fromiter((len(s) for s in self.strings), dtype=np.int64, count=len(self.strings))

    def batch(self, rows: TokenBatch, kind: str = "corpus_stream") -> InputBatch:
        tokens, valid = rows.tokens, rows.valid
        lengths = np.where(valid, self.lengths[tokens], 0)
        stops = np.cumsum(lengths, axis=1)
        offsets = np.stack([stops - lengths, stops], axis=-1)
        texts = ["".join(self.strings[row[ok]]) for row, ok in zip(tokens, valid)]
        return InputBatch(
            tokens, kind, {}, 0, valid.copy(), {}, texts, offsets,
            {"names": list(rows.names), "starts": rows.starts}, list(rows.names), self.tokenizer,
        )


def corpus_rows(
    source: str | os.PathLike | Iterable[Document],
    model: Any,
    *,
    seq_len: int,
    batch_size: int,
    max_tokens: int | None,
    split: str = "all",
    base_dir: str | os.PathLike | None = None,
    row_text: RowText | None = None,
    progress: bool = False,
    rows_per_document: int | None = None,
) -> Iterator[tuple[TokenBatch, InputBatch]]:
    """Stream ``source`` as rows for ``model`` (a ``LoadedModel``: its tokenizer, BOS and specials):
    each batch as the raw :class:`TokenBatch` and as an :class:`InputBatch` with text. Rows are BOS +
    ``seq_len - 1`` tokens of one document; a document's last row is padded (with BOS, masked out)."""
    if model.tokenizer is None:
        raise ValueError(f"{model.spec.describe()} has no tokenizer, and a corpus pass reads text")
    text = row_text or RowText(model.tokenizer, model.special_token_ids)
    encoder = getattr(model.tokenizer, "backend_tokenizer", model.tokenizer)  # fast, and no max-length warnings
    bos = model.bos_token_id
    for rows in iter_token_batches(
        source, encoder, seq_len=seq_len, batch_size=batch_size, max_tokens=max_tokens,
        bos_id=bos, pad_id=bos if bos is not None else 0, split=split, base_dir=base_dir, progress=progress,
        rows_per_document=rows_per_document,
    ):
        yield rows, text.batch(rows)


# -- the inputs kind of corpus claims -------------------------------------------------------------

STREAM_KIND = "corpus_stream"
ALL_ROWS = 1_000_000  # rows_per_document's default: every row of any real document
MAX_STREAM_TOKENS = 50_000_000


@register_generator(
    STREAM_KIND,
    defaults={"source": "stdlib", "split": "heldout", "max_tokens": 100_000, "seq_len": 128, "null_tokens": 8_192, "rows_per_document": ALL_ROWS},
    limits={"max_tokens": MAX_STREAM_TOKENS, "null_tokens": MAX_STREAM_TOKENS},
    # rows_per_document: only each document's first N rows (more documents in the same number of
    # tokens: the document is the unit of sampling); the default reads every row
    size=lambda p: 0,  # streamed with bounded memory: nothing is allocated per token of the corpus
    description=(
        "a corpus streamed through the model for corpus claims (neuron_regex, top_examples, ...): rows of "
        "seq_len tokens of each document of the split, up to max_tokens; several sources separated by commas "
        "(source: stdlib-docs,stdlib-code) are judged each on its own"
    ),
)
def corpus_stream(params: dict[str, Any], vocab: Any, rng: np.random.Generator) -> Any:
    raise InputSpecError(
        f"inputs kind {STREAM_KIND!r} is streamed by the engine for corpus claims (neuron_regex, top_examples, ...); "
        "a check that measures per sequence reads kind: corpus (windows of text) instead"
    )


def corpus_passes(inputs: Mapping[str, Any], n_ctx: int) -> tuple[CorpusPass, ...]:
    """The :class:`CorpusPass` of each source of a normalised ``corpus_stream`` spec (``seq_len`` capped
    at the model's context). Raises InputSpecError for another kind or an unknown split."""
    if inputs.get("kind") != STREAM_KIND:
        raise InputSpecError(
            f"this check streams a corpus: give inputs: {{kind: {STREAM_KIND}, source: stdlib-code, split: heldout, "
            f"max_tokens: 100000}}, not kind {inputs.get('kind')!r}"
        )
    if inputs["split"] not in SPLITS:
        raise InputSpecError(f"inputs.split must be one of {', '.join(SPLITS)}, got {inputs['split']!r}")
    sources = [part.strip() for part in str(inputs["source"]).split(",") if part.strip()]
    if not sources or len(set(sources)) != len(sources):
        raise InputSpecError(f"inputs.source must name one or more distinct corpora separated by commas, got {inputs['source']!r}")
    seq_len = min(int(inputs["seq_len"]), int(n_ctx))
    if seq_len < 2:
        raise InputSpecError(f"inputs.seq_len must be at least 2 (BOS and one token), got {inputs['seq_len']}")
    return tuple(
        CorpusPass(
            source, inputs["split"], int(inputs["max_tokens"]), seq_len,
            min(int(inputs["null_tokens"]), int(inputs["max_tokens"])), None if inputs["rows_per_document"] >= ALL_ROWS else int(inputs["rows_per_document"]),
        )
        for source in sources
    )
