"""Checkpoint series: a model's checkpoints through training (or over a swept size), read lazily.

A **series folder** holds one run::

    SERIES/
      series.json      {"axis": "step", "recipe": {...}, "retrain": "...", "curve": [...], "tokenizer": "tokenizer.json"?}
      tokenizer.json   optional: one tokenizer for every checkpoint that has none of its own
      step-000000/     a native checkpoint (config.json + model.safetensors), or a HuggingFace folder
      step-000100/     ... named <prefix>-<integer> or <integer>; the integer is its place on the axis

``series:PATH`` names one such folder, or several with a glob (``series:runs/modadd-40-s*``: one run
per match, e.g. one per seed). ``series.json`` is optional (the axis is then "step"); ``axis`` names
what the integers count (``"step"``, ``"dataset size T"``).

Why lazy: a series of 40 checkpoints of even a small model is more memory than a claim needs. The
engine loads the first checkpoint as an ordinary model (its shape validates the claim) and then
walks the series with :class:`CheckpointWalker`, which copies each checkpoint's weights into one
model in turn: one model in memory per run, whatever the series' length, and no rebuilding of the
TransformerLens bridge per checkpoint. Weights stored in float16 (the committed fixtures) are copied
into the float32 model.

Thinning (``every``, ``steps`` of a series claim): :func:`thin`.

Imports nothing heavy at module level (``models.spec`` reads series folders to validate a spec).
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from interp_checks.models.load import LoadedModel
    from interp_checks.models.spec import ModelSpec

__all__ = ["Checkpoint", "CheckpointWalker", "Series", "SeriesError", "read_series", "series_folders", "thin"]

SERIES_FILE = "series.json"
_CHECKPOINT_NAME = re.compile(r"^(?:(?P<prefix>[A-Za-z][A-Za-z0-9_]*)[-_])?(?P<position>\d+)$")


class SeriesError(ValueError):
    """A series folder is missing, empty or malformed; the message names the folder and the fix."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a series: its place on the axis (a step, a dataset size) and its folder."""

    position: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Series:
    """One run's checkpoints in axis order, and what its ``series.json`` says about them."""

    path: Path
    checkpoints: tuple[Checkpoint, ...]
    axis: str = "step"
    record: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    tokenizer: Path | None = None

    @property
    def label(self) -> str:
        """How results name this run (the folder's name: ``modadd-40-s1``)."""
        return self.path.name

    @property
    def positions(self) -> list[int]:
        return [c.position for c in self.checkpoints]

    def describe(self) -> str:
        first, last = self.checkpoints[0].position, self.checkpoints[-1].position
        return f"{self.label}: {len(self.checkpoints)} checkpoints, {self.axis} {first}..{last}"


def series_folders(pattern: str | Path) -> list[Path]:
    """The run folders a ``series:`` path names: the folder itself, or every folder a glob matches
    (sorted), keeping only folders that hold checkpoints."""
    text = str(pattern)
    if any(ch in text for ch in "*?["):
        matches = [Path(p) for p in sorted(glob.glob(text)) if Path(p).is_dir()]
    else:
        matches = [Path(text)] if Path(text).is_dir() else []
    return [m for m in matches if _checkpoint_folders(m)]


