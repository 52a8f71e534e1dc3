"""Hardware lines of the checklist: GPUs (count, model, memory, PCIe, errors, temperature), RAM, CPU, disks."""

from __future__ import annotations

import re
from typing import Any

from llmrack.verify.context import (
    CheckContext,
    num,
)
from llmrack.verify.result import (
    Outcome,
    bad,
    check,
    judge,
    manual,
    not_applicable,
)


def _gpu_outcome_or_none(ctx: CheckContext, threshold: Any) -> tuple[list[dict[str, str]] | None, Outcome | None]:
    if not ctx.gpu_tier:
        return None, not_applicable("the tier has no GPUs", threshold)
    gpus = ctx.gpus()
    if gpus is None:
        why = "nvidia-smi is not installed" if not ctx.has("nvidia-smi") else "nvidia-smi fails"
        return None, bad(f"{why}: no GPU can be read", None, threshold)
    return gpus, None


@check("hw.gpu_count", "GPU count", "hardware",
       "GPU 数量与型号（采购清单：NVIDIA RTX 4090 24GB）", "GPU count and model (purchase list: NVIDIA RTX 4090 24GB)")
def hw_gpu_count(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.gpu.count
    gpus, early = _gpu_outcome_or_none(ctx, want)
    if early:
        return early
    assert gpus is not None
    return judge(len(gpus) == want, f"{len(gpus)} GPU(s) found, the tier has {want}", len(gpus), want)


@check("hw.gpu_model", "GPU model", "hardware",
       "GPU 数量与型号（采购清单：NVIDIA RTX 4090 24GB）", "GPU count and model (purchase list: NVIDIA RTX 4090 24GB)")
def hw_gpu_model(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.gpu.model
    gpus, early = _gpu_outcome_or_none(ctx, want)
    if early:
        return early
    assert gpus is not None
    names = [g["name"] for g in gpus]
    wrong = [f"GPU {g['index']}: {g['name']}" for g in gpus if want.lower() not in g["name"].lower()]
    return judge(bool(gpus) and not wrong, "; ".join(wrong) + f" (the tier wants {want})" if wrong
                 else f"{len(gpus)} x {names[0] if names else '?'}", sorted(set(names)), want)


@check("hw.gpu_memory", "GPU memory", "hardware",
       "GPU 数量与型号（采购清单：NVIDIA RTX 4090 24GB）", "GPU count and model (purchase list: NVIDIA RTX 4090 24GB)")
def hw_gpu_memory(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.gpu.memory_gib
    gpus, early = _gpu_outcome_or_none(ctx, f">= {want} GiB")
    if early:
        return early
    assert gpus is not None
    # nvidia-smi reports MiB; cards are sold in GB and keep a few hundred MiB: allow 5 %
    mems = {g["index"]: (num(g["memory.total"]) or 0) / 1024 for g in gpus}
    small = {i: m for i, m in mems.items() if m < want * 0.95}
    value = {i: round(m, 1) for i, m in mems.items()}
    return judge(bool(gpus) and not small,
                 "GPU(s) with less memory: " + ", ".join(f"{i}: {m:.1f} GiB" for i, m in small.items()) if small
                 else f"every GPU has >= {want} GiB (within 5 %)", value, f">= {want} GiB")


@check("hw.pcie", "GPU PCIe links not degraded", "hardware",
       "GPU PCIe 链路未降级（代数/宽度）", "GPU PCIe links not degraded (generation/width)", "llmrack")
def hw_pcie(ctx: CheckContext) -> Outcome:
    exp = ctx.profile.hardware.gpu
    threshold = f"Gen{exp.min_pcie_gen} x{exp.min_pcie_width}"
    gpus, early = _gpu_outcome_or_none(ctx, threshold)
    if early:
        return early
    assert gpus is not None
    problems, notes, value = [], [], {}
    for g in gpus:
        gc, gm = num(g["pcie.link.gen.current"]), num(g["pcie.link.gen.max"])
        wc, wm = num(g["pcie.link.width.current"]), num(g["pcie.link.width.max"])
        value[g["index"]] = f"Gen{gc and int(gc)}/{gm and int(gm)} x{wc and int(wc)}/{wm and int(wm)}"
        if gm is not None and gm < exp.min_pcie_gen:
            problems.append(f"GPU {g['index']} link at most Gen{int(gm)} (slot or riser below Gen{exp.min_pcie_gen})")
        if wm is not None and wm < exp.min_pcie_width:
            problems.append(f"GPU {g['index']} link at most x{int(wm)}")
        if wc is not None and wm is not None and wc < wm:
            problems.append(f"GPU {g['index']} runs x{int(wc)} of x{int(wm)}")
        if gc is not None and gm is not None and gc < gm:
            notes.append(f"GPU {g['index']} at Gen{int(gc)} of Gen{int(gm)} (idle GPUs lower the link speed; "
                         "re-check under load)")
    return judge(not problems, "; ".join(problems + notes) or "every link at its full generation and width",
                 value, threshold)


@check("hw.gpu_errors", "GPU ECC and XID errors", "hardware",
       "GPU 错误计数为零（ECC/XID）", "GPU error counts are zero (ECC/XID)", "llmrack")
def hw_gpu_errors(ctx: CheckContext) -> Outcome:
    gpus, early = _gpu_outcome_or_none(ctx, 0)
    if early:
        return early
    assert gpus is not None
    ecc = {g["index"]: num(g["ecc.errors.uncorrected.volatile.total"]) for g in gpus}
    ecc_bad = {i: int(v) for i, v in ecc.items() if v}
    rc, out, _ = ctx.run("journalctl -k -b --no-pager -q 2>/dev/null | grep -c 'NVRM: Xid' "
                         "|| dmesg 2>/dev/null | grep -c 'NVRM: Xid'")
    xid = int(out.strip().splitlines()[-1]) if out.strip() and out.strip().splitlines()[-1].isdigit() else 0
    value = {"ecc_uncorrected": {i: (int(v) if v is not None else "n/a") for i, v in ecc.items()}, "xid_events": xid}
    problems = [f"GPU {i}: {v} uncorrected ECC error(s)" for i, v in ecc_bad.items()]
    if xid:
        problems.append(f"{xid} XID event(s) in the kernel log since boot")
    return judge(not problems, "; ".join(problems) or "no uncorrected ECC errors, no XID events since boot",
                 value, 0)


@check("hw.gpu_idle", "GPU temperature and power at idle", "hardware",
       "GPU 空闲温度与功耗", "GPU temperature and power at idle", "llmrack")
def hw_gpu_idle(ctx: CheckContext) -> Outcome:
    limit = ctx.profile.hardware.gpu.max_idle_temp_c
    gpus, early = _gpu_outcome_or_none(ctx, f"<= {limit} C")
    if early:
        return early
    assert gpus is not None
    problems, value = [], {}
    for g in gpus:
        t, p, pl = num(g["temperature.gpu"]), num(g["power.draw"]), num(g["power.limit"])
        value[g["index"]] = {"temperature_c": t, "power_w": p, "power_limit_w": pl,
                             "utilization_pct": num(g["utilization.gpu"])}
        if t is not None and t > limit:
            problems.append(f"GPU {g['index']} at {t:.0f} C (limit {limit} C at idle)")
        if p is not None and pl is not None and p > pl:
            problems.append(f"GPU {g['index']} draws {p:.0f} W over its {pl:.0f} W limit")
    return judge(not problems, "; ".join(problems) or
                 f"hottest GPU {max((v['temperature_c'] or 0) for v in value.values()):.0f} C", value, f"<= {limit} C")


@check("hw.burnin", "GPU temperature under burn-in load", "hardware",
       "GPU压力测试（FurMark/CUDA-Z，满载运行2小时）", "GPU stress test (full load for 2 hours)")
def hw_burnin(ctx: CheckContext) -> Outcome:
    limit = ctx.profile.hardware.gpu.max_load_temp_c
    if not ctx.gpu_tier:
        return not_applicable("the tier has no GPUs", f"<= {limit} C")
    if not ctx.burnin:
        want_min = ctx.profile.acceptance.burnin_minutes
        return manual(f"a {want_min}-minute burn-in is not run by verify", f"run `llmrack burnin --minutes "
                      f"{want_min}` on the host and file its JSON (peak temperature <= {limit} C) with this report",
                      f"<= {limit} C")
    series = burnin_temperatures(ctx.burnin)
    peak = max((max(v) for v in series.values() if v), default=None)
    minutes = ctx.burnin.get("minutes") or ctx.burnin.get("duration_min")
    want_min = ctx.profile.acceptance.burnin_minutes
    problems = []
    if peak is None:
        problems.append("the burn-in result has no temperature samples")
    elif peak > limit:
        problems.append(f"peak {peak:.0f} C over {limit} C")
    if minutes is not None and float(minutes) < want_min:
        problems.append(f"ran {float(minutes):g} min of the {want_min} min the tier asks")
    if ctx.burnin.get("verdict") not in (None, "pass"):
        problems.append("burn-in verdict fail: " + "; ".join(map(str, ctx.burnin.get("problems") or []))[:300])
    return judge(not problems, "; ".join(problems) or f"peak {peak:.0f} C over {minutes} min", peak, f"<= {limit} C")


def burnin_temperatures(result: dict[str, Any]) -> dict[str, list[float]]:
    """GPU index -> temperatures (C) of a ``llmrack burnin`` result (``samples``: {index: [{temp_c, ...}]})."""
    series: dict[str, list[float]] = {}
    samples = result.get("samples") or {}
    items = samples.items() if isinstance(samples, dict) else (("0", samples),)
    for index, rows in items:
        for row in rows or []:
            t = row.get("temp_c", row.get("temperature_c"))
            if t is not None:
                series.setdefault(str(index), []).append(float(t))
    return series


@check("hw.ram", "Memory size", "hardware",
       "内存容量（采购清单：DDR5 ECC REGDIMM）", "Memory size as bought (DDR5 ECC RDIMM)", "llmrack")
def hw_ram(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.ram_gib_min
    tol = ctx.profile.acceptance.memory_tolerance
    text = ctx.out("cat /proc/meminfo")
    m = re.search(r"MemTotal:\s+(\d+) kB", text)
    gib = int(m.group(1)) / 1024 / 1024 if m else 0.0
    return judge(gib >= want * (1 - tol), f"{gib:.1f} GiB visible to the kernel (tier: {want} GiB, "
                 f"{tol:.0%} kept by firmware/kernel allowed)", round(gib, 1), f">= {want} GiB")


@check("hw.cpu", "CPU cores", "hardware",
       "CPU（采购清单：Xeon）", "CPU as bought (Xeon)")
def hw_cpu(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.cpu_cores_min
    n = int(ctx.out("nproc").strip() or 0)
    model = ""
    rc, out, _ = ctx.run("grep -m1 'model name' /proc/cpuinfo")
    if rc == 0:
        model = out.partition(":")[2].strip()
    return judge(n >= want, f"{n} logical CPU(s) {model}".strip(), n, f">= {want}")
