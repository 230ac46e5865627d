"""Thin a full checkpoint series into a committed fixture: the chosen checkpoints, in float16.

    python -m interp_checks.zoo.series_fixtures SRC DST --keep 0:975:75 --rule "why these" [--replace]

Why a tool, shared by every series (the attention-only zoo runs, the modular-addition runs): a full
series (every 25 or 100 steps, float32) is tens of MB; the repository's fixtures must stay well
under 100 MB in all. A fixture keeps a subset chosen by a rule written down *before* any statistic
is computed on it (``--rule``, stored in ``series.json`` as ``"thinning"``), and its weights in
float16, half the bytes. The tool then checks, checkpoint by checkpoint, that the float16 copy
computes what its float32 source does: the largest logit difference on a few random-token inputs,
relative to the largest source logit, must stay under ``--tolerance`` (1% by default: float16 keeps
11 significant bits, a relative rounding of 0.05% per weight; a 1% change in the largest logit is
far above that and far below what would change a claim about a model; a wrong or shuffled weight
changes logits by their own size). The measured differences are stored in ``series.json``.

What the fixture's ``series.json`` is: the source's record (recipe, retrain command, wall time,
threads, torch, the *full* training curve) with ``checkpoints`` the kept ones, plus ``thinning``
(rule, kept, the source's checkpoint count), ``dtype: "float16"`` and ``float16_check``. Each kept
checkpoint is ``config.json`` (the source's, ``"tokenizer": null``) + ``model.safetensors`` in
float16; ``load_native`` copies float16 weights into its float32 model. The series' one tokenizer
(if it has one: the modular-addition runs have none) is copied once.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

from interp_checks.zoo.series_writer import (
    SERIES_FILE,
    SeriesFolderError,
    checkpoint_position,
    write_record,
)

FIXTURE_DTYPE = "float16"
DEFAULT_TOLERANCE = 0.01  # largest |logit difference| / largest |source logit| (see the module docstring)
README = "README.md"


def read_record(folder: Path, *, allow_incomplete: bool = False) -> tuple[dict[str, Any], Path | None]:
    """A series' ``series.json`` (read by the series loader, ``models.series.read_series``) and its
    tokenizer file, checked to list checkpoints that exist; an unfinished run (``complete: false``)
    is refused unless ``allow_incomplete``: its thinning would be premature."""
    from interp_checks.models.series import SeriesError, read_series

    path = folder / SERIES_FILE
    if not path.is_file():
        raise SeriesFolderError(f"{path} is missing: SRC must be a series folder written by a series trainer "
                                "(python -m interp_checks.zoo series NAME, or zoo.modular); a run still going writes it at its first save")
    try:
        series = read_series(folder)
    except SeriesError as error:
        raise SeriesFolderError(str(error)) from None
    record = series.record
    checkpoints = record.get("checkpoints")
    if not isinstance(checkpoints, list) or not checkpoints:
        raise SeriesFolderError(f"{path}: \"checkpoints\" must list the series' checkpoint folders")
    missing = [name for name in checkpoints if not (folder / name / "model.safetensors").is_file()]
    if missing:
        raise SeriesFolderError(f"{path} lists {missing[0]}, which has no model.safetensors in {folder}")
    if record.get("complete") is False and not allow_incomplete:
        raise SeriesFolderError(f"{path} says \"complete\": false (the run has not finished); wait for it, "
                                "or pass --allow-incomplete to thin what is there")
    return record, series.tokenizer


def parse_keep(text: str) -> list[int | str]:
    """``--keep``: comma-separated positions (``0,75``), inclusive ranges ``START:STOP:STEP``
    (``0:975:75``) and checkpoint names (``step-000075``)."""
    items: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if ":" in part:
            bounds = part.split(":")
            try:
                start, stop, step = (int(b) for b in bounds)
            except ValueError:
                raise SeriesFolderError(f"--keep {part!r}: a range is START:STOP:STEP, three integers (e.g. 0:975:75)") from None
            if step < 1 or stop < start:
                raise SeriesFolderError(f"--keep {part!r}: needs STEP >= 1 and STOP >= START")
            items.extend(range(start, stop + 1, step))
        else:
            items.append(int(part) if part.isdigit() else part)
    if not items:
        raise SeriesFolderError("--keep names no checkpoint; e.g. --keep 0:975:75 or --keep step-000000,step-000100")
    return items


def uniform_grid(reach: int, *, unit: int, count: int) -> list[int]:
    """``count`` evenly spaced positions ``0, s, ..., (count - 1) s`` with ``s`` the smallest multiple
    of ``unit`` (the full series' save interval, so every position was saved) whose last position
    reaches ``reach``. Why this shape: a fixed number of checkpoints (the size budget), the
    initialisation always in, no position favoured, and ``reach`` the one number chosen in advance
    (for the attention-only series: 100 steps past the curriculum's end, from the training log)."""
    if unit < 1 or count < 2 or reach < 0:
        raise ValueError(f"uniform_grid needs unit >= 1, count >= 2, reach >= 0 (got {unit}, {count}, {reach})")
    spacing = unit * max(1, -(-reach // (unit * (count - 1))))
    return [i * spacing for i in range(count)]


def select(checkpoints: Sequence[str], keep: Sequence[int | str]) -> list[str]:
    """The checkpoint names ``keep`` asks for, in axis order; a position or name the series lacks is an error."""
    by_position = {checkpoint_position(name): name for name in checkpoints}
    chosen = set()
    for item in keep:
        name = by_position.get(item) if isinstance(item, int) else (item if item in checkpoints else None)
        if name is None:
            shown = ", ".join(str(p) for p in sorted(by_position)[:10])
            raise SeriesFolderError(f"--keep {item!r}: the series has no such checkpoint (it has positions {shown}"
                                    f"{', ...' if len(by_position) > 10 else ''}; {len(by_position)} in all)")
        chosen.add(name)
    return sorted(chosen, key=checkpoint_position)


def export_checkpoint(src: Path, dst: Path) -> None:
    """Copy one native checkpoint with its floating-point weights in float16 and no tokenizer of its own."""
    import torch
    from safetensors.torch import load_file, save_file

    from interp_checks.models.native import CONFIG_FILE, WEIGHTS_FILE, read_native_config

    config = read_native_config(src)
    if config.get("tokenizer"):
        raise SeriesFolderError(f"{src / CONFIG_FILE} carries its own tokenizer {config['tokenizer']!r}; checkpoints of a "
                                "series share the series' one tokenizer (\"tokenizer\" in series.json): rewrite it with \"tokenizer\": null")
    state = load_file(str(src / WEIGHTS_FILE))
    half = {name: (t.to(torch.float16) if t.is_floating_point() else t).contiguous() for name, t in state.items()}
    dst.mkdir(parents=True)
    save_file(half, str(dst / WEIGHTS_FILE))
    config["meta"] = {**config.get("meta", {}), "stored_dtype": FIXTURE_DTYPE}
    (dst / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def random_tokens(architecture: dict[str, Any], *, n: int, seq_len: int, seed: int) -> Any:
    """``n`` sequences of uniformly random token ids, as long as the context allows (at most ``seq_len``)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    length = min(seq_len, int(architecture["n_ctx"]))
    return torch.randint(0, int(architecture["d_vocab"]), (n, length), generator=generator)


def logit_difference(src: Path, dst: Path, tokenizer: Any, tokens: Any) -> dict[str, float]:
    """Max |logit difference| between two checkpoints (each loaded with the series' tokenizer), and
    the largest |logit| of the first, on ``tokens``."""
    import torch

    from interp_checks.models.native import load_native

    with torch.no_grad():
        reference = load_native(src, tokenizer=tokenizer)(tokens).float()
        copy = load_native(dst, tokenizer=tokenizer)(tokens).float()
    diff = float((reference - copy).abs().max())
    scale = float(reference.abs().max())
    return {"max_abs_logit_diff": diff, "max_abs_logit": scale, "relative": diff / scale if scale else float("inf")}


def _clear(dst: Path, record_path: Path) -> None:
    """Remove what an earlier export wrote into ``dst`` (series.json, checkpoint folders, the
    tokenizer it names), keeping anything else (the hand-written README.md)."""
    old = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    for name in old.get("checkpoints", []):
        if (dst / name).is_dir():
            shutil.rmtree(dst / name)
    for name in (old.get("tokenizer"), SERIES_FILE):
        if name and (dst / name).is_file():
            (dst / name).unlink()


def export_series(
    src: str | Path,
    dst: str | Path,
    keep: Sequence[int | str],
    *,
    rule: str,
    replace: bool = False,
    allow_incomplete: bool = False,
    n_inputs: int = 4,
    seq_len: int = 64,
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
    command: str | None = None,
) -> dict[str, Any]:
    """Write the thinned float16 fixture of series ``src`` into ``dst`` and return its ``series.json``."""
    from interp_checks.models.native import load_tokenizer, read_native_config

    src, dst = Path(src), Path(dst)
    if not rule.strip():
        raise SeriesFolderError("--rule is required: say how the kept checkpoints were chosen (and that it was before any statistic)")
    record, tokenizer_file = read_record(src, allow_incomplete=allow_incomplete)
    kept = select(record["checkpoints"], keep)
    if dst.resolve() == src.resolve():
        raise SeriesFolderError(f"DST {dst} is SRC: write the fixture into another folder")
    if dst.is_dir() and any(p.name != README for p in dst.iterdir()):
        if not replace:
            raise SeriesFolderError(f"{dst} already holds files; pass --replace to overwrite an earlier export (README.md is kept)")
        _clear(dst, dst / SERIES_FILE)
        leftover = sorted(p.name for p in dst.iterdir() if p.name != README)
        if leftover:
            raise SeriesFolderError(f"{dst} holds files an export did not write ({', '.join(leftover[:4])}); move them away first")
    dst.mkdir(parents=True, exist_ok=True)

    tokenizer = None
    if tokenizer_file is not None:  # inside SRC: read_series refuses a path out of it
        shutil.copyfile(tokenizer_file, dst / record["tokenizer"])
        tokenizer = load_tokenizer(dst / record["tokenizer"])
    checks: dict[str, dict[str, float]] = {}
    for name in kept:
        export_checkpoint(src / name, dst / name)
        tokens = random_tokens(read_native_config(src / name)["architecture"], n=n_inputs, seq_len=seq_len, seed=seed)
        checks[name] = {key: round(value, 6) for key, value in logit_difference(src / name, dst / name, tokenizer, tokens).items()}
        if checks[name]["relative"] > tolerance:
            raise SeriesFolderError(
                f"{dst / name}: the float16 copy's logits differ from {src / name}'s by {checks[name]['max_abs_logit_diff']:.4g} "
                f"({checks[name]['relative']:.2%} of the largest logit, over the {tolerance:.0%} allowed); this series does not "
                "survive float16: commit fewer checkpoints in float32 instead"
            )
    worst = max(checks, key=lambda name: checks[name]["max_abs_logit_diff"])
    fixture = {
        **record,
        "checkpoints": kept,
        "thinning": {"rule": rule, "kept": kept, "source_checkpoints": len(record["checkpoints"]),
                     **({"command": command} if command else {})},
        "dtype": FIXTURE_DTYPE,
        "float16_check": {
            "what": "max |logit(float16 copy) - logit(float32 source)| on random-token inputs, per checkpoint; "
                    "relative = that / max |source logit|",
            "inputs": {"kind": "uniform random token ids", "n": n_inputs, "seq_len": seq_len, "seed": seed},
            "tolerance_relative": tolerance,
            "worst": {"checkpoint": worst, **checks[worst]},
            "per_checkpoint": checks,
        },
    }
    write_record(dst, fixture)
    return fixture


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _curve_table(curve: list[dict[str, Any]], axis: str, rows: int = 24) -> str:
    """Up to ``rows`` evenly spaced points of the training log, every column it has."""
    if not curve:
        return "(no training log)"
    picks = curve if len(curve) <= rows else [curve[round(i * (len(curve) - 1) / (rows - 1))] for i in range(rows)]
    columns = [axis] + [key for key in curve[0] if key != axis]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(point.get(key)) for key in columns) + " |" for point in picks]
    return "\n".join(lines)


def series_card(folder: Path, record: dict[str, Any], *, about: str = "", float16_note: str = "") -> str:
    """README.md of a fixture series: what it is, its recipe, how to retrain and re-thin it (with the
    measured time), the thinning rule, the float16 note, the kept checkpoints and the training log."""
    from interp_checks.models.native import read_native_config

    axis = record.get("axis", "step")
    recipe = record.get("recipe", {})
    recipe_rows = "\n".join(f"| {key} | {json.dumps(value) if isinstance(value, (dict, list)) else value} |"
                            for key, value in recipe.items() if key != "description")
    kept_rows = []
    for name in record["checkpoints"]:
        meta = read_native_config(folder / name).get("meta", {})
        check = record["float16_check"]["per_checkpoint"][name]
        kept_rows.append(f"| {name} | {checkpoint_position(name)} | {meta.get('phase', '-')} | {check['max_abs_logit_diff']:.2e} |")
    thinning = record["thinning"]
    check = record["float16_check"]
    timing = (f"{record.get('wall_time_s')} s wall on {record.get('threads')} thread(s), torch {record.get('torch')}"
              + (f", {record['date']}" if record.get("date") else ""))
    return f"""# {folder.name}: a checkpoint series

{about or recipe.get('description', '')}

{len(record['checkpoints'])} checkpoints of one training run, on the axis "{axis}", kept from the
{thinning['source_checkpoints']} the run saved, weights in float16. Layout: `series.json` (the run's record: recipe,
retrain command, wall time, the full training log as `curve`, the kept `checkpoints`, `thinning`,
`float16_check`){', one `' + record['tokenizer'] + '` shared by every checkpoint' if record.get('tokenizer') else ''}, and one native
checkpoint folder per kept position (`config.json` with `"tokenizer": null` + `model.safetensors`). Load one with
`interp_checks.models.native.load_native(folder, tokenizer=...)`, or name the whole series in a claim (`series:PATH`).

## Retrain

1. `{record.get('retrain')}` (writes the full series; measured {timing}).
2. `{thinning.get('command', 'python -m interp_checks.zoo.series_fixtures SRC DST --keep ... --rule ...')}`

## Thinning

{thinning['rule']}

| checkpoint | {axis} | phase | max abs logit diff, float16 vs float32 |
|---|---|---|---|
{chr(10).join(kept_rows)}

## float16

The weights are stored in float16 (half the bytes of the float32 run) and load into a float32 model. Each
kept checkpoint was checked against its float32 source on {check['inputs']['n']} sequences of
{check['inputs']['seq_len']} uniformly random tokens (seed {check['inputs']['seed']}): the largest logit difference is
{check['worst']['max_abs_logit_diff']:.2e} ({check['worst']['checkpoint']}, {check['worst']['relative']:.2e} of its largest logit; the
export refuses above {check['tolerance_relative']:.0%}).{(chr(10) + chr(10) + float16_note) if float16_note else ''}

## Recipe

| field | value |
|---|---|
{recipe_rows}

## Training log

{len(record.get('curve', []))} points in `series.json`; {min(24, len(record.get('curve', [])))} evenly spaced ones:

{_curve_table(record.get('curve', []), axis)}
"""


def fixture_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interp_checks.zoo.series_fixtures", description=__doc__.split("\n")[0])
    parser.add_argument("src", type=Path, help="a full series folder (series.json + <prefix>-<integer>/ checkpoints)")
    parser.add_argument("dst", type=Path, help="the fixture folder to write, e.g. fixtures/series/attn-only-2l")
    parser.add_argument("--keep", required=True,
                        help="checkpoints to keep: positions (0,75), inclusive ranges START:STOP:STEP (0:975:75) or names (step-000075)")
    parser.add_argument("--rule", required=True, help="how the kept checkpoints were chosen (stored in series.json as thinning.rule)")
    parser.add_argument("--replace", action="store_true", help="overwrite an earlier export in DST (its README.md is kept)")
    parser.add_argument("--allow-incomplete", action="store_true", help="thin a series whose run has not finished")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help=f"largest allowed |logit difference| / largest |logit| of the float16 copy (default {DEFAULT_TOLERANCE})")
    parser.add_argument("--inputs", type=int, default=4, help="random-token sequences for the float16 check (default 4)")
    parser.add_argument("--seq-len", type=int, default=64, help="their length, capped at n_ctx (default 64)")
    parser.add_argument("--card", action="store_true", help="(re)write DST/README.md from series.json (see series_card)")
    parser.add_argument("--about", default="", help="the card's opening paragraph (default: the recipe's description)")
    parser.add_argument("--float16-note", default="", help="what else was measured about float16 storage (the card's float16 section)")
    args = parser.parse_args(argv)
    # The command that re-thins, with the long texts named rather than repeated (they are in series.json and the card).
    command = shlex.join(["python", "-m", "interp_checks.zoo.series_fixtures", str(args.src), str(args.dst), "--keep", args.keep])
    command += ' --rule "<thinning.rule>"' + (" --card" if args.card else "")
    command += ' --about "<the card\'s first paragraph>"' if args.about else ""
    command += ' --float16-note "<the card\'s float16 note>"' if args.float16_note else ""

    import torch

    torch.set_num_threads(1)
    try:
        record = export_series(args.src, args.dst, parse_keep(args.keep), rule=args.rule, replace=args.replace,
                               allow_incomplete=args.allow_incomplete, n_inputs=args.inputs, seq_len=args.seq_len,
                               tolerance=args.tolerance, command=command)
    except SeriesFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, check in record["float16_check"]["per_checkpoint"].items():
        print(f"{name}: max |logit diff| {check['max_abs_logit_diff']:.2e} (largest logit {check['max_abs_logit']:.2f}, "
              f"relative {check['relative']:.2e})")
    if args.card:
        (args.dst / README).write_text(series_card(args.dst, record, about=args.about, float16_note=args.float16_note), encoding="utf-8")
    print(f"wrote {args.dst}: {len(record['checkpoints'])} of {record['thinning']['source_checkpoints']} checkpoints, "
          f"{fixture_bytes(args.dst) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
