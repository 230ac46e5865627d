"""Command line for the zoo.

    python -m interp_checks.zoo list
    python -m interp_checks.zoo tokenizer [--out DIR]
    python -m interp_checks.zoo train NAME|all [--out DIR] [--steps N] [--threads N]
    python -m interp_checks.zoo card NAME|all [--out DIR]     (rewrite README.md from config.json meta)
    python -m interp_checks.zoo series NAME --out DIR [--save-every N] [--threads N]
                                               (train NAME, saving DIR/NAME/step-NNNNNN/ every N steps)

``train`` uses ``DIR/tokenizer.json`` when it exists, else the repository's
``fixtures/zoo/tokenizer.json``, else trains one into ``DIR`` first. Retraining the tokenizer
changes token ids, so every model must be retrained after it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interp_checks.zoo import zoo_dir, zoo_tokenizer_path


def _tokenizer_for(out: Path) -> Path:
    from interp_checks.zoo.data import write_tokenizer

    for candidate in (out / "tokenizer.json", zoo_tokenizer_path()):
        if candidate.is_file():
            return candidate
    print(f"no tokenizer found; training one into {out / 'tokenizer.json'}", flush=True)
    return write_tokenizer(out / "tokenizer.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interp_checks.zoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the recipes")
    tok = sub.add_parser("tokenizer", help="retrain the byte-level BPE tokenizer on the stdlib corpus")
    tok.add_argument("--out", type=Path, default=zoo_dir())
    train_cmd = sub.add_parser("train", help="train one model (or all) and write checkpoint + model card")
    train_cmd.add_argument("name", help="a recipe name from `list`, or `all`")
    train_cmd.add_argument("--out", type=Path, default=zoo_dir())
    train_cmd.add_argument("--steps", type=int, default=None, help="shorter run: N mixture steps, curriculum capped at N")
    train_cmd.add_argument("--threads", type=int, default=None, help="torch threads (default 1: see interp_checks.zoo.train)")
    series_cmd = sub.add_parser("series", help="train one model, saving a checkpoint series (issue 14) instead of the final model")
    series_cmd.add_argument("name", help="a recipe name from `list`")
    series_cmd.add_argument("--out", type=Path, required=True, help="the series goes to OUT/NAME/ (outside the repository: it is large)")
    series_cmd.add_argument("--save-every", type=int, default=25, help="steps between checkpoints (default 25)")
    series_cmd.add_argument("--threads", type=int, default=None, help="torch threads (default 1: see interp_checks.zoo.train)")
    card_cmd = sub.add_parser("card", help="rewrite a trained model's README.md from the meta in its config.json")
    card_cmd.add_argument("name", help="a recipe name from `list`, or `all`")
    card_cmd.add_argument("--out", type=Path, default=zoo_dir())
    args = parser.parse_args(argv)

    from interp_checks.zoo.recipes import RECIPES

    if args.command == "list":
        for name, recipe in RECIPES.items():
            print(f"{name}: {recipe.n_layers}L d_model {recipe.d_model}, {recipe.n_heads} heads, seed {recipe.seed}; "
                  f"curriculum <= {recipe.curriculum_steps} steps, then {recipe.mixture_steps} mixture steps "
                  f"x {recipe.tokens_per_step()} tokens -- {recipe.description}")
        return 0
    if args.command == "tokenizer":
        from interp_checks.zoo.data import write_tokenizer

        path = write_tokenizer(args.out / "tokenizer.json")
        print(f"wrote {path}; retrain every model: their token ids changed")
        return 0

    if args.command == "card":
        import json

        from interp_checks.zoo.train import model_card

        for name in list(RECIPES) if args.name == "all" else [args.name]:
            folder = args.out / name
            meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))["meta"]
            (folder / "README.md").write_text(model_card(RECIPES[name], meta), encoding="utf-8")
            print(f"wrote {folder / 'README.md'}")
        return 0

    from interp_checks.zoo.train import DEFAULT_THREADS, train

    if args.command == "series":
        if args.name not in RECIPES:
            parser.error(f"unknown recipe {args.name!r}; known: {', '.join(RECIPES)}")
        result = train(RECIPES[args.name], None, tokenizer_path=_tokenizer_for(args.out), threads=args.threads or DEFAULT_THREADS,
                       log=lambda line: print(line, flush=True), save_every=args.save_every, series_dir=args.out / args.name)
        return 0 if result.meta["requirements"]["passed"] else 1

    names = list(RECIPES) if args.name == "all" else [args.name]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; known: {', '.join(RECIPES)} or all")
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer_for(args.out)
    failed = []
    for name in names:
        recipe = RECIPES[name] if args.steps is None else RECIPES[name].with_steps(args.steps)
        result = train(recipe, args.out, tokenizer_path=tokenizer, threads=args.threads or DEFAULT_THREADS,
                       log=lambda line: print(line, flush=True))
        if not result.meta["requirements"]["passed"]:
            failed.append(name)
    if failed:
        print(f"requirement FAILED for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
