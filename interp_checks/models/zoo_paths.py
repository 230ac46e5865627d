"""Where the bundled ("zoo") checkpoints live. Imports nothing heavy."""

from __future__ import annotations

import os
from pathlib import Path

ZOO_ENV_VAR = "INTERP_CHECKS_ZOO"

# The zoo models interp_checks ships (native format, one folder each). They may not be built in a
# fresh checkout; a spec naming one of them then gets a "not built" error rather than "unknown".
KNOWN_ZOO_MODELS: tuple[str, ...] = ("attn-only-1l", "attn-only-2l", "attn-only-3l", "attn-only-4l")


def zoo_dir() -> Path:
    """``$INTERP_CHECKS_ZOO`` if set, else ``<repo>/fixtures/zoo`` next to the package."""
    override = os.environ.get(ZOO_ENV_VAR)
    if override:
        return Path(os.path.expanduser(override)).resolve()
    import interp_checks

    return Path(interp_checks.__file__).resolve().parents[1] / "fixtures" / "zoo"


def available_zoo_models() -> list[str]:
    """Sorted names of the zoo folders that hold a ``config.json``."""
    folder = zoo_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / "config.json").is_file())
