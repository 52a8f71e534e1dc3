"""Loading a ModelSpec: from a config.json (or a model directory) or from the built-in catalogue."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmrack.catalogue import NOT_PUBLISHED, CatalogueEntry, catalogue_names, find_entry, known_forms
from llmrack.catalogue import normalize_name as _normalize_name
from llmrack.errors import LlmrackError
from llmrack.planner.spec import _NON_GATED_MLP, INT4_GROUP_SIZE, ModelSpec


def _int(
    cfg: Mapping[str, Any],
    keys: tuple[str, ...],
    source: str,
    *,
    default: int | None = None,
    minimum: int = 1,
) -> int:
    for key in keys:
        if key in cfg and cfg[key] is not None:
            value = cfg[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise LlmrackError(
                    f"must be an integer >= {minimum}, got {value!r}", source=source, field=key
                )
            return value
    if default is not None:
        return default
    raise LlmrackError(
        f"missing (needed to size the model; looked for {', '.join(keys)})", source=source, field=keys[0]
    )


_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "half": "fp16", "float": "fp32"}


def _checkpoint_quant(cfg: Mapping[str, Any], source: str) -> tuple[str | None, int | None]:
    qc = cfg.get("quantization_config")
    if qc is None:
        return None, None
    if not isinstance(qc, Mapping):
        raise LlmrackError("must be a mapping", source=source, field="quantization_config")
    method = str(qc.get("quant_method", "")).lower()
    if method in ("awq", "gptq"):
        bits = qc.get("bits", qc.get("w_bit", 4))
        if bits != 4:
            raise LlmrackError(
                f"only 4-bit {method} checkpoints are sized, got bits={bits!r}",
                source=source,
                field="quantization_config.bits",
            )
        group = qc.get("group_size", qc.get("q_group_size", INT4_GROUP_SIZE))
        return method, int(group) if isinstance(group, int) and group > 0 else None
    if method == "fp8":
        block = qc.get("weight_block_size")
        block_k = int(block[1]) if isinstance(block, list) and len(block) == 2 else None
        return "fp8", block_k
    if method == "compressed-tensors":
        text = json.dumps(qc).lower()
        if '"num_bits": 4' in text:
            return "gptq", INT4_GROUP_SIZE
        if '"type": "float"' in text:
            return "fp8", None
        return "int8", None
    raise LlmrackError(
        f"unsupported quant_method {method!r} (sized: awq, gptq, fp8, compressed-tensors)",
        source=source,
        field="quantization_config.quant_method",
    )


def _spec_from_config(
    raw: Mapping[str, Any],
    *,
    name: str,
    source: str,
    hf_id: str | None = None,
    params: int | None = None,
    active_params: int | None = None,
) -> ModelSpec:
    """Build a ModelSpec from config.json keys; compute parameter counts when not given."""
    cfg: dict[str, Any] = dict(raw)
    if isinstance(cfg.get("text_config"), Mapping) and "hidden_size" not in cfg:
        cfg = {**cfg, **cfg["text_config"]}  # multimodal wrappers keep the LM in text_config
    archs = cfg.get("architectures")
    model_type = str(cfg.get("model_type", ""))
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        architecture = archs[0]
    elif model_type:
        architecture = model_type
    else:
        raise LlmrackError(
            "missing (neither architectures nor model_type is set)", source=source, field="architectures"
        )

    if model_type == "chatglm":
        layers = _int(cfg, ("num_layers",), source)
        hidden = _int(cfg, ("hidden_size",), source)
        heads = _int(cfg, ("num_attention_heads",), source)
        kv = _int(cfg, ("multi_query_group_num",), source) if cfg.get("multi_query_attention") else heads
        head_dim = _int(cfg, ("kv_channels",), source, default=hidden // heads)
        inter = _int(cfg, ("ffn_hidden_size",), source)
        vocab = _int(cfg, ("padded_vocab_size", "vocab_size"), source)
        max_pos = _int(cfg, ("seq_length", "max_position_embeddings"), source)
    else:
        layers = _int(cfg, ("num_hidden_layers", "n_layer", "num_layers"), source)
        hidden = _int(cfg, ("hidden_size", "n_embd", "d_model"), source)
        heads = _int(cfg, ("num_attention_heads", "n_head"), source)
        if model_type == "falcon" and not cfg.get("new_decoder_architecture"):
            default_kv = 1 if cfg.get("multi_query", True) else heads
        else:
            default_kv = heads
        kv = _int(cfg, ("num_key_value_heads", "num_kv_heads", "n_head_kv"), source, default=default_kv)
        head_dim = _int(cfg, ("head_dim",), source, default=hidden // heads)
        default_inter = 4 * hidden if model_type in _NON_GATED_MLP else None
        inter = _int(cfg, ("intermediate_size", "ffn_hidden_size", "n_inner"), source, default=default_inter)
        vocab = _int(cfg, ("vocab_size",), source)
        max_pos = _int(
            cfg, ("max_position_embeddings", "seq_length", "n_positions", "max_sequence_length"), source
        )
    if hidden % heads and "head_dim" not in cfg and model_type != "chatglm":
        raise LlmrackError(
            f"hidden_size {hidden} is not divisible by num_attention_heads {heads}",
            source=source,
            field="num_attention_heads",
        )
    if heads % kv:
        raise LlmrackError(
            f"num_attention_heads {heads} is not divisible by {kv} key/value heads",
            source=source,
            field="num_key_value_heads",
        )

    # MoE
    experts = _int(
        cfg, ("num_local_experts", "n_routed_experts", "num_experts"), source, default=0, minimum=0
    )
    top_k = moe_inter = shared_inter = dense_layers = 0
    if experts:
        top_k = _int(cfg, ("num_experts_per_tok",), source)
        moe_inter = _int(cfg, ("moe_intermediate_size",), source, default=inter)
        shared_inter = _int(cfg, ("n_shared_experts",), source, default=0, minimum=0) * moe_inter
        shared_inter += _int(cfg, ("shared_expert_intermediate_size",), source, default=0, minimum=0)
        dense_layers = _int(cfg, ("first_k_dense_replace",), source, default=0, minimum=0)
        mlp_only = cfg.get("mlp_only_layers") or []
        dense_layers += len(mlp_only) if isinstance(mlp_only, list) else 0

    # MLA
    kv_lora = cfg.get("kv_lora_rank")
    mla = kv_lora is not None
    rope_dim = nope_dim = v_dim = q_lora = 0
    if mla:
        kv_lora = _int(cfg, ("kv_lora_rank",), source)
        rope_dim = _int(cfg, ("qk_rope_head_dim",), source)
        nope_dim = _int(cfg, ("qk_nope_head_dim",), source)
        v_dim = _int(cfg, ("v_head_dim",), source)
        q_lora = _int(cfg, ("q_lora_rank",), source, default=0, minimum=0)
        head_dim = nope_dim + rope_dim

    tie = bool(cfg.get("tie_word_embeddings", False))
    dtype_raw = str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16").lower().removeprefix("torch.")
    if dtype_raw not in _DTYPES:
        raise LlmrackError(f"unknown dtype {dtype_raw!r}", source=source, field="torch_dtype")
    ckpt_quant, group = _checkpoint_quant(cfg, source)

    # Parameter count: embeddings + per-layer attention + MLP (+ experts). Biases and norms are left
    # out (< 0.1 % of any model here).
    gated = model_type not in _NON_GATED_MLP
    mlp_mats = 3 if gated else 2
    if mla:
        q_proj = hidden * q_lora + q_lora * heads * head_dim if q_lora else hidden * heads * head_dim
        attn = (
            q_proj
            + hidden * (kv_lora + rope_dim)
            + kv_lora * heads * (nope_dim + v_dim)
            + heads * v_dim * hidden
        )
    else:
        attn = hidden * heads * head_dim + 2 * hidden * kv * head_dim + heads * head_dim * hidden
    dense_mlp = mlp_mats * hidden * inter
    embed = vocab * hidden * (1 if tie else 2)
    if experts:
        expert = mlp_mats * hidden * moe_inter
        shared = mlp_mats * hidden * shared_inter
        router = hidden * experts
        moe_layers = layers - dense_layers
        computed = (
            embed
            + layers * attn
            + dense_layers * dense_mlp
            + moe_layers * (experts * expert + shared + router)
        )
        computed_active = (
            embed + layers * attn + dense_layers * dense_mlp + moe_layers * (top_k * expert + shared + router)
        )
    else:
        computed = embed + layers * (attn + dense_mlp)
        computed_active = None

    return ModelSpec(
        name=name,
        hf_id=hf_id,
        source=source,
        architecture=architecture,
        model_type=model_type,
        params=params or computed,
        active_params=(active_params or computed_active) if experts else None,
        num_hidden_layers=layers,
        hidden_size=hidden,
        intermediate_size=inter,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=head_dim,
        v_head_dim=v_dim or None,
        max_position_embeddings=max_pos,
        vocab_size=vocab,
        tie_word_embeddings=tie,
        dtype=_DTYPES[dtype_raw],  # type: ignore[arg-type]
        checkpoint_quantization=ckpt_quant,  # type: ignore[arg-type]
        quant_group_size=group,
        num_experts=experts,
        num_experts_per_tok=top_k,
        moe_intermediate_size=moe_inter,
        num_dense_layers=dense_layers,
        kv_lora_rank=kv_lora if mla else None,
        qk_rope_head_dim=rope_dim if mla else None,
    )


def _load_config_file(path: Path, source: str | None) -> ModelSpec:
    config_path = path / "config.json" if path.is_dir() else path
    where = str(config_path)
    if not config_path.is_file():
        raise LlmrackError(
            "no config.json in this model directory", source=source or str(path), field="config.json"
        )
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LlmrackError(f"cannot read a JSON config: {exc}", source=where) from None
    if not isinstance(raw, dict):
        raise LlmrackError("must hold a JSON object", source=where)
    name = config_path.parent.name or "model"
    hf_id = raw.get("_name_or_path") if isinstance(raw.get("_name_or_path"), str) else None
    if hf_id and (hf_id.startswith("/") or hf_id.startswith(".")):
        hf_id = None
    return _spec_from_config(raw, name=name, source=where, hf_id=hf_id)


_QUANT_SUFFIXES = (
    ("-gptq-int4", "gptq"),
    ("-gptq", "gptq"),
    ("-awq", "awq"),
    ("-fp8", "fp8"),
    ("-int8", "int8"),
    ("-w8a8", "int8"),
)


def _from_catalogue(entry: CatalogueEntry) -> ModelSpec:
    spec = _spec_from_config(
        entry.config,
        name=entry.name,
        source="catalogue",
        hf_id=entry.hf_id,
        params=entry.params,
        active_params=entry.active_params,
    )
    if entry.int4_intermediate_size:
        spec = spec.model_copy(update={"int4_intermediate_size": entry.int4_intermediate_size})
    return spec


def load_model_spec(name_or_path: str, *, source: str | None = None) -> ModelSpec:
    """A model directory (or its config.json), or a catalogue name ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b").

    A catalogue name may end in -AWQ / -GPTQ-Int4 / -FP8 / -Int8: the spec then describes that
    pre-quantized checkpoint. Raises LlmrackError (field "model", or the config.json key at fault).
    """
    text = str(name_or_path).strip()
    if not text:
        raise LlmrackError("empty model name", source=source, field="model")
    path = Path(text).expanduser()
    if path.exists():
        return _load_config_file(path, source)
    if text.startswith(("/", "./", "../", "~")) or text.endswith(".json"):
        raise LlmrackError(f"no such model directory or config file: {text}", source=source, field="model")

    entry = find_entry(text)
    if entry is not None:
        return _from_catalogue(entry)
    norm = _normalize_name(text)
    for suffix, quant in _QUANT_SUFFIXES:
        if norm.endswith(suffix) and (entry := find_entry(norm[: -len(suffix)])) is not None:
            spec = _from_catalogue(entry)
            hf_id = (
                f"{entry.hf_id}{text[len(text) - len(suffix) :]}" if "/" in text else f"{entry.hf_id}{suffix}"
            )
            return spec.model_copy(
                update={
                    "name": f"{entry.name}{text[len(text) - len(suffix) :]}",
                    "hf_id": hf_id,
                    "checkpoint_quantization": quant,
                    "quant_group_size": INT4_GROUP_SIZE if quant in ("awq", "gptq") else None,
                }
            )
    if norm in NOT_PUBLISHED:
        raise LlmrackError(
            f"{text!r} is not a published model; did you mean {NOT_PUBLISHED[norm]}?",
            source=source,
            field="model",
        )
    close = difflib.get_close_matches(norm, known_forms(), n=3, cutoff=0.75)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    raise LlmrackError(
        f"unknown model {text!r}: not a directory with a config.json and not in the built-in catalogue "
        f"of {len(catalogue_names())} models.{hint}",
        source=source,
        field="model",
    )

