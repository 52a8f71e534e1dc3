"""pyinfra facts about the GPUs: nvidia-smi's readings, PCI devices when no driver answers, Xid errors.

Each fact's ``command()`` prints its raw readings between ``##section`` marker lines and always exits 0, so
that a host without a GPU, a driver or a tool still yields a value ("none") instead of a failed fact. The
parsing lives in pure ``parse_*`` functions, which the unit tests feed with outputs recorded on real hosts
(``tests/fixtures/gpu/``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pyinfra.api import FactBase

from llmrack.facts._parse import _float, _int, _kv, _sections, na

# ------------------------------------------------------------------------------------------------ nvidia-smi

# The fields NvidiaGpus asks nvidia-smi for, in order (names as `nvidia-smi --help-query-gpu` lists them).
SMI_FIELDS: tuple[str, ...] = (
    "index",
    "name",
    "uuid",
    "memory.total",
    "driver_version",
    "compute_cap",
    "persistence_mode",
    "ecc.mode.current",
    "ecc.errors.uncorrected.volatile.total",
    "pcie.link.gen.current",
    "pcie.link.gen.max",
    "pcie.link.width.current",
    "pcie.link.width.max",
    "power.limit",
    "temperature.gpu",
    "utilization.gpu",
    "clocks_throttle_reasons.active",
)
# Drivers from 535 on call the last field clocks_event_reasons.active and keep the old name as an alias;
# the command falls back to the new name if a driver ever drops the alias.
SMI_FIELDS_NEW = SMI_FIELDS[:-1] + ("clocks_event_reasons.active",)

SMI_KEYS: tuple[str, ...] = (
    "index",
    "name",
    "uuid",
    "memory_mib",
    "driver_version",
    "compute_cap",
    "persistence_mode",
    "ecc_mode",
    "ecc_uncorrected_volatile",
    "pcie_gen",
    "pcie_gen_max",
    "pcie_width",
    "pcie_width_max",
    "power_limit_w",
    "temperature_c",
    "utilization_pct",
    "throttle_reasons",
)

# Bits of clocks_event_reasons (nvml.h, nvmlClocksEventReason*).
THROTTLE_BITS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# Reasons that mean the GPU is held back by heat or power delivery (a burn-in or acceptance failure).
BAD_THROTTLE = frozenset({"hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"})

NVIDIA_VENDOR = "10de"


def decode_throttle(value: str | None) -> list[str]:
    """Names of the active clock event reasons in a bit mask such as ``0x0000000000000004``."""
    v = na(value or "")
    if v is None:
        return []
    try:
        mask = int(v, 16)
    except ValueError:
        return []
    names = [name for bit, name in THROTTLE_BITS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_BITS)
    if unknown:
        names.append(f"unknown_0x{unknown:x}")
    return names


def parse_smi_line(line: str) -> dict[str, Any]:
    """One CSV line of ``nvidia-smi --query-gpu=<SMI_FIELDS> --format=csv,noheader,nounits``."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != len(SMI_KEYS):
        raise ValueError(f"expected {len(SMI_KEYS)} fields, got {len(parts)}: {line!r}")
    raw = dict(zip(SMI_KEYS, parts, strict=True))
    mem = _float(raw["memory_mib"])
    gpu: dict[str, Any] = {
        "index": _int(raw["index"]),
        "name": na(raw["name"]) or "",
        "uuid": na(raw["uuid"]) or "",
        "memory_mib": int(mem) if mem is not None else None,
        "memory_gib": round(mem / 1024, 2) if mem is not None else None,
        "driver_version": na(raw["driver_version"]),
        "compute_cap": na(raw["compute_cap"]),
        "persistence_mode": (na(raw["persistence_mode"]) or "").lower() == "enabled",
        "ecc_mode": (na(raw["ecc_mode"]) or "").lower() or None,
        "ecc_uncorrected_volatile": _int(raw["ecc_uncorrected_volatile"]),
        "pcie_gen": _int(raw["pcie_gen"]),
        "pcie_gen_max": _int(raw["pcie_gen_max"]),
        "pcie_width": _int(raw["pcie_width"]),
        "pcie_width_max": _int(raw["pcie_width_max"]),
        "power_limit_w": _float(raw["power_limit_w"]),
        "temperature_c": _int(raw["temperature_c"]),
        "utilization_pct": _int(raw["utilization_pct"]),
        "throttle_mask": na(raw["throttle_reasons"]),
        "throttle_reasons": decode_throttle(raw["throttle_reasons"]),
    }
    return gpu


_LSPCI = re.compile(
    r"^(?P<slot>\S+)\s+(?P<cls_name>[^\[]+?)\s*\[(?P<cls>03[0-9a-f]{2})\]:\s*(?P<desc>.*?)"
    r"\s*\[(?P<vendor>[0-9a-f]{4}):(?P<device>[0-9a-f]{4})\]",
    re.I,
)


