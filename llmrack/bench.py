"""Load driver for an OpenAI-compatible endpoint (vLLM behind the gateway).

Streamed chat completions at a few concurrency levels, bounded in request count and in time:

* TTFT  = time from sending the request to the first chunk carrying content;
* TPOT  = (end-to-end - TTFT) / (completion tokens - 1);
* tokens come from the final usage chunk (``stream_options.include_usage``), else from the chunk count.

Every level stops starting requests when its time limit is reached; requests still running then are
cancelled and counted as failures ("level time limit"). The result is a JSON-able dict.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from llmrack import httpclient as hc
from llmrack.progress import Step

PROMPTS = (
    "Explain in a few sentences what a GPU server does for a small company.",
    "Write a short note to colleagues about the new internal chat assistant.",
    "List three things to check before signing off a new server.",
    "Summarise why monitoring matters for an on-premises language model service.",
    "Describe how a reverse proxy protects a backend service.",
    "Give two tips for writing clear documentation for operations teams.",
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def summarize(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/mean/max of a list (None for all of them when empty)."""
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": (sum(values) / len(values)) if values else None,
        "max": max(values) if values else None,
    }


def chat_url(base_url: str) -> str:
    """``https://h:8443`` or ``https://h:8443/v1`` -> ``https://h:8443/v1/chat/completions``."""
    base = base_url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


async def _one_request(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    start = time.perf_counter()
    ttft: float | None = None
    chunks = 0
    usage_tokens: int | None = None
    try:
        async with client.stream("POST", url, headers=headers, json=body) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode("utf-8", "replace")[:200]
                return {"ok": False, "error": f"HTTP {resp.status_code}: {text.strip()}",
                        "e2e_ms": (time.perf_counter() - start) * 1000}
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    event = json.loads(data)
                except json.JSONDecodeError:
                    continue
                if event.get("error"):
                    return {"ok": False, "error": f"stream error: {event['error']}",
                            "e2e_ms": (time.perf_counter() - start) * 1000}
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content") or delta.get("reasoning_content"):
                        chunks += 1
                        if ttft is None:
                            ttft = time.perf_counter() - start
                usage = event.get("usage")
                if usage and usage.get("completion_tokens") is not None:
                    usage_tokens = int(usage["completion_tokens"])
    except httpx.HTTPError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200],
                "e2e_ms": (time.perf_counter() - start) * 1000}
    e2e = time.perf_counter() - start
    tokens = usage_tokens if usage_tokens is not None else chunks
    if ttft is None or tokens < 1:
        return {"ok": False, "error": "no content in the response", "e2e_ms": e2e * 1000}
    tpot = (e2e - ttft) / (tokens - 1) if tokens > 1 else None
    return {
        "ok": True, "ttft_ms": ttft * 1000, "e2e_ms": e2e * 1000,
        "tpot_ms": tpot * 1000 if tpot is not None else None, "tokens": tokens,
        "tokens_per_s": tokens / e2e if e2e > 0 else None,
    }


async def _run_level(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], *, model: str, concurrency: int,
    requests: int, max_tokens: int, time_limit_s: float, ignore_eos: bool, step: Step | None = None,
) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    what = f"concurrency {concurrency}"

    def record(sample: dict[str, Any]) -> None:
        samples.append(sample)
        if step:
            step(what, len(samples), requests)

    counter = iter(range(requests))
    deadline = time.perf_counter() + time_limit_s

    def body(i: int) -> dict[str, Any]:
        b: dict[str, Any] = {
            "model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0.0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": f"{PROMPTS[i % len(PROMPTS)]} (request {i})"}],
        }
        if ignore_eos:
            b["ignore_eos"] = True  # vLLM extension: generate exactly max_tokens
        return b

    async def worker() -> None:
        for i in counter:
            if time.perf_counter() >= deadline:
                record({"ok": False, "error": "level time limit reached before start", "e2e_ms": 0.0})
                continue
            record(await _one_request(client, url, headers, body(i)))

    start = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(min(concurrency, requests))]
    _done, pending = await asyncio.wait(tasks, timeout=time_limit_s)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    duration = time.perf_counter() - start
    missing = requests - len(samples)
    samples.extend({"ok": False, "error": "level time limit reached", "e2e_ms": time_limit_s * 1000}
                   for _ in range(missing))
    ok = [s for s in samples if s["ok"]]
    out_tokens = sum(s["tokens"] for s in ok)
    errors = Counter(s["error"] for s in samples if not s["ok"])
    return {
        "concurrency": concurrency,
        "requests": requests,
        "ok": len(ok),
        "failed": requests - len(ok),
        "success_rate": len(ok) / requests if requests else 0.0,
        "duration_s": duration,
        "output_tokens": out_tokens,
        "throughput_tokens_per_s": out_tokens / duration if duration > 0 else 0.0,
        "requests_per_s": len(ok) / duration if duration > 0 else 0.0,
        "ttft_ms": summarize([s["ttft_ms"] for s in ok]),
        "tpot_ms": summarize([s["tpot_ms"] for s in ok if s.get("tpot_ms") is not None]),
        "e2e_ms": summarize([s["e2e_ms"] for s in ok]),
        "stream_tokens_per_s": summarize([s["tokens_per_s"] for s in ok if s.get("tokens_per_s")]),
        "errors": dict(errors.most_common(5)),
        "samples": [{k: s.get(k) for k in ("ok", "ttft_ms", "tpot_ms", "e2e_ms", "tokens")} for s in samples],
    }


