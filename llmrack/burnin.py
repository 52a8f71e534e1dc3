"""GPU burn-in: sustained bf16 matrix products on every GPU while nvidia-smi is sampled.

    python -m llmrack.burnin --minutes 10 --out burnin.json

One worker process per GPU (torch) multiplies two 8192x8192 bf16 matrices in a loop and reports TFLOP/s
for each ~1 s chunk. The parent samples temperature, SM clock, power, throttle reasons and uncorrected ECC
counts every ``sample_s`` seconds and reads the kernel log's Xid count before and after. The verdict fails
on thermal / hardware-slowdown / power-brake throttling, a temperature over the limit, new ECC or Xid
errors, or a GPU more than 15 % below the median of its peers. On a server with several GPUs, GPU 0 first runs
alone for ``solo_s`` and an NCCL all-reduce runs over all of them (llmrack/burnin_scaling.py): the report's
``scaling`` block holds the all-GPU aggregate against the count times the solo rate, read by `llmrack verify`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from llmrack.burnin_scaling import measure_allreduce, scaling_summary
from llmrack.facts._parse import na
from llmrack.facts.gpu import BAD_THROTTLE, decode_throttle, parse_xid_errors

SAMPLE_FIELDS = (
    "index,temperature.gpu,clocks.sm,clocks.max.sm,power.draw,power.limit,utilization.gpu,memory.used,"
    "clocks_throttle_reasons.active,ecc.errors.uncorrected.volatile.total"
)
PEER_TOLERANCE = 0.15
MATRIX_N = 8192


def _num(value: str) -> float | None:
    v = na(value)
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


def parse_sample(lines: list[str], t: float) -> dict[int, dict[str, Any]]:
    """One nvidia-smi sample (SAMPLE_FIELDS, csv,noheader,nounits) as {gpu index: reading}."""
    out: dict[int, dict[str, Any]] = {}
    for line in lines:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 10 or not parts[0].isdigit():
            continue
        out[int(parts[0])] = {
            "t": round(t, 1),
            "temp_c": _num(parts[1]),
            "sm_mhz": _num(parts[2]),
            "sm_max_mhz": _num(parts[3]),
            "power_w": _num(parts[4]),
            "power_limit_w": _num(parts[5]),
            "util_pct": _num(parts[6]),
            "mem_used_mib": _num(parts[7]),
            "throttle": decode_throttle(parts[8]),
            "ecc_uncorrected": _num(parts[9]),
        }
    return out


def sample_gpus(t: float) -> dict[int, dict[str, Any]]:
    cmd = ["nvidia-smi", f"--query-gpu={SAMPLE_FIELDS}", "--format=csv,noheader,nounits"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if res.returncode != 0:  # drivers that dropped the old field name
        cmd[1] = cmd[1].replace("clocks_throttle_reasons", "clocks_event_reasons")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    return parse_sample(res.stdout.splitlines(), t)


def read_xid() -> dict[str, Any]:
    for cmd in (["dmesg"], ["journalctl", "-k", "-b", "--no-pager", "-q"]):
        if shutil.which(cmd[0]) is None:
            continue
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if res.returncode == 0:
            return parse_xid_errors([*res.stdout.splitlines(), f"##source={cmd[0]}"])
    return parse_xid_errors(["##source=none"])


def _worker(index: int, seconds: float, queue: Any) -> None:  # pragma: no cover - runs in a GPU process
    try:
        import torch

        torch.cuda.set_device(index)
        a = torch.randn(MATRIX_N, MATRIX_N, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(MATRIX_N, MATRIX_N, device="cuda", dtype=torch.bfloat16)
        flop = 2 * MATRIX_N**3
        for _ in range(5):
            c = a @ b
        torch.cuda.synchronize()
        # size a chunk to ~1 s
        t0 = time.perf_counter()
        for _ in range(20):
            c = a @ b
        torch.cuda.synchronize()
        per = (time.perf_counter() - t0) / 20
        chunk = max(1, int(1.0 / per))
        deadline = time.monotonic() + seconds
        rates = []
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            for _ in range(chunk):
                c = a @ b
            torch.cuda.synchronize()
            rates.append(flop * chunk / (time.perf_counter() - t0) / 1e12)
        del c
        queue.put({"index": index, "name": torch.cuda.get_device_name(index), "rates": rates})
    except Exception as exc:  # reported to the parent as a problem
        queue.put({"index": index, "error": f"{type(exc).__name__}: {exc}"})


def judge(
    samples: dict[int, list[dict[str, Any]]],
    tflops: dict[int, float | None],
    *,
    xid_before: dict[str, Any],
    xid_after: dict[str, Any],
    max_temp_c: float = 87,
    worker_errors: dict[int, str] | None = None,
) -> list[str]:
    """The problems of a burn-in run (empty: pass). Pure, so it is unit-tested with recorded readings."""
    problems = [f"GPU {i}: load worker failed: {err}" for i, err in sorted((worker_errors or {}).items())]
    for i, series in sorted(samples.items()):
        if not series:
            problems.append(f"GPU {i}: no nvidia-smi samples")
            continue
        bad = sorted({r for s in series for r in s["throttle"] if r in BAD_THROTTLE})
        if bad:
            n = sum(1 for s in series if set(s["throttle"]) & BAD_THROTTLE)
            problems.append(f"GPU {i}: throttled by {', '.join(bad)} in {n} of {len(series)} samples "
                            "(check cooling, fans, airflow and power cabling)")
        temps = [s["temp_c"] for s in series if s["temp_c"] is not None]
        if temps and max(temps) > max_temp_c:
            problems.append(f"GPU {i}: reached {max(temps):.0f} C, above {max_temp_c:.0f} C under load")
        ecc = [s["ecc_uncorrected"] for s in series if s["ecc_uncorrected"] is not None]
        if ecc and max(ecc) > ecc[0]:
            problems.append(f"GPU {i}: uncorrected ECC errors rose from {ecc[0]:.0f} to {max(ecc):.0f}")
    new_xid = xid_after.get("count", 0) - xid_before.get("count", 0)
    if new_xid > 0:
        problems.append(f"kernel log: {new_xid} new NVRM Xid error(s) (last: {xid_after.get('last')})")
    rates = {i: r for i, r in tflops.items() if r}
    if len(rates) >= 2:
        median = statistics.median(rates.values())
        for i, r in sorted(rates.items()):
            if r < median * (1 - PEER_TOLERANCE):
                problems.append(f"GPU {i}: {r:.0f} TFLOP/s, more than {PEER_TOLERANCE:.0%} below its peers' "
                                f"median {median:.0f} (check PCIe link, clocks, power limit, cooling)")
    return problems


def _summary(series: list[dict[str, Any]]) -> dict[str, Any]:
    def stat(key: str) -> dict[str, float | None]:
        vals = [s[key] for s in series if s.get(key) is not None]
        if not vals:
            return {"min": None, "max": None, "mean": None}
        return {"min": min(vals), "max": max(vals), "mean": round(sum(vals) / len(vals), 1)}

    reasons = sorted({r for s in series for r in s["throttle"]})
    return {"temp_c": stat("temp_c"), "sm_mhz": stat("sm_mhz"), "power_w": stat("power_w"),
            "util_pct": stat("util_pct"), "throttle_reasons_seen": reasons}


def _steady_median(rates: list[float]) -> float | None:
    """The median TFLOP/s of a worker's chunks, its first tenth (clocks and temperature rising) left out."""
    steady = rates[len(rates) // 10:] or rates
    return round(statistics.median(steady), 1) if steady else None


def _solo_rate(ctx: Any, index: int, seconds: float) -> float | None:
    """The steady TFLOP/s of one GPU loaded alone (None when its worker failed)."""
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(index, seconds, queue), daemon=True)
    proc.start()
    try:
        r = queue.get(timeout=seconds + 180)
    except Exception:  # queue.Empty: the worker hung or died
        r = {"error": "no result"}
    proc.join(timeout=30)
    if proc.is_alive():
        proc.kill()
    return _steady_median(r.get("rates") or [])


