"""Text generators: seeded texts, regions on the right characters, and token masks after generate()."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import interp_checks.inputs.text_generators as text_generators  # registers the kinds
from interp_checks.inputs.corpora import stdlib_documents, split_of
from interp_checks.inputs.generators import (
    InputSpecError,
    TextSamples,
    Vocabulary,
    available_generators,
    generate,
    normalise_input_spec,
)

TOKENIZER = Path(__file__).resolve().parents[2] / "fixtures" / "zoo" / "tokenizer.json"
KINDS = ("corpus", "repeated_span_text", "bracket_nesting", "counting", "far_copy")
REGIONS = {
    "corpus": (),
    "repeated_span_text": ("original", "repeat"),
    "bracket_nesting": ("closing", "deep_closing"),
    "counting": ("continuation",),
    "far_copy": ("copied_value",),
}


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    from interp_checks.models.native import load_tokenizer

    return Vocabulary(
        d_vocab=2048,
        n_ctx=256,
        bos_token_id=0,
        special_token_ids=frozenset({0, 1, 2}),
        tokenizer=load_tokenizer(TOKENIZER),
    )


def samples(kind: str, seed: int = 0, **params) -> TextSamples:
    """The generator's own output (texts + character spans), as generate() would call it."""
    spec = normalise_input_spec({"kind": kind, **params})
    params = {k: v for k, v in spec.items() if k != "kind"}
    return available_generators()[kind].make(params, Vocabulary(2048, 256, 0), np.random.default_rng(seed))


def region_texts(sample: TextSamples, name: str, row: int) -> list[str]:
    return [sample.texts[row][start:stop] for start, stop in sample.regions[name][row]]


# --- registration and determinism ----------------------------------------------------------------


def test_every_kind_is_registered_with_defaults_and_a_one_line_description():
    registry = available_generators()
    for kind in KINDS:
        assert kind in registry
        assert registry[kind].description and "\n" not in registry[kind].description
        assert normalise_input_spec({"kind": kind})["n"] == 64
    assert registry["corpus"].defaults == {"source": "stdlib", "split": "heldout", "n": 64, "chars": 700}


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_seed_gives_the_same_texts_and_another_seed_others(kind, vocab):
    first = generate({"kind": kind, "n": 12}, vocab, seed=1)
    again = generate({"kind": kind, "n": 12}, vocab, seed=1)
    other = generate({"kind": kind, "n": 12}, vocab, seed=2)
    assert first.texts == again.texts
    assert np.array_equal(first.tokens, again.tokens)
    assert all(np.array_equal(first.regions[k], again.regions[k]) for k in first.regions)
    assert first.texts != other.texts
    assert len(set(first.texts)) == len(first.texts)  # rows are distinct samples


# --- regions on the right characters -------------------------------------------------------------


def test_corpus_windows_are_real_text_starting_at_line_starts():
    sample = samples("corpus", n=20, chars=300)
    documents = [d.text for d in stdlib_documents() if split_of(d.name) == "heldout"]
    assert len(sample.texts) == 20 and sample.regions == {}
    for text in sample.texts:
        assert len(text) <= 300
        source = next(doc for doc in documents if text in doc)
        start = source.index(text)
        assert start == 0 or source[start - 1] == "\n"


@pytest.mark.parametrize("half", ["discovery", "confirmation"])
def test_text_generators_accept_the_halves_of_the_heldout_split(half):
    from interp_checks.inputs.corpora import filter_split

    documents = [d.text for d in filter_split(stdlib_documents(), half)]
    for kind in ("corpus", "repeated_span_text"):
        sample = samples(kind, split=half, n=12, chars=300)
        assert len(sample.texts) == 12
        if kind == "corpus":  # every window comes from a document of that half
            assert all(any(text in doc for doc in documents) for text in sample.texts)


