"""pyinfra facts about GPUs and the NVIDIA stack.

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

_NA = re.compile(r"^\[?(N/A|Not Supported|Unknown Error|Unknown|Insufficient Permissions|GPU is lost)\]?$", re.I)

NVIDIA_VENDOR = "10de"


def na(value: str) -> str | None:
    """The value, or None where nvidia-smi printed [N/A], [Not Supported] and the like."""
    value = value.strip()
    return None if not value or _NA.match(value) else value


def _int(value: str) -> int | None:
    v = na(value)
    if v is None:
        return None
    try:
        return int(float(v))
    except ValueError:
        return None


def _float(value: str) -> float | None:
    v = na(value)
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return None


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


def _sections(lines: Iterable[str]) -> dict[str, list[str]]:
    """Split marker-delimited output (``##name`` lines) into sections; ``##key=value`` lines are kept."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in lines:
        if line.startswith("##") and "=" not in line:
            current = line[2:].strip()
            out.setdefault(current, [])
        elif line.startswith("##") and "=" in line:
            key, _, value = line[2:].partition("=")
            out.setdefault(f"={key.strip()}", []).append(value.strip())
        else:
            out.setdefault(current, []).append(line)
    return out


def _kv(sections: dict[str, list[str]], key: str) -> str | None:
    values = sections.get(f"={key}")
    return values[-1] if values else None


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


# ------------------------------------------------------------------------------------------------ Secure Boot

EFI_SECUREBOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def parse_secure_boot(lines: Iterable[str]) -> str:
    """``enabled``, ``disabled`` or ``unknown`` (non-EFI boot, or nothing readable)."""
    sec = _sections(lines)
    for line in sec.get("mokutil", []):
        low = line.strip().lower()
        if low.startswith("secureboot enabled"):
            return "enabled"
        if low.startswith("secureboot disabled"):
            return "disabled"
    # od -An -t u1 of the EFI variable: 4 attribute bytes then the value byte.
    values = " ".join(sec.get("efivar", [])).split()
    if len(values) >= 5 and all(v.isdigit() for v in values):
        return "enabled" if values[4] == "1" else "disabled"
    return "unknown"


class SecureBoot(FactBase[str]):
    """Secure Boot state from ``mokutil --sb-state`` or the EFI variable; ``unknown`` on non-EFI hosts."""

    def command(self) -> str:
        return (
            "echo '##mokutil'; "
            "if command -v mokutil >/dev/null 2>&1; then mokutil --sb-state 2>&1; fi; "
            "echo '##efivar'; "
            f"if [ -r {EFI_SECUREBOOT_VAR} ]; then od -An -t u1 {EFI_SECUREBOOT_VAR}; fi; "
            "echo '##efi'; if [ -d /sys/firmware/efi ]; then echo efi; else echo bios; fi; true"
        )

    @staticmethod
    def default() -> str:
        return "unknown"

    def process(self, output: list[str]) -> str:
        return parse_secure_boot(output)


# ------------------------------------------------------------------------------------------------ kernel modules

WATCHED_MODULES = ("nvidia", "nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nouveau", "nova_core", "nova_drm")


def parse_kernel_modules(lines: Iterable[str]) -> dict[str, Any]:
    """``{"loaded": [names], "nvidia_version": str | None, "readable": bool}`` from /proc/modules."""
    sec = _sections(lines)
    loaded = sorted({ln.split()[0] for ln in sec.get("modules", []) if ln.split()} & set(WATCHED_MODULES))
    version = next((ln.strip() for ln in sec.get("nvidia_version", []) if ln.strip()), None)
    return {
        "loaded": loaded,
        "nvidia": "nvidia" in loaded or version is not None,
        "nouveau": "nouveau" in loaded,
        "nova_core": "nova_core" in loaded,
        "nvidia_version": version,
        "readable": _kv(sec, "modules_rc") == "0",
    }


class KernelModules(FactBase[dict]):
    """The NVIDIA-related kernel modules loaded (nvidia*, nouveau, nova_core) and the nvidia module version."""

    def command(self) -> str:
        pattern = "|".join(WATCHED_MODULES)
        return (
            "echo '##modules'; "
            f"if [ -r /proc/modules ]; then grep -E '^({pattern}) ' /proc/modules; echo '##modules_rc=0'; "
            "else echo '##modules_rc=missing'; fi; "
            "echo '##nvidia_version'; cat /sys/module/nvidia/version 2>/dev/null; true"
        )

    @staticmethod
    def default() -> dict:
        return parse_kernel_modules([])

    def process(self, output: list[str]) -> dict:
        return parse_kernel_modules(output)


# ------------------------------------------------------------------------------------------------ packages

PACKAGE_PATTERNS = (
    "nvidia-*",
    "libnvidia-*",
    "linux-modules-nvidia-*",
    "cuda-*",
    "nvidia-cuda-toolkit",
    "linux-image-*",
    "linux-headers-*",
    "linux-generic*",
    "linux-server*",
)


def parse_nvidia_packages(lines: Iterable[str]) -> dict[str, Any]:
    """``{"installed": {name: version}, "held": [names]}`` from dpkg-query and apt-mark showhold."""
    sec = _sections(lines)
    installed: dict[str, str] = {}
    for line in sec.get("dpkg", []):
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].strip().startswith("ii"):
            installed[parts[0].strip().split(":")[0]] = parts[1].strip()
    held = sorted({ln.strip().split(":")[0] for ln in sec.get("held", []) if ln.strip()})
    return {"installed": installed, "held": held, "dpkg": _kv(sec, "dpkg_rc") not in (None, "missing")}


