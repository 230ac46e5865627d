"""The miner's files: ``mine.json`` (the result), ``draft.claims.yaml``, and ``mine.md`` rendered from the JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from interp_checks.mine.draft import draft_claims
from interp_checks.mine.result import MineResult
from interp_checks.report.mine_markdown import render_mine_markdown

__all__ = ["write_mine_report"]

DRAFT_FILE = "draft.claims.yaml"


def write_mine_report(result: MineResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``mine.md``, ``mine.json`` and (when the corpus can be named) ``draft.claims.yaml``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "mine.md", "json": out / "mine.json"}
    draft = draft_claims(result)
    data = result.to_dict()
    data["draft_claims"] = None if draft is None else draft.to_dict(DRAFT_FILE)
    paths["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if draft is not None:
        paths["claims"] = out / DRAFT_FILE
        paths["claims"].write_text(draft.text, encoding="utf-8")
    paths["markdown"].write_text(render_mine_markdown(data), encoding="utf-8")
    return paths
