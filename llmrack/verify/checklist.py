"""Seed 000 验收测试清单 lines the base checks do not cover: hardware stress, memory, disks, network, power,
and the lines only a person can measure (PSU failover, noise) with the engineer's sign-off.

Real tools on the host: stress-ng (CPU, ``--verify``), memtester (memory, bounded in size and loops),
badblocks (read-only, behind ``acceptance.badblocks_scan`` or ``--full``), fio (the seed's 4k random-read
command on the data volume), iperf3 (from another host of the inventory to this one). Durations default to
short runs (``AcceptanceSettings``); ``verify --full`` uses the seed's own (CPU 4 h, fio 60 s / 1 GiB ...).
GPU load, temperature and power come from the burn-in result ``llmrack burnin`` saved on the host.
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmrack.catalogue.gpus import find_gpu
from llmrack.errors import LlmrackError
from llmrack.verify.checks import (
    CheckContext,
    Outcome,
    bad,
    burnin_temperatures,
    check,
    judge,
    manual,
    not_applicable,
)

BURNIN_RESULT_PATH = "/var/lib/llmrack/acceptance/burnin.json"
FULL = {"cpu_stress_s": 4 * 3600, "fio_runtime_s": 60, "fio_size_mib": 1024, "iperf3_s": 30}  # seed 000


def _dur(ctx: CheckContext, key: str) -> int:
    return FULL[key] if ctx.full and key in FULL else int(getattr(ctx.profile.acceptance, key))


# -------------------------------------------------------------------------------------------------- sign-off


class SignOff(BaseModel):
    """What the engineer who measured a manual line writes down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    who: str = Field(min_length=1, description="Name of the person who measured it")
    when: date = Field(description="Date of the measurement (YYYY-MM-DD)")
    value: str | float = Field(description="What was measured, e.g. 72 (dB at 1 m) or 'no interruption'")
    result: Literal["pass", "fail"] = Field("pass", description="The engineer's verdict")
    note: str = ""


MANUAL_IDS = ("hw.psu_failover", "hw.noise")


def load_sign_off(path: Path) -> dict[str, dict[str, Any]]:
    """Check id -> sign-off from a YAML file ``{hw.noise: {who, when, value, result}, ...}`` (bad file: exit 2)."""
    src = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LlmrackError(f"cannot read: {str(exc).splitlines()[0]}", source=src) from None
    if not isinstance(raw, dict):
        raise LlmrackError("must map check ids to sign-offs", source=src)
    out: dict[str, dict[str, Any]] = {}
    for key, entry in raw.items():
        if key not in MANUAL_IDS:
            raise LlmrackError(f"not a manual check (manual: {', '.join(MANUAL_IDS)})", source=src, field=str(key))
        try:
            out[key] = SignOff.model_validate(entry).model_dump(mode="json")
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in (key, *first["loc"]))
            raise LlmrackError(first["msg"], source=src, field=loc) from None
    return out


def _manual(ctx: CheckContext, cid: str, how: str, threshold: Any, numeric_max: float | None = None) -> Outcome:
    signed = (ctx.sign_off or {}).get(cid)
    if not signed:
        return manual("not signed off yet", f"{how}; record who/when/value in the sign-off YAML "
                      "(verify --sign-off FILE)", threshold)
    text = f"signed off by {signed['who']} on {signed['when']}: {signed['value']}"
    value = signed["value"]
    if signed["result"] == "fail":
        return bad(text + " (result fail)", value, threshold, sign_off=signed)
    if numeric_max is not None:
        try:
            if float(value) >= numeric_max:
                return bad(text + f" (not below {numeric_max:g})", value, threshold, sign_off=signed)
        except (TypeError, ValueError):
            return bad(text + ": value must be a number", value, threshold, sign_off=signed)
    return manual(text, "signed off in the sign-off YAML", threshold, value, sign_off=signed)


@check("hw.psu_failover", "PSU failover (manual)", "hardware",
       "电源冗余测试（单电源故障切换）", "PSU redundancy (single PSU failover)")
