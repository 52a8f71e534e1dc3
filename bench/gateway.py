"""Gateway overhead: TTFT and tokens/s direct to vLLM vs through the gateway, in the same run.

    python bench/gateway.py --gateway https://HOST:8443 --key sk-llmrack-... \
        --direct http://VLLM:8000 --backend-key KEY --model llmrack-tiny [--requests 32] [--max-tokens 64]

For each of 1 and 16 concurrent streams it runs the same bounded number of streamed completions against
each target (alternating which goes first) and prints p50 TTFT, aggregate tokens/s and the
gateway/direct ratios. Bounded in count (--requests per target and level) and time (--deadline seconds).
The direct vLLM port is reachable only from inside the host's backend network (run there, or through an
SSH tunnel); its key is the cluster backend key in .llmrack/secrets/cluster/backend_api_key.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmrack.stack.smoke import stream_events  # noqa: E402


def one_stream(url: str, key: str, model: str, max_tokens: int) -> tuple[float, int, float]:
    """(ttft s, chunks, total s) of one streamed completion."""
    t0 = time.monotonic()
    first = None
    chunks = 0
    for t, event in stream_events(f"{url}/v1/completions", {"model": model, "prompt": "def main():",
                                                             "max_tokens": max_tokens, "ignore_eos": True,
                                                             "temperature": 0}, api_key=key, timeout=120):
        if event and event.get("choices"):
            chunks += 1
            first = first if first is not None else t - t0
    return first or float("nan"), chunks, time.monotonic() - t0


def run_level(url: str, key: str, model: str, concurrency: int, n: int, max_tokens: int,
              deadline: float) -> dict[str, float]:
    t0 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(one_stream, url, key, model, max_tokens) for _ in range(n)]
        results = []
        for f in futures:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            results.append(f.result(timeout=left))
    wall = time.monotonic() - t0
    ttfts = [r[0] for r in results]
    tokens = sum(r[1] for r in results)
    return {"n": len(results), "ttft_p50_ms": statistics.median(ttfts) * 1000 if ttfts else float("nan"),
            "tokens_per_s": tokens / wall if wall else 0.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--direct", required=True)
    ap.add_argument("--backend-key", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--deadline", type=float, default=300, help="seconds for the whole benchmark")
    a = ap.parse_args()
    deadline = time.monotonic() + a.deadline
    targets = {"direct": (a.direct.rstrip("/"), a.backend_key), "gateway": (a.gateway.rstrip("/"), a.key)}
    print(f"{'streams':>7} {'target':>8} {'n':>4} {'TTFT p50 ms':>12} {'tokens/s':>9}")
    for level in (1, 16):
        res = {}
        order = ["direct", "gateway"] if level == 1 else ["gateway", "direct"]
        for name in order:
            url, key = targets[name]
            res[name] = run_level(url, key, a.model, level, a.requests, a.max_tokens, deadline)
            r = res[name]
            print(f"{level:>7} {name:>8} {r['n']:>4} {r['ttft_p50_ms']:>12.1f} {r['tokens_per_s']:>9.1f}")
        d, g = res["direct"], res["gateway"]
        print(f"{level:>7} {'ratio':>8}      TTFT gateway/direct {g['ttft_p50_ms'] / d['ttft_p50_ms']:.3f}  "
              f"tokens/s gateway/direct {g['tokens_per_s'] / d['tokens_per_s']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
