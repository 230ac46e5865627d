"""Export a native attention-only checkpoint as a HuggingFace GPT-2 folder and as a GGUF file.

Why this exists: a claim such as "L1H0 is an induction head" is a claim about *weights*, and the
loaders for ``native:``, ``hf:`` and ``gguf:`` are three different code paths (our own model, a
transformers ``GPT2LMHeadModel`` wrapped by TransformerLens's GPT-2 adapter, and transformers' GGUF
dequantizer feeding the same). Running the same claims on the same weights through all three is
how users (and this project's tests) check that a verdict does not depend on the file format or
the loader. These functions write the two other formats from a native checkpoint:

* :func:`export_hf_gpt2` -- a native *attention-only* model (LayerNorm, learned absolute positions,
  causal multi-head attention with the usual ``1/sqrt(d_head)`` scale) as a ``GPT2LMHeadModel``
  folder (``config.json``, ``model.safetensors``, tokenizer files). GPT-2 always has an MLP, so
  attention-only is expressed as an MLP whose weights and biases are all zero: it adds exactly
  ``0.0`` to the residual stream, so every attention pattern and residual-stream activation is the
  same as the native model's. GPT-2's ``lm_head`` has no bias: a non-zero native unembedding bias
  is dropped (not folded anywhere), which shifts each token's logit by a constant (``logits_hf ==
  logits_native - unembed.bias``); the exported ``config.json`` (key ``interp_checks_export``) and
  ``README.md`` say so.
* :func:`export_gguf` -- a HuggingFace GPT-2 folder as a ``.gguf`` file the way llama.cpp's
  ``convert_hf_to_gguf.py`` writes GPT-2 (tensor names from gguf-py's map, Conv1D weights
  transposed, the byte-level BPE tokenizer as ``tokenizer.ggml.*`` metadata).

Special tokens: the exported folder and file carry the native tokenizer's BOS/EOS/PAD ids (as
:func:`interp_checks.models.native.load_tokenizer` assigns them, with the defaults TransformerLens
fills in when a bridge wraps a tokenizer written out explicitly), so ``LoadedModel.bos_token_id``
and ``special_token_ids`` -- which decide the token ids of generated inputs -- are the same in all
three formats, and so are the inputs a claim runs on.

Heavy dependencies (torch, transformers, gguf) are imported inside the functions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["EXPORT_CONFIG_KEY", "export_gguf", "export_hf_gpt2"]

# Key of the provenance record export_hf_gpt2 adds to the exported config.json.
EXPORT_CONFIG_KEY = "interp_checks_export"
ENDOFTEXT = "<|endoftext|>"


# --------------------------------------------------------------------------------------------
# native -> HuggingFace GPT-2


def _architecture_problems(cfg: Any) -> list[str]:
    """What a native config uses that a GPT-2 cannot express (empty list: exportable)."""
    problems = []
    if not getattr(cfg, "attn_only", False):
        problems.append("it has MLPs (attn_only=False); only attention-only models are exported, as GPT-2 with a zero MLP")
    norm = getattr(cfg, "normalization_type", None)
    if norm is None or str(norm).upper() != "LN":
        problems.append(f"normalization_type={norm!r} (GPT-2 has LayerNorm with weight and bias: 'LN')")
    if getattr(cfg, "final_rms", False):
        problems.append("final_rms=True (an RMSNorm before the unembedding; GPT-2's ln_f is a LayerNorm)")
    positional = (getattr(cfg, "positional_embedding_type", None) or "standard").lower()
    if positional != "standard":
        problems.append(f"positional_embedding_type={positional!r} (GPT-2 has learned absolute positions: 'standard')")
    if getattr(cfg, "attention_dir", "causal") != "causal":
        problems.append(f"attention_dir={cfg.attention_dir!r} (GPT-2 attention is causal)")
    n_heads, d_head, d_model = cfg.n_heads, cfg.d_head, cfg.d_model
    kv_heads = getattr(cfg, "n_key_value_heads", None)
    if kv_heads not in (None, n_heads):
        problems.append(f"n_key_value_heads={kv_heads} (grouped-query attention; GPT-2 has one K/V per head)")
    if n_heads * d_head != d_model:
        problems.append(f"n_heads * d_head = {n_heads * d_head} != d_model = {d_model} (GPT-2 heads split d_model)")
    scale = cfg.attn_scale if getattr(cfg, "use_attn_scale", True) and cfg.attn_scale > 0 else math.sqrt(d_head)
    if not math.isclose(scale, math.sqrt(d_head), rel_tol=1e-12):
        problems.append(f"attention scale {scale} (GPT-2 divides scores by sqrt(d_head) = {math.sqrt(d_head)})")
    for name in ("attn_scores_soft_cap", "output_logits_soft_cap"):
        cap = getattr(cfg, name, None)
        if cap is not None and cap > 0:
            problems.append(f"{name}={cap} (GPT-2 has no soft-capping)")
    d_vocab_out = getattr(cfg, "d_vocab_out", -1)
    if d_vocab_out not in (-1, None, cfg.d_vocab):
        problems.append(f"d_vocab_out={d_vocab_out} != d_vocab={cfg.d_vocab} (GPT-2 unembeds to the input vocabulary)")
    return problems


def _native_source(source: Any, tokenizer_json: str | Path | None) -> tuple[Any, dict[str, Any], Any, str]:
    """(full bridge config, state dict, tokenizer or None, description) of a native folder or bridge."""
    from interp_checks.models import native

    if isinstance(source, (str, Path)):
        from safetensors.torch import load_file

        folder = Path(source)
        config = native.read_native_config(folder)
        cfg = native.bridge_config(config["architecture"])
        state = load_file(str(folder / native.WEIGHTS_FILE), device="cpu")
        tokenizer = None
        if tokenizer_json is not None:
            tokenizer = native.load_tokenizer(Path(tokenizer_json))
        elif config.get("tokenizer"):
            tokenizer_path = folder / config["tokenizer"]
            if not tokenizer_path.is_file():
                raise native.NativeFormatError(f"{folder / native.CONFIG_FILE} names tokenizer {config['tokenizer']!r}, which is missing")
            tokenizer = native.load_tokenizer(tokenizer_path)
        return cfg, state, tokenizer, f"native:{folder.resolve()}"
    if not (hasattr(source, "cfg") and hasattr(source, "state_dict")):
        raise TypeError(f"export_hf_gpt2 needs a native checkpoint folder or a native TransformerBridge, got {type(source).__name__}")
    import copy

    state = {name: tensor.detach().cpu() for name, tensor in source.state_dict().items()}
    if tokenizer_json is not None:
        tokenizer = native.load_tokenizer(Path(tokenizer_json))
    else:
        bridge_tokenizer = getattr(source, "tokenizer", None)
        tokenizer = copy.deepcopy(bridge_tokenizer) if bridge_tokenizer is not None else None
    return source.cfg, state, tokenizer, "a native TransformerBridge"


def _assign_bridge_roles(tokenizer: Any) -> None:
    """Give ``tokenizer`` the BOS/EOS/PAD roles a TransformerBridge gives it when it wraps it.

    TransformerLens's ``setup_tokenizer`` (run for native, HF and GGUF bridges alike) fills unset
    roles: EOS <- ``<|endoftext|>``, PAD <- EOS, BOS <- EOS. The native loader sees those roles;
    writing them into the export explicitly makes the HF and GGUF metadata name the same ids
    instead of leaving each loader to its own defaults.
    """
    vocab = tokenizer.get_vocab()
    if tokenizer.eos_token is None and ENDOFTEXT in vocab:
        tokenizer.eos_token = ENDOFTEXT
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.bos_token is None and tokenizer.eos_token is not None:
        tokenizer.bos_token = tokenizer.eos_token


def _expected_native_keys(n_layers: int) -> set[str]:
    keys = {"embed.weight", "pos_embed.weight", "ln_final.weight", "ln_final.bias", "unembed.weight"}
    for layer in range(n_layers):
        keys |= {f"blocks.{layer}.ln1.weight", f"blocks.{layer}.ln1.bias"}
        keys |= {f"blocks.{layer}.attn.{m}.{p}" for m in "qkvo" for p in ("weight", "bias")}
    return keys


def _token_id(tokenizer: Any, attr: str) -> int | None:
    try:
        value = getattr(tokenizer, attr, None)
    except Exception:  # some tokenizers raise for unset roles
        return None
    return value if isinstance(value, int) else None


def export_hf_gpt2(
    source: str | Path | Any,
    out_dir: str | Path,
    *,
    tokenizer_json: str | Path | None = None,
    n_inner: int | None = None,
) -> Path:
    """Write a native attention-only model as a HuggingFace ``GPT2LMHeadModel`` folder; return it.

    ``source`` is a native checkpoint folder (``native:`` format) or a native ``TransformerBridge``
    (``boot_random`` / ``load_native``). The tokenizer is the checkpoint's (or the bridge's);
    ``tokenizer_json`` overrides it, and one is required because HF and GGUF files carry one.
    ``n_inner`` is the width of the all-zero MLP (default GPT-2's ``4 * d_model``, which any
    GPT-2 loader reads; a smaller width gives a smaller file).

    The weights are copied exactly (float32). Differences from the native model: GPT-2's
    ``lm_head`` has no bias, so the native ``unembed.bias`` is dropped when it is non-zero (logits
    then differ from the native ones by that per-token constant; attention patterns and residual
    stream do not). The exported ``config.json`` records this under ``"interp_checks_export"``.

    Raises ``ValueError`` for what GPT-2 cannot express: MLPs, RMSNorm or no norm, rotary
    positions, grouped-query attention, a non-standard attention scale, soft-capping, ...
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg, state, tokenizer, described = _native_source(source, tokenizer_json)
    problems = _architecture_problems(cfg)
    if problems:
        raise ValueError(f"cannot export {described} as GPT-2: " + "; ".join(problems))
    n_layers, d_model, n_ctx, d_vocab = int(cfg.n_layers), int(cfg.d_model), int(cfg.n_ctx), int(cfg.d_vocab)
    expected = _expected_native_keys(n_layers)
    present = set(state)
    optional = {"unembed.bias"}
    if present - expected - optional or expected - present:
        extra = sorted(present - expected - optional)
        missing = sorted(expected - present)
        raise ValueError(
            f"cannot export {described} as GPT-2: its tensors are not those of an attention-only "
            f"LayerNorm model (unexpected: {extra[:5]}, missing: {missing[:5]})"
        )
    if tokenizer is None:
        raise ValueError(
            f"cannot export {described}: it has no tokenizer, and HF/GGUF checkpoints need one; "
            f"pass tokenizer_json=PATH (a `tokenizers` JSON file)"
        )
    _assign_bridge_roles(tokenizer)
    if len(tokenizer) > d_vocab:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model's d_vocab is {d_vocab}")

    f32 = {name: tensor.detach().to("cpu", torch.float32) for name, tensor in state.items()}
    width = int(n_inner) if n_inner is not None else 4 * d_model
    if width < 1:
        raise ValueError(f"n_inner must be >= 1, got {n_inner}")
    hf_state: dict[str, torch.Tensor] = {
        "transformer.wte.weight": f32["embed.weight"],
        "transformer.wpe.weight": f32["pos_embed.weight"],
        "transformer.ln_f.weight": f32["ln_final.weight"],
        "transformer.ln_f.bias": f32["ln_final.bias"],
        "lm_head.weight": f32["unembed.weight"],
    }
    for layer in range(n_layers):
        src, dst = f"blocks.{layer}", f"transformer.h.{layer}"
        # nn.Linear stores (out, in); GPT-2's Conv1D stores (in, out). c_attn's output is [q | k | v],
        # each split into heads the same way the native attention splits them (view(n_heads, d_head)).
        hf_state[f"{dst}.ln_1.weight"] = f32[f"{src}.ln1.weight"]
        hf_state[f"{dst}.ln_1.bias"] = f32[f"{src}.ln1.bias"]
        hf_state[f"{dst}.attn.c_attn.weight"] = torch.cat([f32[f"{src}.attn.{m}.weight"].T for m in "qkv"], dim=1)
        hf_state[f"{dst}.attn.c_attn.bias"] = torch.cat([f32[f"{src}.attn.{m}.bias"] for m in "qkv"])
        hf_state[f"{dst}.attn.c_proj.weight"] = f32[f"{src}.attn.o.weight"].T
        hf_state[f"{dst}.attn.c_proj.bias"] = f32[f"{src}.attn.o.bias"]
        # The zero MLP: act(0 @ W + 0) @ 0 + 0 == 0 exactly, whatever ln_2 and the activation do.
        hf_state[f"{dst}.ln_2.weight"] = torch.ones(d_model)
        hf_state[f"{dst}.ln_2.bias"] = torch.zeros(d_model)
        hf_state[f"{dst}.mlp.c_fc.weight"] = torch.zeros(d_model, width)
        hf_state[f"{dst}.mlp.c_fc.bias"] = torch.zeros(width)
        hf_state[f"{dst}.mlp.c_proj.weight"] = torch.zeros(width, d_model)
        hf_state[f"{dst}.mlp.c_proj.bias"] = torch.zeros(d_model)

    unembed_bias = f32.get("unembed.bias")
    max_bias = float(unembed_bias.abs().max()) if unembed_bias is not None else 0.0
    dropped = max_bias > 0.0
    note = (
        "GPT-2's lm_head has no bias: the native unembedding bias (max |b| = "
        f"{max_bias:.6g}) was dropped, so logits differ from the native model's by a per-token "
        "constant (logits_here == logits_native - unembed.bias); attention patterns and every "
        "residual-stream activation are identical."
        if dropped
        else "The native unembedding bias is zero, so logits equal the native model's."
    )
    bos, eos, pad = (_token_id(tokenizer, a) for a in ("bos_token_id", "eos_token_id", "pad_token_id"))
    config = GPT2Config(
        vocab_size=d_vocab,
        n_positions=n_ctx,
        n_embd=d_model,
        n_layer=n_layers,
        n_head=int(cfg.n_heads),
        n_inner=None if width == 4 * d_model else width,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=float(cfg.eps),
        scale_attn_weights=True,
        scale_attn_by_inverse_layer_idx=False,
        reorder_and_upcast_attn=False,
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        architectures=["GPT2LMHeadModel"],
    )
    model = GPT2LMHeadModel(config)
    missing, unexpected = model.load_state_dict(hf_state, strict=False)
    # Non-persistent buffers (the causal mask) are not in hf_state; any parameter left out is a bug.
    left_random = [name for name in missing if name in dict(model.named_parameters())]
    if left_random or unexpected:  # pragma: no cover - the mapping above covers GPT-2 exactly
        raise RuntimeError(f"GPT-2 export mapping is incomplete: missing {left_random}, unexpected {unexpected}")
    model.eval()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    config_path = out_dir / "config.json"
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    saved[EXPORT_CONFIG_KEY] = {
        "source": described,
        "attn_only_as_zero_mlp": True,
        "unembed_bias_dropped": dropped,
        "max_abs_unembed_bias": max_bias,
        "note": note,
    }
    config_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(
        f"# GPT-2 export of {described}\n\n"
        "Written by `interp_checks.models.export.export_hf_gpt2`: an attention-only model expressed "
        f"as a GPT-2 whose MLPs (width {width}) are all zero, so they add exactly 0 to the residual "
        "stream.\n\n"
        f"{note}\n",
        encoding="utf-8",
    )
    return out_dir