def test_a_corpus_of_one_long_document_still_gives_n_windows(tmp_path):
    lines = [f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(400)]
    (tmp_path / "book.txt").write_text("\n".join(lines), encoding="utf-8")
    sample = samples("corpus", source=str(tmp_path / "book.txt"), split="all", n=8, chars=200)
    assert len(sample.texts) == 8 and len(set(sample.texts)) == 8
    assert all(text.startswith("line ") for text in sample.texts)


def test_the_repeat_is_a_copy_of_the_original_placed_later_at_a_line_break():
    sample = samples("repeated_span_text", n=32)
    for row, text in enumerate(sample.texts):
        ((o_start, o_stop),) = sample.regions["original"][row]
        ((r_start, r_stop),) = sample.regions["repeat"][row]
        assert text[o_start:o_stop] == text[r_start:r_stop]
        assert o_stop < r_start
        assert text[r_start - 1] in "\n "  # inserted at a line (or word) break
        assert text[r_stop] == text[r_start - 1]  # followed by the same separator
        assert o_start == 0 or text[o_start - 1].isspace()
        assert not text[o_start].isspace() and not text[o_stop - 1].isspace()
        assert text[o_stop].isspace()
    lengths = [stop - start for ((start, stop),) in sample.regions["original"]]
    assert 70 <= np.median(lengths) <= 100  # ~span_chars (80), snapped to word ends


def test_closing_regions_are_exactly_the_closing_brackets_and_deep_ones_are_deep():
    sample = samples("bracket_nesting", n=32, depth=5, length=150)
    for row, text in enumerate(sample.texts):
        closing = [start for start, _ in sample.regions["closing"][row]]
        assert closing == [i for i, c in enumerate(text) if c in ")]}"]
        deep = [start for start, _ in sample.regions["deep_closing"][row]]
        assert deep and set(deep) <= set(closing)
        depth, deepest, pairs = 0, 0, {")": "(", "]": "[", "}": "{"}
        stack = []
        for i, char in enumerate(text):
            if char in "([{":
                stack.append(char)
                deepest = max(deepest, len(stack))
            elif char in pairs:
                assert stack.pop() == pairs[char]  # balanced and properly nested
                assert (i in deep) == (len(stack) + 1 >= 3)
        assert not stack and deepest == 5
        assert len(text) >= 150 and text.startswith("def ")


def test_counting_continuations_continue_the_sequence():
    sample = samples("counting", n=40, length=12, start_max=50)
    cycles = [text_generators._LETTERS, text_generators._WEEKDAYS, text_generators._MONTHS]
    cycles += [tuple(c.upper() for c in text_generators._LETTERS)]
    cycles += [tuple(c[:3] for c in text_generators._WEEKDAYS), tuple(c[:3] for c in text_generators._MONTHS)]
    for row, text in enumerate(sample.texts):
        items = region_texts(sample, "continuation", row)
        assert len(items) == 12 - 3
        head = re.findall(r"\w+", text[: sample.regions["continuation"][row][0][0]])[-3:]
        sequence = head + items
        if sequence[0].isdigit():
            numbers = [int(x) for x in sequence]
            assert numbers == list(range(numbers[0], numbers[0] + 12)) and numbers[0] <= 50
        else:
            cycle = next(c for c in cycles if sequence[0] in c and sequence[1] in c)
            at = cycle.index(sequence[0])
            assert sequence == [cycle[(at + i) % len(cycle)] for i in range(12)]


def test_far_copy_recalls_the_value_of_the_first_line_at_the_end():
    sample = samples("far_copy", n=24)
    for row, text in enumerate(sample.texts):
        ((start, stop),) = sample.regions["copied_value"][row]
        first_line = text.split("\n", 1)[0]
        key, value = first_line.split(" = ", 1)
        assert text[start:stop] == value and stop == len(text) - 1
        assert text[: start].endswith("\n" + key + " = ")
        assert text.count(value) == 2 and text.count(key + " = ") == 2
        assert 40 <= len(value) <= 40 + 12
        assert len(text) <= 600 and text[len(first_line) + 1 : start - len(key) - 3].strip()  # real filler between


