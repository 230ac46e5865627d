"""Modular addition series for training-dynamics claims (issue 14): a seeded recipe that trains the
one-layer transformer of Nanda et al. 2023 ("Progress measures for grokking via mechanistic
interpretability") on a + b mod p and saves native checkpoints along the way.

Setting (theirs): p = 113, inputs ``a b =`` (three tokens; ``=`` is token p), the answer read at the
last position; one layer, d_model 128, 4 heads of 32, d_mlp 512 (ReLU), no layer norm, learned
positions; full-batch AdamW, lr 1e-3, weight decay 1, betas (0.9, 0.98). They train on 30% of the
p^2 pairs; measured on this machine (``shared/FACTS.md``) 30% does not grok within 18,000 steps,
40% does (test accuracy 12% at step 250, 51% at 3,750, 99% at 4,500; about 9 minutes on 2
threads), 50% generalises by step 750. So the recipes here use 40% (``train_fraction``), with
controls: weight decay 0 (no grokking) and 60% (generalises at once).

What is saved (``train_series``): ``step-NNNNNN/`` native checkpoints at ``save_steps`` (the full
series; the committed fixtures are a thinned copy), and ``series.json``: the recipe, the train/test
split's seed and sizes, and at every ``log_every`` step the full-batch train and test loss and
accuracy (the curve a grokking claim reads), measured in eval mode after the step.

Determinism: ``torch.manual_seed(seed)`` for the init, a ``numpy`` generator of the same seed for
the split; one thread by default (float sums differ between thread counts).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from interp_checks.inputs.modular import all_pairs, answers, split_pairs


@dataclass(frozen=True)
class ModularRecipe:
    """Everything needed to retrain one modular-addition series."""

    name: str
    seed: int = 0  # the initialisation's
    split_seed: int = 0  # the train/test split's: the same pairs for every seed, so seeds share their evaluation inputs
    p: int = 113
    train_fraction: float = 0.4
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    steps: int = 2_000
    log_every: int = 50
    save_every: int = 100

    def architecture(self) -> dict[str, Any]:
        """The TransformerBridgeConfig fields the native format records."""
        return {
            "d_model": self.d_model,
            "d_head": self.d_head,
            "n_layers": 1,
            "n_ctx": 3,
            "n_heads": self.n_heads,
            "d_mlp": self.d_mlp,
            "d_vocab": self.p + 1,
            "d_vocab_out": self.p,
            "attn_only": False,
            "act_fn": "relu",
            "normalization_type": None,
            "positional_embedding_type": "standard",
            "default_prepend_bos": False,
        }

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["betas"] = list(self.betas)
        return record


def modular_recipes() -> dict[str, ModularRecipe]:
    """The grokking runs (40% of pairs, three seeds) and their controls (weight decay 0; 60% of pairs)."""
    runs = [ModularRecipe(f"modadd-40-s{seed}", seed=seed) for seed in (0, 1, 2)]
    runs.append(ModularRecipe("modadd-40-wd0-s0", weight_decay=0.0))
    runs.append(ModularRecipe("modadd-60-s0", train_fraction=0.6, steps=1_000))
    return {recipe.name: recipe for recipe in runs}


def split_of(recipe: ModularRecipe) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices) into ``all_pairs(recipe.p)``: ``inputs.modular.split_pairs``."""
    return split_pairs(recipe.p, recipe.train_fraction, recipe.split_seed)


