"""Tiny models written offline, for tests that load real checkpoints without downloading anything.

* :func:`train_tiny_tokenizer` -- a byte-level BPE (GPT-2 style) trained on a few hundred lines of
  the running Python's own stdlib source, so nothing is fetched.
* :func:`write_tiny_hf_gpt2` -- a randomly initialised ``GPT2LMHeadModel`` + that tokenizer, saved as
  a HuggingFace folder (``config.json``, ``model.safetensors``, ``tokenizer.json``, ...).
* :func:`hf_gpt2_to_gguf` -- converts such a folder (a *known* model) into a real ``.gguf`` file the
  way llama.cpp's ``convert_hf_to_gguf.py`` does for GPT-2, so a test can check that the GGUF-loaded
  model gives the same logits as the HF one.
* :func:`write_tiny_gguf` -- a tiny HF GPT-2 written and converted in one go.

Why GPT-2 for GGUF: transformers' GGUF loader supports ``gpt2`` (config mapping, a tensor processor
that undoes llama.cpp's transposes, and the byte-level ``gpt2`` tokenizer type) and the bridge has a
GPT-2 adapter. Llama would need the q/k row permutation and a sentencepiece-style vocabulary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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


def _tokenizer_vocab_and_merges(hf_dir: Path) -> tuple[list[str], list[str]]:
    data = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = data["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"{hf_dir}/tokenizer.json is a {model.get('type')} tokenizer, expected byte-level BPE")
    vocab: dict[str, int] = dict(model["vocab"])
    for added in data.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return tokens, merges


def hf_gpt2_to_gguf(hf_dir: str | Path, gguf_path: str | Path, *, f16: bool = False, skip: tuple[str, ...] = ()) -> Path:
    """Convert a HF GPT-2 folder (as written by :func:`write_tiny_hf_gpt2`) into ``gguf_path``.

    Mirrors llama.cpp's GPT-2 conversion: tensors renamed with gguf-py's name map, the Conv1D
    weights (``c_attn``, ``c_proj``, ``c_fc``) transposed, no ``output.weight`` (tied embeddings),
    and the tokenizer stored as ``tokenizer.ggml.*`` metadata of model type ``gpt2``. GGUF tensor
    names in ``skip`` are left out (to write deliberately incomplete files for error tests).
    """
    import numpy as np
    from gguf import GGUFWriter, LlamaFileType, MODEL_ARCH, TokenType, get_tensor_name_map
    from safetensors.numpy import load_file

    hf_dir = Path(hf_dir)
    gguf_path = Path(gguf_path)
    gguf_path.parent.mkdir(parents=True, exist_ok=True)
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    n_layer, n_embd = config["n_layer"], config["n_embd"]
    n_inner = config.get("n_inner") or 4 * n_embd
    if n_inner != 4 * n_embd:
        raise ValueError("transformers' GGUF loader does not read n_inner for gpt2; use the default 4*n_embd")
    tokens, merges = _tokenizer_vocab_and_merges(hf_dir)
    if len(tokens) != config["vocab_size"]:
        raise ValueError(f"tokenizer has {len(tokens)} tokens but the model's vocab_size is {config['vocab_size']}")
    eot = tokens.index(ENDOFTEXT)

    writer = GGUFWriter(str(gguf_path), "gpt2")
    writer.add_name("tiny-gpt2")
    writer.add_block_count(n_layer)
    writer.add_context_length(config["n_positions"])
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(n_inner)
    writer.add_head_count(config["n_head"])
    writer.add_layer_norm_eps(config.get("layer_norm_epsilon", 1e-5))
    writer.add_file_type(LlamaFileType.MOSTLY_F16 if f16 else LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types([TokenType.CONTROL if t == ENDOFTEXT else TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(eot)
    writer.add_eos_token_id(eot)
    writer.add_add_bos_token(False)

    name_map = get_tensor_name_map(MODEL_ARCH.GPT2, n_layer)
    transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    state = load_file(str(hf_dir / "model.safetensors"))
    for hf_name, array in state.items():
        if hf_name.endswith(".attn.bias") or hf_name.endswith(".attn.masked_bias") or hf_name == "lm_head.weight":
            continue  # causal-mask buffers; lm_head is tied to wte
        base, suffix = hf_name.rsplit(".", 1)
        gguf_name = name_map.get_name(base)
        if gguf_name is None:
            raise ValueError(f"no GGUF name for HF tensor {hf_name}")
        data = array.astype(np.float32)
        if hf_name.endswith(transposed):
            data = np.ascontiguousarray(data.T)
        # llama.cpp keeps 1-d tensors (norms, biases) in f32.
        if f16 and data.ndim == 2:
            data = data.astype(np.float16)
        if f"{gguf_name}.{suffix}" in skip:
            continue
        writer.add_tensor(f"{gguf_name}.{suffix}", data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return gguf_path


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