async def run_bench_async(
    base_url: str, api_key: str, *, model: str, concurrency_levels: Sequence[int], requests_per_level: int,
    max_tokens: int, timeout_s: float, ca: hc.CaFile = None, ignore_eos: bool = True,
    request_timeout_s: float | None = None, log: Callable[[str], Any] | None = None, step: Step | None = None,
) -> dict[str, Any]:
    url = chat_url(base_url)
    headers = hc.bearer(api_key)
    levels = sorted({int(c) for c in concurrency_levels if int(c) >= 1})
    per_request = request_timeout_s or timeout_s
    limits = httpx.Limits(max_connections=max(levels or [1]) + 4, max_keepalive_connections=max(levels or [1]))
    timeout = httpx.Timeout(per_request, connect=min(10.0, per_request))
    results = []
    started = time.time()
    async with hc.async_client(ca, timeout=timeout, limits=limits) as client:
        for c in levels:
            if log:
                log(f"bench: {requests_per_level} requests at concurrency {c} ({url})")
            results.append(await _run_level(
                client, url, headers, model=model, concurrency=c, requests=requests_per_level,
                max_tokens=max_tokens, time_limit_s=timeout_s, ignore_eos=ignore_eos, step=step,
            ))
            if log:
                r = results[-1]
                log(f"bench: concurrency {c}: {r['ok']}/{r['requests']} succeeded in {r['duration_s']:.1f} s, "
                    f"{r['throughput_tokens_per_s']:.1f} tokens/s")
    single = next((r for r in results if r["concurrency"] == 1), None)
    return {
        "tool": "llmrack.bench",
        "url": url,
        "model": model,
        "max_tokens": max_tokens,
        "requests_per_level": requests_per_level,
        "level_time_limit_s": timeout_s,
        "started_at": started,
        "levels": results,
        "single_stream_tokens_per_s": (single["stream_tokens_per_s"]["p50"] if single else None),
    }


def run_bench(
    base_url: str, api_key: str, *, model: str, concurrency_levels: Sequence[int], requests_per_level: int,
    max_tokens: int, timeout_s: float, ca: hc.CaFile = None, ignore_eos: bool = True,
    log: Callable[[str], Any] | None = None, step: Step | None = None,
) -> dict[str, Any]:
    """Drive ``base_url`` (``https://host:port`` or ``…/v1``) and return per-level latency and throughput.

    ``timeout_s`` bounds each level (and each request); the whole run takes at most
    ``len(concurrency_levels) * timeout_s`` seconds. ``log`` gets a line as each level starts and ends,
    ``step`` each finished request of the level.
    """
    if requests_per_level < 1:
        raise ValueError("requests_per_level must be at least 1")
    return asyncio.run(run_bench_async(
        base_url, api_key, model=model, concurrency_levels=concurrency_levels,
        requests_per_level=requests_per_level, max_tokens=max_tokens, timeout_s=timeout_s,
        ca=ca, ignore_eos=ignore_eos, log=log, step=step,
    ))


def level(result: dict[str, Any], concurrency: int) -> dict[str, Any] | None:
    """The level of a bench result run at ``concurrency`` (None when it was not run)."""
    return next((lv for lv in result.get("levels", []) if lv["concurrency"] == concurrency), None)
