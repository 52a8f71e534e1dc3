"""The distribution packages each stage installs, derived from the tier's settings: the one list.

The roles install exactly these lists, the offline bundle's APT repository carries their union
(:func:`tier_packages`) and the offline preflight checks a host against it, so a package a stage installs
cannot be missing from the bundle without the bundle builder and the preflight knowing it. Version pins
(``name=version``) and packages that depend on facts of the host (the running kernel's headers) are the
roles' own; the names here are the ones apt resolves.
"""

from __future__ import annotations

DOCKER_CE = ("docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin")
SSH_SERVER, UNATTENDED_UPGRADES, NFTABLES = "openssh-server", "unattended-upgrades", "nftables"
TOOLKIT = ("nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
           "libnvidia-container1")


def base_packages(base) -> list[str]:  # noqa: ANN001 - BaseSettings
    """The base role's essential packages: the tier's list, time zone data and chrony."""
    return sorted({*base.packages, "tzdata", "chrony"})


def docker_packages(docker) -> list[str]:  # noqa: ANN001 - DockerSettings
    return ["docker.io"] if docker.source == "distro" else list(DOCKER_CE)


def hardening_packages(hardening) -> list[str]:  # noqa: ANN001 - HardeningSettings
    """The hardening role's: sshd, unattended security upgrades, the firewall's nftables."""
    if not hardening.enabled:
        return []
    pkgs = [SSH_SERVER]
    if hardening.unattended_security_upgrades:
        pkgs.append(UNATTENDED_UPGRADES)
    if hardening.firewall:
        pkgs.append(NFTABLES)
    return pkgs


def host_security_packages(hardening) -> list[str]:  # noqa: ANN001 - HardeningSettings
    """The host-security role's: auditd, password quality, nftables, sudo, and fail2ban with its journal
    backend."""
    if not (hardening.enabled and hardening.host.enabled):
        return []
    pkgs = ["auditd", "libpam-pwquality", NFTABLES, "sudo"]
    if hardening.host.fail2ban:
        pkgs += ["fail2ban", "python3-systemd"]
    return pkgs


# The host-security role's audit tools (Lynis suggestions that fit a GPU server) and USBGuard.
AUDIT_TOOLS = ["libpam-tmpdir", "apt-listchanges", "debsums", "acct", "aide", "aide-common", "chkrootkit"]
USBGUARD = "usbguard"
APPARMOR = ["apparmor", "apparmor-utils"]  # CIS 1.3.1.1 (Ubuntu has them; Debian's minimal hosts may not)


def host_audit_packages(hardening) -> list[str]:  # noqa: ANN001 - HardeningSettings
    """What ``host_security`` and ``host_baseline`` install besides ``host_security_packages``: audit tools,
    AppArmor, USBGuard when on."""
    if not (hardening.enabled and hardening.host.enabled):
        return []
    return [*AUDIT_TOOLS, *APPARMOR, *([USBGUARD] if hardening.host.usb_guard else [])]


def backup_packages(backup) -> list[str]:  # noqa: ANN001 - BackupSettings
    return ["restic"] if backup.enabled else []


def debian_driver_packages(nvidia) -> list[str]:  # noqa: ANN001 - NvidiaSettings
    """Debian's compute-only driver set (the running kernel's headers come on top, from the host's facts)."""
    module = "nvidia-open-kernel-dkms" if nvidia.open_kernel_module else "nvidia-kernel-dkms"
    return [module, "nvidia-smi", "libcuda1", "nvidia-persistenced", "firmware-nvidia-gsp"]


def cuda_packages(cuda) -> list[str]:  # noqa: ANN001 - CudaSettings
    if cuda.source == "distro":
        return ["nvidia-cuda-toolkit"]
    return [f"cuda-toolkit-{cuda.version.replace('.', '-')}"]


def toolkit_packages() -> list[str]:
    return list(TOOLKIT)


def tier_packages(profile) -> list[str]:  # noqa: ANN001 - TierProfile
    """Every package a host of the tier can have installed by the full stack's stages."""
    pkgs = [*base_packages(profile.base), *docker_packages(profile.docker),
            *hardening_packages(profile.hardening), *host_security_packages(profile.hardening),
            *host_audit_packages(profile.hardening),
            *backup_packages(profile.backup)]
    nv = profile.nvidia
    if nv.enabled:  # the driver installs (and is held) even before a GPU is fitted
        pkgs += debian_driver_packages(nv)
    if nv.enabled and profile.hardware.gpu.count > 0:
        pkgs += [*(cuda_packages(nv.cuda) if nv.cuda.enabled else []), *toolkit_packages()]
    return sorted(set(pkgs))
