"""pyinfra facts about the host system: Secure Boot, free disk, open-file limits, the distribution, the
follow-ups an earlier run left owed, a unit's enablement."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from pyinfra.api import FactBase

from llmrack.facts._parse import _kv, _sections

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


class MaxOpenFilesCeiling(FactBase):
    """PID 1's hard open-file limit: the highest limit units and sessions can get (a container's engine
    may cap it below the kernel's nr_open). None when unreadable."""

    def command(self) -> str:
        return "awk '/^Max open files/ {print $5}' /proc/1/limits 2>/dev/null || true"

    def process(self, output: list[str]) -> int | None:
        text = "".join(output).strip()
        return int(text) if text.isdigit() else None


class PendingMarks(FactBase):
    """The names of the marks in ``directory`` (:class:`llmrack.ops.FollowUp`: reloads an earlier run owes)."""

    @staticmethod
    def default() -> list[str]:
        return []

    def command(self, directory: str) -> str:
        return f"ls -1A {shlex.quote(directory)} 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        return sorted(line.strip() for line in output if line.strip())


def distribution_id(distro: dict[str, Any]) -> str:
    """``ubuntu``/``debian``/... from pyinfra's LinuxDistribution fact."""
    meta = distro.get("release_meta") or {}
    return str(meta.get("ID") or distro.get("name") or "").lower()


def distribution_codename(distro: dict[str, Any]) -> str:
    """``noble``/``bookworm``/... from pyinfra's LinuxDistribution fact."""
    meta = distro.get("release_meta") or {}
    return str(meta.get("VERSION_CODENAME") or meta.get("CODENAME") or "")


class UnitState(FactBase):
    """``systemctl is-enabled`` of a unit: enabled, disabled, masked, static ... or not-found."""

    def command(self, unit: str) -> str:
        return f"systemctl is-enabled {shlex.quote(unit)} 2>/dev/null || true"

    def process(self, output: list[str]) -> str:
        return output[0].strip() if output else "not-found"
