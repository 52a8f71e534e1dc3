"""Gateway overhead: TTFT and tokens/s direct to vLLM vs through the gateway, in the same run.

    python bench/gateway.py --gateway https://HOST:8443 --key sk-llmrack-... \
        --direct http://VLLM:8000 --backend-key KEY --model llmrack-tiny [--requests 32] [--max-tokens 64]

For each of 1 and 16 concurrent streams it runs the same bounded number of streamed completions against
each target in batches of that many streams, alternating between the targets batch by batch (and which
goes first), and prints p50/p90 TTFT, aggregate tokens/s and
the gateway/direct ratios. Clients keep their connections alive, as OpenAI SDK clients do: each target's
connections are opened (TLS included) before timing starts, so TTFT is the request's, not the handshake's.
Prompts differ per request (no prefix-cache hit makes one target look faster). Bounded in count
(--requests per target and level) and time (--deadline seconds for the whole run).

The direct vLLM port is reachable only from inside the host's backend network. The fair comparison runs
the client there, so both paths start at the same place and differ only by the gateway hop, e.g. on the
host with the vLLM image (it carries httpx):

    docker run --rm --network llmrack_backend -e LLMRACK_BENCH_KEY -e LLMRACK_BENCH_BACKEND_KEY \
        -v $PWD/gateway.py:/bench.py:ro -v $PWD/gateway-ca.crt:/ca.crt:ro --entrypoint python3 IMAGE /bench.py \
        --gateway https://172.31.250.10:443 --ca /ca.crt --tls-name HOST-ADDRESS \
        --direct http://172.31.250.100:8000 --model llmrack-tiny

(an SSH tunnel, ``ssh -L 18000:172.31.250.100:8000 HOST``, also works but adds its own hop to the direct
path). The backend key is the cluster's, in .llmrack/secrets/cluster/backend_api_key.

On a CPU-only host vLLM takes every core under load and its TTFT then swings far more than the gateway
adds; give the engine its own cores first, e.g. on two cores ``docker update --cpuset-cpus 1`` for the vLLM
container, ``--cpuset-cpus 0`` for the gateway container and ``docker run --cpuset-cpus 0`` for the client
(undo with the full core list afterwards). A GPU host needs none of this.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import time
from pathlib import Path

import httpx

LEVELS = (1, 16)


TLS_NAME: dict[str, str] = {}  # url -> the name its certificate is checked for (--tls-name)


async def one_stream(client: httpx.AsyncClient, url: str, key: str, model: str, prompt: str,
                     max_tokens: int) -> tuple[float, int]:
    """(TTFT s, content chunks) of one streamed completion."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "stream": True}
    t0 = time.monotonic()
    first, chunks = None, 0
    ext = {"sni_hostname": TLS_NAME[url]} if url in TLS_NAME else None
    async with client.stream("POST", f"{url}/v1/completions", json=body, extensions=ext,
                             headers={"Authorization": f"Bearer {key}"}) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            if json.loads(line[5:]).get("choices"):
                chunks += 1
                first = first if first is not None else time.monotonic() - t0
    return (first if first is not None else float("nan")), chunks


async def run_batch(client: httpx.AsyncClient, url: str, key: str, model: str, concurrency: int,
                    max_tokens: int, tag: str, deadline: float) -> tuple[list[float], int, float]:
    """``concurrency`` streams at once: (TTFTs ms, content chunks, wall s)."""
    t0 = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(*(one_stream(client, url, key, model, f"{tag}.{i}: def main():", max_tokens)
                         for i in range(concurrency))),
        timeout=max(1.0, deadline - time.monotonic()))
    return [r[0] * 1000 for r in results], sum(r[1] for r in results), time.monotonic() - t0


async def warm(client: httpx.AsyncClient, url: str, key: str, model: str, concurrency: int) -> None:
    """Open ``concurrency`` kept-alive connections (TLS handshakes done) before anything is timed."""
    await asyncio.gather(*(one_stream(client, url, key, model, f"warm {i}", 2) for i in range(concurrency)))