def parse_lspci(lines: Iterable[str]) -> list[dict[str, Any]]:
    """NVIDIA display / 3D controllers (class 03xx, vendor 10de) in ``lspci -nn`` output."""
    gpus = []
    for line in lines:
        m = _LSPCI.match(line.strip())
        if not m or m["vendor"].lower() != NVIDIA_VENDOR:
            continue
        desc = m["desc"].removeprefix("NVIDIA Corporation").strip()
        # "AD102 [GeForce RTX 4090]" -> "GeForce RTX 4090"; "GH100 [H100 SXM5 80GB]" -> "H100 SXM5 80GB"
        inner = re.search(r"\[([^\]]+)\]\s*$", desc)
        gpus.append(
            {
                "index": len(gpus),
                "name": inner.group(1) if inner else desc,
                "pci_slot": m["slot"],
                "pci_class": m["cls"].lower(),
                "pci_device_id": f"{m['vendor'].lower()}:{m['device'].lower()}",
                "memory_gib": None,
                "driver_version": None,
            }
        )
    return gpus


def parse_nvidia_gpus(lines: Iterable[str]) -> dict[str, Any]:
    """The NvidiaGpus fact from its command's output.

    ``{"source": "nvidia-smi" | "lspci" | "none", "gpus": [...], "count": n, "driver_version": str | None,
    "error": str | None}``. ``source`` is lspci when nvidia-smi is missing or fails (no driver loaded):
    then the GPUs carry their PCI names and no memory or driver.
    """
    sec = _sections(lines)
    smi_rc = _kv(sec, "smi_rc")
    gpus: list[dict[str, Any]] = []
    error = None
    source = "none"
    if smi_rc == "0":
        bad = []
        for line in sec.get("smi", []):
            if not line.strip():
                continue
            try:
                gpus.append(parse_smi_line(line))
            except ValueError:
                bad.append(line.strip())
        if gpus:
            source = "nvidia-smi"
        if bad:
            error = "nvidia-smi: " + " | ".join(bad)[:400]
    elif smi_rc is not None and smi_rc != "missing":
        msg = " ".join(s.strip() for s in sec.get("smi", []) if s.strip())
        error = f"nvidia-smi failed (exit {smi_rc}): {msg}"[:400]
    if not gpus:
        pci = parse_lspci(sec.get("lspci", []))
        if pci:
            gpus, source = pci, "lspci"
    drivers = sorted({g["driver_version"] for g in gpus if g.get("driver_version")})
    return {
        "source": source,
        "gpus": gpus,
        "count": len(gpus),
        "driver_version": drivers[0] if drivers else None,
        "error": error,
        "lspci_available": _kv(sec, "lspci_rc") not in (None, "missing"),
    }


def _smi_query(fields: tuple[str, ...]) -> str:
    return f"nvidia-smi --query-gpu={','.join(fields)} --format=csv,noheader,nounits"


class NvidiaGpus(FactBase[dict]):
    """GPUs of the host: nvidia-smi readings, or NVIDIA PCI devices from ``lspci -nn`` without a driver."""

    def command(self) -> str:
        return (
            "echo '##smi'; "
            "if command -v nvidia-smi >/dev/null 2>&1; then "
            f"o=$({_smi_query(SMI_FIELDS)} 2>&1); rc=$?; "
            "if [ $rc -ne 0 ] && echo \"$o\" | grep -qi 'field'; then "
            f"o=$({_smi_query(SMI_FIELDS_NEW)} 2>&1); rc=$?; fi; "
            "echo \"$o\"; echo \"##smi_rc=$rc\"; "
            "else echo '##smi_rc=missing'; fi; "
            "echo '##lspci'; "
            "if command -v lspci >/dev/null 2>&1; then lspci -nn 2>&1 | grep -i '\\[10de:'; echo '##lspci_rc=0'; "
            "else echo '##lspci_rc=missing'; fi; true"
        )

    @staticmethod
    def default() -> dict:
        return parse_nvidia_gpus([])

    def process(self, output: list[str]) -> dict:
        return parse_nvidia_gpus(output)



# ------------------------------------------------------------------------------------------------ Xid errors

_XID = re.compile(r"NVRM: Xid \((?P<dev>[^)]*)\): (?P<code>\d+)")


def parse_xid_errors(lines: Iterable[str]) -> dict[str, Any]:
    """``{"readable": bool, "count": n, "codes": {code: n}, "last": line | None}`` from the kernel log."""
    sec = _sections(lines)
    source = _kv(sec, "source")
    codes: dict[str, int] = {}
    last = None
    count = 0
    for line in sec.get("log", []):
        m = _XID.search(line)
        if m:
            count += 1
            codes[m["code"]] = codes.get(m["code"], 0) + 1
            last = line.strip()[:300]
    return {
        "readable": source not in (None, "none"),
        "source": source or "none",
        "count": count,
        "codes": codes,
        "last": last,
    }


class XidErrors(FactBase[dict]):
    """NVRM Xid lines in the kernel log (dmesg, else journalctl -k); ``readable`` False where neither works."""

    def command(self) -> str:
        return (
            "echo '##log'; "
            "if dmesg >/dev/null 2>&1; then dmesg 2>/dev/null | grep 'NVRM: Xid'; echo '##source=dmesg'; "
            "elif command -v journalctl >/dev/null 2>&1 && journalctl -k -n 1 -q >/dev/null 2>&1; then "
            "journalctl -k -b --no-pager -q 2>/dev/null | grep 'NVRM: Xid'; echo '##source=journal'; "
            "else echo '##source=none'; fi; true"
        )

    @staticmethod
    def default() -> dict:
        return parse_xid_errors([])

    def process(self, output: list[str]) -> dict:
        return parse_xid_errors(output)
