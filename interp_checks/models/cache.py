"""Load each model once per session: :class:`ModelCache`. Not thread-safe (pytest runs serially)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp_checks.models.spec import ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from interp_checks.models.load import LoadedModel

__all__ = ["ModelCache"]


class ModelCache:
    """Loaded models keyed by ``(str(spec), device)``; random twins by ``(str(spec), device, seed)``.

    ``device`` is resolved first (``"auto"`` and ``None`` become ``"cuda"`` or ``"cpu"``), so the same
    model asked for as "auto" and as "cpu" on a CPU-only machine is loaded once.
    """

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], LoadedModel] = {}
        self._twins: dict[tuple[str, str, int], LoadedModel] = {}
        self._twin_weights: dict[tuple[str, str, int, tuple[str, ...]], dict] = {}

    def get(self, spec: ModelSpec, device: str | None = "cpu") -> LoadedModel:
        from interp_checks.models.load import load_model, resolve_device

        key = (str(spec), resolve_device(device))
        if key not in self._models:
            self._models[key] = load_model(spec, device=key[1])
        return self._models[key]

    def random_twin(self, spec: ModelSpec, device: str | None = "cpu", seed: int = 0) -> LoadedModel:
        from interp_checks.models.load import load_random_twin, resolve_device

        resolved = resolve_device(device)
        key = (str(spec), resolved, int(seed))
        if key not in self._twins:
            self._twins[key] = load_random_twin(self.get(spec, resolved), seed=int(seed))
        return self._twins[key]

    def random_weights(self, spec: ModelSpec, device: str | None, seed: int, names: frozenset[str]) -> dict:
        """Some parameters of a random-weights twin (``runner.read_weights``), without keeping the
        twin: a weight statistic's null needs hundreds of draws, and only a few tensors of each."""
        from interp_checks.models.load import load_random_twin, resolve_device
        from interp_checks.runner import read_weights

        resolved = resolve_device(device)
        key = (str(spec), resolved, int(seed), tuple(sorted(names)))
        if key not in self._twin_weights:
            cached = self._twins.get((str(spec), resolved, int(seed)))
            twin = cached if cached is not None else load_random_twin(self.get(spec, resolved), seed=int(seed))
            self._twin_weights[key] = read_weights(twin.bridge, names)
        return self._twin_weights[key]

    def __contains__(self, key: object) -> bool:
        return key in self._models

    def __len__(self) -> int:
        return len(self._models) + len(self._twins)

    def clear(self) -> None:
        """Drop every loaded model (frees memory between sessions or test modules)."""
        self._models.clear()
        self._twins.clear()
        self._twin_weights.clear()
