"""Disk lines: SMART health of every physical disk (through a RAID controller's passthrough where it answers),
free space on the data volume."""

from __future__ import annotations

import re
import shlex

from llmrack.verify.context import CheckContext
from llmrack.verify.result import Outcome, bad, check, judge, manual

VIRTUAL = re.compile(r"^(loop|ram|zram|nbd|md|dm-|sr)")
# smartctl --scan-open: "/dev/bus/0 -d megaraid,8 # /dev/bus/0 [megaraid_disk_08], SCSI device"
PASSTHROUGH = re.compile(r"^(\S+)\s+-d\s+((?:sat\+)?(?:megaraid|cciss|3ware|areca|aacraid|hpt|sssraid)[\w,+/]*)", re.M)
# smartctl on a controller's logical disk: "DELL or MegaRaid controller, please try adding '-d megaraid,N'"
HINT = re.compile(r"please try adding '-d ([\w+]+),N", re.I)


@check("hw.smart", "Disk SMART health", "hardware",
       "磁盘健康检测（SMART状态正常，坏块检测）", "Disk health (SMART status normal, bad blocks)")
def hw_smart(ctx: CheckContext) -> Outcome:
    """Every physical disk's SMART verdict. Disks behind a RAID controller are read through its passthrough
    (``smartctl -d megaraid,N`` and the like, as ``smartctl --scan-open`` lists them); where nothing answers,
    the line is manual, naming the controller and the command a person runs."""
    rc, out, _ = ctx.run("lsblk -dn -o NAME,TYPE 2>/dev/null")
    names = [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["disk"]]
    disks = [n for n in names if not VIRTUAL.match(n) and ctx.run(f"test -b /dev/{shlex.quote(n)}")[0] == 0]
    if not disks:
        return manual("no physical disk device is visible here (a container, or a VM without its disks)",
                      "on the physical server (or the hypervisor holding the disks), run `smartctl -H -A /dev/sdX` "
                      "for each disk: every one must say PASSED with 0 reallocated / pending sectors", "PASSED")
    if not ctx.has("smartctl"):
        return bad(f"smartctl is not installed (smartmontools) to read {', '.join(disks)}", None, "PASSED")
    value: dict[str, str] = {}
    problems, unsupported, hints = [], [], set()
    for d in disks:
        rc, out, err = ctx.run(f"smartctl -H -A /dev/{d}")
        verdict = smart_verdict(out, rc)
        value[d] = verdict
        if verdict == "unsupported":
            unsupported.append(d)
            hints.update(m.lower() for m in HINT.findall(out + err))
        elif verdict != "PASSED":
            problems.append(f"/dev/{d}: {verdict}")
    behind = []
    if unsupported:
        rc, scan, _ = ctx.run("smartctl --scan-open 2>/dev/null")
        for dev, dtype in PASSTHROUGH.findall(scan if rc == 0 else ""):
            rc2, out2, _ = ctx.run(f"smartctl -H -A -d {shlex.quote(dtype)} {shlex.quote(dev)}")
            verdict = smart_verdict(out2, rc2)
            if verdict == "unsupported":
                continue
            behind.append(f"{dev} -d {dtype}")
            value[f"{dev} -d {dtype}"] = verdict
            if verdict != "PASSED":
                problems.append(f"{dev} -d {dtype}: {verdict}")
    if problems:
        return bad("; ".join(problems), value, "PASSED")
    if unsupported and not behind:
        controller = raid_controller(ctx)
        kind = sorted(hints)[0] if hints else ""
        cmd = (f"`smartctl -H -A -d {kind},N /dev/{unsupported[0]}` for N = each physical disk's id" if kind else
               f"`smartctl -H -A -d TYPE,N /dev/{unsupported[0]}` with the controller's type (megaraid, cciss, "
               "aacraid, areca, 3ware)")
        where = f"behind {controller}" if controller else "behind a RAID controller or a virtual disk"
        return manual(f"no SMART data from {', '.join('/dev/' + d for d in unsupported)} ({where}) and no "
                      "controller passthrough answered", f"as root on the server run {cmd}, or read every "
                      "physical disk's state in the controller's own tool (storcli/perccli `/c0/eall/sall show`, "
                      "ssacli `ctrl all show config detail`) or the BMC: all must be healthy (Online/OK, 0 media "
                      "errors)", "PASSED", value)
    seen = [d for d in disks if d not in unsupported] + behind
    return judge(True, f"{len(seen)} disk(s) PASSED: {', '.join(seen)}", value, "PASSED")


def raid_controller(ctx: CheckContext) -> str:
    """The first RAID / SAS controller ``lspci`` names ('' when none or no lspci)."""
    rc, out, _ = ctx.run("lspci 2>/dev/null | grep -iE 'raid|sas|scsi storage' | head -n1")
    line = out.strip() if rc == 0 else ""
    return line.split(": ", 1)[-1] if line else ""


def smart_verdict(out: str, rc: int) -> str:
    """PASSED / FAILED ... / 'N reallocated sectors' / unsupported, from ``smartctl -H -A`` output and exit code."""
    if re.search(r"SMART support is:\s+Unavailable|Unable to detect device type|SMART Disabled|please try adding "
                 r"'-d", out):
        return "unsupported"
    m = re.search(r"SMART overall-health self-assessment test result:\s*(\S+)", out) or \
        re.search(r"SMART Health Status:\s*(\S+)", out)
    if not m:
        return "unsupported" if rc & 0b11 else "no SMART verdict"
    verdict = m.group(1).upper()
    if verdict not in ("PASSED", "OK") or rc & 0b1000:
        return f"FAILED ({m.group(1)})"
    for attr in ("Reallocated_Sector_Ct", "Current_Pending_Sector", "Offline_Uncorrectable"):
        a = re.search(rf"^\s*\d+\s+{attr}\s.*\s(\d+)\s*$", out, re.M)
        if a and int(a.group(1)) > 0:
            return f"{a.group(1)} {attr}"
    g = re.search(r"Elements in grown defect list:\s*(\d+)", out)  # SAS disks
    if g and int(g.group(1)) > 0:
        return f"{g.group(1)} grown defects"
    return "PASSED"


@check("hw.data_free", "Free space on the data volume", "hardware",
       "数据盘可用空间（模型与数据）", "Free space on the data volume (models and data)", "llmrack")
def hw_data_free(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.data_free_gib_min
    path = ctx.profile.acceptance.data_path or (ctx.spec.data_disk.mount if ctx.spec.data_disk else "/")
    rc, out, err = ctx.run(f"df -PB1 {shlex.quote(path)}")
    if rc != 0:
        return bad(f"{path} cannot be read: {(err or out).strip()[:200]}", None, f">= {want} GiB")
    fields = out.strip().splitlines()[-1].split()
    free = int(fields[3]) / 1024**3
    return judge(free >= want, f"{free:.2f} GiB free on {fields[5]} ({fields[0]})" +
                 ("" if free >= want else f": below {want} GiB"), round(free, 3), f">= {want} GiB")


