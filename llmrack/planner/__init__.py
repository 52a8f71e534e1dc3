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

import math
from typing import Any

from llmrack.catalogue import catalogue_names
from llmrack.errors import LlmrackError
from llmrack.planner.budget import Plan, _gib, check_tensor_parallel, is_consumer_gpu, kv_bytes_per_token, weight_bytes
from llmrack.planner.compute import _compute
from llmrack.planner.load import _spec_from_config, load_model_spec
from llmrack.planner.spec import GIB, MIN_USEFUL_CONTEXT, QUANT_BYTES, TYPICAL_CONTEXT, ModelSpec

__all__ = [
    "GIB",
    "QUANT_BYTES",
    "ModelSpec",
    "Plan",
    "_spec_from_config",
    "catalogue_names",
    "check_tensor_parallel",
    "is_consumer_gpu",
    "kv_bytes_per_token",
    "load_model_spec",
    "plan",
    "weight_bytes",
]


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
