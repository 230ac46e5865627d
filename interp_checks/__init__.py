"""interp_checks: test mechanistic-interpretability claims about transformer models with pytest.

The public API is re-exported lazily so that ``import interp_checks`` (which every pytest run does
through the plugin's package) stays cheap: torch and transformer_lens load on first use.

    from interp_checks import Engine, Settings, load_claim_file, register, register_generator
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Engine": "interp_checks.engine",
    "Settings": "interp_checks.engine",
    "ClaimResult": "interp_checks.engine",
    "ClaimSpec": "interp_checks.claims.schema",
    "load_claim_file": "interp_checks.claims.schema",
    "Check": "interp_checks.checks.base",
    "CheckError": "interp_checks.checks.base",
    "register": "interp_checks.checks.base",
    "available_checks": "interp_checks.checks.base",
    "register_generator": "interp_checks.inputs.generators",
    "available_generators": "interp_checks.inputs.generators",
    "parse_model_spec": "interp_checks.models.spec",
    "load_model": "interp_checks.models.load",
    "Comparison": "interp_checks.stats",
    "Outcome": "interp_checks.stats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'interp_checks' has no attribute {name!r}")
