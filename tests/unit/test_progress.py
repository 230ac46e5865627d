"""Progress display without pytest or models: when it shows, what it writes, and that it cleans up.

``tests/integration/test_progress.py`` checks the engine's events on a tiny model and the display in
real pytest runs (a log, ``-q``, and a TTY whose output is replayed on an emulated screen).
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from interp_checks.progress import (
    ChunkDone,
    GroupDone,
    GroupStarted,
    TerminalProgress,
    choose_mode,
    start_line,
    status_line,
    text_bar,
)

GROUP = GroupStarted(1, 2, ("zoo:attn-only-2l",), 5, "{kind: repeated_random_tokens, seq_len: 32, n: 64, bos: True}, seed 0", 12, 64, 384)


@pytest.mark.parametrize(
    "option, isatty, verbosity, worker, mode",
    [
        ("auto", True, 0, False, "live"),
        ("auto", True, -1, False, "live"),  # a TTY at -q: the line is cleared afterwards, so it may show
        ("auto", False, 0, False, None),  # a CI log: nothing unless asked
        ("auto", False, -1, False, None),
        ("auto", False, 1, False, "lines"),  # a CI log at -v: one line per group
        ("on", False, 0, False, "lines"),
        ("on", False, -1, False, "lines"),
        ("on", True, 0, False, "live"),
        ("off", True, 2, False, None),
        ("off", False, 2, False, None),
        ("auto", True, 0, True, None),  # an xdist worker: nobody sees its output
        ("on", False, 1, True, None),
    ],
)
def test_when_progress_shows(option, isatty, verbosity, worker, mode):
    assert choose_mode(option, isatty=isatty, verbosity=verbosity, worker=worker) == mode


def test_an_unknown_choice_is_refused():
    with pytest.raises(ValueError, match="auto, on, off"):
        choose_mode("sometimes", isatty=True, verbosity=0, worker=False)


def test_the_bar_and_the_words():
    assert text_bar(0, 384, 10) == "[..........]" and text_bar(192, 384, 10) == "[#####.....]" and text_bar(384, 384, 10) == "[##########]"
    assert text_bar(0, 0, 4) == "[####]"  # nothing to do is done
    assert start_line(GROUP) == (
        "interp: group 1/2: zoo:attn-only-2l + 5 random twins on {kind: repeated_random_tokens, seq_len: 32, n: 64, "
        "bos: True}, seed 0: 12 claims, 64 sequences (384 sequence passes)"
    )
    line = status_line(GROUP, 192, 200)
    assert line.startswith("interp 1/2 [##########..........] 192/384 | zoo:attn-only-2l + 5 random twins | 12 claims | {kind:")
    short = status_line(GROUP, 192, 50)
    assert len(short) == 50 and short.endswith("...") and "192/384" in short


class FakeWriter:
    """The parts of pytest's TerminalWriter the display uses, recording what reaches the terminal."""

    def __init__(self, current_line: str = "", width: int = 60):
        self.out: list[str] = []
        self.current_line = current_line
        self.fullwidth = width

    @property
    def width_of_current_line(self) -> int:
        return len(self.current_line)

    def write(self, text: str, flush: bool = False) -> None:
        self.out.append(text)
        self.current_line = text.rsplit("\n", 1)[-1] if "\n" in text else self.current_line + text

    def write_raw(self, text: str, flush: bool = False) -> None:
        self.out.append(text)  # raw: the writer's idea of the current line does not change

    def line(self, text: str = "") -> None:
        self.write(text + "\n")


class FakeReporter:
    currentfspath = "suite.claims.yaml"


def test_the_live_line_opens_below_updates_in_place_and_puts_the_cursor_back():
    suspended = []

    @contextmanager
    def suspend():
        suspended.append(True)
        yield

    writer = FakeWriter("suite.claims.yaml ", width=60)
    display = TerminalProgress("live", writer, suspend=suspend, interval=0.0)
    display(GROUP)
    display(ChunkDone(1, 64, 384, "zoo:attn-only-2l"))
    display(GroupDone(1, 2, 12, 1.5))
    opened, updated, closed = writer.out
    assert opened.startswith("\n") and "0/384" in opened and len(opened) - 1 <= 59  # never wraps
    assert updated.startswith("\r") and "64/384" in updated and updated.endswith("\x1b[K")
    assert closed == "\r\x1b[2K\x1b[1A\r\x1b[18C"  # clear it, up one line, forward to column 18
    assert writer.width_of_current_line == len("suite.claims.yaml ")  # pytest's [100%] lands where it should
    assert len(suspended) == 3  # every write with capturing suspended
    display.close()
    assert len(writer.out) == 3  # closing twice writes nothing


def test_the_live_line_is_throttled_but_shows_the_end():
    writer = FakeWriter()
    display = TerminalProgress("live", writer, interval=3600.0)
    display(GROUP)
    for done in range(64, 384, 64):
        display(ChunkDone(1, done, 384, "m"))
    display(ChunkDone(1, 384, 384, "m"))
    assert [re.search(r"\d+/384", text).group(0) for text in writer.out] == ["0/384", "384/384"]


def test_lines_start_on_a_fresh_line_then_pytest_s_line_is_reopened():
    writer, reporter, reopened = FakeWriter("suite.claims.yaml "), FakeReporter(), []
    display = TerminalProgress("lines", writer, reporter=reporter, reopen=reopened.append)
    display(GROUP)
    assert writer.out[:2] == ["\n", start_line(GROUP)]
    assert reporter.currentfspath is None  # pytest writes a newline (and its prefix) before its next word
    display(GroupDone(1, 2, 12, 1.5))
    assert writer.out[2:] == ["\n", "interp: group 1/2 done in 1.5 s (12 claims)"]
    assert not any("\r" in text or "\x1b" in text for text in writer.out)  # plain text for a log
    assert reopened == []  # not between groups: only when the evaluation is over
    display.close()
    display.close()
    assert reopened == ["suite.claims.yaml"]  # once, with pytest's line as it was before the first line


def test_lines_at_q_end_with_a_newline_since_pytest_appends_its_dots():
    writer = FakeWriter()
    TerminalProgress("lines", writer, reporter=FakeReporter(), newline_after=True)(GROUP)
    assert writer.out == [start_line(GROUP) + "\n"] and writer.current_line == ""
