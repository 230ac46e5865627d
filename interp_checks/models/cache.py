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
        self._model_weights: dict[tuple[str, str, tuple[str, ...]], dict] = {}
        self._drawn_weights: dict[tuple[str, str, tuple[int, ...], tuple[str, ...]], dict] = {}

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
            loaded = self.get(spec, resolved)
            if cached is not None:
                twin = cached
            elif _only_block_weights(names) and loaded.architecture.get("source") == "native":
                twin = load_random_twin(_without_vocabulary(loaded), seed=int(seed))
            else:
                twin = load_random_twin(loaded, seed=int(seed))
            self._twin_weights[key] = read_weights(twin.bridge, names)
        return self._twin_weights[key]

    def weights(self, spec: ModelSpec, device: str | None, names: frozenset[str]) -> dict:
        """``runner.read_weights`` of the model, read once per session and names: the same tensors
        for every claim, so a weight statistic computed from them is computed once (checks cache by
        tensor identity; checks never change weights)."""
        from interp_checks.models.load import resolve_device
        from interp_checks.runner import read_weights

        resolved = resolve_device(device)
        key = (str(spec), resolved, tuple(sorted(names)))
        if key not in self._model_weights:
            self._model_weights[key] = read_weights(self.get(spec, resolved).bridge, names)
        return self._model_weights[key]

    def random_weights_draws(self, spec: ModelSpec, device: str | None, seeds: range | list[int], names: frozenset[str]) -> dict:
        """``names`` of one random-weights draw per seed, stacked [draws, ...] (the same tensors for
        every claim that asks, so a check may cache what it computes from them).

        Where TransformerLens's native init of these tensors is known (``init_draws``), each draw is
        drawn directly (microseconds, no bridge); otherwise each is a twin's (``random_weights``).
        Either way every draw is a fresh model of the same architecture, independent of the others."""
        import torch

        from interp_checks.models.init_draws import can_draw_directly, draw_attention_weights
        from interp_checks.models.load import resolve_device

        resolved = resolve_device(device)
        key = (str(spec), resolved, tuple(int(s) for s in seeds), tuple(sorted(names)))
        if key not in self._drawn_weights:
            loaded = self.get(spec, resolved)
            if can_draw_directly(loaded.architecture, names):
                config = loaded.architecture["config"]
                draws = [{n: t.to(resolved) for n, t in draw_attention_weights(config, names, s).items()} for s in key[2]]
            else:
                draws = [self.random_weights(spec, resolved, s, names) for s in key[2]]
            self._drawn_weights[key] = {name: torch.stack([d[name] for d in draws]) for name in names}
        return self._drawn_weights[key]

    def __contains__(self, key: object) -> bool:
        return key in self._models

    def __len__(self) -> int:
        return len(self._models) + len(self._twins)

    def clear(self) -> None:
        """Drop every loaded model (frees memory between sessions or test modules)."""
        self._models.clear()
        self._twins.clear()
        self._twin_weights.clear()
        self._drawn_weights.clear()
        self._model_weights.clear()


# The stacked attention weights a weight statistic may ask for without the vocabulary's tensors.
_BLOCK_WEIGHTS = frozenset({"W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_in", "W_out", "b_in", "b_out"})
_SMALL_VOCABULARY = 8


def _only_block_weights(names: frozenset[str]) -> bool:
    """Whether ``names`` are all inside the blocks (attention and MLP weights), none of the
    embedding, positional embedding or unembedding."""
    return all(name in _BLOCK_WEIGHTS or (name.startswith("blocks.") and ".ln" not in name) for name in names)


def _without_vocabulary(loaded: "LoadedModel") -> "LoadedModel":
    """``loaded`` as a random twin would see it with a tiny vocabulary and context: the blocks'
    shapes and their initialisation (which depends on d_model, d_head, d_mlp and n_heads, not on
    the vocabulary or context) are the same, and building the twin skips the embedding and
    unembedding, most of the time a zoo twin takes to build (0.73 -> 0.18 s for the 4L, measured
    under load). Only for statistics of block weights (``_only_block_weights``)."""
    from dataclasses import replace

    config = dict(loaded.architecture["config"])
    for key in ("d_vocab", "d_vocab_out", "n_ctx"):
        if key in config and isinstance(config[key], int) and config[key] > _SMALL_VOCABULARY:
            config[key] = _SMALL_VOCABULARY
    return replace(loaded, architecture=dict(loaded.architecture, config=config), tokenizer=None)
