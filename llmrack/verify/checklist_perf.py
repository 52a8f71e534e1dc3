"""Seed 000's own performance line, "7B on one GPU > 50 tokens/s", measured beside the planner's roofline.

The roofline (``llmrack.verify.checks_performance.roofline_of``) is the expectation printed next to the
measurement, never the judge: the line passes on the measured tokens/s alone.
"""

from __future__ import annotations

from llmrack import bench
from llmrack.planner.roofline import decode_roofline
from llmrack.verify.checks_performance import _perf_guard, roofline_text, served_plans
from llmrack.verify.context import CheckContext
from llmrack.verify.result import Outcome, bad, check, judge, not_applicable

SEED_7B_PARAMS = (6.0e9, 9.0e9)  # DeepSeek-7B class: 6.7-8.5 B parameters (deepseek-llm-7b, Qwen2.5-7B, Llama-3-8B)


@check("perf.seed_7b", "A 7B model on one GPU: single-stream tokens/s", "performance",
       "单GPU推理吞吐（DeepSeek-7B，tokens/sec>50）", "Single-GPU inference throughput (7B model, tokens/s > 50)")
def perf_seed_7b(ctx: CheckContext) -> Outcome:
    acc = ctx.profile.acceptance
    want = acc.seed_7b_tokens_per_s_min
    threshold = f">= {want:g} tokens/s (7B, 1 GPU)"
    if not ctx.gpu_tier:
        return not_applicable("the tier has no GPUs: the line is about one GPU", threshold)
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    lo, hi = SEED_7B_PARAMS
    found = [(m, spec, plan) for m, spec, plan in served_plans(ctx)
             if lo <= spec.params <= hi and plan.tensor_parallel_size == 1]
    if not found:
        return bad("no 7B-class model served on one GPU: add one (e.g. deepseek-ai/deepseek-llm-7b-chat) to "
                   "stack.models with gpus: [0] and tensor_parallel_size: 1 for the acceptance run", None, threshold)
    m, spec, plan = found[0]
    res = bench.run_bench(ctx.gateway_url(), ctx.api_key or "", model=m.public_name, concurrency_levels=[1],
                          requests_per_level=acc.bench_single_requests, max_tokens=acc.bench_max_tokens,
                          timeout_s=acc.bench_level_timeout_s, log=ctx.log, ca=ctx.gateway_ca)
    tps = res.get("single_stream_tokens_per_s")
    if tps is None:
        return bad(f"no successful request to {m.public_name}", None, threshold)
    roof = decode_roofline(plan, spec, context_tokens=acc.bench_max_tokens)
    return judge(tps >= want, f"{m.public_name} ({spec.params / 1e9:.1f} B, {plan.weight_format}): {tps:.1f} tokens/s"
                 + roofline_text(tps, roof), round(tps, 2), threshold, roofline=roof)