async def main_async(a: argparse.Namespace) -> int:
    deadline = time.monotonic() + a.deadline
    targets = {"direct": (a.direct.rstrip("/"), a.backend_key), "gateway": (a.gateway.rstrip("/"), a.key)}
    limits = httpx.Limits(max_connections=max(LEVELS), max_keepalive_connections=max(LEVELS), keepalive_expiry=3)
    tls = ssl.create_default_context(cafile=a.ca)  # the gateway's certificate is checked, always
    if a.tls_name:
        TLS_NAME[targets["gateway"][0]] = a.tls_name
    clients = {name: httpx.AsyncClient(verify=tls, timeout=120, limits=limits, trust_env=False) for name in targets}
    print(f"{'streams':>7} {'target':>8} {'n':>4} {'TTFT p50 ms':>12} {'TTFT p90 ms':>12} {'tokens/s':>9}")
    try:
        for level in LEVELS:
            await asyncio.gather(*(warm(clients[n], *targets[n], a.model, level) for n in targets))
            ttfts: dict[str, list[float]] = {"direct": [], "gateway": []}
            chunks = {"direct": 0, "gateway": 0}
            wall = {"direct": 0.0, "gateway": 0.0}
            rounds = max(2, a.requests // level)
            for r in range(rounds):  # batches alternate between the targets, and so does which goes first
                for name in (["direct", "gateway"] if r % 2 == 0 else ["gateway", "direct"]):
                    url, key = targets[name]
                    t, c, w = await run_batch(clients[name], url, key, a.model, level, a.max_tokens,
                                              f"{name}-{level}-{r}", deadline)
                    ttfts[name] += t
                    chunks[name] += c
                    wall[name] += w
            summary = {}
            for name in ("direct", "gateway"):
                t = sorted(ttfts[name])
                summary[name] = {"n": len(t), "ttft_p50_ms": statistics.median(t),
                                 "ttft_p90_ms": t[min(len(t) - 1, int(0.9 * len(t)))],
                                 "tokens_per_s": chunks[name] / wall[name]}
                s = summary[name]
                print(f"{level:>7} {name:>8} {s['n']:>4} {s['ttft_p50_ms']:>12.1f} {s['ttft_p90_ms']:>12.1f} "
                      f"{s['tokens_per_s']:>9.1f}", flush=True)
            d, g = summary["direct"], summary["gateway"]
            print(f"{level:>7} {'ratio':>8}      TTFT p50 gateway/direct {g['ttft_p50_ms'] / d['ttft_p50_ms']:.3f}"
                  f"  tokens/s gateway/direct {g['tokens_per_s'] / d['tokens_per_s']:.3f}", flush=True)
    finally:
        for c in clients.values():
            await c.aclose()
    return 0


def access_log_overhead(path: str) -> None:
    """nginx's own share of each streamed completion, from the gateway's JSON access log: request_time minus
    upstream_response_time (TLS, auth map, rate limits, proxying), and the upstream connect time (0 on a
    kept-alive upstream connection). Resolution: nginx logs milliseconds."""
    own, connect = [], []
    for line in Path(path).read_text().splitlines():
        try:
            rec = json.loads(line[line.index("{"):])
        except ValueError:
            continue
        if rec.get("uri") != "/v1/completions" or rec.get("status") != 200:
            continue
        try:
            own.append((float(rec["request_time"]) - float(rec["upstream_response_time"])) * 1000)
            connect.append(float(rec["upstream_connect_time"]) * 1000)
        except (KeyError, ValueError):
            continue
    if not own:
        print("access log: no completed /v1/completions requests")
        return
    own.sort()
    connect.sort()

    def pct(v: list[float], q: float) -> float:
        return v[min(len(v) - 1, int(q * len(v)))]

    print(f"access log: {len(own)} completions; nginx's own time p50 {pct(own, .5):.1f} ms, "
          f"p99 {pct(own, .99):.1f} ms; upstream connect p50 {pct(connect, .5):.1f} ms, p99 {pct(connect, .99):.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway")
    ap.add_argument("--key", default=os.environ.get("LLMRACK_BENCH_KEY"),
                    help="gateway API key (default: $LLMRACK_BENCH_KEY, which keeps it out of the process list)")
    ap.add_argument("--direct")
    ap.add_argument("--backend-key", default=os.environ.get("LLMRACK_BENCH_BACKEND_KEY"),
                    help="vLLM backend key (default: $LLMRACK_BENCH_BACKEND_KEY)")
    ap.add_argument("--ca", help="CA file the gateway's certificate is checked against (the admin machine's "
                    ".llmrack/secrets/<host>/gateway-ca.crt); default: the system's trust store")
    ap.add_argument("--tls-name", help="name the certificate carries when --gateway is another address of the "
                    "host (its backend network address): the host's inventory address")
    ap.add_argument("--model", default="llmrack-tiny")
    ap.add_argument("--requests", type=int, default=64,
                    help="streams per target and level, in batches of the level's concurrency")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--deadline", type=float, default=600, help="seconds for the whole benchmark")
    ap.add_argument("--access-log", help="only analyse this gateway access log (docker logs of the gateway)")
    a = ap.parse_args()
    if a.access_log:
        access_log_overhead(a.access_log)
        return 0
    if not a.gateway or not a.direct:
        ap.error("--gateway and --direct are needed (or --access-log alone)")
    if not a.key or not a.backend_key:
        ap.error("both keys are needed: --key/--backend-key or $LLMRACK_BENCH_KEY/$LLMRACK_BENCH_BACKEND_KEY")
    return asyncio.run(main_async(a))


if __name__ == "__main__":
    raise SystemExit(main())
