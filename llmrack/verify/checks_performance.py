"""Performance lines: one benchmark through the gateway (1/4/16/N concurrent) judged by several checks.

Beside a measured tokens/s stands the planner's decode roofline (memory bandwidth / bytes read per token,
``llmrack.planner.roofline``): the expectation printed next to the measurement, never the judge.
"""

from __future__ import annotations

import json
import time
from typing import Any

from llmrack import bench
from llmrack.errors import LlmrackError
from llmrack.models import model_spec_for, plan_for
from llmrack.planner.roofline import decode_roofline
from llmrack.stack.smoke_http import HttpError
from llmrack.stack.smoke_stream import streamed_verdict
from llmrack.verify.checks_rag import per_second
from llmrack.verify.context import (
    CheckContext,
    has_role,
    served_names,
    stack_absent,
)
from llmrack.verify.result import (
    Outcome,
    bad,
    check,
    judge,
    manual,
    not_applicable,
)

# batching gains several times over one stream on any vLLM (the CPU sandbox: about 10x at 20 concurrent); a server
# that takes one request at a time gains nothing, and a few per cent come from overlapping HTTP alone
THROUGHPUT_GAIN_MIN = 1.5


def bench_result(ctx: CheckContext) -> dict[str, Any]:
    """One benchmark per host (levels 1, 4, 16, N), shared by the performance checks."""
    if "bench" in ctx.cache:
        if isinstance(ctx.cache["bench"], Exception):
            raise ctx.cache["bench"]
        return ctx.cache["bench"]
    acc = ctx.profile.acceptance
    model = served_names(ctx.spec)[0]
    levels = sorted({1, 4, 16, acc.concurrency})
    merged: dict[str, Any] | None = None
    try:
        before = 0
        for c in levels:
            n = acc.bench_single_requests if c == 1 else c * acc.bench_requests_per_slot
            # the gateway's per-key bucket refilled from the level before: a 429 would measure the limit
            time.sleep(min(before / per_second(ctx.profile.stack.gateway.rate_limit_per_key), 30.0))
            before = n
            res = bench.run_bench(ctx.gateway_url(), ctx.api_key or "", model=model, concurrency_levels=[c],
                                  requests_per_level=n, max_tokens=acc.bench_max_tokens,
                                  timeout_s=acc.bench_level_timeout_s, log=ctx.log, ca=ctx.gateway_ca)
            if merged is None:
                merged = res
            else:
                merged["levels"].extend(res["levels"])
            if c == 1:
                merged["single_stream_tokens_per_s"] = res["single_stream_tokens_per_s"]
    except Exception as exc:
        ctx.cache["bench"] = exc
        raise
    assert merged is not None
    merged.pop("requests_per_level", None)
    ctx.cache["bench"] = merged
    return merged


def served_plans(ctx: CheckContext) -> list[tuple[Any, Any, Any]]:
    """(model settings, ModelSpec, Plan) of every model the tier serves (models the planner cannot size left out)."""
    project = ctx.inventory.project_dir if ctx.inventory else None
    out = []
    for m in ctx.profile.stack.models:
        try:
            spec = model_spec_for(m, project_dir=project)
            out.append((m, spec, plan_for(ctx.profile, m, project_dir=project)))
        except LlmrackError:
            continue
    return out


def roofline_of(ctx: CheckContext, served_name: str, context_tokens: int = 0) -> dict[str, Any] | None:
    for m, spec, plan in served_plans(ctx):
        if m.public_name == served_name:
            return decode_roofline(plan, spec, context_tokens=context_tokens)
    return None


def roofline_text(tps: float, roof: dict[str, Any] | None) -> str:
    if not roof:
        return ""
    return (f"; {tps / roof['tokens_per_s']:.0%} of the {roof['tokens_per_s']:.0f} tokens/s decode roofline "
            f"({roof['gpu']} {roof['bandwidth_gbs']:g} GB/s / {roof['bytes_per_token_per_gpu'] / 2**30:.2f} GiB "
            "read per token per GPU)")


