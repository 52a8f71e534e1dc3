"""One sizing pass: the vLLM start-up budget of one model on one GPU set, and the arguments it needs."""

from __future__ import annotations

import math

from llmrack.errors import LlmrackError, PlanError
from llmrack.planner.budget import (
    Plan,
    _activation_bytes,
    _choose_tp,
    _gib,
    _normalize_quant,
    _prefill_chunk_tokens,
    _validate_inputs,
    _weight_format,
    check_tensor_parallel,
    is_consumer_gpu,
    kv_bytes_per_token,
    weight_bytes,
)
from llmrack.planner.spec import (
    GIB,
    KV_BLOCK_TOKENS,
    MIN_USEFUL_CONTEXT,
    RUNTIME_RESERVE_GIB,
    TP_RESERVE_GIB,
    TYPICAL_CONTEXT,
    ModelSpec,
)


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

