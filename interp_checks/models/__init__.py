"""Model specs and loading. Importing this package is cheap: torch, transformers and
transformer_lens are imported only when a model is actually loaded."""

from interp_checks.models.cache import ModelCache
from interp_checks.models.load import (
    LoadedModel,
    UnsafeCheckpointError,
    load_model,
    load_random_twin,
    resolve_device,
)
from interp_checks.models.spec import (
    PREFIXES,
    ModelSpec,
    ModelSpecError,
    available_zoo_models,
    parse_binding,
    parse_model_spec,
    zoo_dir,
)

__all__ = [
    "PREFIXES",
    "LoadedModel",
    "ModelCache",
    "ModelSpec",
    "ModelSpecError",
    "UnsafeCheckpointError",
    "available_zoo_models",
    "load_model",
    "load_random_twin",
    "parse_binding",
    "parse_model_spec",
    "resolve_device",
    "zoo_dir",
]

