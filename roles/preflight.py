"""Preflight: compare what the host is (facts) with what its tier expects, and stop that host if they differ.

``preflight_problems`` is the pure comparison (unit-tested with recorded facts). The ``preflight`` deploy
gathers the facts, logs every problem while the plan is made (so ``--dry`` shows them), and adds one
operation that fails that host (``roles.stop``, no traceback): pyinfra then marks only this host failed,
skips the rest of its operations, and the other hosts go on. The deploy returns the problems so that the calling deploy
adds no further operations for a stopped host (nothing is changed on it).
"""

from __future__ import annotations

from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.hardware import Cpus, Memory
from pyinfra.facts.server import OsRelease

from llmrack.config import HostSpec
from llmrack.facts.drivers import KernelModules
from llmrack.facts.gpu import NvidiaGpus, XidErrors
from llmrack.facts.system import FreeDisk, SecureBoot
from llmrack.ops import stop_host
from llmrack.settings.hardware import HardwareSettings
from llmrack.settings.nvidia import NvidiaSettings

MEMORY_TOLERANCE = 0.10


def os_release_key(os_release: dict[str, Any]) -> str:
    """'ubuntu 24.04' from /etc/os-release's ID and VERSION_ID."""
    return f"{os_release.get('id', '').lower()} {os_release.get('version_id', '')}".strip()


def _gpu_summary(gpus: list[dict[str, Any]]) -> str:
    names: dict[str, int] = {}
    for g in gpus:
        label = g.get("name") or "unknown"
        if g.get("memory_gib"):
            label += f" {g['memory_gib']:.0f} GiB"
        names[label] = names.get(label, 0) + 1
    return ", ".join(f"{n}x {label}" for label, n in names.items()) or "none"


def preflight_problems(
    facts: dict[str, Any], hardware: HardwareSettings, nvidia: NvidiaSettings, *, tier: str, planned_tp: int = 1
) -> list[str]:
    """Everything that must be fixed before this host can run tier ``tier``; empty when it may go on.

    ``facts``: ``gpus`` (NvidiaGpus), ``os_release`` (OsRelease), ``secure_boot`` (SecureBoot),
    ``free_disk`` (FreeDisk); optional ``cpus`` and ``memory_mb``. Each message says what to fix.
    """
    problems: list[str] = []
    want = hardware.gpu
    gpu_fact = facts.get("gpus") or {"gpus": [], "count": 0, "source": "none"}
    gpus: list[dict[str, Any]] = gpu_fact.get("gpus", [])
    found = len(gpus)
    os_key = os_release_key(facts.get("os_release") or {})
    expect = f"{want.count}x {want.model or 'GPU'}" + (f" {want.memory_gib:g} GiB" if want.memory_gib else "")

    if want.count > 0:
        if found == 0:
            how = "nvidia-smi and lspci list no NVIDIA device"
            if gpu_fact.get("source") == "none" and not gpu_fact.get("lspci_available", True):
                how = "nvidia-smi is not installed and lspci is missing (install pciutils to detect cards)"
            problems.append(
                f"GPU: none found ({how}); tier {tier!r} expects {expect}. Check that the cards are seated and "
                "powered and visible in the BIOS, or give this host a tier without GPUs."
            )
        elif found != want.count:
            problems.append(
                f"GPU count: found {found} ({_gpu_summary(gpus)}), tier {tier!r} expects {expect}. Use a tier "
                "(or overrides: hardware.gpu.count) that matches this machine, or fix the missing cards."
            )
        if found and want.model:
            wrong = [g for g in gpus if want.model.lower() not in (g.get("name") or "").lower()]
            if wrong:
                problems.append(
                    f"GPU model: found {_gpu_summary(wrong)}, tier {tier!r} expects {want.model!r}. Use a tier "
                    "(or overrides: hardware.gpu.model) for this GPU model."
                )
        if found and want.memory_gib:
            lo, hi = want.memory_gib * (1 - MEMORY_TOLERANCE), want.memory_gib * (1 + MEMORY_TOLERANCE)
            off = [g for g in gpus if g.get("memory_gib") is not None and not lo <= g["memory_gib"] <= hi]
            if off:
                got = ", ".join(f"GPU {g['index']}: {g['memory_gib']:.1f} GiB" for g in off)
                problems.append(
                    f"GPU memory: {got}; tier {tier!r} expects {want.memory_gib:g} GiB per GPU (within "
                    f"{MEMORY_TOLERANCE:.0%}). Set hardware.gpu.memory_gib for this card, or fix the hardware."
                )
    if planned_tp > 1 and planned_tp > found:
        problems.append(
            f"Tensor parallelism: the plan uses {planned_tp} GPUs per model but this host has {found}. "
            "Lower stack.models[].tensor_parallel_size or use a host with more GPUs."
        )

    if hardware.os_releases and os_key not in hardware.os_releases:
        problems.append(
            f"OS: {os_key or 'unknown (no /etc/os-release)'} is not one of {', '.join(hardware.os_releases)}. "
            "Install a supported release or add it to hardware.os_releases."
        )

    disk = facts.get("free_disk") or {}
    free = disk.get("free_gib")
    if free is not None and free < hardware.data_free_gib_min:
        problems.append(
            f"Disk: {free:g} GiB free on {disk.get('mount') or disk.get('path')}, tier {tier!r} needs "
            f"{hardware.data_free_gib_min} GiB (hardware.data_free_gib_min). Free space or mount the data volume."
        )

    sb = facts.get("secure_boot", "unknown")
    if nvidia.enabled and want.count > 0 and sb == "enabled":
        if os_key.startswith("debian"):
            problems.append(
                "Secure Boot is on: Debian's DKMS-built nvidia module is unsigned and would not load. Turn "
                "Secure Boot off in the firmware setup (or enroll a MOK key by hand first)."
            )
        elif nvidia.secure_boot == "stop":
            problems.append(
                "Secure Boot is on: a DKMS-built nvidia module would not load. Turn Secure Boot off in the "
                "firmware setup, or set nvidia.secure_boot: signed to use Ubuntu's signed prebuilt modules."
            )
    return problems


