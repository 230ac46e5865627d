"""Corpora: every source kind streams the right documents; samples are seeded and uniform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from interp_checks.inputs.corpora import (
    HELDOUT_HALVES,
    HELDOUT_PERCENT,
    SPLITS,
    CorpusError,
    Document,
    filter_split,
    heldout_half_of,
    in_split,
    iter_documents,
    iter_token_batches,
    sample_documents,
    split_of,
    stdlib_documents,
)

TOKENIZER = Path(__file__).resolve().parents[2] / "fixtures" / "zoo" / "tokenizer.json"


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- sources -------------------------------------------------------------------------------------


def test_a_txt_file_is_one_document_named_by_its_file(tmp_path):
    (tmp_path / "book.txt").write_text("line one\nline two\n", encoding="utf-8")
    assert list(iter_documents(tmp_path / "book.txt")) == [Document("book.txt", "line one\nline two\n")]


def test_a_relative_path_resolves_against_base_dir(tmp_path):
    (tmp_path / "book.txt").write_text("text", encoding="utf-8")
    assert [d.text for d in iter_documents("book.txt", base_dir=tmp_path)] == ["text"]


def test_a_jsonl_file_gives_one_document_per_line_and_skips_blank_ones(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "first", "id": 7}, {"text": "   "}, {"text": "third"}])
    with path.open("a") as handle:
        handle.write("\n")
    docs = list(iter_documents(path))
    assert docs == [Document("c.jsonl:1", "first"), Document("c.jsonl:3", "third")]


@pytest.mark.parametrize(
    "bad_line, message",
    [({"content": "no text field"}, '"text" field'), ({"text": 5}, "must be a string"), ("{not json", "not valid JSON")],
)
def test_a_bad_jsonl_line_is_reported_with_file_and_line_number(tmp_path, bad_line, message):
    path = tmp_path / "c.jsonl"
    bad = bad_line if isinstance(bad_line, str) else json.dumps(bad_line)
    path.write_text(json.dumps({"text": "ok"}) + "\n" + bad + "\n", encoding="utf-8")
    stream = iter_documents(path)
    assert next(stream).text == "ok"  # streams: the error comes when the stream reaches the line
    with pytest.raises(CorpusError, match=message) as info:
        list(stream)
    assert f"{path}:2" in str(info.value)


def test_a_folder_gives_every_txt_and_jsonl_recursively_in_sorted_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("bz", encoding="utf-8")
    (tmp_path / "a.txt").write_text("a", encoding="utf-8")
    write_jsonl(tmp_path / "b" / "c.jsonl", [{"text": "bc1"}, {"text": "bc2"}])
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.txt").write_text("ignored", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    docs = list(iter_documents(tmp_path))
    assert [(d.name, d.text) for d in docs] == [
        ("a.txt", "a"),
        ("b/c.jsonl:1", "bc1"),
        ("b/c.jsonl:2", "bc2"),
        ("b/z.txt", "bz"),
    ]


def test_a_saved_hugging_face_dataset_is_read_row_by_row(tmp_path):
    datasets = pytest.importorskip("datasets")
    texts = [f"row {i} text" for i in range(10)] + ["", "last"]
    datasets.Dataset.from_dict({"text": texts, "label": list(range(12))}).save_to_disk(str(tmp_path / "ds"))
    docs = list(iter_documents(tmp_path / "ds"))
    assert [d.text for d in docs] == texts[:10] + ["last"]
    assert docs[0].name == "ds:0" and docs[-1].name == "ds:11"  # row numbers survive skipped blanks
    assert len(sample_documents(tmp_path / "ds", 3, np.random.default_rng(0))) == 3

    datasets.Dataset.from_dict({"body": ["x"]}).save_to_disk(str(tmp_path / "nocol"))
    with pytest.raises(CorpusError, match='no "text" column'):
        list(iter_documents(tmp_path / "nocol"))


def test_a_missing_path_names_the_resolved_path_and_says_nothing_is_downloaded(tmp_path):
    with pytest.raises(CorpusError) as info:
        iter_documents("nowhere/corpus.jsonl", base_dir=tmp_path)  # raised at the call, not when iterating
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "corpus.jsonl") in message
    assert "nothing is downloaded" in message
    assert isinstance(info.value, ValueError)


def test_a_file_of_another_kind_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text("text\nx\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="neither .txt nor .jsonl"):
        iter_documents(tmp_path / "data.csv")


# --- the standard library ------------------------------------------------------------------------


def test_stdlib_parts_are_non_empty_and_make_up_the_whole():
    docs, code, everything = stdlib_documents("docs"), stdlib_documents("code"), stdlib_documents()
    assert docs and code
    assert everything == docs + code
    assert all(d.name.startswith("pydoc_data.topics/") for d in docs)
    assert all(d.name.startswith("stdlib/") and d.name.endswith(".py") for d in code)
    assert [d.name for d in iter_documents("stdlib-code")] == [d.name for d in code]
    with pytest.raises(CorpusError):
        stdlib_documents("tests")


def test_stdlib_names_and_split_rule_match_the_zoo_training_data():
    from interp_checks.zoo import data as zoo

    ours, theirs = stdlib_documents(), zoo.stdlib_documents()
    assert [d.name for d in ours[:20]] == [d.name for d in theirs[:20]]
    assert [d.name for d in ours] == [d.name for d in theirs]  # cheap, and what the later switch needs
    assert HELDOUT_PERCENT == zoo.HELDOUT_PERCENT
    assert all(split_of(d.name) == zoo.split_of(d.name) for d in ours)


def test_the_heldout_split_is_about_heldout_percent_of_the_stdlib():
    docs = stdlib_documents()
    heldout = list(filter_split(docs, "heldout"))
    train = list(filter_split(docs, "train"))
    assert len(heldout) + len(train) == len(docs)
    assert 0.5 * HELDOUT_PERCENT <= 100 * len(heldout) / len(docs) <= 2 * HELDOUT_PERCENT
    assert list(filter_split(docs, "all")) == docs
    with pytest.raises(CorpusError, match="split"):
        filter_split(docs, "test")


def test_the_heldout_split_has_a_discovery_and_a_confirmation_half():
    docs = stdlib_documents()
    heldout = list(filter_split(docs, "heldout"))
    discovery = list(filter_split(docs, "discovery"))
    confirmation = list(filter_split(docs, "confirmation"))
    names = {half: {d.name for d in found} for half, found in (("discovery", discovery), ("confirmation", confirmation))}
    assert HELDOUT_HALVES == ("discovery", "confirmation") and set(HELDOUT_HALVES) <= set(SPLITS)
    assert not names["discovery"] & names["confirmation"]  # disjoint
    assert names["discovery"] | names["confirmation"] == {d.name for d in heldout}  # their union is heldout
    assert all(split_of(d.name) == "heldout" for d in discovery + confirmation)  # never a training document
    # roughly half each: ~43 held-out documents, a fair coin per document gives 14-29 with probability > 0.99
    assert len(heldout) >= 20
    assert 0.3 <= len(discovery) / len(heldout) <= 0.7
    # stream order is kept, and the rule is deterministic (a hash of the name, nothing else)
    assert discovery == [d for d in heldout if d in discovery]
    assert [d.name for d in filter_split(docs, "discovery")] == [d.name for d in discovery]
    assert all(in_split(d.name, heldout_half_of(d.name)) for d in heldout)


def test_the_halves_hash_is_independent_of_the_heldout_hash():
    names = [f"doc-{i}" for i in range(20000)]
    share = np.mean([heldout_half_of(name) == "discovery" for name in names])
    assert 0.48 <= share <= 0.52  # ~half of all names (sd 0.0035)
    held = [name for name in names if split_of(name) == "heldout"]
    held_share = np.mean([heldout_half_of(name) == "discovery" for name in held])
    assert 0.4 <= held_share <= 0.6  # ~half of the held-out names too (about 1,000 of them; sd 0.016)
    assert heldout_half_of("stdlib/os.py") == heldout_half_of("stdlib/os.py")
    assert not in_split("doc", "nonsense") and in_split("doc", "all")


def test_documents_outside_heldout_are_in_neither_half():
    docs = [Document(f"doc-{i}", "text") for i in range(2000)]
    train = [d for d in docs if split_of(d.name) == "train"]
    assert train and not any(in_split(d.name, half) for d in train for half in HELDOUT_HALVES)


# --- sampling ------------------------------------------------------------------------------------


def numbered(count: int):
    return (Document(str(i), f"text {i}") for i in range(count))  # a generator: one pass only


def test_reservoir_sampling_is_seeded_in_stream_order_and_without_repeats():
    first = sample_documents(numbered(1000), 20, np.random.default_rng(3))
    again = sample_documents(numbered(1000), 20, np.random.default_rng(3))
    other = sample_documents(numbered(1000), 20, np.random.default_rng(4))
    indices = [int(d.name) for d in first]
    assert first == again and first != other
    assert indices == sorted(set(indices)) and len(indices) == 20


def test_reservoir_sampling_is_uniform():
    rng = np.random.default_rng(0)
    counts = np.zeros(50)
    trials = 2000
    for _ in range(trials):
        for doc in sample_documents(numbered(50), 5, rng):
            counts[int(doc.name)] += 1
    expected = trials * 5 / 50  # 200, binomial sd ~13.4
    assert np.all(np.abs(counts - expected) < 60), counts
    # and the first and last documents are not favoured (the classic reservoir bug)
    assert abs(counts[:10].mean() - counts[-10:].mean()) < 25


def test_asking_for_more_documents_than_exist_returns_all_of_them():
    assert [d.name for d in sample_documents(numbered(4), 10, np.random.default_rng(0))] == ["0", "1", "2", "3"]
    assert sample_documents(numbered(4), 0, np.random.default_rng(0)) == []


def test_sampling_a_split_of_the_stdlib_only_gives_that_split():
    docs = sample_documents("stdlib", 10, np.random.default_rng(0), split="heldout")
    assert len(docs) == 10 and all(split_of(d.name) == "heldout" for d in docs)
    for half in HELDOUT_HALVES:
        docs = sample_documents("stdlib", 10, np.random.default_rng(0), split=half)
        assert len(docs) == 10 and all(split_of(d.name) == "heldout" and heldout_half_of(d.name) == half for d in docs)


# --- token batches -------------------------------------------------------------------------------


class CharTokenizer:
    """One token per character (id = code point): lengths are easy to reason about."""

    def encode(self, text, add_special_tokens=False):
        assert add_special_tokens is False
        return [ord(c) for c in text]


def test_token_batches_cut_documents_into_bos_rows_and_drop_partial_tails():
    docs = [Document("a", "abcdefghij"), Document("b", "xyz"), Document("c", "0123456789ABCDEF")]
    batches = list(iter_token_batches(docs, CharTokenizer(), seq_len=5, batch_size=3, bos_id=0))
    # 4 content tokens per row: a -> 2 rows (tail "ij" dropped), b -> none, c -> 4 rows
    assert [b.tokens.shape for b in batches] == [(3, 5), (3, 5)]
    rows = np.concatenate([b.tokens for b in batches])
    names = sum((b.names for b in batches), [])
    assert names == ["a", "a", "c", "c", "c", "c"]
    assert (rows[:, 0] == 0).all()
    assert "".join(map(chr, rows[0, 1:])) == "abcd" and "".join(map(chr, rows[5, 1:])) == "CDEF"
    assert np.concatenate([b.starts for b in batches]).tolist() == [0, 4, 0, 4, 8, 12]
    assert all(b.valid.all() for b in batches)


def test_token_batches_can_pad_tails_instead():
    docs = [Document("a", "abcdefghij"), Document("b", "xyz")]
    (batch,) = list(iter_token_batches(docs, CharTokenizer(), seq_len=4, batch_size=8, pad_id=2))
    assert batch.names == ["a", "a", "a", "b"]
    assert batch.valid.sum(1).tolist() == [4, 4, 2, 3]
    assert batch.tokens[2].tolist() == [ord("i"), ord("j"), 2, 2]


def test_token_batches_stop_at_max_tokens():
    docs = (Document(str(i), "x" * 100) for i in range(1000))
    batches = list(iter_token_batches(docs, CharTokenizer(), seq_len=10, batch_size=4, max_tokens=95, bos_id=0))
    total = sum(int(b.valid.sum()) for b in batches)
    assert 95 <= total < 95 + 10  # stops once reached; overshoots by less than one row
    assert [b.tokens.shape[0] for b in batches] == [4, 4, 2]


def test_token_batches_stream_the_stdlib_with_a_real_tokenizer(capsys):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    batches = list(
        iter_token_batches(
            "stdlib-docs", tokenizer, seq_len=64, batch_size=8, max_tokens=2000, bos_id=0, split="train", progress=True
        )
    )
    assert all(b.tokens.shape[1] == 64 and b.tokens.dtype == np.int64 for b in batches)
    assert 2000 <= sum(b.tokens.size for b in batches) < 2000 + 64
    assert all(split_of(name) == "train" for b in batches for name in b.names)
    first = batches[0]
    text = stdlib_documents("docs")
    doc = next(d for d in text if d.name == first.names[0])
    assert tokenizer.decode(first.tokens[0, 1:].tolist()) == tokenizer.decode(tokenizer.encode(doc.text).ids[:63])
