"""NVIDIA driver: Ubuntu 22.04/24.04 (server/headless/desktop packages, DKMS or signed prebuilt modules)
and Debian 12/13 (non-free ``nvidia-driver`` + ``nvidia-kernel-dkms``).

``plan_driver`` decides from facts alone (pure, unit-tested); ``nvidia_driver`` turns the plan into
operations. A driver that already satisfies the branch (installed major >= ``driver_branch``) is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import Directory
from pyinfra.facts.server import KernelVersion, OsRelease
from pyinfra.operations import apt, server, systemd

from llmrack.facts.drivers import KernelModules, NvidiaPackages, driver_major
from llmrack.facts.gpu import NvidiaGpus
from llmrack.facts.system import SecureBoot
from llmrack.ops import put_text, render_template, stop_host
from llmrack.packages import debian_driver_packages
from llmrack.reboot import reboot_and_wait
from llmrack.settings.nvidia import NvidiaSettings

BLACKLIST_DEST = "/etc/modprobe.d/llmrack-blacklist-nouveau.conf"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

# Packages that make up an installed driver branch (held so unattended upgrades cannot break the module).
DRIVER_PACKAGE = re.compile(
    r"^(nvidia-(driver|headless|headless-no-dkms|dkms|utils|compute-utils|kernel-common|kernel-source|"
    r"kernel-dkms|open-kernel-dkms|persistenced|firmware|smi)(-\d+)?(-server)?(-open)?|linux-modules-nvidia-.+|"
    r"libnvidia-compute-\d+(-server)?|libcuda1|firmware-nvidia-gsp)$"
)
# Packages whose version is the driver's (Ubuntu metapackages; Debian's module and nvidia-smi).
DRIVER_VERSION_PACKAGE = re.compile(
    r"^nvidia-(driver|headless|headless-no-dkms)(-\d+)?(-server)?(-open)?$|^nvidia-(open-)?kernel-dkms$|^nvidia-smi$")


@dataclass
class DriverPlan:
    action: str  # "keep" | "install" | "stop"
    reason: str
    distro: str = ""
    packages: list[str] = field(default_factory=list)
    hold: list[str] = field(default_factory=list)
    installed_version: str | None = None
    reboot_pending: bool = False
    reboot_on_change: bool = True  # False without a GPU on the bus: the module cannot load, a reboot is useless
    non_free_sources: str = ""  # Debian codename whose non-free components must be enabled
    module_op: Any = None  # the operation that installs the module packages (set by ``nvidia_driver``)


def kernel_flavour(release: str) -> str:
    """'generic' from '6.8.0-45-generic'."""
    return release.rsplit("-", 1)[-1] if "-" in release else "generic"


def ubuntu_packages(settings: NvidiaSettings, kernel_release: str, *, signed: bool,
                    distro_kernel: bool = True) -> list[str]:
    """Ubuntu's package names (restricted component). Signed modules are the prebuilt package for the running
    kernel (``linux-modules-nvidia-550-server-6.8.0-45-generic``): a flavour meta package would follow the
    GA kernel and pull a second kernel onto an HWE host. A kernel not from a package gets no headers package
    (none exists; such a kernel brings its own)."""
    b = settings.driver_branch
    open_ = "-open" if settings.open_kernel_module else ""
    dkms = [f"linux-headers-{kernel_release}", "dkms"] if distro_kernel else ["dkms"]
    if settings.driver_flavor == "desktop":
        if signed:
            return [f"linux-modules-nvidia-{b}{open_}-{kernel_release}", f"nvidia-driver-{b}{open_}"]
        return [*dkms, f"nvidia-driver-{b}{open_}"]
    if signed:
        return [f"linux-modules-nvidia-{b}-server{open_}-{kernel_release}",
                f"nvidia-headless-no-dkms-{b}-server{open_}", f"nvidia-utils-{b}-server"]
    if settings.driver_flavor == "headless":
        return [*dkms, f"nvidia-headless-{b}-server{open_}", f"nvidia-utils-{b}-server"]
    return [*dkms, f"nvidia-driver-{b}-server{open_}"]


# The branch each Debian release ships in non-free (bookworm: 535.261, trixie: 550.163).
DEBIAN_BRANCH = {"12": 535, "13": 550}


def debian_packages(settings: NvidiaSettings, kernel_release: str, installed: dict[str, str]) -> list[str]:
    """Compute-only set (no X server): DKMS module, nvidia-smi (with libnvidia-ml), libcuda, persistenced,
    GSP firmware. Headers only for a distro kernel: a custom kernel brings its own."""
    headers = [f"linux-headers-{kernel_release}"] if f"linux-image-{kernel_release}" in installed else []
    return [*headers, *debian_driver_packages(settings)]


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
        if DRIVER_VERSION_PACKAGE.match(name):
            m = re.search(r"(\d{3}\.\d+(\.\d+)?)", version)
            if m:
                return m.group(1)
    return None


def gpu_present(facts: dict[str, Any]) -> bool:
    """An NVIDIA device seen by nvidia-smi or lspci: only then can a new module be loaded by a reboot."""
    return bool((facts.get("gpus") or {}).get("count"))


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
        pending = gpu_present(facts) and bool(driver_installed) and not modules.get("nvidia") and not (
            facts.get("gpus") or {}).get("driver_version")
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

    distro_kernel = f"linux-image-{kernel}" in installed
    if distro_id == "ubuntu" and version in ("22.04", "24.04"):
        if signed and not distro_kernel:
            return DriverPlan(action="stop", distro=distro, installed_version=current,
                              reason=f"Secure Boot is on and kernel {kernel} is not one of Ubuntu's packaged kernels: "
                                     "signed prebuilt nvidia modules exist only for those. Boot an Ubuntu kernel "
                                     "or turn Secure Boot off.")
        packages = ubuntu_packages(settings, kernel, signed=signed, distro_kernel=distro_kernel)
        sources = ""
    elif distro_id == "debian" and version in ("12", "13"):
        if settings.driver_branch > DEBIAN_BRANCH[version]:
            return DriverPlan(
                action="stop", distro=distro, installed_version=current,
                reason=f"Debian {version} ships NVIDIA driver branch {DEBIAN_BRANCH[version]} in non-free; the tier "
                       f"asks for {settings.driver_branch}: set nvidia.driver_branch: {DEBIAN_BRANCH[version]} or "
                       "use Ubuntu 22.04/24.04 (branches up to 580).")
        packages = debian_packages(settings, kernel, installed)
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
        reboot_on_change=gpu_present(facts),
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
def nvidia_driver(settings: NvidiaSettings, *, apt_mirror: str = "", offline: bool = False) -> DriverPlan:
    """Install (or keep) the NVIDIA driver, blacklist nouveau and nova_core, hold packages. The reboot is the
    next stage (``driver_reboot`` with ``reboot_condition(plan)``).

    ``apt_mirror``: the base role's Debian mirror, used for the non-free components on Debian; ``offline``
    (``base.apt.offline``): the packages come from the bundle's repository, no source is written.
    """
    facts = gather_driver_facts()
    plan = plan_driver(facts, settings)
    logger.info(f"{host.print_prefix}nvidia driver: {plan.reason}")
    if plan.packages:
        logger.info(f"{host.print_prefix}nvidia driver: packages {' '.join(plan.packages)}")
    if plan.hold:
        logger.info(f"{host.print_prefix}nvidia driver: holds {' '.join(plan.hold)}")
    if plan.action == "stop":
        stop_host(f"nvidia driver: {plan.reason}",
                  name="Stop this host: the NVIDIA driver cannot be installed as configured")
        return plan

    blacklist = put_text(
        f"Write {BLACKLIST_DEST} (blacklist nouveau and nova_core)",
        render_template("nvidia_driver", BLACKLIST_DEST), BLACKLIST_DEST, mode="644",
    )
    server.shell(
        name="Rebuild the initramfs without nouveau and nova_core",
        # initramfs-tools (Debian/Ubuntu) or dracut; a host booting without an initramfs has nothing to rebuild
        commands=["if command -v update-initramfs >/dev/null; then update-initramfs -u; "
                  "elif command -v dracut >/dev/null; then dracut -f; "
                  "else echo 'no initramfs tool: nothing to rebuild'; fi"],
        _if=blacklist.did_change,
    )

    module_changed = []
    if plan.action == "install":
        if plan.non_free_sources and not offline:
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
            packages=plan.packages, update=True, cache_time=3600, no_recommends=plan.distro.startswith("debian"),
        )
        if plan.reboot_on_change:
            module_changed.append(driver)
        else:
            logger.warning(f"{host.print_prefix}nvidia driver: no NVIDIA GPU on the PCI bus; installed without a "
                           "reboot (the module loads when a GPU is present)")

    if plan.hold:
        server.shell(
            name="Hold the NVIDIA driver and kernel packages",
            commands=[f"apt-mark hold {' '.join(plan.hold)}"],
        )

    if host.get_fact(Directory, path="/run/systemd/system"):
        # Started only while the module is loaded: before the reboot (or without a GPU) it cannot open
        # /dev/nvidiactl; enabled, it starts at the next boot.
        loaded = bool((facts.get("modules") or {}).get("nvidia"))
        systemd.service(
            name="Enable nvidia-persistenced" + (" and start it" if loaded else " (starts at boot)"),
            service="nvidia-persistenced.service", running=True if loaded else None, enabled=True,
        )
    else:
        logger.warning(f"{host.print_prefix}nvidia driver: systemd is not PID 1; nvidia-persistenced not managed")

    if module_changed:
        plan.module_op = module_changed[0]
    return plan


def reboot_condition(plan: DriverPlan) -> Callable[[], bool] | None:
    """When the driver stage needs a reboot: always (packages installed, module not loaded, a GPU present),
    after the module packages changed, or never (``None``)."""
    if plan.reboot_pending:
        return lambda: True
    if plan.module_op is not None:
        return plan.module_op.did_change
    return None


@deploy("Reboot for the nvidia kernel module")
def driver_reboot(settings: NvidiaSettings, when: Callable[[], bool], *, check_gpu: bool = True) -> None:
    """``nvidia.reboot: auto``: reboot, wait until the host is back, check the module and nvidia-smi, go on.
    ``never``: stop this host with one line saying a reboot is needed and what to run after it.

    ``when`` is evaluated at execution (a driver operation's ``did_change``); ``check_gpu`` is off only where
    no GPU can answer (a forced reboot of a GPU-less host).
    """
    if settings.reboot == "never":
        stop_host(
            "the nvidia kernel module changed and nvidia.reboot is 'never': reboot this host, then run the same "
            "deploy again (it continues from here)",
            name="Stop this host: reboot needed for the new nvidia kernel module", _if=when,
        )
        return
    reboot_and_wait(name="Reboot to load the new nvidia kernel module", _if=when)
    if check_gpu:
        server.shell(
            name="Check that the nvidia module is loaded and nvidia-smi answers after the reboot",
            commands=["test -d /sys/module/nvidia", "nvidia-smi -L"], _if=when,
        )
