"""``report/`` knows results, not checks, models or the miner: it renders dicts (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import interp_checks.report as report

FORBIDDEN = ("interp_checks.checks", "interp_checks.models", "interp_checks.mine", "interp_checks.engine", "torch", "transformer_lens")


def test_report_imports_no_checks_models_or_miner() -> None:
    for path in sorted(Path(report.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