# --- errors --------------------------------------------------------------------------------------


def test_a_missing_corpus_is_an_input_spec_error_naming_the_path(vocab, tmp_path):
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(InputSpecError, match="nothing is downloaded") as info:
        generate({"kind": "corpus", "source": str(missing)}, vocab, seed=0)
    assert str(missing) in str(info.value)
    with pytest.raises(InputSpecError, match="split"):
        generate({"kind": "repeated_span_text", "split": "validation"}, vocab, seed=0)


def test_a_malformed_corpus_file_is_an_input_spec_error_with_its_line(vocab, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "fine"}\n{"txt": "typo"}\n', encoding="utf-8")
    with pytest.raises(InputSpecError, match=re.escape(f"{path}:2")):
        generate({"kind": "corpus", "source": str(path), "split": "all"}, vocab, seed=0)


def test_sizes_that_cannot_hold_the_pattern_are_refused(vocab):
    with pytest.raises(InputSpecError, match="span_chars"):
        generate({"kind": "repeated_span_text", "chars": 100, "span_chars": 80}, vocab, seed=0)
    with pytest.raises(InputSpecError, match="span_chars"):
        generate({"kind": "far_copy", "chars": 150}, vocab, seed=0)
    with pytest.raises(InputSpecError, match="length"):
        generate({"kind": "counting", "length": 3}, vocab, seed=0)


# --- end to end through a real tokenizer ---------------------------------------------------------


def made_by_generate(kind: str, batch) -> TextSamples:
    """What the generator returned inside generate() (same spec, same RNG seeding), spans included."""
    from interp_checks.inputs.generators import input_key

    spec = normalise_input_spec({"kind": kind, **batch.params})
    rng = np.random.default_rng([batch.seed, int(input_key(spec, batch.seed), 16)])
    return available_generators()[kind].make(dict(batch.params), Vocabulary(2048, 256, 0), rng)


@pytest.mark.parametrize("kind", KINDS)
def test_generate_turns_regions_into_token_masks_over_the_right_characters(kind, vocab):
    batch = generate({"kind": kind, "n": 16}, vocab, seed=0)
    made = made_by_generate(kind, batch)
    assert made.texts == batch.texts
    tokenizer = vocab.tokenizer
    assert batch.tokens.shape[0] == 16 and batch.tokens.shape[1] <= 256
    assert (batch.tokens[:, 0] == 0).all()
    assert set(batch.regions) == set(REGIONS[kind])
    for row, text in enumerate(batch.texts):
        count = int(batch.valid[row].sum())
        offsets = batch.offsets[row, 1:count]
        # offsets tile the text: tokens map back to consecutive characters (byte-level BPE may split
        # one non-ASCII character into several tokens, which then share its span)
        assert offsets[0, 0] == 0
        same_char = (offsets[1:] == offsets[:-1]).all(axis=1)
        assert ((offsets[1:, 0] == offsets[:-1, 1]) | same_char).all()
        covered = int(offsets[-1, 1])
        if count < 256:
            assert covered == len(text)
            assert tokenizer.decode(batch.tokens[row, 1:count].tolist()) == text
        for name in REGIONS[kind]:
            mask = batch.regions[name][row]
            assert not mask[~batch.valid[row]].any() and not mask[0]
            spans = made.regions[name][row]
            for position in np.flatnonzero(mask):
                start, stop = batch.offsets[row, position]
                assert any(start < s_stop and stop > s_start for s_start, s_stop in spans)
            for s_start, s_stop in spans:
                if s_stop <= covered:
                    hit = mask & (batch.offsets[row, :, 0] < s_stop) & (batch.offsets[row, :, 1] > s_start)
                    assert hit.any(), (name, text[s_start:s_stop])
    for name in REGIONS[kind]:
        assert batch.regions[name].any(axis=1).mean() >= 0.75, name  # a few rows may be cut at n_ctx