# --------------------------------------------------------------------------------------------
# HuggingFace GPT-2 -> GGUF


def _tokenizer_vocab_and_merges(hf_dir: Path) -> tuple[list[str], list[str], set[str]]:
    """(tokens by id, merges, special added tokens) of a byte-level BPE ``tokenizer.json``."""
    data = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = data["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"{hf_dir}/tokenizer.json is a {model.get('type')} tokenizer, expected byte-level BPE")
    vocab: dict[str, int] = dict(model["vocab"])
    special: set[str] = set()
    for added in data.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
        if added.get("special"):
            special.add(added["content"])
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        if not 0 <= index < len(tokens):
            raise ValueError(f"{hf_dir}/tokenizer.json: token ids are not contiguous from 0 (id {index} for {token!r})")
        tokens[index] = token
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return tokens, merges, special


def _special_ids(hf_dir: Path, config: dict[str, Any], tokens: list[str]) -> dict[str, int | None]:
    """BOS/EOS/PAD ids from ``config.json``, else from the tokens named in ``tokenizer_config.json``."""
    names: dict[str, Any] = {}
    tokenizer_config = hf_dir / "tokenizer_config.json"
    if tokenizer_config.is_file():
        names = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    out: dict[str, int | None] = {}
    for role in ("bos", "eos", "pad"):
        value = config.get(f"{role}_token_id")
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, int):
            token = names.get(f"{role}_token")
            if isinstance(token, dict):
                token = token.get("content")
            value = tokens.index(token) if isinstance(token, str) and token in tokens else None
        out[role] = value if isinstance(value, int) and 0 <= value < len(tokens) else None
    return out