def preflight_warnings(facts: dict[str, Any], hardware: HardwareSettings) -> list[str]:
    """Findings worth a line in the log that do not stop the deploy."""
    warnings: list[str] = []
    cpus, mem = facts.get("cpus"), facts.get("memory_mb")
    if cpus is not None and cpus < hardware.cpu_cores_min:
        warnings.append(f"CPU: {cpus} logical CPUs, the tier is sized for {hardware.cpu_cores_min}.")
    if mem is not None and mem / 1024 < hardware.ram_gib_min * 0.95:
        warnings.append(f"RAM: {mem / 1024:.0f} GiB, the tier is sized for {hardware.ram_gib_min} GiB.")
    gpu_fact = facts.get("gpus") or {}
    if gpu_fact.get("error"):
        warnings.append(f"GPU: {gpu_fact['error']} (the driver role reinstalls or reboots as needed).")
    xid = facts.get("xid") or {}
    if xid.get("count"):
        warnings.append(f"GPU: {xid['count']} NVRM Xid error(s) in the kernel log (last: {xid.get('last')}).")
    return warnings


def gather_preflight_facts(data_path: str = "/") -> dict[str, Any]:
    """The facts preflight compares, read from the current host."""
    memory = host.get_fact(Memory)
    return {
        "gpus": host.get_fact(NvidiaGpus),
        "os_release": host.get_fact(OsRelease) or {},
        "secure_boot": host.get_fact(SecureBoot),
        "free_disk": host.get_fact(FreeDisk, path=data_path),
        "modules": host.get_fact(KernelModules),
        "xid": host.get_fact(XidErrors),
        "cpus": host.get_fact(Cpus),
        "memory_mb": memory if isinstance(memory, int) else None,
    }


@deploy("Preflight checks")
def preflight(
    hardware: HardwareSettings,
    nvidia: NvidiaSettings,
    *,
    tier: str,
    planned_tp: int = 1,
    data_path: str = "/",
) -> list[str]:
    """Stop this host (and only it) when it does not match its tier; return the problems found."""
    facts = gather_preflight_facts(data_path)
    for warning in preflight_warnings(facts, hardware):
        logger.warning(f"{host.print_prefix}preflight: {warning}")
    problems = preflight_problems(facts, hardware, nvidia, tier=tier, planned_tp=planned_tp)
    if not problems:
        gpus = facts["gpus"] or {}
        logger.info(
            f"{host.print_prefix}preflight: tier {tier!r} matches "
            f"({_gpu_summary(gpus.get('gpus', []))}, {os_release_key(facts['os_release'])})"
        )
        return []
    for problem in problems:
        logger.error(f"{host.print_prefix}preflight: {problem}")
    stop_host(f"preflight (tier {tier!r}): " + " | ".join(problems),
              name=f"Stop this host: it does not match tier {tier} ({len(problems)} problem(s))")
    return problems


def preflight_host(spec: HostSpec) -> list[str]:
    """``preflight`` for a deploy file: this host's tier, the largest planned tensor parallelism and the data
    volume (or /) come from its spec."""
    profile = spec.profile
    planned_tp = max([m.tensor_parallel_size or 1 for m in profile.stack.models] or [1])
    data_path = spec.data_disk.mount if spec.data_disk else "/"
    return preflight(profile.hardware, profile.nvidia, tier=spec.tier, planned_tp=planned_tp, data_path=data_path)