class NvidiaPackages(FactBase[dict]):
    """NVIDIA, CUDA and kernel packages installed (dpkg-query) and the packages held (apt-mark showhold)."""

    def command(self) -> str:
        patterns = " ".join(f"'{p}'" for p in PACKAGE_PATTERNS)
        return (
            "echo '##dpkg'; "
            "if command -v dpkg-query >/dev/null 2>&1; then "
            f"dpkg-query -W -f='${{Package}}\\t${{Version}}\\t${{db:Status-Abbrev}}\\n' {patterns} 2>/dev/null; "
            "echo '##dpkg_rc=0'; else echo '##dpkg_rc=missing'; fi; "
            "echo '##held'; if command -v apt-mark >/dev/null 2>&1; then apt-mark showhold 2>/dev/null; fi; true"
        )

    @staticmethod
    def default() -> dict:
        return parse_nvidia_packages([])

    def process(self, output: list[str]) -> dict:
        return parse_nvidia_packages(output)


# ------------------------------------------------------------------------------------------------ container toolkit

_CTK = re.compile(r"version\s+v?(\d+\.\d+\.\d+\S*)", re.I)


def parse_ctk_version(lines: Iterable[str]) -> str | None:
    """``1.17.8`` from ``nvidia-ctk --version`` (``NVIDIA Container Toolkit CLI version 1.17.8``)."""
    for line in lines:
        m = _CTK.search(line)
        if m:
            return m.group(1)
    return None


class ContainerToolkitVersion(FactBase[str | None]):
    """The installed NVIDIA Container Toolkit version (``nvidia-ctk --version``), or None."""

    def command(self) -> str:
        return "if command -v nvidia-ctk >/dev/null 2>&1; then nvidia-ctk --version 2>&1; fi; echo '##end'"

    @staticmethod
    def default() -> str | None:
        return None

    def process(self, output: list[str]) -> str | None:
        return parse_ctk_version(output)


_CDI_DRIVER = re.compile(r"lib(?:cuda|nvidia-ml)\.so\.(\d+\.\d+(?:\.\d+)?)")


def parse_cdi_spec(lines: Iterable[str]) -> dict[str, Any]:
    """``{"exists": bool, "driver_version": str | None, "devices": [names]}`` of /etc/cdi/nvidia.yaml."""
    sec = _sections(lines)
    body = sec.get("spec", [])
    exists = _kv(sec, "spec_rc") == "0"
    version = None
    devices = []
    for line in body:
        m = _CDI_DRIVER.search(line)
        if m and version is None:
            version = m.group(1)
        d = re.match(r"^\s*-?\s*name:\s*\"?([\w.-]+)\"?\s*$", line)
        if d:
            devices.append(d.group(1))
    return {"exists": exists, "driver_version": version, "devices": devices}


class CdiSpec(FactBase[dict]):
    """The NVIDIA CDI spec (default /etc/cdi/nvidia.yaml): present, and the driver version it was made for."""

    def command(self, path: str = "/etc/cdi/nvidia.yaml") -> str:
        return (
            f"echo '##spec'; if [ -r {path} ]; then grep -E 'name:|lib(cuda|nvidia-ml)\\.so\\.' {path}; "
            "echo '##spec_rc=0'; else echo '##spec_rc=missing'; fi; true"
        )

    @staticmethod
    def default() -> dict:
        return parse_cdi_spec([])

    def process(self, output: list[str]) -> dict:
        return parse_cdi_spec(output)


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


# ------------------------------------------------------------------------------------------------ disk


def parse_free_disk(lines: Iterable[str]) -> dict[str, Any]:
    """``{"path", "mount", "size_gib", "free_gib"}`` from ``df -Pk PATH`` of the nearest existing parent."""
    sec = _sections(lines)
    rows = [ln.split() for ln in sec.get("df", []) if ln.strip() and not ln.startswith("Filesystem")]
    path = _kv(sec, "path")
    if not rows or len(rows[-1]) < 6:
        return {"path": path, "mount": None, "size_gib": None, "free_gib": None}
    row = rows[-1]
    try:
        size, avail = int(row[1]), int(row[3])
    except ValueError:
        return {"path": path, "mount": None, "size_gib": None, "free_gib": None}
    return {"path": path, "mount": row[5], "size_gib": round(size / 1024**2, 1), "free_gib": round(avail / 1024**2, 1)}


class FreeDisk(FactBase[dict]):
    """Free space of the file system holding ``path`` (its nearest existing parent directory)."""

    def command(self, path: str = "/") -> str:
        return (
            f"p='{path}'; while [ ! -e \"$p\" ] && [ \"$p\" != / ]; do p=$(dirname \"$p\"); done; "
            "echo \"##path=$p\"; echo '##df'; df -Pk \"$p\" 2>/dev/null; true"
        )

    @staticmethod
    def default() -> dict:
        return parse_free_disk([])

    def process(self, output: list[str]) -> dict:
        return parse_free_disk(output)


# ------------------------------------------------------------------------------------------------ helpers


def driver_major(version: str | None) -> int | None:
    """580 from ``580.95.05``."""
    if not version:
        return None
    m = re.match(r"(\d+)", version)
    return int(m.group(1)) if m else None