def hw_psu_failover(ctx: CheckContext) -> Outcome:
    return _manual(ctx, "hw.psu_failover", "pull one PSU's cord during burn-in; the server must keep running "
                   "without a reboot or throttling", "no interruption")


@check("hw.noise", "Noise at full load (manual)", "hardware",
       "噪音测试（满载噪音<75dB）", "Noise test (< 75 dB at full load)")
def hw_noise(ctx: CheckContext) -> Outcome:
    return _manual(ctx, "hw.noise", "measure dB(A) at 1 m from the server during burn-in", "< 75 dB", 75)


# -------------------------------------------------------------------------------------------------- CPU, memory


@check("hw.stress_cpu", "CPU stress test (stress-ng --verify)", "hardware",
       "CPU压力测试（Prime95，满载运行4小时）", "CPU stress test (full load for 4 hours)")
def hw_stress_cpu(ctx: CheckContext) -> Outcome:
    seconds = _dur(ctx, "cpu_stress_s")
    threshold = f"{seconds} s on every CPU, no verify error"
    if not ctx.has("stress-ng"):
        return bad("stress-ng is not installed on the host (Debian/Ubuntu package stress-ng)", None, threshold)
    rc, out, err = ctx.run(f"stress-ng --cpu 0 --cpu-method matrixprod --verify --timeout {seconds}s "
                           "--metrics-brief 2>&1")
    text = out + err
    m = re.search(r"cpu\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text)
    value = {"bogo_ops": int(m.group(1)), "bogo_ops_per_s": float(m.group(5))} if m else None
    failed = rc != 0 or "unsuccessful run" in text or re.search(r"verif\w* fail|fail: ", text, re.I) is not None
    return judge(not failed and m is not None,
                 f"{seconds} s of matrixprod on all CPUs, results verified" + (
                     f": {value['bogo_ops_per_s']:.0f} bogo ops/s" if value else "")
                 if not failed and m else f"stress-ng exited {rc}: {text.strip()[-300:]}", value, threshold)


@check("hw.memtest", "Memory test (memtester)", "hardware",
       "内存检测（memtest86通过）", "Memory test (memtest86 passes)")
def hw_memtest(ctx: CheckContext) -> Outcome:
    acc = ctx.profile.acceptance
    if ctx.full:
        rc, out, _ = ctx.run("grep MemAvailable /proc/meminfo")
        m = re.search(r"(\d+) kB", out)
        mib = int(int(m.group(1)) / 1024 * 0.9) if m else acc.memtest_mib
    else:
        mib = acc.memtest_mib
    threshold = f"{mib} MiB x {acc.memtest_loops} loop(s), no failure"
    if not ctx.has("memtester"):
        return bad("memtester is not installed on the host (package memtester)", None, threshold)
    rc, out, err = ctx.run(f"memtester {mib}M {acc.memtest_loops} 2>&1")
    text = out + err
    failures = re.findall(r"^\s*([\w /-]+?)\s*:\s*FAILURE", text, re.M)
    note = "" if "...locked." in text else " (memory not locked: the kernel may have swapped part of it)"
    if rc != 0 or failures:
        return bad(f"memtester exited {rc}: " + (", ".join(failures[:5]) or text.strip()[-300:]), failures,
                   threshold)
    return judge(True, f"{mib} MiB x {acc.memtest_loops} loop(s) passed every pattern{note}; memtest86 from boot "
                 "media tests the memory the OS holds too", mib, threshold)


# -------------------------------------------------------------------------------------------------- disks


def physical_disks(ctx: CheckContext) -> list[str]:
    rc, out, _ = ctx.run("lsblk -dn -o NAME,TYPE 2>/dev/null")
    names = [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["disk"]]
    return [n for n in names if not re.match(r"^(loop|ram|zram|nbd|md|dm-|sr)", n)
            and ctx.run(f"test -b /dev/{shlex.quote(n)}")[0] == 0]


@check("hw.badblocks", "Read-only bad-block scan", "hardware",
       "磁盘健康检测（SMART状态正常，坏块检测）", "Disk health (SMART status normal, bad blocks)")
def hw_badblocks(ctx: CheckContext) -> Outcome:
    threshold = "0 bad blocks"
    if not (ctx.full or ctx.profile.acceptance.badblocks_scan):
        return manual("the read-only scan reads every disk end to end (hours) and is off by default",
                      "run verify --full or set acceptance.badblocks_scan", threshold)
    disks = physical_disks(ctx)
    if not disks:
        return not_applicable("no physical disk device visible (container or VM without disk access)",
                    threshold)
    value, problems = {}, []
    for d in disks:
        rc, out, err = ctx.run(f"badblocks -s -v -b 4096 /dev/{shlex.quote(d)} 2>&1")
        m = re.search(r"Pass completed, (\d+) bad blocks found", out + err)
        value[d] = int(m.group(1)) if m else None
        if rc != 0 or not m or int(m.group(1)):
            problems.append(f"/dev/{d}: " + (f"{m.group(1)} bad blocks" if m else (out + err).strip()[-200:]))
    return judge(not problems, "; ".join(problems) or f"{len(disks)} disk(s) read end to end, 0 bad blocks",
                 value, threshold)


@check("hw.disk_io", "Disk random read (fio) on the data volume", "hardware",
       "磁盘IO测试（fio 4k 随机读）", "Disk I/O (fio 4k random read)", "llmrack")
def hw_disk_io(ctx: CheckContext) -> Outcome:
    acc = ctx.profile.acceptance
    want = acc.fio_randread_iops_min
    threshold = f">= {want:g} IOPS" if want else "fio completes (figures recorded)"
    if not ctx.has("fio"):
        return bad("fio is not installed on the host (package fio)", None, threshold)
    path = acc.data_path or (ctx.spec.data_disk.mount if ctx.spec.data_disk else "/var/tmp")
    target = f"{path.rstrip('/')}/.llmrack-acceptance-fio"
    seconds, size = _dur(ctx, "fio_runtime_s"), _dur(ctx, "fio_size_mib")
    base = (f"fio --name=randread --ioengine=libaio --iodepth=1 --rw=randread --bs=4k --size={size}M "
            f"--numjobs=1 --runtime={seconds} --time_based --group_reporting --output-format=json "
            f"--filename={shlex.quote(target)}")
    direct = True
    rc, out, err = ctx.run(base + " --direct=1")
    if rc != 0 and re.search(r"O_DIRECT|Invalid argument", out + err):
        direct = False  # tmpfs / some overlay filesystems refuse O_DIRECT
        rc, out, err = ctx.run(base + " --direct=0")
    ctx.run(f"rm -f {shlex.quote(target)}")
    try:
        job = json.loads(out[out.index("{"):])["jobs"][0]["read"]
    except (ValueError, KeyError, IndexError):
        return bad(f"fio exited {rc}: {(err or out).strip()[-300:]}", None, threshold)
    iops = float(job["iops"])
    p99 = (job.get("clat_ns", {}).get("percentile", {}) or {}).get("99.000000")
    value = {"iops": round(iops, 1), "bandwidth_mib_s": round(job["bw"] / 1024, 2),
             "clat_p99_us": round(p99 / 1000, 1) if p99 else None, "direct": direct, "path": path}
    return judge(iops >= want, f"4k random read on {path}: {iops:,.0f} IOPS, {value['bandwidth_mib_s']} MiB/s"
                 + (f", p99 {value['clat_p99_us']} us" if p99 else "") + ("" if direct else " (page cache: no "
                 "O_DIRECT on this filesystem)"), value, threshold)


# -------------------------------------------------------------------------------------------------- network


def iperf3_between(server: Any, client: Any, address: str, seconds: int, port: int = 5201) -> dict[str, Any]:
    """Start a one-shot iperf3 server on ``server`` and measure from ``client`` to ``address``: Gbit/s received."""
    r = server.run(f"timeout {seconds + 30} iperf3 -s -1 -p {port} >/dev/null 2>&1 & sleep 1")
    if r.rc != 0:
        raise RuntimeError(f"iperf3 server did not start: {r.stderr.strip()[:200]}")
    c = client.run(f"iperf3 -c {shlex.quote(address)} -p {port} -t {seconds} -J")
    try:
        doc = json.loads(c.stdout)
    except ValueError:
        doc = {"error": (c.stderr or c.stdout).strip()[:300]}
    if "error" in doc:
        raise RuntimeError(f"iperf3 to {address}:{port}: {doc['error']}")
    received = doc["end"]["sum_received"]["bits_per_second"]
    return {"gbit_s": round(received / 1e9, 3), "retransmits": doc["end"]["sum_sent"].get("retransmits"),
            "seconds": seconds}


@check("hw.network", "Network throughput from a peer host (iperf3)", "hardware",
       "网络带宽测试（iperf3）", "Network bandwidth (iperf3 between hosts)", "llmrack")
def hw_network(ctx: CheckContext) -> Outcome:
    want = ctx.profile.acceptance.network_gbps_min
    threshold = f">= {want:g} Gbit/s"
    peers = [h for h in (ctx.inventory.hosts if ctx.inventory else []) if h.name != ctx.spec.name]
    if ctx.local or not peers:
        return not_applicable("one host in the inventory: iperf3 needs a peer host", threshold)
    if not ctx.has("iperf3"):
        return bad("iperf3 is not installed on the host (package iperf3)", None, threshold)
    import testinfra

    backend = ctx.host.backend
    peer = peers[0]
    client = testinfra.get_host(f"ssh://{peer.name}", ssh_config=getattr(backend, "ssh_config", None))
    try:
        res = iperf3_between(ctx.host, client, ctx.spec.address, _dur(ctx, "iperf3_s"))
    except RuntimeError as exc:
        return bad(f"{exc} (a firewall between the hosts must let TCP 5201 through for the test)", None,
                   threshold)
    return judge(res["gbit_s"] >= want, f"{res['gbit_s']:.2f} Gbit/s from {peer.name} over {res['seconds']} s",
                 res, threshold)


# -------------------------------------------------------------------------------------------------- burn-in


def collect_burnin(host: Any) -> dict[str, Any] | None:
    """The result ``llmrack burnin`` saved on the host (BURNIN_RESULT_PATH), or None."""
    r = host.run(f"cat {BURNIN_RESULT_PATH} 2>/dev/null")
    if r.rc != 0 or not r.stdout.strip():
        return None
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        return {"verdict": "fail", "problems": [f"{BURNIN_RESULT_PATH} is not JSON"], "samples": {}}
    return doc if isinstance(doc, dict) else None


def _burnin_guard(ctx: CheckContext, threshold: Any) -> Outcome | None:
    if not ctx.gpu_tier:
        return not_applicable("the tier has no GPUs", threshold)
    if not ctx.burnin:
        return manual("no burn-in result on the host", f"run `llmrack burnin` there (it saves {BURNIN_RESULT_PATH}),"
                      " then verify again", threshold)
    return None


@check("hw.thermal_load", "GPU temperature under full load", "hardware",
       "散热测试（满载温度监控）", "Cooling test (temperature under full load)")
def hw_thermal_load(ctx: CheckContext) -> Outcome:
    limit = ctx.profile.hardware.gpu.max_load_temp_c
    early = _burnin_guard(ctx, f"<= {limit} C")
    if early:
        return early
    assert ctx.burnin is not None
    series = burnin_temperatures(ctx.burnin)
    if not series:
        return bad("the burn-in result has no temperature samples", None, f"<= {limit} C")
    peaks = {i: max(v) for i, v in series.items() if v}
    hot = {i: t for i, t in peaks.items() if t > limit}
    minutes = ctx.burnin.get("minutes")
    return judge(not hot, ("; ".join(f"GPU {i} peaked at {t:.0f} C" for i, t in hot.items()) or
                           f"hottest GPU {max(peaks.values()):.0f} C") + f" over {minutes} min of load",
                 peaks, f"<= {limit} C")


@check("hw.power", "GPU power under full load against the nameplate", "hardware",
       "功耗监控（满载功耗符合标称）", "Power under full load matches the rating")
def hw_power(ctx: CheckContext) -> Outcome:
    low = ctx.profile.acceptance.power_load_ratio_min
    gpu = find_gpu(ctx.profile.hardware.gpu.model)
    threshold = f"{low:.0%} .. 105% of the rated board power"
    early = _burnin_guard(ctx, threshold)
    if early:
        return early
    assert ctx.burnin is not None
    samples = ctx.burnin.get("samples") or {}
    value, problems = {}, []
    for index, rows in (samples.items() if isinstance(samples, dict) else ()):
        watts = [r["power_w"] for r in rows or [] if r.get("power_w") is not None]
        limits = [r["power_limit_w"] for r in rows or [] if r.get("power_limit_w")]
        rated = gpu.power_w if gpu else (max(limits) if limits else None)
        if not watts or not rated:
            problems.append(f"GPU {index}: no power samples or rating")
            continue
        peak = max(watts)
        value[str(index)] = {"peak_w": peak, "rated_w": rated, "limit_w": max(limits) if limits else None}
        if peak > rated * 1.05:
            problems.append(f"GPU {index} drew {peak:.0f} W, over its {rated:.0f} W rating")
        elif peak < rated * low:
            problems.append(f"GPU {index} peaked at {peak:.0f} W, {peak / rated:.0%} of its {rated:.0f} W rating: "
                            "not fully loaded, or power-capped (nvidia-smi -q -d POWER)")
    if not value and not problems:
        problems.append("the burn-in result has no power samples")
    total = sum(v["peak_w"] for v in value.values())
    return judge(not problems, "; ".join(problems) or f"{len(value)} GPU(s) at {total:.0f} W together, each within "
                 "its rating", value, threshold)


@check("hw.gpu_scaling", "GPUs together against one alone (burn-in), and the NCCL link between them", "hardware",
       "多GPU扩展效率（4× GPU > 3× 单GPU性能）", "Multi-GPU scaling (4x GPU > 3x single-GPU performance)")
def hw_gpu_scaling(ctx: CheckContext) -> Outcome:
    n = ctx.profile.hardware.gpu.count
    low = ctx.profile.acceptance.multi_gpu_scaling_min
    threshold = f"all {n} GPUs >= {low:.2f} x {n} x GPU 0 alone; NCCL all-reduce over all of them runs"
    if n < 2:
        return not_applicable(f"the tier has {n} GPU(s): no multi-GPU scaling to measure" if n else
                              "the tier has no GPUs", threshold)
    early = _burnin_guard(ctx, threshold)
    if early:
        return early
    assert ctx.burnin is not None
    sc = ctx.burnin.get("scaling")
    if not isinstance(sc, dict):
        return manual("the burn-in result has no scaling phase (taken with one GPU visible, or an older llmrack)",
                      "run `llmrack burnin` again with every GPU visible, then verify again", threshold)
    problems = []
    ratio, ar = sc.get("ratio"), sc.get("allreduce") or {}
    if sc.get("gpus", 0) < n:
        problems.append(f"the burn-in saw {sc.get('gpus')} GPU(s), the tier has {n}")
    if ratio is None:
        problems.append("no aggregate to compare: a GPU's load worker failed (see hw.burnin)")
    elif ratio < low:
        problems.append(f"{sc.get('all_tflops_sum')} TFLOP/s on {sc.get('gpus')} GPUs = {ratio:.2f} x "
                        f"{sc.get('gpus')} x {sc.get('solo_tflops')} alone (shared power or cooling: nvidia-smi -q "
                        "-d PERFORMANCE during the burn-in)")
    if ar.get("error"):
        problems.append(f"NCCL all-reduce over the GPUs failed: {ar['error']} (NCCL_DEBUG=INFO, nvidia-smi topo -m)")
    return judge(not problems, "; ".join(problems) or f"{ratio:.2f} x {sc.get('gpus')} x GPU 0 alone; all-reduce "
                 f"bus bandwidth {ar.get('busbw_gb_s')} GB/s", sc, threshold)
