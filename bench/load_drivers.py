"""Load drivers side by side: llmrack's own loop (`llmrack bench`) and NVIDIA's aiperf on the same vLLM, one run.

    python bench/load_drivers.py [--rounds 2] [--requests 16] [--concurrency 1,8] [--max-tokens 64] [--json OUT]

Starts the vLLM CPU image serving the tiny offline model on 127.0.0.1 (or drives ``--url`` with ``--model``),
then at each concurrency level alternates the two drivers round by round (llmrack, aiperf, llmrack, aiperf …,
the first one swapped every round) so that the machine's drift hits both alike. Same model, same number of
output tokens (``ignore_eos`` with a fixed ``max_tokens``), prompts of about the same length, streamed chat
completions. Printed: TTFT p50, TPOT p50 (aiperf: inter-token latency, the same quantity: (end-to-end − TTFT) /
(tokens − 1)) and output tokens/s, per driver, with aiperf/llmrack ratios.

aiperf runs from its own virtual environment (``--aiperf``; default ``.llmrack/tools/aiperf/bin/aiperf``, made with
``pip install aiperf==0.13.0`` from PyPI when missing). Bounded: ``--requests`` per level and round for each
driver, and every driver run is killed after ``--deadline`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmrack.bench import run_bench  # noqa: E402
from llmrack.images import build_images, cache_dir  # noqa: E402
from llmrack.tinymodel import build_tiny_model  # noqa: E402

AIPERF_VERSION = "0.13.0"
MODEL = "llmrack-tiny"
PROMPT_TOKENS = 16  # llmrack.bench's prompts are 13-17 tokens with the tiny model's tokenizer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(2)
    raise SystemExit(f"vLLM did not answer {url} within {timeout:.0f} s")


def start_vllm() -> tuple[str, str, Path]:
    """The vLLM CPU image with the tiny model on a free 127.0.0.1 port; (base url, container name, model dir)."""
    image = build_images(["vllm-cpu"])["vllm-cpu"]
    model_dir = build_tiny_model(cache_dir() / "models" / MODEL)
    port, name = _free_port(), f"llmrack-bench-drivers-{os.getpid()}"
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--memory=6g", "--shm-size=1g",
                    "-p", f"127.0.0.1:{port}:8000", "-v", f"{model_dir}:/models/{MODEL}:ro", image,
                    "--model", f"/models/{MODEL}", "--served-model-name", MODEL, "--max-model-len", "512",
                    "--dtype", "bfloat16", "--enforce-eager"], check=True, capture_output=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/health", 900)  # a loaded 2-core machine needs minutes
    except BaseException:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        raise
    return base, name, model_dir


def ensure_aiperf(path: Path) -> Path:
    if path.exists():
        return path
    venv = path.parents[1]
    print(f"installing aiperf {AIPERF_VERSION} into {venv} (PyPI)")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", f"aiperf=={AIPERF_VERSION}"], check=True)
    return path


def run_llmrack(base: str, model: str, concurrency: int, requests: int, max_tokens: int, deadline: float) -> dict:
    r = run_bench(f"{base}/v1", "", model=model, concurrency_levels=[concurrency], requests_per_level=requests,
                  max_tokens=max_tokens, timeout_s=deadline)
    lv = r["levels"][0]
    return {"ttft_ms": lv["ttft_ms"]["p50"], "tpot_ms": lv["tpot_ms"]["p50"],
            "tokens_per_s": lv["throughput_tokens_per_s"],
            "ok": lv.get("ok"), "failed": lv.get("failed")}


def run_aiperf(aiperf: Path, base: str, model: str, tokenizer: Path, concurrency: int, requests: int,
               max_tokens: int, deadline: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="llmrack-aiperf-") as out:
        cmd = [str(aiperf), "profile", "--model", model, "--url", base, "--endpoint-type", "chat", "--streaming",
               "--tokenizer", str(tokenizer), "--concurrency", str(concurrency), "--request-count", str(requests),
               "--synthetic-input-tokens-mean", str(PROMPT_TOKENS), "--synthetic-input-tokens-stddev", "0",
               "--output-tokens-mean", str(max_tokens), "--output-tokens-stddev", "0",
               "--extra-inputs", "ignore_eos:true", "--extra-inputs", f"min_tokens:{max_tokens}",
               "--random-seed", "7", "--artifact-dir", out, "--ui-type", "none"]
        # aiperf 0.13.0's offline mode takes a local tokenizer directory for a Hub id; instead every request that
        # is not for 127.0.0.1 goes to a proxy address that refuses it (nothing leaves this machine).
        env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "HTTP_PROXY": "http://127.0.0.1:9",
               "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=deadline, env=env)
        found = sorted(Path(out).rglob("profile_export_aiperf.json"))
        if p.returncode != 0 or not found:
            raise SystemExit(f"aiperf failed ({p.returncode}):\n{(p.stderr or p.stdout)[-3000:]}")
        doc = json.loads(found[0].read_text())
    m = doc.get("records", doc)

    def metric(key: str, stat: str = "p50") -> float | None:
        v = m.get(key) or {}
        return v.get(stat) if isinstance(v, dict) else None

    return {"ttft_ms": metric("time_to_first_token"), "tpot_ms": metric("inter_token_latency"),
            "tokens_per_s": metric("output_token_throughput", "avg"), "ok": metric("request_count", "avg"),
            "failed": metric("error_request_count", "avg") or 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="An OpenAI-compatible base URL (no /v1); default: start vLLM here.")
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--tokenizer", type=Path, help="Tokenizer directory for aiperf (default: the tiny model's).")
    ap.add_argument("--aiperf", type=Path, default=ROOT / ".llmrack/tools/aiperf/bin/aiperf")
    ap.add_argument("--concurrency", default="1,8")
    ap.add_argument("--requests", type=int, default=16, help="Requests per level, round and driver.")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--deadline", type=float, default=300, help="Seconds one driver run may take.")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    aiperf = ensure_aiperf(a.aiperf)
    container = None
    if a.url:
        base, tokenizer = a.url.rstrip("/"), a.tokenizer
        if tokenizer is None:
            raise SystemExit("--tokenizer is needed with --url")
    else:
        base, container, model_dir = start_vllm()
        tokenizer = a.tokenizer or model_dir
    results: dict[str, dict] = {}
    try:
        for c in [int(x) for x in a.concurrency.split(",")]:
            runs: dict[str, list[dict]] = {"llmrack": [], "aiperf": []}
            for rnd in range(a.rounds):
                order = ["llmrack", "aiperf"] if rnd % 2 == 0 else ["aiperf", "llmrack"]
                for driver in order:
                    if driver == "llmrack":
                        r = run_llmrack(base, a.model, c, a.requests, a.max_tokens, a.deadline)
                    else:
                        r = run_aiperf(aiperf, base, a.model, tokenizer, c, a.requests, a.max_tokens, a.deadline)
                    runs[driver].append(r)
                    print(f"c={c} round {rnd + 1} {driver:8s} ttft p50 {r['ttft_ms']:.1f} ms  tpot p50 "
                          f"{r['tpot_ms']:.2f} ms  {r['tokens_per_s']:.1f} tok/s", flush=True)
            med = {d: {k: statistics.median(x[k] for x in rs) for k in ("ttft_ms", "tpot_ms", "tokens_per_s")}
                   for d, rs in runs.items()}
            ratio = {k: med["aiperf"][k] / med["llmrack"][k] for k in med["llmrack"]}
            results[str(c)] = {"runs": runs, "median": med, "aiperf_over_llmrack": ratio}
    finally:
        if container:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    print("\nconcurrency | driver  | TTFT p50 ms | TPOT p50 ms | output tok/s")
    for c, r in results.items():
        for d in ("llmrack", "aiperf"):
            m = r["median"][d]
            print(f"{c:>11} | {d:7s} | {m['ttft_ms']:11.1f} | {m['tpot_ms']:11.2f} | {m['tokens_per_s']:12.1f}")
        q = r["aiperf_over_llmrack"]
        print(f"{c:>11} | ratio   | {q['ttft_ms']:11.3f} | {q['tpot_ms']:11.3f} | {q['tokens_per_s']:12.3f}")
    if a.json:
        a.json.write_text(json.dumps({"aiperf": AIPERF_VERSION, "max_tokens": a.max_tokens, "requests": a.requests,
                                      "rounds": a.rounds, "levels": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
