"""Tiny models written offline, for tests that load real checkpoints without downloading anything.

* :func:`train_tiny_tokenizer` -- a byte-level BPE (GPT-2 style) trained on a few hundred lines of
  the running Python's own stdlib source, so nothing is fetched.
* :func:`write_tiny_hf_gpt2` -- a randomly initialised ``GPT2LMHeadModel`` + that tokenizer, saved as
  a HuggingFace folder (``config.json``, ``model.safetensors``, ``tokenizer.json``, ...).
* :func:`hf_gpt2_to_gguf` -- converts such a folder (a *known* model) into a real ``.gguf`` file the
  way llama.cpp's ``convert_hf_to_gguf.py`` does for GPT-2, so a test can check that the GGUF-loaded
  model gives the same logits as the HF one. It is the package's
  :func:`interp_checks.models.export.export_gguf`, re-exported here.
* :func:`write_tiny_gguf` -- a tiny HF GPT-2 written and converted in one go.

Why GPT-2 for GGUF: transformers' GGUF loader supports ``gpt2`` (config mapping, a tensor processor
that undoes llama.cpp's transposes, and the byte-level ``gpt2`` tokenizer type) and the bridge has a
GPT-2 adapter. Llama would need the q/k row permutation and a sentencepiece-style vocabulary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from interp_checks.models.export import export_gguf as hf_gpt2_to_gguf

__all__ = [
    "ENDOFTEXT",
    "fast_tokenizer",
    "hf_gpt2_to_gguf",
    "offline_env",
    "stdlib_corpus",
    "train_tiny_tokenizer",
    "write_malicious_pickle_hf_dir",
    "write_tiny_gguf",
    "write_tiny_hf_gpt2",
]

ENDOFTEXT = "<|endoftext|>"

# Stdlib modules whose source is the tokenizer's training text (pure-Python, present everywhere).
_CORPUS_MODULES = ("textwrap", "difflib", "string", "fractions", "shlex", "glob", "fnmatch", "heapq")


def offline_env() -> None:
    """Make the HF libraries refuse to touch the network in this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def stdlib_corpus(n_lines: int = 600) -> list[str]:
    """``n_lines`` non-empty lines of the running interpreter's stdlib source, read at run time."""
    import importlib

    lines: list[str] = []
    for name in _CORPUS_MODULES:
        module = importlib.import_module(name)
        source_file = getattr(module, "__file__", None)
        if not source_file or not source_file.endswith(".py"):
            continue
        for line in Path(source_file).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                lines.append(line)
            if len(lines) >= n_lines:
                return lines
    if not lines:  # pragma: no cover - a Python without stdlib sources
        lines = [f"def f{i}(x):\n    return x + {i}" for i in range(200)]
    return lines


def train_tiny_tokenizer(vocab_size: int = 384) -> Any:
    """A GPT-2 style byte-level BPE ``tokenizers.Tokenizer`` with ``<|endoftext|>`` as id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[ENDOFTEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(stdlib_corpus(), trainer=trainer)
    return tokenizer


def fast_tokenizer(tokenizer: Any) -> Any:
    """Wrap a ``tokenizers.Tokenizer`` as a transformers fast tokenizer with GPT-2's special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT, unk_token=ENDOFTEXT
    )


def write_tiny_hf_gpt2(
    folder: str | Path,
    *,
    n_layer: int = 2,
    n_head: int = 4,
    n_embd: int = 32,
    vocab_size: int = 384,
    n_positions: int = 128,
    seed: int = 0,
) -> Path:
    """Write a random-weights GPT-2 (safetensors) and its tokenizer into ``folder``; return ``folder``.

    ``vocab_size`` is the tokenizer's target size; the model's vocabulary is the trained tokenizer's
    actual size (they are equal unless the corpus is too small for that many merges).
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tiny_tokenizer(vocab_size)
    eot = tokenizer.token_to_id(ENDOFTEXT)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=eot,
        eos_token_id=eot,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
        # HF's GPT-2 init is N(0, 0.02): activations are almost uniform. Larger weights make the
        # attention patterns and logits non-trivial, so comparisons between loaders mean something.
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith(".weight") and param.dim() == 2:
                    param.normal_(0.0, 0.2)
    model.eval()
    model.save_pretrained(folder)
    fast_tokenizer(tokenizer).save_pretrained(folder)
    return folder


def write_tiny_gguf(
    folder: str | Path,
    *,
    filename: str = "tiny-gpt2.gguf",
    hf_dir: str | Path | None = None,
    f16: bool = False,
    **model_kwargs: Any,
) -> Path:
    """Write a tiny GPT-2 ``.gguf`` into ``folder`` and return the file's path.

    With ``hf_dir`` that (known) HF model is converted; otherwise a fresh one is written with
    :func:`write_tiny_hf_gpt2` (``model_kwargs`` go there) into ``folder/_hf_source`` first.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if hf_dir is None:
        hf_dir = write_tiny_hf_gpt2(folder / "_hf_source", **model_kwargs)
    return hf_gpt2_to_gguf(hf_dir, folder / filename, f16=f16)


def write_malicious_pickle_hf_dir(folder: str | Path, marker: str | Path, *, tiny_hf_dir: str | Path) -> Path:
    """A HF folder whose only weights file is a ``pytorch_model.bin`` that, if unpickled with plain
    ``pickle``/``torch.load(weights_only=False)``, creates ``marker``. For refusal tests."""
    import shutil

    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tiny_hf_dir = Path(tiny_hf_dir)
    for name in os.listdir(tiny_hf_dir):
        if name.endswith(".safetensors"):
            continue
        source = tiny_hf_dir / name
        if source.is_file():
            shutil.copy(source, folder / name)
    payload = {"transformer.wte.weight": torch.zeros(1), "__evil__": _MarkerWriter(str(marker))}
    torch.save(payload, folder / "pytorch_model.bin")
    return folder


class _MarkerWriter:
    """Unpickling this object executes code (``exec``) that creates a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: D105
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))
