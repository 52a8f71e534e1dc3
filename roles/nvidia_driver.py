"""NVIDIA driver: Ubuntu 22.04/24.04 (server/headless/desktop packages, DKMS or signed prebuilt modules)
and Debian 12/13 (non-free ``nvidia-driver`` + ``nvidia-kernel-dkms``).

``plan_driver`` decides from facts alone (pure, unit-tested); ``nvidia_driver`` turns the plan into
operations. A driver that already satisfies the branch (installed major >= ``driver_branch``) is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import Directory
from pyinfra.facts.server import KernelVersion, OsRelease
from pyinfra.operations import apt, files, python, server, systemd

from llmrack.facts import KernelModules, NvidiaGpus, NvidiaPackages, SecureBoot, driver_major
from llmrack.settings.nvidia import NvidiaSettings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
BLACKLIST_DEST = "/etc/modprobe.d/llmrack-blacklist-nouveau.conf"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

# Packages that make up an installed driver branch (held so unattended upgrades cannot break the module).
DRIVER_PACKAGE = re.compile(
    r"^(nvidia-(driver|headless|headless-no-dkms|dkms|utils|compute-utils|kernel-common|kernel-source|"
    r"kernel-dkms|persistenced|firmware)(-\d+)?(-server)?(-open)?|linux-modules-nvidia-.+|"
    r"libnvidia-compute-\d+(-server)?)$"
)


@dataclass
class DriverPlan:
    action: str  # "keep" | "install" | "stop"
    reason: str
    distro: str = ""
    packages: list[str] = field(default_factory=list)
    hold: list[str] = field(default_factory=list)
    installed_version: str | None = None
    reboot_pending: bool = False
    non_free_sources: str = ""  # Debian codename whose non-free components must be enabled


def kernel_flavour(release: str) -> str:
    """'generic' from '6.8.0-45-generic'."""
    return release.rsplit("-", 1)[-1] if "-" in release else "generic"


def ubuntu_packages(settings: NvidiaSettings, kernel_release: str, *, signed: bool) -> list[str]:
    b, flav = settings.driver_branch, kernel_flavour(kernel_release)
    if settings.driver_flavor == "desktop":
        if signed:
            return [f"linux-modules-nvidia-{b}-{flav}", f"nvidia-driver-{b}"]
        return [f"linux-headers-{kernel_release}", "dkms", f"nvidia-driver-{b}"]
    if signed:
        return [f"linux-modules-nvidia-{b}-server-{flav}", f"nvidia-headless-no-dkms-{b}-server",
                f"nvidia-utils-{b}-server"]
    if settings.driver_flavor == "headless":
        return [f"linux-headers-{kernel_release}", "dkms", f"nvidia-headless-{b}-server", f"nvidia-utils-{b}-server"]
    return [f"linux-headers-{kernel_release}", "dkms", f"nvidia-driver-{b}-server"]


def debian_packages(kernel_release: str) -> list[str]:
    return [f"linux-headers-{kernel_release}", "nvidia-driver", "nvidia-kernel-dkms", "nvidia-persistenced",
            "firmware-misc-nonfree"]


def kernel_meta_packages(installed: dict[str, str], kernel_release: str) -> list[str]:
    """Installed kernel packages to hold: the running kernel's and the flavour's meta packages."""
    flav = kernel_flavour(kernel_release)
    names = [f"linux-image-{kernel_release}", f"linux-headers-{kernel_release}", f"linux-{flav}",
             f"linux-image-{flav}", f"linux-headers-{flav}", "linux-image-amd64", "linux-headers-amd64"]
    return [n for n in names if n in installed]


def installed_driver_version(facts: dict[str, Any]) -> str | None:
    gpus = facts.get("gpus") or {}
    modules = facts.get("modules") or {}
    if gpus.get("driver_version"):
        return gpus["driver_version"]
    if modules.get("nvidia_version"):
        return modules["nvidia_version"]
    installed = (facts.get("packages") or {}).get("installed", {})
    for name, version in sorted(installed.items()):
        if re.match(r"^nvidia-(driver|headless|headless-no-dkms)(-\d+)?(-server)?$", name):
            m = re.search(r"(\d{3}\.\d+(\.\d+)?)", version)
            if m:
                return m.group(1)
    return None


def plan_driver(facts: dict[str, Any], settings: NvidiaSettings) -> DriverPlan:
    """What the driver role does on a host with these facts.

    ``facts``: ``os_release``, ``kernel`` (uname -r), ``gpus``, ``modules``, ``packages``, ``secure_boot``.
    """
    os_release = facts.get("os_release") or {}
    distro_id, version = os_release.get("id", ""), os_release.get("version_id", "")
    codename = os_release.get("version_codename", "")
    kernel = facts.get("kernel") or ""
    pkgs = facts.get("packages") or {"installed": {}, "held": []}
    installed: dict[str, str] = pkgs.get("installed", {})
    held = set(pkgs.get("held", []))
    modules = facts.get("modules") or {}
    secure_boot = facts.get("secure_boot", "unknown")
    current = installed_driver_version(facts)
    major = driver_major(current)
    distro = f"{distro_id} {version}".strip()

    driver_installed = [n for n in installed if DRIVER_PACKAGE.match(n)]
    if major is not None and major >= settings.driver_branch:
        hold = sorted(set(driver_installed) | set(kernel_meta_packages(installed, kernel)))
        pending = bool(driver_installed) and not modules.get("nvidia") and not (facts.get("gpus") or {}).get(
            "driver_version")
        return DriverPlan(
            action="keep", distro=distro, installed_version=current, reboot_pending=pending,
            hold=[n for n in hold if n not in held] if settings.hold_packages else [],
            reason=f"driver {current} satisfies branch {settings.driver_branch}; left as installed",
        )

    signed = False
    if secure_boot == "enabled":
        if distro_id == "ubuntu" and settings.secure_boot == "signed":
            signed = True
        else:
            fix = ("set nvidia.secure_boot: signed (Ubuntu's signed prebuilt modules) or turn Secure Boot off"
                   if distro_id == "ubuntu" else "turn Secure Boot off in the firmware setup")
            return DriverPlan(action="stop", distro=distro, installed_version=current,
                              reason=f"Secure Boot is on and a DKMS-built module would not load: {fix}.")

    if distro_id == "ubuntu" and version in ("22.04", "24.04"):
        packages = ubuntu_packages(settings, kernel, signed=signed)
        sources = ""
    elif distro_id == "debian" and version in ("12", "13"):
        packages = debian_packages(kernel)
        sources = codename or {"12": "bookworm", "13": "trixie"}[version]
    else:
        return DriverPlan(action="stop", distro=distro, installed_version=current,
                          reason=f"no driver recipe for {distro or 'this OS'}: use Ubuntu 22.04/24.04 or "
                                 "Debian 12/13.")
    to_hold = [p for p in packages if p not in ("dkms",) and not p.startswith("linux-headers-")]
    to_hold += kernel_meta_packages(installed, kernel)
    why = f"installed driver {current} is older than branch {settings.driver_branch}" if current else \
        f"no NVIDIA driver installed; installing branch {settings.driver_branch}"
    return DriverPlan(
        action="install", distro=distro, packages=packages, installed_version=current, non_free_sources=sources,
        hold=sorted({p for p in to_hold if p not in held}) if settings.hold_packages else [],
        reason=why + (" (signed prebuilt modules for Secure Boot)" if signed else ""),
    )


def gather_driver_facts() -> dict[str, Any]:
    return {
        "os_release": host.get_fact(OsRelease) or {},
        "kernel": host.get_fact(KernelVersion) or "",
        "gpus": host.get_fact(NvidiaGpus),
        "modules": host.get_fact(KernelModules),
        "packages": host.get_fact(NvidiaPackages),
        "secure_boot": host.get_fact(SecureBoot),
    }


@deploy("NVIDIA driver")
def nvidia_driver(settings: NvidiaSettings, *, apt_mirror: str = "") -> DriverPlan:
    """Install (or keep) the NVIDIA driver, blacklist nouveau and nova_core, hold packages, reboot on change.

    ``apt_mirror``: the base role's Debian mirror, used for the non-free components on Debian.
    """
    facts = gather_driver_facts()
    plan = plan_driver(facts, settings)
    logger.info(f"{host.print_prefix}nvidia driver: {plan.reason}")
    if plan.action == "stop":
        python.raise_exception(DeployError, f"nvidia driver on {host.name}: {plan.reason}",
                               name="Stop this host: the NVIDIA driver cannot be installed as configured")
        return plan

    blacklist = files.template(
        name=f"Write {BLACKLIST_DEST} (blacklist nouveau and nova_core)",
        src=str(TEMPLATES / "nvidia_driver" / BLACKLIST_DEST.lstrip("/")) + ".j2",
        dest=BLACKLIST_DEST, mode="644",
    )
    server.shell(
        name="Rebuild the initramfs without nouveau and nova_core",
        commands=["update-initramfs -u"],
        _if=blacklist.did_change,
    )

    module_changed = []
    if plan.action == "install":
        if plan.non_free_sources:
            mirror = apt_mirror or DEBIAN_MIRROR
            nonfree = apt.sources_file(
                name="Enable Debian's non-free components (NVIDIA driver)",
                filename="llmrack-non-free", uris=[mirror],
                suites=[plan.non_free_sources, f"{plan.non_free_sources}-updates"],
                components=["contrib", "non-free", "non-free-firmware"],
                signed_by="/usr/share/keyrings/debian-archive-keyring.gpg",
            )
            apt.update(name="Update apt lists (non-free enabled)", _if=nonfree.did_change)
        driver = apt.packages(
            name=f"Install the NVIDIA driver branch {settings.driver_branch} packages",
            packages=plan.packages, update=True, cache_time=3600,
        )
        module_changed.append(driver)

    if plan.hold:
        server.shell(
            name="Hold the NVIDIA driver and kernel packages",
            commands=[f"apt-mark hold {' '.join(plan.hold)}"],
        )

    if host.get_fact(Directory, path="/run/systemd/system"):
        systemd.service(
            name="Enable and start nvidia-persistenced",
            service="nvidia-persistenced.service", running=True, enabled=True,
        )
    else:
        logger.warning(f"{host.print_prefix}nvidia driver: systemd is not PID 1; nvidia-persistenced not managed")

    if module_changed or plan.reboot_pending:
        if settings.reboot:
            server.reboot(
                name="Reboot to load the new nvidia kernel module",
                _if=(lambda: True) if plan.reboot_pending else module_changed[0].did_change,
            )
        else:
            python.raise_exception(
                DeployError,
                f"{host.name}: the nvidia kernel module changed; reboot the host, then run the deploy again",
                name="Stop this host: reboot needed for the new nvidia kernel module",
                _if=(lambda: True) if plan.reboot_pending else module_changed[0].did_change,
            )
    return plan
