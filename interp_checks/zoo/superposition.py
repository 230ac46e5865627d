"""Double descent in a toy model of superposition, as checkpoint series over dataset size (issue 14).

Henighan et al. 2023 ("Superposition, Memorization, and Double Descent") train x' = ReLU(W^T W x + b)
(``models.toy``) on T sparse points (n = 10,000 features, sparsity 0.999, m = 2 hidden dimensions;
50,000 full-batch AdamW steps, warmup then cosine decay, weight decay 1e-2) for T from 3 upward:
small T stores the data points (hidden vectors form a T-gon), large T stores features (a pentagon),
and test loss peaks between the two.

Scaled down to this machine (``shared/FACTS.md``): n = 1,000 features and sparsity 0.99 (about 10
active features a point, as in the paper's 10,000 x 0.001), 3,000 steps, lr 1e-3 with 5% linear
warmup then cosine decay to 0, weight decay 1e-2, AdamW's default betas. Loss: each point's squared
error summed over features (every feature's importance 1, Elhage et al.'s L without the importance
weights), averaged over the points; it is n times the elementwise mean squared error, and predicting
zero for a unit-norm point costs exactly 1.

What is saved (``sweep``): for each dataset seed, one series folder ``<name>-s<seed>/`` whose axis
is the dataset size T: one native toy checkpoint ``T-<T:06d>/`` per T holding only the final weights,
and ``series.json`` with the recipe, the per-T final train and test loss ("curve"), the wall time and
the retrain command. Each checkpoint's config.json "meta" records ``dataset_size`` and
``data_seed``, from which ``inputs.sparse_features.training_points`` regenerates its training set.

Seeds: the training set of (T, data seed) is ``training_points(n, sparsity, T, data_seed)``; the
init is ``models.toy.random_toy(seed=data_seed)`` (the same init for every T of a seed); the test
points are ``fresh_points(n, sparsity, test_points, test_seed)``, shared by every run. One thread
(float sums differ between thread counts).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from interp_checks.inputs.sparse_features import DEFAULT_SPARSITY

AXIS = "dataset size T"
PREFIX = "T"


@dataclass(frozen=True)
class SuperpositionRecipe:
    """Everything needed to retrain the sweep; T grid and seeds fixed before the sweep was run."""

    name: str = "tms-dd"
    n_features: int = 1_000
    d_hidden: int = 2
    sparsity: float = DEFAULT_SPARSITY
    steps: int = 3_000
    lr: float = 1e-3
    warmup_fraction: float = 0.05
    weight_decay: float = 1e-2
    test_points: int = 4_096
    test_seed: int = 0
    dataset_sizes: tuple[int, ...] = (3, 5, 10, 20, 50, 100, 150, 200, 250, 300, 400, 500, 700, 1_000)
    data_seeds: tuple[int, ...] = (0, 1, 2)

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["dataset_sizes"] = list(self.dataset_sizes)
        record["data_seeds"] = list(self.data_seeds)
        return record

    def series_name(self, data_seed: int) -> str:
        return f"{self.name}-s{data_seed}"


def checkpoint_name(dataset_size: int) -> str:
    """``T-000050``: the series folder's ``<prefix>-<integer>`` name for dataset size T."""
    return f"{PREFIX}-{int(dataset_size):06d}"


def point_losses(model: Any, points: Any) -> Any:
    """Each point's squared error summed over features: the loss of one evaluation sample."""
    return ((model(points) - points) ** 2).sum(dim=-1)


def lr_factor(step: int, steps: int, warmup_fraction: float) -> float:
    """Linear warmup over the first ``warmup_fraction`` of the steps, then cosine decay to 0."""
    warmup = max(1, int(round(warmup_fraction * steps)))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def train_run(recipe: SuperpositionRecipe, dataset_size: int, data_seed: int, test: Any) -> tuple[Any, dict[str, float]]:
    """Train one (T, data seed) run full-batch; return the model and its final train/test loss."""
    import torch

    from interp_checks.inputs.sparse_features import training_points
    from interp_checks.models.toy import ToyConfig, random_toy

    x = torch.as_tensor(training_points(recipe.n_features, recipe.sparsity, dataset_size, data_seed))
    model = random_toy(ToyConfig(recipe.n_features, recipe.d_hidden), seed=data_seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, recipe.steps, recipe.warmup_fraction))
    start = time.perf_counter()
    for _ in range(recipe.steps):
        loss = point_losses(model, x).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        result = {
            "T": int(dataset_size),
            "train_loss": float(point_losses(model, x).mean()),
            "test_loss": float(point_losses(model, test).mean()),
            "weight_norm": float(torch.linalg.norm(model.W)),
            "wall_time_s": round(time.perf_counter() - start, 2),
        }
    return model, result