def _checkpoint_folders(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for child in folder.iterdir() if folder.is_dir() else []:
        match = _CHECKPOINT_NAME.match(child.name)
        if match and child.is_dir() and (child / "config.json").is_file():
            found.append((int(match.group("position")), child))
    return sorted(found)


def read_series(folder: str | Path) -> Series:
    """Read one run's series folder, with errors that name the folder and the fix."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SeriesError(f"series folder {folder} not found")
    found = _checkpoint_folders(folder)
    if not found:
        raise SeriesError(
            f"series folder {folder} holds no checkpoints: it needs subfolders named step-000100 (or <prefix>-<integer>), "
            "each a native checkpoint (config.json + model.safetensors) or a HuggingFace folder"
        )
    positions = [p for p, _ in found]
    if len(set(positions)) != len(positions):
        twice = sorted({p for p in positions if positions.count(p) > 1})
        raise SeriesError(f"series folder {folder}: two checkpoints at the same position {twice[0]}; keep one")
    record: dict[str, Any] = {}
    if (folder / SERIES_FILE).is_file():
        try:
            record = json.loads((folder / SERIES_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise SeriesError(f"{folder / SERIES_FILE} is not valid JSON ({error}); fix or delete it") from None
        if not isinstance(record, dict):
            raise SeriesError(f"{folder / SERIES_FILE} must be a JSON object (axis, recipe, ...)")
    tokenizer = None
    if record.get("tokenizer"):
        from interp_checks.models.native import NativeFormatError, file_inside

        try:
            tokenizer = file_inside(folder, record["tokenizer"], named_by=folder / SERIES_FILE, key="tokenizer")
        except NativeFormatError as error:
            raise SeriesError(str(error)) from None
        if not tokenizer.is_file():
            raise SeriesError(f"{folder / SERIES_FILE} names tokenizer {record['tokenizer']!r}, which is missing from {folder}")
    axis = record.get("axis", "step")
    if not isinstance(axis, str) or not axis.strip():
        raise SeriesError(f"{folder / SERIES_FILE}: \"axis\" must name what the checkpoint numbers count, e.g. \"step\"")
    return Series(folder.resolve(), tuple(Checkpoint(p, path.resolve()) for p, path in found), axis, record, tokenizer)


def thin(series: Series, *, every: int | None = None, steps: Sequence[int] | None = None, where: str = "") -> Series:
    """Keep every ``every``-th checkpoint (always the first and the last), or exactly the positions
    ``steps`` (each must exist). Thinning chooses checkpoints, never values: a claim sees the curve
    at the checkpoints kept."""
    kept = list(series.checkpoints)
    if steps is not None:
        by_position = {c.position: c for c in kept}
        missing = [s for s in steps if s not in by_position]
        if missing:
            raise SeriesError(
                f"{where}{series.label} has no checkpoint at {series.axis} {missing[0]}; it has {_positions_text(series)}"
            )
        kept = [by_position[s] for s in sorted(set(steps))]
    if every is not None:
        if every < 1:
            raise SeriesError(f"{where}every: must be a positive integer, got {every}")
        last = kept[-1]
        kept = kept[::every]
        if kept[-1] != last:
            kept.append(last)
    if len(kept) < 3:
        raise SeriesError(f"{where}{series.label}: a curve needs at least 3 checkpoints; {len(kept)} kept of {_positions_text(series)}")
    return replace(series, checkpoints=tuple(kept))


def _positions_text(series: Series) -> str:
    shown = ", ".join(str(p) for p in series.positions[:12])
    more = f", ... ({len(series.checkpoints)} in all)" if len(series.checkpoints) > 12 else ""
    return f"{series.axis} {shown}{more}"


def load_first(spec: "ModelSpec", device: str) -> "LoadedModel":
    """A ``series:`` spec as a model: its first run's first checkpoint (a claim is validated against
    its shape), with every run in ``meta["series"]``."""
    from interp_checks.models.spec import ModelSpecError

    folders = series_folders(spec.target)
    if not folders:
        raise ModelSpecError(f"{spec.describe()}: no series folder with checkpoints matches {spec.target}")
    try:
        runs = [read_series(folder) for folder in folders]
    except SeriesError as error:
        raise ModelSpecError(f"{spec.describe()}: {error}") from None
    loaded = load_checkpoint(runs[0], runs[0].checkpoints[0], device, spec=spec)
    loaded.meta = {**loaded.meta, "series": runs}
    return loaded


def load_checkpoint(series: Series, checkpoint: Checkpoint, device: str, *, spec: "ModelSpec | None" = None) -> "LoadedModel":
    """One checkpoint as a model (the series' tokenizer where it has none of its own)."""
    from interp_checks.models.load import load_model
    from interp_checks.models.spec import ModelSpec

    kind = "native" if _is_native(checkpoint.path) else "hf"
    tokenizer = None
    if kind == "native" and series.tokenizer is not None:
        from interp_checks.models.native import load_tokenizer

        tokenizer = load_tokenizer(series.tokenizer)
    loaded = load_model(ModelSpec(kind, str(checkpoint.path), f"{kind}:{checkpoint.path}"), device=device, tokenizer=tokenizer)
    if spec is not None:
        loaded.spec = spec
    return loaded


def _is_native(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("format") is not None and (folder / "model.safetensors").is_file()
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


class CheckpointWalker:
    """Walks one run's checkpoints with one model in memory: the first checkpoint is loaded as a
    model, each later one only as weights copied into it (checked to fit, with the file named)."""

    def __init__(self, series: Series, device: str):
        self.series = series
        self.device = device

    def __iter__(self) -> Iterator[tuple[Checkpoint, "LoadedModel"]]:
        model = None
        for checkpoint in self.series.checkpoints:
            if model is None or not _is_native(checkpoint.path):
                model = load_checkpoint(self.series, checkpoint, self.device)
            else:
                _copy_weights(model, checkpoint.path, self.device)
            yield checkpoint, model


def _copy_weights(model: "LoadedModel", folder: Path, device: str) -> None:
    """Load ``folder``'s native weights into ``model`` (same architecture, or an error naming both)."""
    from safetensors.torch import load_file

    from interp_checks.models.native import WEIGHTS_FILE, NativeFormatError, check_weights_fit, read_native_config
    from interp_checks.models.spec import ModelSpecError

    try:
        config = read_native_config(folder)
        if config["architecture"] != model.architecture.get("config"):
            raise NativeFormatError(
                f"{folder}: its architecture differs from the series' first checkpoint's; a series is one model through training"
            )
        state = load_file(str(folder / WEIGHTS_FILE), device=str(device))
        check_weights_fit(model.bridge, state, folder)
    except NativeFormatError as error:
        raise ModelSpecError(str(error)) from None
    model.bridge.load_state_dict(state, strict=True)
    model.bridge.eval()