def run_burnin(
    minutes: float, *, sample_s: float = 5, log: Callable[[str], None] = print, max_temp_c: float = 87,
    scaling: bool | None = None, solo_s: float = 20,
) -> dict[str, Any]:
    """Load every GPU for ``minutes`` and return a JSON-able report with ``verdict`` "pass" or "fail".

    ``scaling`` (default: with two GPUs or more) runs the solo phase and the all-reduce first."""
    seconds = max(10.0, minutes * 60)
    started = time.time()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "minutes": minutes, "sample_s": sample_s, "host": platform.node(), "matrix_n": MATRIX_N,
    }
    if shutil.which("nvidia-smi") is None:
        return {**report, "verdict": "fail", "problems": ["nvidia-smi not found: no NVIDIA driver"],
                "gpus": {}, "samples": {}}
    first = sample_gpus(0)
    indices = sorted(first)
    report["gpu_count"] = len(indices)
    if not indices:
        return {**report, "verdict": "fail", "problems": ["nvidia-smi lists no GPU"], "gpus": {}, "samples": {}}
    try:
        import torch  # noqa: F401
    except ImportError:
        return {**report, "verdict": "fail", "problems": ["torch is not importable: no load generator"],
                "gpus": {}, "samples": {str(i): [first[i]] for i in indices}}

    xid_before = read_xid()
    ctx = mp.get_context("spawn")
    solo: float | None = None
    allreduce: dict[str, Any] | None = None
    if scaling is None:
        scaling = len(indices) >= 2
    if scaling:
        log(f"burn-in: GPU {indices[0]} alone for {solo_s:.0f} s, then an NCCL all-reduce over {len(indices)}")
        solo = _solo_rate(ctx, indices[0], solo_s)
        allreduce = measure_allreduce(indices)
        log(f"burn-in: solo {solo} TFLOP/s; all-reduce {allreduce}")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(i, seconds, queue), daemon=True) for i in indices]
    for p in procs:
        p.start()
    log(f"burn-in: {len(indices)} GPU(s), {seconds:.0f} s of {MATRIX_N}^3 bf16 matrix products")
    samples: dict[int, list[dict[str, Any]]] = {i: [] for i in indices}
    t0 = time.monotonic()
    results: dict[int, dict[str, Any]] = {}
    while any(p.is_alive() for p in procs) or not queue.empty():
        now = time.monotonic() - t0
        for i, reading in sample_gpus(now).items():
            samples.setdefault(i, []).append(reading)
        while not queue.empty():
            r = queue.get()
            results[r["index"]] = r
        if len(results) == len(indices):
            break
        hot = {i: s[-1]["temp_c"] for i, s in samples.items() if s}
        log(f"burn-in: t={now:4.0f}s temps {hot}")
        time.sleep(sample_s)
        if now > seconds + 300:
            break
    for p in procs:
        p.join(timeout=30)
    while not queue.empty():
        r = queue.get()
        results[r["index"]] = r
    xid_after = read_xid()

    tflops: dict[int, float | None] = {}
    gpus: dict[str, Any] = {}
    errors: dict[int, str] = {}
    for i in indices:
        r = results.get(i, {"error": "worker returned nothing"})
        if "error" in r:
            errors[i] = r["error"]
            tflops[i] = None
            continue
        rates = r["rates"]
        steady = rates[len(rates) // 10:] or rates
        tflops[i] = _steady_median(rates)
        gpus[str(i)] = {"name": r["name"], "tflops_median": tflops[i], "tflops_min": round(min(steady), 1),
                        "tflops_max": round(max(steady), 1), "chunks": len(rates),
                        **_summary(samples.get(i, []))}
    problems = judge(samples, tflops, xid_before=xid_before, xid_after=xid_after, max_temp_c=max_temp_c,
                     worker_errors=errors)
    report.update({
        "seconds": round(time.time() - started, 1),
        "gpus": gpus,
        "tflops": {str(i): v for i, v in tflops.items()},
        "xid": {"before": xid_before, "after": xid_after},
        "samples": {str(i): s for i, s in samples.items()},
        "problems": problems,
        "verdict": "fail" if problems else "pass",
    })
    if solo is not None or allreduce is not None:
        report["scaling"] = scaling_summary(solo, tflops, allreduce)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmrack.burnin", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="Load duration in minutes.")
    parser.add_argument("--sample-s", type=float, default=5, help="Seconds between nvidia-smi samples.")
    parser.add_argument("--max-temp", type=float, default=87, help="Highest acceptable temperature, C.")
    parser.add_argument("--out", default="", help="Write the JSON report to this file.")
    parser.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=None,
                        help="Solo phase and all-reduce first (default: with two GPUs or more).")
    args = parser.parse_args(argv)
    report = run_burnin(args.minutes, sample_s=args.sample_s, max_temp_c=args.max_temp, scaling=args.scaling,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    text = json.dumps(report, indent=2, sort_keys=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    summary = {k: report.get(k) for k in ("verdict", "problems", "tflops", "gpu_count", "seconds", "scaling")}
    summary["gpus"] = {i: {k: v for k, v in g.items() if k != "chunks"} for i, g in report.get("gpus", {}).items()}
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0 if report["verdict"] == "pass" else 1


if __name__ == "__main__":
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    sys.exit(main())
