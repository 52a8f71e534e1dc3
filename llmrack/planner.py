"""GPU sizing planner: will a model fit these GPUs under vLLM, with what context, and with which flags.

The arithmetic follows what vLLM does at start-up: it takes ``gpu_memory_utilization`` of each GPU,
loads the weights (split over the tensor-parallel group), runs a profile pass to measure activation
and non-torch memory, and gives everything left to the paged KV cache. It then refuses to start when
the KV cache cannot hold one request of ``max_model_len`` tokens. This module reproduces that budget
on paper so the error is caught before anything is installed, and says what would fit instead.

Numbers and the reasons behind them
-----------------------------------
Bytes per weight (``QUANT_BYTES``):
  * fp16 / bf16: 2.
  * fp8 / int8: 1 (per-tensor / per-channel scales, or fp32 scales per 128x128 block: < 0.03 %).
  * awq / gptq (int4, group size 128): each group of 128 weights stores 128 x 4 bits, one fp16 scale
    (16 bits) and one packed 4-bit zero point: 532 bits / 128 weights = 4.156 bits = 0.5195 bytes.
    GPTQ's g_idx (one int32 per input row) adds < 0.01 %.
  * Quantized checkpoints keep the token embeddings and the LM head in 16 bits (vLLM quantizes
    linear layers only), so those are always counted at 2 bytes. Check: Qwen2.5-7B-Instruct-AWQ
    = 6.53e9 x 0.5195 + 1.09e9 x 2 = 5.57 GB; the published files are 5.58 GB.

KV cache per token: layers x kv_heads x head_dim x 2 (K and V) x dtype bytes. Under tensor
parallelism each GPU holds kv_heads / TP heads when kv_heads >= TP, otherwise one replicated head.
MLA models (DeepSeek-V2/V3/R1) cache one latent of kv_lora_rank + qk_rope_head_dim per layer, which
every GPU of the TP group holds in full.

Reserve per GPU besides weights and KV cache:
  * ``RUNTIME_RESERVE_GIB`` = 1.0 GiB: the non-torch memory vLLM measures in its profile run
    (CUDA context share, cuBLAS/cuDNN workspaces: typically 0.2-0.6 GiB) plus the CUDA-graph pools of
    the decode batch sizes, which recent vLLM counts inside the budget (0.3-0.7 GiB for dense models
    up to 70B at the default capture sizes).
  * ``TP_RESERVE_GIB`` = 0.5 GiB more when TP > 1: NCCL communicators and the custom all-reduce
    buffers (measured 0.3-0.6 GiB per rank on 2-8 GPU groups).
  * Activation peak of the profile pass, computed: one prefill chunk of ``max_num_batched_tokens``
    (vLLM's default for the OpenAI server: 8192 on GPUs of >= 70 GiB other than A100, else 2048)
    x (3 x MLP width / TP + 4 x hidden) x 2 bytes, and for MoE top_k x (3 x expert width / TP +
    hidden) per token; plus sampler logits and probabilities, max_num_seqs x vocab x 4 bytes x 2.
    Check: Llama-3-8B on one 80 GB H100 gives 1.15 GiB; vLLM logs ~1.2 GiB "activation peak".

Tensor parallelism (vLLM's rule): num_attention_heads % TP == 0, and either kv_heads % TP == 0 or
TP % kv_heads == 0 (then KV heads are replicated). Int4 group-quantized and block-FP8 checkpoints
also need every row-parallel input (MLP / expert width and attention output width) divided by TP to
stay a multiple of the group size (vLLM: "The input size is not aligned with the quantized weight
shape"): e.g. Qwen2.5-72B-AWQ cannot run at TP 8 (29568 / 8 = 3696, not a multiple of 128).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmrack.catalogue import NOT_PUBLISHED, CatalogueEntry, catalogue_names, find_entry, known_forms
from llmrack.catalogue import normalize_name as _normalize_name
from llmrack.errors import LlmrackError, PlanError

__all__ = [
    "GIB",
    "QUANT_BYTES",
    "ModelSpec",
    "Plan",
    "catalogue_names",
    "check_tensor_parallel",
    "is_consumer_gpu",
    "kv_bytes_per_token",
    "load_model_spec",
    "plan",
    "weight_bytes",
]

GIB = 1024**3
INT4_GROUP_SIZE = 128
INT4_BYTES = (INT4_GROUP_SIZE * 4 + 16 + 4) / INT4_GROUP_SIZE / 8  # 0.51953125
QUANT_BYTES: dict[str, float] = {
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "awq": INT4_BYTES,
    "gptq": INT4_BYTES,
}
QUANTIZATIONS = tuple(QUANT_BYTES)
KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
_QUANT_ALIASES = {
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "int4": "awq",
    "awq_marlin": "awq",
    "gptq_marlin": "gptq",
    "w8a8": "int8",
}

RUNTIME_RESERVE_GIB = 1.0
TP_RESERVE_GIB = 0.5
KV_BLOCK_TOKENS = 16  # vLLM's default block size on GPU
TYPICAL_CONTEXT = 4096  # "a typical chat request" for the concurrency figure
MIN_USEFUL_CONTEXT = 4096  # below this (or the model's own maximum) a plan is not worth serving
CONSUMER_GPU_MARKERS = ("4090", "geforce", "rtx 40")

_NON_GATED_MLP = {"falcon", "gpt2", "gpt_neox", "gptj", "gpt_bigcode", "opt", "bloom", "mpt", "phi"}


class ModelSpec(BaseModel):
    """The architecture numbers sizing needs, read from a config.json or the built-in catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Model name (catalogue id without org, or the directory name)")
    hf_id: str | None = Field(None, description="Hugging Face repository id, when known")
    source: str = Field("", description="Where the numbers came from: 'catalogue' or a config.json path")
    architecture: str
    model_type: str = ""
    params: int = Field(gt=0, description="Total parameters")
    active_params: int | None = Field(None, description="Parameters used per token (MoE models)")
    num_hidden_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(ge=0, description="Dense MLP width (expert width in all-MoE models)")
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    v_head_dim: int | None = Field(None, description="Value head size when it differs (MLA)")
    max_position_embeddings: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    tie_word_embeddings: bool = False
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    checkpoint_quantization: Literal["fp8", "int8", "awq", "gptq"] | None = Field(
        None, description="Format of a pre-quantized checkpoint"
    )
    quant_group_size: int | None = Field(None, description="Int4 group size or FP8 block size (input dim)")
    int4_intermediate_size: int | None = Field(
        None, description="MLP width of the publisher's int4 checkpoints when padded for TP"
    )
    num_experts: int = Field(0, ge=0, description="Routed experts per MoE layer (0: dense model)")
    num_experts_per_tok: int = Field(0, ge=0)
    moe_intermediate_size: int = Field(0, ge=0)
    num_dense_layers: int = Field(0, ge=0, description="Dense MLP layers in an MoE model")
    kv_lora_rank: int | None = Field(None, description="MLA latent size (DeepSeek-V2/V3)")
    qk_rope_head_dim: int | None = None

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def uses_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def embedding_params(self) -> int:
        """Token embeddings plus the LM head (once when tied): kept in 16 bits by quantized formats."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    @property
    def attention_output_width(self) -> int:
        return self.num_attention_heads * (self.v_head_dim or self.head_dim)


# --------------------------------------------------------------------------------------------------
# Loading: config.json or catalogue
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Sizing helpers
# --------------------------------------------------------------------------------------------------


def _normalize_quant(quantization: str, model: ModelSpec, source: str) -> str:
    q = str(quantization).strip().lower()
    q = _QUANT_ALIASES.get(q, q)
    if q == "auto":
        q = model.checkpoint_quantization or ("fp16" if model.dtype == "fp16" else "bf16")
    if q not in QUANT_BYTES:
        raise LlmrackError(
            f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}",
            source=source or None,
            field="quantization",
        )
    return q


def _weight_format(model: ModelSpec, quant: str) -> str:
    """What the served weights are: a 16-bit request on a pre-quantized checkpoint keeps its format."""
    if quant in ("fp16", "bf16") and model.checkpoint_quantization:
        return model.checkpoint_quantization
    return quant


def weight_bytes(model: ModelSpec, quantization: str = "bf16") -> int:
    """Bytes of weights at a quantization; embeddings and LM head stay 16-bit in quantized formats."""
    fmt = _weight_format(model, _normalize_quant(quantization, model, ""))
    per_weight = QUANT_BYTES[fmt]
    if per_weight >= 2.0:
        return model.params * 2
    embed = min(model.embedding_params, model.params)
    return math.ceil((model.params - embed) * per_weight + embed * 2)


def _kv_dtype_bytes(kv_cache_dtype: str) -> int:
    return 1 if kv_cache_dtype.startswith("fp8") else 2


def kv_bytes_per_token(model: ModelSpec, kv_cache_dtype: str = "auto", tensor_parallel_size: int = 1) -> int:
    """KV-cache bytes one token takes on each GPU of a TP group (TP 1: the whole model's)."""
    dtype_bytes = _kv_dtype_bytes(kv_cache_dtype)
    if model.uses_mla:
        assert model.kv_lora_rank is not None and model.qk_rope_head_dim is not None
        return model.num_hidden_layers * (model.kv_lora_rank + model.qk_rope_head_dim) * dtype_bytes
    kv = model.num_key_value_heads
    heads_per_gpu = kv // tensor_parallel_size if kv >= tensor_parallel_size else 1
    return model.num_hidden_layers * heads_per_gpu * model.head_dim * 2 * dtype_bytes


def check_tensor_parallel(
    model: ModelSpec, tensor_parallel_size: int, quantization: str = "bf16"
) -> str | None:
    """Why vLLM would refuse this TP size for the model (None when it is valid)."""
    tp = tensor_parallel_size
    if tp < 1:
        return f"tensor_parallel_size must be >= 1, got {tp}"
    heads, kv = model.num_attention_heads, model.num_key_value_heads
    if heads % tp:
        return f"{heads} attention heads are not divisible by tensor_parallel_size {tp}"
    if not model.uses_mla and (kv % tp if kv >= tp else tp % kv):
        return (
            f"{kv} key/value heads and tensor_parallel_size {tp}: one must divide the other "
            f"(vLLM splits KV heads when kv_heads >= TP, else replicates them)"
        )
    fmt = _weight_format(model, _normalize_quant(quantization, model, ""))
    group = None
    if fmt in ("awq", "gptq"):
        group = model.quant_group_size or INT4_GROUP_SIZE
    elif fmt == "fp8" and model.checkpoint_quantization == "fp8":
        group = model.quant_group_size
    if group:
        widths: list[tuple[str, int]] = [("attention output width", model.attention_output_width)]
        if model.is_moe:
            widths.append(("expert MLP width", model.moe_intermediate_size))
        if not model.is_moe or model.num_dense_layers:
            width = model.intermediate_size
            if fmt in ("awq", "gptq") and model.int4_intermediate_size:
                width = model.int4_intermediate_size
            widths.append(("MLP width", width))
        for label, width in widths:
            if width % tp or (width // tp) % group:
                return (
                    f"{label} {width} / tensor_parallel_size {tp} is not a multiple of the {fmt} "
                    f"group size {group} (vLLM: input size not aligned with the quantized weight shape)"
                )
    return None


def is_consumer_gpu(gpu_name: str) -> bool:
    """GeForce / RTX 40-series cards: no NVLink, PCIe peer-to-peer unreliable under NCCL."""
    name = gpu_name.lower()
    return any(marker in name for marker in CONSUMER_GPU_MARKERS)


def _prefill_chunk_tokens(gpu_mem_gib: float, gpu_name: str) -> int:
    # vLLM's default max_num_batched_tokens for the OpenAI server (EngineArgs batch defaults).
    return 8192 if gpu_mem_gib >= 70 and "a100" not in gpu_name.lower() else 2048


def _activation_bytes(model: ModelSpec, tp: int, chunk: int, max_num_seqs: int) -> int:
    hidden = model.hidden_size
    dense = 3 * model.intermediate_size / tp + 4 * hidden
    if model.is_moe:
        moe = model.num_experts_per_tok * (3 * model.moe_intermediate_size / tp + hidden) + 4 * hidden
        per_token = max(moe, dense) if model.num_dense_layers else moe
    else:
        per_token = dense
    logits = max_num_seqs * model.vocab_size * 4 * 2
    return math.ceil(chunk * per_token * 2 + logits)


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def _tokens(n: int) -> str:
    return f"{n // 1024}K" if n >= 1024 and n % 1024 == 0 else str(n)


# --------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------


class Plan(BaseModel):
    """Result of sizing one model on one GPU set. Byte figures are per GPU unless named otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    hf_id: str | None
    source: str
    cpu: bool = Field(description="vLLM on CPU (gpu_count 0): no GPU memory checks")
    gpu_count: int
    gpu_mem_gib: float
    gpu_name: str
    quantization: str = Field(description="Requested quantization, normalized")
    weight_format: str = Field(description="Format the served weights are in")
    dtype: str = Field(description="vLLM --dtype (activations)")
    kv_cache_dtype: str
    gpu_memory_utilization: float
    tensor_parallel_size: int
    max_num_seqs: int
    weight_bytes: int = Field(description="All weights, whole model")
    weight_bytes_per_gpu: int
    kv_bytes_per_token: int = Field(description="KV cache per token, whole model")
    kv_bytes_per_token_per_gpu: int
    usable_bytes_per_gpu: int = Field(description="gpu_mem x gpu_memory_utilization (CPU: the KV space)")
    reserve_bytes_per_gpu: int = Field(description="Runtime reserve + activation peak")
    kv_cache_bytes_per_gpu: int = Field(description="Left for the KV cache (0 when weights do not fit)")
    max_kv_tokens: int = Field(description="Tokens the KV cache holds (whole TP group)")
    max_model_len_limit: int = Field(description="Largest max-model-len that fits (<= model maximum)")
    max_model_len: int = Field(description="The max-model-len the vLLM args use")
    max_position_embeddings: int
    concurrency_full_context: int = Field(description="Requests of max_model_len tokens the KV cache holds")
    concurrency_4k: int = Field(description="Requests of 4096 tokens (or max_model_len if less) it holds")
    fits: bool
    reasons: list[str] = Field(default_factory=list, description="Why it does not fit")
    suggestions: list[str] = Field(default_factory=list, description="What would fit")
    notes: list[str] = Field(default_factory=list, description="Warnings that do not stop the plan")
    vllm_args: list[str]
    env: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with GiB figures added for people reading it)."""
        data = self.model_dump(mode="json")
        data["gib"] = {
            "weights": round(self.weight_bytes / GIB, 2),
            "weights_per_gpu": round(self.weight_bytes_per_gpu / GIB, 2),
            "usable_per_gpu": round(self.usable_bytes_per_gpu / GIB, 2),
            "reserve_per_gpu": round(self.reserve_bytes_per_gpu / GIB, 2),
            "kv_cache_per_gpu": round(self.kv_cache_bytes_per_gpu / GIB, 2),
        }
        return data

    def require_fit(self) -> Plan:
        """Return self, or raise PlanError (field "model") with the reasons and what would fit."""
        if self.fits:
            return self
        where = f"{self.gpu_count} x {self.gpu_mem_gib:g} GiB" if not self.cpu else "CPU"
        lines = [f"{self.model} ({self.quantization}) does not fit {where}:"]
        lines += [f"  - {r}" for r in self.reasons]
        if self.suggestions:
            lines.append("What would fit:")
            lines += [f"  - {s}" for s in self.suggestions]
        raise PlanError("\n".join(lines), source=self.source or None, field="model")

    def summary(self) -> str:
        """One line for logs and the CLI."""
        verdict = "fits" if self.fits else "does NOT fit"
        return (
            f"{self.model} {self.weight_format} TP{self.tensor_parallel_size}: {verdict}; weights "
            f"{_gib(self.weight_bytes_per_gpu)}/GPU, KV {_gib(self.kv_cache_bytes_per_gpu)}/GPU = "
            f"{self.max_kv_tokens} tokens, max-model-len {self.max_model_len} "
            f"(limit {self.max_model_len_limit}), {self.concurrency_4k} x 4K requests"
        )


def _validate_inputs(
    *,
    gpu_count: int,
    gpu_mem_gib: float,
    kv_cache_dtype: str,
    gpu_memory_utilization: float,
    max_model_len: int | None,
    max_num_seqs: int,
    cpu_kv_cache_gib: int,
    source: str,
) -> str:
    src = source or None
    if isinstance(gpu_count, bool) or not isinstance(gpu_count, int) or gpu_count < 0:
        raise LlmrackError(
            f"must be an integer >= 0 (0: CPU), got {gpu_count!r}", source=src, field="gpu_count"
        )
    if gpu_count and not gpu_mem_gib > 0:
        raise LlmrackError(f"must be > 0 GiB, got {gpu_mem_gib!r}", source=src, field="gpu_mem_gib")
    if not 0 < gpu_memory_utilization <= 1:
        raise LlmrackError(
            f"must be in (0, 1], got {gpu_memory_utilization!r}", source=src, field="gpu_memory_utilization"
        )
    if max_model_len is not None and (isinstance(max_model_len, bool) or max_model_len < 1):
        raise LlmrackError(f"must be >= 1, got {max_model_len!r}", source=src, field="max_model_len")
    if max_num_seqs < 1:
        raise LlmrackError(f"must be >= 1, got {max_num_seqs!r}", source=src, field="max_num_seqs")
    if gpu_count == 0 and cpu_kv_cache_gib < 1:
        raise LlmrackError(
            f"must be a whole number of GiB >= 1, got {cpu_kv_cache_gib!r}",
            source=src,
            field="cpu_kv_cache_gib",
        )
    kv = str(kv_cache_dtype).strip().lower()
    if kv not in KV_CACHE_DTYPES:
        raise LlmrackError(
            f"unknown kv_cache_dtype {kv_cache_dtype!r}; choose one of {', '.join(KV_CACHE_DTYPES)}",
            source=src,
            field="kv_cache_dtype",
        )
    return kv


def _choose_tp(model: ModelSpec, gpu_count: int, quant: str) -> tuple[int, list[str]]:
    """Largest valid power of two <= gpu_count (more GPUs never hold less)."""
    notes: list[str] = []
    tp = 1
    while tp * 2 <= gpu_count:
        tp *= 2
    while tp > 1 and check_tensor_parallel(model, tp, quant):
        notes.append(f"TP {tp} is not possible: {check_tensor_parallel(model, tp, quant)}")
        tp //= 2
    if tp < gpu_count:
        notes.append(
            f"tensor parallel {tp} uses {tp} of {gpu_count} GPUs; the others stay free "
            f"(another model or a second replica behind the gateway)"
        )
    return tp, notes


def _compute(
    model: ModelSpec,
    *,
    gpu_count: int,
    gpu_mem_gib: float,
    gpu_name: str,
    quantization: str,
    kv_cache_dtype: str,
    gpu_memory_utilization: float,
    max_model_len: int | None,
    tensor_parallel_size: int | None,
    max_num_seqs: int,
    cpu_kv_cache_gib: int,
    source: str,
) -> Plan:
    kv_dtype = _validate_inputs(
        gpu_count=gpu_count,
        gpu_mem_gib=gpu_mem_gib,
        kv_cache_dtype=kv_cache_dtype,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        cpu_kv_cache_gib=cpu_kv_cache_gib,
        source=source,
    )
    src = source or None
    quant = _normalize_quant(quantization, model, source)
    fmt = _weight_format(model, quant)
    cpu = gpu_count == 0
    reasons: list[str] = []
    notes: list[str] = []
    max_pos = model.max_position_embeddings
    min_ctx = min(MIN_USEFUL_CONTEXT, max_pos)

    if fmt != quant:
        notes.append(f"the checkpoint is published in {fmt}; vLLM serves it as {fmt} (weights sized so)")
    elif fmt in ("awq", "gptq", "int8") and model.checkpoint_quantization != fmt:
        notes.append(
            f"{fmt} needs a pre-quantized checkpoint of this model (e.g. {model.hf_id or model.name}-"
            f"{'AWQ' if fmt == 'awq' else 'GPTQ-Int4' if fmt == 'gptq' else 'W8A8'}); vLLM reads the "
            f"format from its config and picks the fastest kernel (Marlin on Ampere and newer)"
        )

    if cpu:
        if fmt not in ("bf16", "fp16"):
            raise LlmrackError(
                f"the CPU backend is planned for bf16/fp16 weights only, got {fmt}",
                source=src,
                field="quantization",
            )
        if tensor_parallel_size not in (None, 1):
            raise PlanError(
                f"must be 1 on CPU (gpu_count 0), got {tensor_parallel_size}",
                source=src,
                field="tensor_parallel_size",
            )
        tp = 1
    elif tensor_parallel_size is not None:
        tp = tensor_parallel_size
        if tp > gpu_count:
            raise PlanError(
                f"{tp} is more than the {gpu_count} GPUs of this host",
                source=src,
                field="tensor_parallel_size",
            )
        why = check_tensor_parallel(model, tp, quant)
        if why:
            valid = [n for n in range(1, gpu_count + 1) if not check_tensor_parallel(model, n, quant)]
            raise PlanError(
                f"{why}; valid sizes for {model.name} on {gpu_count} GPUs: {valid}",
                source=src,
                field="tensor_parallel_size",
            )
    else:
        tp, tp_notes = _choose_tp(model, gpu_count, quant)
        notes += tp_notes

    total_weights = weight_bytes(model, fmt)
    weights_per_gpu = math.ceil(total_weights / tp)
    kv_tok_total = kv_bytes_per_token(model, kv_dtype, 1)
    kv_tok_gpu = kv_bytes_per_token(model, kv_dtype, tp)
    dtype = "float16" if quant == "fp16" or fmt in ("awq", "gptq") else "bfloat16"

    if cpu:
        usable = cpu_kv_cache_gib * GIB
        reserve = 0
        kv_free = usable
        max_kv_tokens = kv_free // kv_tok_gpu
    else:
        usable = int(gpu_mem_gib * GIB * gpu_memory_utilization)
        chunk = _prefill_chunk_tokens(gpu_mem_gib, gpu_name)
        reserve = int((RUNTIME_RESERVE_GIB + (TP_RESERVE_GIB if tp > 1 else 0)) * GIB)
        reserve += _activation_bytes(model, tp, chunk, max_num_seqs)
        kv_free = usable - weights_per_gpu - reserve
        if kv_free <= 0:
            reasons.append(
                f"weights take {_gib(weights_per_gpu)} per GPU at TP {tp} "
                f"({fmt}, {_gib(total_weights)} in all) "
                f"plus a {_gib(reserve)} runtime/activation reserve: more than the {_gib(usable)} that "
                f"gpu_memory_utilization {gpu_memory_utilization:g} leaves of each {gpu_mem_gib:g} GiB GPU"
            )
            kv_free = 0
        max_kv_tokens = kv_free // (kv_tok_gpu * KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS

    limit = min(max_pos, max_kv_tokens)
    if limit < max_pos and limit >= 1024:
        limit = limit // 1024 * 1024
    weights_fit = not reasons
    if max_model_len is not None:
        if max_model_len > max_pos:
            reasons.append(
                f"max_model_len {max_model_len} is more than the model's max_position_embeddings {max_pos}"
            )
        if weights_fit and max_kv_tokens < max_model_len:
            reasons.append(
                f"the KV cache holds {max_kv_tokens} tokens ({_gib(kv_free)} per GPU at "
                f"{kv_tok_gpu} bytes/token); one request of max_model_len {max_model_len} does "
                f"not fit (vLLM refuses to start)"
            )
        chosen = max_model_len
    else:
        if weights_fit and max_kv_tokens < min_ctx:
            reasons.append(
                f"the KV cache holds only {max_kv_tokens} tokens ({_gib(kv_free)} per GPU), less "
                f"than a useful context of {min_ctx}"
            )
        chosen = limit if limit >= min_ctx else min_ctx

    fits = not reasons
    concurrency_full = max_kv_tokens // chosen if chosen else 0
    concurrency_4k = max_kv_tokens // min(TYPICAL_CONTEXT, chosen) if chosen else 0
    if fits and concurrency_4k < max_num_seqs:
        notes.append(
            f"only {concurrency_4k} requests of {min(TYPICAL_CONTEXT, chosen)} tokens fit in the KV "
            f"cache at once (max_num_seqs {max_num_seqs}); more queue or get preempted"
        )
    if fits and cpu is False and fmt == "fp8" and model.checkpoint_quantization != "fp8":
        notes.append(
            "fp8 weights are quantized online at load time (native on Ada/Hopper, weight-only "
            "Marlin on Ampere)"
        )

    consumer = is_consumer_gpu(gpu_name)
    if cpu:
        args = ["--max-model-len", str(chosen), "--max-num-seqs", str(max_num_seqs), "--dtype", dtype]
        if kv_dtype != "auto":
            args += ["--kv-cache-dtype", kv_dtype]
        args += ["--enable-prefix-caching", "--enable-chunked-prefill"]
        env = {"VLLM_CPU_KVCACHE_SPACE": str(cpu_kv_cache_gib)}
    else:
        args = [
            "--tensor-parallel-size",
            str(tp),
            "--max-model-len",
            str(chosen),
            "--gpu-memory-utilization",
            f"{gpu_memory_utilization:g}",
            "--max-num-seqs",
            str(max_num_seqs),
            "--dtype",
            dtype,
        ]
        if fmt == "fp8" and model.checkpoint_quantization != "fp8":
            args += ["--quantization", "fp8"]
        args += ["--kv-cache-dtype", kv_dtype, "--enable-prefix-caching", "--enable-chunked-prefill"]
        env = {}
        if consumer and tp > 1:
            args.append("--disable-custom-all-reduce")
            env["NCCL_P2P_DISABLE"] = "1"
            notes.append(
                "consumer GPUs without NVLink: custom all-reduce off and NCCL peer-to-peer disabled "
                "(multi-RTX-4090 tensor parallel otherwise hangs)"
            )

    return Plan(
        model=model.name,
        hf_id=model.hf_id,
        source=source,
        cpu=cpu,
        gpu_count=gpu_count,
        gpu_mem_gib=float(gpu_mem_gib) if not cpu else 0.0,
        gpu_name=gpu_name,
        quantization=quant,
        weight_format=fmt,
        dtype=dtype,
        kv_cache_dtype=kv_dtype,
        gpu_memory_utilization=gpu_memory_utilization,
        tensor_parallel_size=tp,
        max_num_seqs=max_num_seqs,
        weight_bytes=total_weights,
        weight_bytes_per_gpu=weights_per_gpu,
        kv_bytes_per_token=kv_tok_total,
        kv_bytes_per_token_per_gpu=kv_tok_gpu,
        usable_bytes_per_gpu=usable,
        reserve_bytes_per_gpu=reserve,
        kv_cache_bytes_per_gpu=kv_free,
        max_kv_tokens=max_kv_tokens,
        max_model_len_limit=limit,
        max_model_len=chosen,
        max_position_embeddings=max_pos,
        concurrency_full_context=concurrency_full,
        concurrency_4k=concurrency_4k,
        fits=fits,
        reasons=reasons,
        notes=notes,
        vllm_args=args,
        env=env,
    )


def _suggest(model: ModelSpec, base: Plan, kwargs: dict[str, Any]) -> list[str]:
    """Alternatives that fit: KV in fp8, lighter weights, shorter context, more or bigger GPUs."""
    out: list[str] = []

    def attempt(**change: Any) -> Plan | None:
        try:
            p = _compute(model, **{**kwargs, **change})
        except LlmrackError:
            return None
        return p if p.fits else None

    def ctx(p: Plan) -> str:
        typical = min(TYPICAL_CONTEXT, p.max_model_len)
        return (
            f"max-model-len up to {p.max_model_len_limit}, "
            f"{p.concurrency_4k} concurrent {typical}-token requests"
        )

    if base.cpu:
        needed = kwargs["max_model_len"] or min(MIN_USEFUL_CONTEXT, model.max_position_embeddings)
        gib = math.ceil(needed * base.kv_bytes_per_token_per_gpu / GIB)
        out.append(f"cpu_kv_cache_gib >= {gib} (VLLM_CPU_KVCACHE_SPACE) for {needed} tokens")
        if kwargs["max_model_len"] and base.max_model_len_limit:
            out.append(f"max_model_len <= {base.max_model_len_limit}")
        return out

    weights_fit = base.kv_cache_bytes_per_gpu > 0
    asked = kwargs["max_model_len"]
    if (
        weights_fit
        and asked
        and base.max_model_len_limit >= min(MIN_USEFUL_CONTEXT, model.max_position_embeddings)
    ):
        out.append(
            f"lower max_model_len to <= {base.max_model_len_limit} ({base.max_kv_tokens} tokens of KV cache)"
        )
    if kwargs["tensor_parallel_size"] is not None and (p := attempt(tensor_parallel_size=None)):
        out.append(f"tensor_parallel_size {p.tensor_parallel_size}: {ctx(p)}")
    if base.kv_cache_dtype == "auto" and weights_fit and (p := attempt(kv_cache_dtype="fp8")):
        out.append(f"kv_cache_dtype fp8 (twice the tokens per GiB): {ctx(p)}")
    current = QUANT_BYTES[base.weight_format]
    for q, label in (("fp8", "fp8 (online, --quantization fp8)"), ("awq", "AWQ/GPTQ int4 checkpoint")):
        if QUANT_BYTES[q] >= current:
            continue
        p = attempt(quantization=q, tensor_parallel_size=None)
        if p is None and base.kv_cache_dtype == "auto":
            p = attempt(quantization=q, tensor_parallel_size=None, kv_cache_dtype="fp8")
        if p is not None:
            kv_note = " with kv_cache_dtype fp8" if p.kv_cache_dtype != "auto" else ""
            out.append(
                f"quantize to {label}{kv_note}: {_gib(p.weight_bytes)} of weights, TP "
                f"{p.tensor_parallel_size}, {ctx(p)}"
            )
    for n in (2, 4, 8, 16):
        if n > base.gpu_count and (p := attempt(gpu_count=n, tensor_parallel_size=None)):
            out.append(
                f"{n} x {base.gpu_mem_gib:g} GiB GPUs at {base.weight_format} (TP {p.tensor_parallel_size}): "
                f"{ctx(p)}"
            )
            break
    # Smallest GPU (same count and TP) that holds the weights and one request of the wanted length.
    want = asked or min(MIN_USEFUL_CONTEXT, model.max_position_embeddings)
    want = min(want, model.max_position_embeddings)
    need = (
        base.weight_bytes_per_gpu + base.reserve_bytes_per_gpu + want * base.kv_bytes_per_token_per_gpu
    ) / base.gpu_memory_utilization
    out.append(
        f"GPUs of >= {math.ceil(need / GIB)} GiB each at TP {base.tensor_parallel_size} "
        f"({base.weight_format}, {want} tokens)"
    )
    return out


def plan(
    model: ModelSpec,
    *,
    gpu_count: int,
    gpu_mem_gib: float,
    gpu_name: str = "",
    quantization: str = "bf16",
    kv_cache_dtype: str = "auto",
    gpu_memory_utilization: float = 0.90,
    max_model_len: int | None = None,
    tensor_parallel_size: int | None = None,
    max_num_seqs: int = 64,
    cpu_kv_cache_gib: int = 1,
    source: str = "",
) -> Plan:
    """Size ``model`` on ``gpu_count`` GPUs of ``gpu_mem_gib`` GiB (0 GPUs: vLLM on CPU).

    Raises LlmrackError for bad input (field names the argument) and PlanError (field
    "tensor_parallel_size") for an impossible TP size. A model that does not fit is not an error
    here: the Plan says ``fits=False`` with reasons and suggestions; call ``require_fit()`` to raise.
    """
    kwargs: dict[str, Any] = dict(
        gpu_count=gpu_count,
        gpu_mem_gib=gpu_mem_gib,
        gpu_name=gpu_name,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        tensor_parallel_size=tensor_parallel_size,
        max_num_seqs=max_num_seqs,
        cpu_kv_cache_gib=cpu_kv_cache_gib,
        source=source,
    )
    result = _compute(model, **kwargs)
    if result.fits:
        return result
    return result.model_copy(update={"suggestions": _suggest(model, result, kwargs)})