def sweep(recipe: SuperpositionRecipe, out_dir: str | Path, *, threads: int = 1, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train every (T, data seed) run and write one series folder per seed; return their records."""
    import torch

    from interp_checks.inputs.sparse_features import fresh_points
    from interp_checks.models.toy import save_toy

    torch.set_num_threads(threads)
    test = torch.as_tensor(fresh_points(recipe.n_features, recipe.sparsity, recipe.test_points, recipe.test_seed))
    records = []
    for data_seed in recipe.data_seeds:
        folder = Path(out_dir) / recipe.series_name(data_seed)
        start, curve, saved = time.perf_counter(), [], []
        for dataset_size in recipe.dataset_sizes:
            model, result = train_run(recipe, dataset_size, data_seed, test)
            meta = {"series": recipe.series_name(data_seed), "dataset_size": int(dataset_size), "data_seed": int(data_seed),
                    "recipe": recipe.as_record(), **{k: result[k] for k in ("train_loss", "test_loss")}}
            save_toy(model, folder / checkpoint_name(dataset_size), meta=meta)
            curve.append(result)
            saved.append(checkpoint_name(dataset_size))
            log(f"[{recipe.series_name(data_seed)}] T={dataset_size} train {result['train_loss']:.4f} test {result['test_loss']:.4f} "
                f"|W| {result['weight_norm']:.2f} ({result['wall_time_s']:.1f}s)")
            record = _record(recipe, data_seed, curve, saved, start, threads, complete=dataset_size == recipe.dataset_sizes[-1])
            (folder / "series.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        records.append(record)
    return records


def _record(recipe: SuperpositionRecipe, data_seed: int, curve: list[dict[str, Any]], saved: list[str], start: float,
            threads: int, *, complete: bool) -> dict[str, Any]:
    """``series.json`` of one dataset seed: written after every run, ``complete`` false until the last T."""
    import torch

    return {
        "axis": AXIS,
        "recipe": recipe.as_record(),
        "data_seed": int(data_seed),
        "seed_scheme": (
            "training set of (T, data_seed): interp_checks.inputs.sparse_features.training_points(n_features, sparsity, T, "
            "data_seed); init: models.toy.random_toy(seed=data_seed); test: fresh_points(n_features, sparsity, test_points, test_seed)"
        ),
        "loss": "per point: squared error summed over features (importance 1 each); mean over points",
        "curve": curve,
        "checkpoints": saved,
        "wall_time_s": round(time.perf_counter() - start, 1),
        "threads": threads,
        "torch": torch.__version__,
        "retrain": f"python -m interp_checks.zoo.superposition --out fixtures/series --seeds {data_seed}",
        "complete": complete,
    }


def readings(folder: str | Path, *, seed: int = 0) -> list[dict[str, Any]]:
    """Every checkpoint of a series folder read by ``check: superposition`` (through the normal model
    loading), with a 90% BCa bootstrap interval of the mean test loss over the test points."""
    from scipy import stats

    from interp_checks.checks.base import MODEL, ModelShape, get_check
    from interp_checks.checks.superposition import params_from_meta
    from interp_checks.models.load import load_model
    from interp_checks.models.spec import parse_model_spec
    from interp_checks.runner import read_weights

    folder = Path(folder)
    record = json.loads((folder / "series.json").read_text(encoding="utf-8"))
    check, rows = get_check("superposition"), []
    for name in record["checkpoints"]:
        loaded = load_model(parse_model_spec(f"native:{folder / name}"))
        params = dict(params_from_meta(loaded.meta), test_points=record["recipe"]["test_points"], seed=seed)
        prepared = check.prepare(params, {MODEL: ModelShape(loaded.n_layers, loaded.n_heads, loaded.d_vocab, loaded.n_ctx, None)}, {})
        values = check.measure(prepared, {MODEL: read_weights(loaded.bridge, {"W", "b"})}, {})
        losses, dims = values.pop("test_loss"), values.pop("datapoint_dimensionality")
        interval = stats.bootstrap((losses,), np.mean, confidence_level=0.9, n_resamples=9_999, rng=np.random.default_rng(0)).confidence_interval
        rows.append({"T": loaded.meta["dataset_size"], "train_loss": loaded.meta["train_loss"], "test_loss": float(losses.mean()),
                     "test_loss_90": (float(interval.low), float(interval.high)), "datapoint_dimensionality_sum": float(dims.sum()),
                     "max_datapoint_dimensionality": float(dims.max()), **values})
    return rows


def card(folder: str | Path) -> str:
    """README.md of one series folder: what was trained, how long it took, and its readings per T."""
    folder = Path(folder)
    record = json.loads((folder / "series.json").read_text(encoding="utf-8"))
    recipe = record["recipe"]
    lines = [
        f"# {folder.name}: double descent in a toy model of superposition, over dataset size T (data seed {record['data_seed']})",
        "",
        f"Written by `{record['retrain']}` ({record['wall_time_s']} s wall on {record['threads']} thread, torch {record['torch']}; "
        "the README by `python -m interp_checks.zoo.superposition --card --out fixtures/series`). One checkpoint per T: the final weights of a "
        f"full-batch run on T points. Setting: x' = ReLU(W^T W x + b), n = {recipe['n_features']} features, m = {recipe['d_hidden']}, "
        f"sparsity {recipe['sparsity']}, {recipe['steps']} AdamW steps (lr {recipe['lr']}, {recipe['warmup_fraction']:.0%} warmup then cosine, "
        f"weight decay {recipe['weight_decay']}). Henighan et al. 2023 use n = 10,000, sparsity 0.999, 50,000 steps; see the module docstring "
        "of `interp_checks.zoo.superposition`.",
        "",
        f"Loss: {record['loss']} (predicting zero costs 1). Test loss: mean over {recipe['test_points']} fresh points (seed "
        f"{recipe['test_seed']}, the same for every T and seed) with a 90% BCa bootstrap interval over the points. Seeds: {record['seed_scheme']}.",
        "",
        "Columns: feature dim = D_j = ||W_j||^4 / sum_k (W_j . W_k)^2 (n x mean, and the max); stored = features with ||W_j|| > 0.5; "
        "data-point dim = the same of h_i = W x_i over the T training points (their sum = T x mean, and the max). Both sums are at most m = 2.",
        "",
        "| T | train loss | test loss [90% CI] | norm of W | stored | n x mean feature dim | max feature dim | T x mean data-point dim | max data-point dim |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in readings(folder, seed=recipe["test_seed"]):
        low, high = row["test_loss_90"]
        lines.append(
            f"| {row['T']} | {row['train_loss']:.4f} | {row['test_loss']:.4f} [{low:.4f}, {high:.4f}] | {row['weight_norm']:.2f} | "
            f"{row['features_stored']:.0f} | {row['feature_dimensionality'] * recipe['n_features']:.2f} | {row['max_feature_dimensionality']:.3f} | "
            f"{row['datapoint_dimensionality_sum']:.2f} | {row['max_datapoint_dimensionality']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse
    from dataclasses import replace

    parser = argparse.ArgumentParser(prog="python -m interp_checks.zoo.superposition", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("fixtures/series"), help="folder for the series folders (default fixtures/series)")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="data seeds (default: the recipe's 0 1 2)")
    parser.add_argument("--sizes", type=int, nargs="*", default=None, help="dataset sizes T (default: the recipe's grid)")
    parser.add_argument("--steps", type=int, default=None, help="AdamW steps per run (default 3000)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--card", action="store_true", help="only rewrite README.md of each series folder in --out from its checkpoints")
    args = parser.parse_args(argv)
    if args.card:
        for folder in sorted(args.out.glob(f"{SuperpositionRecipe().name}-s*")):
            (folder / "README.md").write_text(card(folder), encoding="utf-8")
            print(f"wrote {folder / 'README.md'}", flush=True)
        return 0
    recipe = SuperpositionRecipe()
    changes = {"data_seeds": tuple(args.seeds) if args.seeds else None, "dataset_sizes": tuple(args.sizes) if args.sizes else None,
               "steps": args.steps}
    recipe = replace(recipe, **{key: value for key, value in changes.items() if value is not None})
    sweep(recipe, args.out, threads=args.threads, log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
