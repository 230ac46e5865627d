"""Progress while claims are measured: plain-data events from the engine, and how a terminal shows them.

The engine reports progress through an optional callback (``Engine(settings, progress=callback)``)
with the events below, and never writes to a terminal itself: a group of claims sharing inputs
starts (its models, inputs, claims and the number of sequence passes it will make), a chunk of
sequences has gone through one model or random-weights twin, the group is done. A script can print
them or feed them to any progress bar.

:class:`TerminalProgress` shows them in a terminal through pytest's terminal writer (the plugin
hands it the writer, the reporter and a way to suspend output capturing; this module imports no
pytest):

* ``live`` (a TTY): one status line, rewritten in place, on the line below pytest's current line
  (``[#####.....] done/total | models | claims | inputs``), cleared when the group is done, with the
  cursor put back where pytest left it, so its dots and percentages continue as if nothing had
  been written. The status line is written raw (``write_raw``), so pytest's idea of the current
  line's width (which places ``[100%]``) is untouched, and it is cut to the terminal's width so
  it never wraps (wrapping would break the way back).
* ``lines`` (a log, at ``-v`` or with ``--interp-progress=on``): one plain line when a group
  starts (models, inputs, n) and one with its time when it is done. They begin on a fresh line;
  afterwards pytest's own line is reopened (``reopen``): at ``-v`` pytest rewrites the running
  test's name itself, at the default verbosity the plugin rewrites the file's path so the running
  test's dot lands after it, and at ``-q`` the lines end with a newline, since pytest then writes
  its dots wherever the cursor is.

The engine's passes are over generated inputs (corpus inputs are a sample of windows, not a
stream), so sequences done of total is their whole progress; the miner's streaming corpus pass
keeps its tqdm bar over tokens (``inputs.corpora.iter_token_batches``).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Union

__all__ = [
    "ChunkDone",
    "GroupDone",
    "GroupProgress",
    "GroupStarted",
    "ProgressCallback",
    "ProgressEvent",
    "TerminalProgress",
    "choose_mode",
    "done_line",
    "start_line",
    "status_line",
    "text_bar",
]


@dataclass(frozen=True)
class GroupStarted:
    """A group of claims sharing inputs starts: one chunked pass per model and per random twin."""

    index: int  # 1-based position of the group in this evaluation
    groups: int  # groups in this evaluation
    models: tuple[str, ...]  # the models run on the inputs (the claims' subjects and baselines)
    twins: int  # random-weights twins run on the same inputs for the null (0 when no claim needs one)
    inputs: str  # the inputs as a claim file writes them, with the seed
    claims: int
    sequences: int  # input sequences (rows)
    total: int  # sequence passes this group will make: sequences x (models + twins)


@dataclass(frozen=True)
class ChunkDone:
    """A chunk of sequences went through one model (or twin): ``done`` of ``total`` sequence passes."""

    index: int
    done: int
    total: int
    model: str  # the model (or "MODEL random twin k") that ran the chunk


@dataclass(frozen=True)
class GroupDone:
    """The group's passes are over (``completed`` False: its run failed and its claims report why)."""

    index: int
    groups: int
    claims: int
    seconds: float
    completed: bool = True


ProgressEvent = Union[GroupStarted, ChunkDone, GroupDone]
ProgressCallback = Callable[[ProgressEvent], None]


class GroupProgress:
    """The engine's counter for one group: sequence passes done, reported as ``ChunkDone``, and the
    group's end as ``GroupDone`` (once, whether the run completed or raised)."""

    def __init__(self, notify: ProgressCallback, position: tuple[int, int], claims: int, total: int, started: float):
        self.notify = notify
        self.index, self.groups = position
        self.claims = claims
        self.total = total
        self.started = started  # time.perf_counter() when the group began (twins and inputs included)
        self.done = 0
        self.finished = False

    def advance(self, sequences: int, model: str) -> None:
        """``sequences`` more sequence passes are done, the last of them by ``model``."""
        self.done += sequences
        self.notify(ChunkDone(self.index, self.done, self.total, model))

    def finish(self, *, completed: bool) -> None:
        if not self.finished:
            self.finished = True
            self.notify(GroupDone(self.index, self.groups, self.claims, time.perf_counter() - self.started, completed))


# --- words -------------------------------------------------------------------------------------------