def _perf_guard(ctx: CheckContext, threshold: Any) -> Outcome | None:
    if not (has_role(ctx, "inference") and has_role(ctx, "gateway")):
        return not_applicable("the host does not serve the API (inference + gateway roles)", threshold)
    if (out := stack_absent(ctx, 'stack', threshold)) is not None:
        return out
    if not ctx.api_key:
        return bad("no API key found for the gateway (.llmrack/secrets/<host>/): cannot benchmark", None, threshold)
    if ctx.gateway_ca_problem:
        return bad(f"cannot check the gateway's certificate: {ctx.gateway_ca_problem}", None, threshold)
    return None


@check("perf.single_stream", "Single-stream generation speed", "performance",
       "单流生成速度（层级模型）", "Single-stream generation speed (the tier's model)", "llmrack")
def perf_single_stream(ctx: CheckContext) -> Outcome:
    want = ctx.profile.acceptance.single_stream_tokens_per_s_min
    early = _perf_guard(ctx, f">= {want} tokens/s")
    if early:
        return early
    res = bench_result(ctx)
    lv = bench.level(res, 1)
    tps = res.get("single_stream_tokens_per_s")
    if not lv or not lv["ok"] or tps is None:
        return bad("no successful request at concurrency 1: " + json.dumps((lv or {}).get("errors", {}))[:300],
                   None, f">= {want} tokens/s")
    model = served_names(ctx.spec)[0]
    roof = roofline_of(ctx, model, res["max_tokens"]) if ctx.gpu_tier else None
    return judge(tps >= want, f"{tps:.1f} tokens/s per stream of {model} (median of {lv['ok']}, {res['max_tokens']} "
                 f"tokens each; TPOT p50 {lv['tpot_ms']['p50'] or 0:.1f} ms){roofline_text(tps, roof)}", round(tps, 2),
                 f">= {want} tokens/s", roofline=roof)


@check("perf.concurrency", "Success rate under N concurrent requests", "performance",
       "并发测试（50并发，成功率>95%）", "Concurrency test (50 concurrent, success rate > 95%)")
def perf_concurrency(ctx: CheckContext) -> Outcome:
    acc = ctx.profile.acceptance
    threshold = f">= {acc.success_rate_min:.0%} at {acc.concurrency} concurrent"
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    lv = bench.level(bench_result(ctx), acc.concurrency)
    assert lv is not None
    rate = lv["success_rate"]
    errs = "; ".join(f"{k} x{v}" for k, v in lv["errors"].items())
    return judge(rate >= acc.success_rate_min, f"{lv['ok']}/{lv['requests']} succeeded at concurrency "
                 f"{acc.concurrency}" + (f" (errors: {errs})" if errs else ""), round(rate, 4), threshold)


@check("perf.ttft", "Time to first token p99 under load", "performance",
       "首字延迟 TTFT P50/P95/P99（N 并发）", "Time to first token p50/p95/p99 (N concurrent)", "llmrack")
def perf_ttft(ctx: CheckContext) -> Outcome:
    return _latency(ctx, "ttft_ms", ctx.profile.acceptance.ttft_p99_ms_max, "TTFT")


@check("perf.tpot", "Time per output token p99 under load", "performance",
       "每 token 延迟 TPOT P50/P95/P99（N 并发）", "Time per output token p50/p95/p99 (N concurrent)", "llmrack")
def perf_tpot(ctx: CheckContext) -> Outcome:
    return _latency(ctx, "tpot_ms", ctx.profile.acceptance.tpot_p99_ms_max, "TPOT")


def _latency(ctx: CheckContext, key: str, limit: float, label: str) -> Outcome:
    acc = ctx.profile.acceptance
    threshold = f"p99 <= {limit:g} ms at {acc.concurrency} concurrent"
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    res = bench_result(ctx)
    lv = bench.level(res, acc.concurrency)
    assert lv is not None
    stats = lv[key]
    if stats["p99"] is None:
        return bad(f"no successful request at concurrency {acc.concurrency} to measure {label}", None, threshold)
    per_level = {str(x["concurrency"]): {k: (round(v, 1) if v is not None else None)
                                         for k, v in x[key].items() if k in ("p50", "p95", "p99")}
                 for x in res["levels"]}
    return judge(stats["p99"] <= limit, f"{label} at concurrency {acc.concurrency}: p50 {stats['p50']:.0f} ms, "
                 f"p95 {stats['p95']:.0f} ms, p99 {stats['p99']:.0f} ms", per_level, threshold)