def _add_bos_token(hf_dir: Path) -> bool:
    path = hf_dir / "tokenizer_config.json"
    if path.is_file():
        value = json.loads(path.read_text(encoding="utf-8")).get("add_bos_token")
        if isinstance(value, bool):
            return value
    return False


def export_gguf(
    hf_gpt2_dir: str | Path,
    gguf_path: str | Path,
    *,
    f16: bool = False,
    skip: tuple[str, ...] = (),
    name: str | None = None,
    add_bos_token: bool | None = None,
) -> Path:
    """Convert a HF GPT-2 folder (e.g. from :func:`export_hf_gpt2`) into the GGUF file ``gguf_path``.

    Mirrors llama.cpp's GPT-2 conversion: tensors renamed with gguf-py's name map, the Conv1D
    weights (``c_attn``, ``c_proj``, ``c_fc``) transposed, ``output.weight`` written only when the
    embeddings are untied, and the byte-level BPE tokenizer stored as ``tokenizer.ggml.*`` metadata
    of model type ``gpt2`` with the folder's BOS/EOS/PAD ids. ``f16`` stores the 2-d tensors as
    float16 (norms and biases stay float32, as llama.cpp does). GGUF tensor names in ``skip`` are
    left out (to write deliberately incomplete files for error tests). ``add_bos_token`` (the
    ``tokenizer.ggml.add_bos_token`` flag: whether a GGUF reader's tokenizer prepends BOS) defaults
    to the folder's ``tokenizer_config.json`` value, else False (GPT-2's convention).

    Note: transformers' GGUF config mapping does not turn ``feed_forward_length`` into GPT-2's
    ``n_inner``; interp_checks' ``gguf:`` loader does, but a plain ``from_pretrained(gguf_file=...)``
    of a file with a non-default MLP width (``n_inner != 4 * n_embd``) fails on the MLP shapes.
    """
    import numpy as np
    from gguf import GGUFWriter, LlamaFileType, MODEL_ARCH, TokenType, get_tensor_name_map
    from safetensors.numpy import load_file

    hf_dir = Path(hf_gpt2_dir)
    gguf_path = Path(gguf_path)
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "gpt2":
        raise ValueError(f"{hf_dir}/config.json has model_type {config.get('model_type')!r}; export_gguf converts GPT-2 folders only")
    n_layer, n_embd = config["n_layer"], config["n_embd"]
    n_inner = config.get("n_inner") or 4 * n_embd
    tokens, merges, special = _tokenizer_vocab_and_merges(hf_dir)
    if len(tokens) != config["vocab_size"]:
        raise ValueError(
            f"tokenizer has {len(tokens)} tokens but the model's vocab_size is {config['vocab_size']} "
            f"(a GGUF vocabulary lists exactly one token per embedding row)"
        )
    if not merges:
        # gguf-py writes no merges key for an empty list, and transformers' GGUF reader then takes
        # the vocabulary for a sentencepiece one and fails; the file would load without a tokenizer.
        raise ValueError(f"{hf_dir}/tokenizer.json has no BPE merges (a bytes-only vocabulary); a GGUF byte-level BPE tokenizer needs some")
    ids = _special_ids(hf_dir, config, tokens)
    tied = config.get("tie_word_embeddings", True)
    state = load_file(str(hf_dir / "model.safetensors"))
    if not tied and "lm_head.weight" not in state:
        raise ValueError(f"{hf_dir}: tie_word_embeddings is false but model.safetensors has no lm_head.weight")
    gguf_path.parent.mkdir(parents=True, exist_ok=True)

    writer = GGUFWriter(str(gguf_path), "gpt2")
    writer.add_name(name or hf_dir.name)
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
    control = special | {tokens[i] for i in ids.values() if i is not None}
    writer.add_token_types([TokenType.CONTROL if t in control else TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    if ids["bos"] is not None:
        writer.add_bos_token_id(ids["bos"])
    if ids["eos"] is not None:
        writer.add_eos_token_id(ids["eos"])
    if ids["pad"] is not None:
        writer.add_pad_token_id(ids["pad"])
    writer.add_add_bos_token(_add_bos_token(hf_dir) if add_bos_token is None else bool(add_bos_token))

    name_map = get_tensor_name_map(MODEL_ARCH.GPT2, n_layer)
    transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    for hf_name, array in state.items():
        if hf_name.endswith(".attn.bias") or hf_name.endswith(".attn.masked_bias"):
            continue  # causal-mask buffers
        if hf_name == "lm_head.weight":
            if tied:
                continue  # tied to wte; GGUF then has no output.weight
            gguf_name, suffix = "output", "weight"
        else:
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