def text_bar(done: int, total: int, width: int = 20) -> str:
    """``[########............]``: ``done`` of ``total`` in ``width`` characters (ASCII: any terminal)."""
    filled = width if total <= 0 else min(width, width * max(0, done) // total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _models(event: GroupStarted) -> str:
    twins = f" + {event.twins} random twin{'s' * (event.twins != 1)}" if event.twins else ""
    return ", ".join(event.models) + twins


def _claims(count: int) -> str:
    return f"{count} claim{'s' * (count != 1)}"


def start_line(event: GroupStarted) -> str:
    """One line for a log when a group starts: what runs, on what, how much."""
    return (
        f"interp: group {event.index}/{event.groups}: {_models(event)} on {event.inputs}: {_claims(event.claims)}, "
        f"{event.sequences} sequences ({event.total} sequence passes)"
    )


def done_line(event: GroupDone) -> str:
    """One line for a log when a group is done, with its time."""
    how = "done" if event.completed else "failed (its claims report why)"
    return f"interp: group {event.index}/{event.groups} {how} in {event.seconds:.1f} s ({_claims(event.claims)})"


def status_line(event: GroupStarted, done: int, width: int) -> str:
    """The live status line, cut to ``width`` characters: the bar and counts first, so they survive a
    narrow terminal, then the models, the claims and the inputs (the longest, cut first)."""
    head = f"interp {event.index}/{event.groups} {text_bar(done, event.total)} {done}/{event.total}"
    text = f"{head} | {_models(event)} | {_claims(event.claims)} | {event.inputs}"
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


# --- a terminal ------------------------------------------------------------------------------------

PROGRESS_CHOICES = ("auto", "on", "off")


def choose_mode(option: str, *, isatty: bool, verbosity: int, worker: bool) -> str | None:
    """How to show progress: ``"live"``, ``"lines"`` or None (nothing).

    ``auto``: a live line on a TTY; in a log (no TTY) one line per group at ``-v`` or more, nothing
    below. ``on``: a live line on a TTY, else lines whatever the verbosity. ``off``: nothing. Never
    on an xdist worker, whose output nobody sees.
    """
    if option not in PROGRESS_CHOICES:
        raise ValueError(f"progress must be one of {', '.join(PROGRESS_CHOICES)}, got {option!r}")
    if option == "off" or worker:
        return None
    if isatty:
        return "live"
    return "lines" if option == "on" or verbosity >= 1 else None


CLEAR_TO_END = "\x1b[K"
CLEAR_LINE = "\x1b[2K"


def _up(lines: int) -> str:
    return f"\x1b[{lines}A"


def _right(columns: int) -> str:
    return f"\x1b[{columns}C" if columns > 0 else ""


class TerminalProgress:
    """Renders progress events on pytest's terminal (see the module docstring for the two modes).

    ``writer``: pytest's ``TerminalWriter``; ``reporter``: its ``TerminalReporter`` (``lines`` mode
    resets its ``currentfspath`` so pytest starts its next output on a fresh line, as it does after
    its own sections); ``suspend``: returns a context in which output capturing is off (pytest's
    ``capturemanager.global_and_fixture_disabled``), since claims are measured inside a test.
    ``interval``: the least time between two rewrites of the live line (start and end always show).
    ``reopen(saved)``: called on :meth:`close` after lines were written, with the reporter's
    ``currentfspath`` from before them, to put pytest's line for the running test back.
    """

    def __init__(
        self,
        mode: str,
        writer: Any,
        *,
        reporter: Any = None,
        suspend: Callable[[], AbstractContextManager[Any]] | None = None,
        interval: float = 0.1,
        newline_after: bool = False,
        reopen: Callable[[Any], None] | None = None,
    ):
        if mode not in ("live", "lines"):
            raise ValueError(f"mode must be 'live' or 'lines', got {mode!r}")
        self.mode = mode
        self.writer = writer
        self.reporter = reporter
        self.suspend = suspend or nullcontext
        self.interval = interval
        self.newline_after = newline_after  # lines mode at -q: pytest appends its dots to the current line
        self.reopen = reopen
        self._saved: Any = None  # lines: the reporter's currentfspath before the first line
        self._wrote_lines = False
        self._group: GroupStarted | None = None
        self._column: int | None = None  # live: where pytest's cursor was when the status line opened
        self._shown_at = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        if isinstance(event, GroupStarted):
            self._group = event
            if self.mode == "lines":
                self._line(start_line(event))
            else:
                self._show(0, force=True)
        elif isinstance(event, ChunkDone):
            if self.mode == "live" and self._group is not None and event.index == self._group.index:
                self._show(event.done, force=event.done >= event.total)
        elif isinstance(event, GroupDone):
            if self.mode == "lines":
                self._line(done_line(event))
            else:
                self.close()

    def close(self) -> None:
        """Leave the terminal to pytest after an evaluation: clear the live line (if shown) and put the
        cursor back where pytest left it; after lines, reopen pytest's line. Safe to call twice."""
        self._group = None
        if self._wrote_lines:
            self._wrote_lines = False
            if self.reopen is not None:
                with self.suspend():
                    self.reopen(self._saved)
        if self._column is None:
            return
        column, self._column = self._column, None
        with self.suspend():
            self.writer.write_raw("\r" + CLEAR_LINE + _up(1) + "\r" + _right(column), flush=True)

    def _show(self, done: int, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._shown_at < self.interval:
            return
        self._shown_at = now
        width = max(1, self.writer.fullwidth - 1)
        text = status_line(self._group, done, width)
        with self.suspend():
            if self._column is None:  # open the status line below pytest's current line
                self._column = self.writer.width_of_current_line % max(1, self.writer.fullwidth)
                self.writer.write_raw("\n" + text, flush=True)
            else:
                self.writer.write_raw("\r" + text + CLEAR_TO_END, flush=True)

    def _line(self, text: str) -> None:
        if not self._wrote_lines and self.reporter is not None:
            self._saved = self.reporter.currentfspath
        self._wrote_lines = True
        with self.suspend():
            if self.writer.width_of_current_line:
                self.writer.line()
            self.writer.write(text + ("\n" if self.newline_after else ""), flush=True)
            if self.reporter is not None and not self.newline_after:
                self.reporter.currentfspath = None  # pytest begins its next output with a newline
