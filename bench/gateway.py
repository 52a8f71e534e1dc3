"""Gateway overhead: TTFT and tokens/s direct to vLLM vs through the gateway, in the same run.

    python bench/gateway.py --gateway https://HOST:8443 --key sk-llmrack-... \
        --direct http://VLLM:8000 --backend-key KEY --model llmrack-tiny [--requests 32] [--max-tokens 64]

For each of 1 and 16 concurrent streams it runs the same bounded number of streamed completions against
each target, alternating which target goes first in rounds, and prints p50/p90 TTFT, aggregate tokens/s and
the gateway/direct ratios. Clients keep their connections alive, as OpenAI SDK clients do: each target's
connections are opened (TLS included) before timing starts, so TTFT is the request's, not the handshake's.
Prompts differ per request (no prefix-cache hit makes one target look faster). Bounded in count
(--requests per target and level) and time (--deadline seconds for the whole run).

The direct vLLM port is reachable only from inside the host's backend network (run there, or through an
SSH tunnel such as ``ssh -L 18000:172.31.250.100:8000 HOST``); its key is the cluster backend key in
.llmrack/secrets/cluster/backend_api_key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx

LEVELS = (1, 16)


async def one_stream(client: httpx.AsyncClient, url: str, key: str, model: str, prompt: str,
                     max_tokens: int) -> tuple[float, int]:
    """(TTFT s, content chunks) of one streamed completion."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "stream": True}
    t0 = time.monotonic()
    first, chunks = None, 0
    async with client.stream("POST", f"{url}/v1/completions", json=body,
                             headers={"Authorization": f"Bearer {key}"}) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            if json.loads(line[5:]).get("choices"):
                chunks += 1
                first = first if first is not None else time.monotonic() - t0
    return (first if first is not None else float("nan")), chunks


async def run_level(client: httpx.AsyncClient, url: str, key: str, model: str, concurrency: int, n: int,
                    max_tokens: int, tag: str, deadline: float) -> dict[str, float]:
    sem = asyncio.Semaphore(concurrency)

    async def bounded(i: int) -> tuple[float, int]:
        async with sem:
            return await one_stream(client, url, key, model, f"{tag} request {i}: def main():", max_tokens)

    t0 = time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(*(bounded(i) for i in range(n))),
                                     timeout=max(1.0, deadline - time.monotonic()))
    wall = time.monotonic() - t0
    ttfts = sorted(r[0] * 1000 for r in results)
    return {"n": len(results), "ttft_p50_ms": statistics.median(ttfts),
            "ttft_p90_ms": ttfts[min(len(ttfts) - 1, int(0.9 * len(ttfts)))],
            "tokens_per_s": sum(r[1] for r in results) / wall}


async def warm(client: httpx.AsyncClient, url: str, key: str, model: str, concurrency: int) -> None:
    """Open ``concurrency`` kept-alive connections (TLS handshakes done) before anything is timed."""
    await asyncio.gather(*(one_stream(client, url, key, model, f"warm {i}", 2) for i in range(concurrency)))


async def main_async(a: argparse.Namespace) -> int:
    deadline = time.monotonic() + a.deadline
    targets = {"direct": (a.direct.rstrip("/"), a.backend_key), "gateway": (a.gateway.rstrip("/"), a.key)}
    limits = httpx.Limits(max_connections=max(LEVELS), max_keepalive_connections=max(LEVELS), keepalive_expiry=3)
    clients = {name: httpx.AsyncClient(verify=False, timeout=120, limits=limits) for name in targets}
    print(f"{'streams':>7} {'target':>8} {'n':>4} {'TTFT p50 ms':>12} {'TTFT p90 ms':>12} {'tokens/s':>9}")
    try:
        for level in LEVELS:
            res: dict[str, list[dict[str, float]]] = {"direct": [], "gateway": []}
            rounds = 2
            for r in range(rounds):  # alternate which target goes first
                order = ["direct", "gateway"] if r % 2 == 0 else ["gateway", "direct"]
                for name in order:
                    url, key = targets[name]
                    await warm(clients[name], url, key, a.model, level)
                    res[name].append(await run_level(clients[name], url, key, a.model, level,
                                                     max(1, a.requests // rounds), a.max_tokens,
                                                     f"{name}-{level}-{r}", deadline))
            summary = {}
            for name in ("direct", "gateway"):
                runs = res[name]
                summary[name] = {
                    "n": sum(x["n"] for x in runs),
                    "ttft_p50_ms": statistics.median(x["ttft_p50_ms"] for x in runs),
                    "ttft_p90_ms": max(x["ttft_p90_ms"] for x in runs),
                    "tokens_per_s": statistics.mean(x["tokens_per_s"] for x in runs),
                }
                s = summary[name]
                print(f"{level:>7} {name:>8} {s['n']:>4} {s['ttft_p50_ms']:>12.1f} {s['ttft_p90_ms']:>12.1f} "
                      f"{s['tokens_per_s']:>9.1f}")
            d, g = summary["direct"], summary["gateway"]
            print(f"{level:>7} {'ratio':>8}      TTFT p50 gateway/direct {g['ttft_p50_ms'] / d['ttft_p50_ms']:.3f}"
                  f"  tokens/s gateway/direct {g['tokens_per_s'] / d['tokens_per_s']:.3f}")
    finally:
        for c in clients.values():
            await c.aclose()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--direct", required=True)
    ap.add_argument("--backend-key", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--requests", type=int, default=32, help="streams per target and level (split in 2 rounds)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--deadline", type=float, default=600, help="seconds for the whole benchmark")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
