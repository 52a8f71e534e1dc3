"""Multi-GPU scaling for the burn-in: one GPU alone, then all of them, and the link between them.

The burn-in (llmrack/burnin.py) first loads GPU 0 alone for a short solo phase, then every GPU together for the
burn-in itself. ``scaling_summary`` puts the two side by side: the aggregate TFLOP/s of all GPUs against
``count x solo``. A server whose cards share too little power or cooling falls below 1 here before any model is
served. Tensor parallelism also needs the cards to talk: ``measure_allreduce`` runs an NCCL all-reduce over all
GPUs (one process each, torch.distributed on 127.0.0.1) and reports the bus bandwidth, the figure
nccl-tests prints (algorithm bandwidth x 2(n-1)/n).
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import statistics
import time
from typing import Any

ALLREDUCE_MIB = 256
ALLREDUCE_ITERS = 20


def scaling_summary(solo_tflops: float | None, tflops: dict[int, float | None],
                    allreduce: dict[str, Any] | None) -> dict[str, Any]:
    """The scaling block of a burn-in report. Pure, so it is unit-tested with recorded readings."""
    rates = [r for r in tflops.values() if r]
    out: dict[str, Any] = {"gpus": len(tflops), "solo_tflops": solo_tflops,
                           "all_tflops_sum": round(sum(rates), 1) if rates else None, "ratio": None,
                           "allreduce": allreduce}
    if solo_tflops and rates and len(rates) == len(tflops):
        out["ratio"] = round(sum(rates) / (len(tflops) * solo_tflops), 3)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _allreduce_worker(rank: int, world: int, port: int, queue: Any) -> None:  # pragma: no cover - GPU process
    try:
        import torch
        import torch.distributed as dist

        torch.cuda.set_device(rank)
        dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
        numel = ALLREDUCE_MIB * 2**20 // 4
        buf = torch.ones(numel, device="cuda", dtype=torch.float32)
        for _ in range(5):
            dist.all_reduce(buf)
        torch.cuda.synchronize()
        dist.barrier()
        times = []
        for _ in range(ALLREDUCE_ITERS):
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        dist.destroy_process_group()
        if rank == 0:
            per = statistics.median(times)
            algbw = numel * 4 / per / 1e9
            queue.put({"ranks": world, "mib": ALLREDUCE_MIB, "iters": ALLREDUCE_ITERS,
                       "median_ms": round(per * 1000, 3), "algbw_gb_s": round(algbw, 1),
                       "busbw_gb_s": round(algbw * 2 * (world - 1) / world, 1)})
    except Exception as exc:  # reported to the parent
        queue.put({"ranks": world, "error": f"{type(exc).__name__}: {exc}"})


def measure_allreduce(indices: list[int], timeout_s: float = 300) -> dict[str, Any]:
    """NCCL all-reduce of ALLREDUCE_MIB over the GPUs ``0..len(indices)-1``, one process each."""
    world = len(indices)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_allreduce_worker, args=(r, world, port, queue), daemon=True) for r in range(world)]
    for p in procs:
        p.start()
    result: dict[str, Any] = {"ranks": world, "error": "no result within the time limit"}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = queue.get(timeout=5)
            break
        except Exception:  # queue.Empty: keep waiting while a rank lives
            if not any(p.is_alive() for p in procs):
                result = {"ranks": world, "error": "every rank exited without a result"}
                break
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    return result
