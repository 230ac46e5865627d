"""Write a checkpoint series folder while a model trains (issue 14's contract)::

    SERIES/
      series.json      {"axis", "recipe", "retrain", "wall_time_s", "threads", "torch", "curve",
                        "checkpoints", "complete", "tokenizer" (optional), ...}
      tokenizer.json   optional: the one tokenizer every checkpoint shares
      step-000000/     native checkpoints (``save_native``), each with "tokenizer": null

Why one writer: the trainers (``zoo.train`` for the attention-only models, and any later one) must
agree on the layout the series loader and the thinning tool (``zoo.series_fixtures``) read.
``series.json`` is rewritten after every checkpoint (``complete: false`` until the end), so an
interrupted run still leaves a readable series, never a half-written record (write, then rename).

Saving never changes training: it reads ``state_dict()`` under the model's eval mode and restores
the mode; it draws no random numbers.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

SERIES_FILE = "series.json"
SERIES_TOKENIZER = "tokenizer.json"
_NAME = re.compile(r"^(?P<prefix>[A-Za-z][A-Za-z0-9_]*)-(?P<position>\d+)$")


class SeriesFolderError(ValueError):
    """A series folder cannot be written or read as the contract says; the message names the fix."""


def checkpoint_name(position: int, prefix: str = "step") -> str:
    """``step-000100``: zero-padded so that a folder listing sorts in training order."""
    return f"{prefix}-{position:06d}"


def checkpoint_position(name: str) -> int:
    """The integer of a ``<prefix>-<integer>`` folder name: the checkpoint's position on the axis."""
    match = _NAME.match(name)
    if match is None:
        raise SeriesFolderError(f"checkpoint folder {name!r} is not named <prefix>-<integer> (e.g. step-000100)")
    return int(match["position"])


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Write ``series.json`` atomically (a reader never sees half a file), as strict JSON."""
    tmp = folder / (SERIES_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(folder / SERIES_FILE)


class SeriesWriter:
    """Saves checkpoints of one training run into ``folder`` and keeps ``series.json`` current.

    ``header`` holds what the run knows at the start (``recipe``, ``retrain``, ``threads``, ...);
    :meth:`write` adds the curve, the checkpoint list, the wall time so far and anything else.
    """

    def __init__(self, folder: str | Path, header: dict[str, Any], *, tokenizer: str | Path | None = None,
                 axis: str = "step", prefix: str = "step") -> None:
        self.folder = Path(folder)
        stale = sorted(p.name for p in self.folder.glob("*")) if self.folder.is_dir() else []
        if stale:
            raise SeriesFolderError(
                f"{self.folder} is not empty ({', '.join(stale[:4])}{', ...' if len(stale) > 4 else ''}): a series "
                "folder holds one run only; remove it or choose another --out"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.header = header
        self.axis, self.prefix = axis, prefix
        self.checkpoints: list[str] = []
        self.tokenizer = None
        if tokenizer is not None:
            shutil.copyfile(tokenizer, self.folder / SERIES_TOKENIZER)
            self.tokenizer = SERIES_TOKENIZER
        self.started = time.perf_counter()

    def save(self, bridge: Any, position: int, meta: dict[str, Any]) -> Path:
        """Save ``bridge`` as checkpoint ``position`` (no tokenizer of its own: the series has one)."""
        from interp_checks.models.native import save_native

        name = checkpoint_name(position, self.prefix)
        if name in self.checkpoints:
            return self.folder / name
        was_training = bridge.training
        bridge.eval()
        try:
            path = save_native(bridge, self.folder / name, tokenizer_json=None, meta={self.axis: position, **meta})
        finally:
            bridge.train(was_training)
        self.checkpoints.append(name)
        return path

    def write(self, *, curve: list[dict[str, Any]], complete: bool, **extra: Any) -> dict[str, Any]:
        """Rewrite ``series.json`` with the checkpoints saved so far; returns the record."""
        import torch

        record: dict[str, Any] = {
            "axis": self.axis,
            **self.header,
            "wall_time_s": round(time.perf_counter() - self.started, 1),
            "torch": torch.__version__,
            "curve": curve,
            "checkpoints": list(self.checkpoints),
            "complete": complete,
            **({"tokenizer": self.tokenizer} if self.tokenizer else {}),
            **extra,
        }
        write_record(self.folder, record)
        return record
