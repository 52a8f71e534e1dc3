"""The memory budget per GPU: bytes of weights and KV cache, TP rules, the reserve, and the Plan result."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmrack.errors import LlmrackError, PlanError
from llmrack.planner.spec import (
    _QUANT_ALIASES,
    CONSUMER_GPU_MARKERS,
    GIB,
    INT4_GROUP_SIZE,
    KV_CACHE_DTYPES,
    QUANT_BYTES,
    QUANTIZATIONS,
    ModelSpec,
)


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

