"""Decode roofline: the fastest one stream can generate when every token reads the weights once.

At batch 1 each generated token streams every weight a GPU holds (its TP share, all GPUs in parallel) and
the KV cache of the context so far through the memory bus once; the arithmetic is negligible beside it.
The upper bound is therefore ``memory bandwidth / bytes read per token per GPU``. MoE models read only
the experts a token is routed to (active parameters). Real engines reach 50-80 % of it at batch 1
(kernel launch gaps, sampling, TP all-reduce); a measured speed far below says the host is misconfigured.
"""

from __future__ import annotations

import math

from llmrack.catalogue.gpus import find_gpu
from llmrack.planner.budget import Plan
from llmrack.planner.spec import ModelSpec


def bytes_per_token(plan: Plan, model: ModelSpec, context_tokens: int = 0) -> int:
    """Bytes one GPU reads to decode one token at batch 1 with ``context_tokens`` already in the KV cache."""
    weights = plan.weight_bytes_per_gpu
    if model.active_params and model.params:
        weights = math.ceil(weights * model.active_params / model.params)
    return weights + context_tokens * plan.kv_bytes_per_token_per_gpu


def decode_roofline(plan: Plan, model: ModelSpec, *, bandwidth_gbs: float | None = None,
                    context_tokens: int = 0) -> dict[str, float | int | str] | None:
    """Roofline tokens/s of one stream on the plan's GPUs (None: CPU plan or unknown GPU bandwidth)."""
    if plan.cpu:
        return None
    gpu = find_gpu(plan.gpu_name)
    bw = bandwidth_gbs or (gpu.bandwidth_gbs if gpu else None)
    if not bw:
        return None
    per_token = bytes_per_token(plan, model, context_tokens)
    return {
        "gpu": gpu.name if gpu else plan.gpu_name,
        "bandwidth_gbs": bw,
        "bytes_per_token_per_gpu": per_token,
        "context_tokens": context_tokens,
        "tokens_per_s": round(bw * 1e9 / per_token, 1),
    }
