"""pyinfra facts about the NVIDIA software stack: kernel modules, driver and CUDA packages, the container
toolkit and its CDI spec (same ``##section`` convention as :mod:`llmrack.facts.gpu`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pyinfra.api import FactBase

from llmrack.facts._parse import _kv, _sections

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


def driver_major(version: str | None) -> int | None:
    """580 from ``580.95.05``."""
    if not version:
        return None
    m = re.match(r"(\d+)", version)
    return int(m.group(1)) if m else None