@check("perf.throughput", "Aggregate throughput grows with concurrency", "performance",
       "吞吐随并发增长（1/4/16/N 并发）", "Throughput vs concurrency (1/4/16/N)", "llmrack")
def perf_throughput(ctx: CheckContext) -> Outcome:
    threshold = f"tokens/s at N >= {THROUGHPUT_GAIN_MIN:g} x tokens/s at 1"
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    res = bench_result(ctx)
    curve = {str(x["concurrency"]): round(x["throughput_tokens_per_s"], 1) for x in res["levels"]}
    first, last = res["levels"][0], res["levels"][-1]
    good = last["throughput_tokens_per_s"] >= THROUGHPUT_GAIN_MIN * first["throughput_tokens_per_s"] > 0
    return judge(good, "aggregate tokens/s by concurrency: " + ", ".join(f"{k}: {v}" for k, v in curve.items())
                 + ("" if good else " (no gain from batching: check vLLM's max_num_seqs and the gateway limits)"),
                 curve, threshold)


@check("perf.multi_gpu", "Multi-GPU scaling", "performance",
       "多GPU扩展效率（4× GPU > 3× 单GPU性能）", "Multi-GPU scaling (4x GPU > 3x single-GPU performance)")
def perf_multi_gpu(ctx: CheckContext) -> Outcome:
    acc = ctx.profile.acceptance
    n = ctx.profile.hardware.gpu.count
    threshold = f">= {acc.multi_gpu_scaling_min:.2f} x {n} x single GPU"
    if n < 2:
        return not_applicable(f"the tier has {n} GPU(s): no multi-GPU scaling to measure" if n else
                              "the tier has no GPUs", threshold)
    if not acc.single_gpu_tokens_per_s:
        return manual("no single-GPU reference to compare with (acceptance.single_gpu_tokens_per_s is unset)",
                      "serve the model on one GPU, run `llmrack bench` against it, set acceptance."
                      "single_gpu_tokens_per_s to its aggregate tokens/s and verify again", threshold)
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    lv = bench.level(bench_result(ctx), acc.concurrency)
    assert lv is not None
    ratio = lv["throughput_tokens_per_s"] / (n * acc.single_gpu_tokens_per_s)
    return judge(ratio >= acc.multi_gpu_scaling_min, f"{lv['throughput_tokens_per_s']:.0f} tokens/s on {n} GPUs = "
                 f"{ratio:.2f} x {n} x {acc.single_gpu_tokens_per_s:g}", round(ratio, 3), threshold)


@check("perf.streaming", "Tokens stream through the gateway as they are generated", "performance",
       "流式输出逐块到达（首块早于生成结束）", "Streaming: chunks arrive as generated (first chunk before the end)",
       "llmrack")
def perf_streaming(ctx: CheckContext) -> Outcome:
    threshold = "first chunk in the first half of the stream"
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    try:
        passed, seen, timing = streamed_verdict(ctx.gateway_url() + "/v1/completions", served_names(ctx.spec)[0],
                                                api_key=ctx.api_key, ca=ctx.gateway_ca,
                                                timeout=ctx.profile.acceptance.bench_level_timeout_s)
    except (HttpError, OSError, AssertionError) as exc:
        return bad(f"no streamed completion through the gateway: {type(exc).__name__}: {exc}", None, threshold)
    value = {"chunks": timing.events, "arrivals": timing.arrivals,
             "first_ms": round((timing.first - timing.start) * 1000, 1),
             "end_ms": round((timing.end - timing.start) * 1000, 1)}
    return judge(passed, seen, value, threshold)