def train_series(
    recipe: ModularRecipe,
    out_dir: str | Path,
    *,
    threads: int = 1,
    log: Callable[[str], None] = print,
    save: bool = True,
) -> dict[str, Any]:
    """Train ``recipe`` full-batch and write ``out_dir/<name>/`` (checkpoints + series.json)."""
    import torch
    import torch.nn.functional as F

    from interp_checks.models.native import boot_random, save_native

    torch.set_num_threads(threads)
    torch.manual_seed(recipe.seed)
    folder = Path(out_dir) / recipe.name
    folder.mkdir(parents=True, exist_ok=True)
    inputs = all_pairs(recipe.p)
    targets = answers(inputs, recipe.p)
    train_idx, test_idx = split_of(recipe)
    x_train, y_train = torch.as_tensor(inputs[train_idx]), torch.as_tensor(targets[train_idx])
    x_test, y_test = torch.as_tensor(inputs[test_idx]), torch.as_tensor(targets[test_idx])

    bridge = boot_random(recipe.architecture(), seed=recipe.seed)
    bridge.train()
    model = bridge.original_model
    optimizer = torch.optim.AdamW(bridge.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, betas=recipe.betas)

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            out = {}
            for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
                logits = model(x)[:, -1, : recipe.p].float()
                out[f"{split}_loss"] = float(F.cross_entropy(logits, y))
                out[f"{split}_accuracy"] = float((logits.argmax(-1) == y).float().mean())
        model.train()
        return out

    curve: list[dict[str, Any]] = [{"step": 0, **evaluate()}]
    saved: list[int] = []
    if save:
        _save(bridge, folder, 0, recipe, save_native)
        saved.append(0)
    start = time.perf_counter()
    for step in range(1, recipe.steps + 1):
        logits = model(x_train)[:, -1, : recipe.p].float()
        loss = F.cross_entropy(logits, y_train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % recipe.log_every == 0 or step == recipe.steps:
            point = {"step": step, **evaluate()}
            curve.append(point)
            if step % (recipe.log_every * 10) == 0 or step == recipe.steps:
                log(f"[{recipe.name}] step {step} train {point['train_loss']:.4f} ({point['train_accuracy']:.3f}) "
                    f"test {point['test_loss']:.4f} ({point['test_accuracy']:.3f}) {time.perf_counter() - start:.0f}s")
        if save and (step % recipe.save_every == 0 or step == recipe.steps):
            _save(bridge, folder, step, recipe, save_native)
            saved.append(step)
            _write_record(folder, _record(recipe, train_idx, test_idx, curve, saved, start, threads, complete=step == recipe.steps))
    record = _record(recipe, train_idx, test_idx, curve, saved, start, threads, complete=True)
    _write_record(folder, record)
    return record


def _record(recipe: ModularRecipe, train_idx: np.ndarray, test_idx: np.ndarray, curve: list[dict[str, Any]], saved: list[int],
            start: float, threads: int, *, complete: bool) -> dict[str, Any]:
    """``series.json``: written at every save, so an interrupted run leaves a readable series (``complete`` false)."""
    import torch

    return {
        "recipe": recipe.as_record(),
        "split": {"train": int(train_idx.size), "test": int(test_idx.size), "seed": recipe.split_seed},
        "curve": curve,
        "checkpoints": [f"step-{s:06d}" for s in saved],
        "wall_time_s": round(time.perf_counter() - start, 1),
        "threads": threads,
        "torch": torch.__version__,
        "retrain": f"python -m interp_checks.zoo.modular {recipe.name}",
        "axis": "step",
        "complete": complete,
    }


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    (folder / "series.json").write_text(json.dumps(record, indent=1), encoding="utf-8")


def _save(bridge: Any, folder: Path, step: int, recipe: ModularRecipe, save_native: Callable[..., Any]) -> None:
    bridge.eval()
    save_native(bridge, folder / f"step-{step:06d}", meta={"series": recipe.name, "step": step, "recipe": recipe.as_record()})
    bridge.train()


def main(argv: list[str] | None = None) -> int:
    import argparse

    recipes = modular_recipes()
    parser = argparse.ArgumentParser(prog="python -m interp_checks.zoo.modular", description=__doc__.split("\n")[0])
    parser.add_argument("name", help=f"one of {', '.join(recipes)} or all")
    parser.add_argument("--out", type=Path, default=Path("series"))
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    names = list(recipes) if args.name == "all" else [args.name]
    for name in names:
        recipe = recipes[name] if args.steps is None else replace(recipes[name], steps=args.steps)
        train_series(recipe, args.out, threads=args.threads, log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
