"""Base system: apt sources, essential packages, time, hostname and /etc/hosts, kernel and limits tuning,
journald, data disk.

Every step compares with the host first (pyinfra facts, or files compared by checksum), so a second run
changes nothing. Services restart only when their configuration changed.
"""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Hostname, LinuxDistribution
from pyinfra.operations import apt, files, server, systemd

from llmrack.config import DataDisk
from llmrack.facts.system import MaxOpenFilesCeiling, distribution_codename, distribution_id
from llmrack.ops import APT_CACHE_MAX_AGE_S, APT_RETRIES, FollowUp, put_text, render_template
from llmrack.packages import base_packages
from llmrack.settings.base import BaseSettings

HOSTS_BEGIN = "# BEGIN llmrack hosts"
HOSTS_END = "# END llmrack hosts"
OFFLINE_SOURCES_DIR = "/etc/apt/llmrack-offline.d"
OFFLINE_APT_CONF = "/etc/apt/apt.conf.d/60llmrack-offline"

DISTRIBUTIONS: dict[str, dict[str, Any]] = {
    "ubuntu": {
        "components": ["main", "restricted", "universe", "multiverse"],
        "keyring": "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
    },
    "debian": {
        "components": ["main", "contrib", "non-free", "non-free-firmware"],
        "keyring": "/usr/share/keyrings/debian-archive-keyring.gpg",
    },
}


def apt_sources(distro_id: str, codename: str, mirror: str) -> str:
    """The deb822 sources of the distribution from ``mirror`` (security from the mirror's -security tree
    on Debian, from the mirror itself on Ubuntu)."""
    info = DISTRIBUTIONS[distro_id]
    base = mirror.rstrip("/")
    if distro_id == "ubuntu":
        stanzas = [{"uri": base, "suites": [codename, f"{codename}-updates", f"{codename}-backports",
                                            f"{codename}-security"]}]
    else:
        stanzas = [{"uri": base, "suites": [codename, f"{codename}-updates"]},
                   {"uri": f"{base}-security", "suites": [f"{codename}-security"]}]
    return render_template("base", "/etc/apt/sources.list.d/distribution.sources", distro=distro_id,
                           mirror=base, stanzas=stanzas, components=info["components"], keyring=info["keyring"])


def with_hosts_block(current: list[str] | None, hosts: dict[str, str]) -> str:
    """/etc/hosts content with llmrack's block (one line per host) replacing any previous block."""
    lines = list(current or [])
    out: list[str] = []
    inside = False
    for line in lines:
        if line.strip() == HOSTS_BEGIN:
            inside = True
            continue
        if line.strip() == HOSTS_END:
            inside = False
            continue
        if not inside:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if hosts:
        block = [HOSTS_BEGIN, *(f"{addr} {name}" for name, addr in sorted(hosts.items())), HOSTS_END]
        out += ([""] if out else []) + block
    return "\n".join(out) + "\n" if out else ""


@deploy("Base system")
def base(
    settings: BaseSettings, *, hostname: str, hosts: dict[str, str], data_disk: DataDisk | None = None,
    offline_repo: str | None = None, offline_changed: list | None = None,
) -> None:
    """``offline_repo``: the host's copy of the bundle's APT repository (``base.apt.offline``): apt is pointed
    at it alone; ``offline_changed``: the operations that uploaded it (a change refreshes the apt lists)."""
    distro = host.get_fact(LinuxDistribution)
    distro_id = distribution_id(distro)
    codename = distribution_codename(distro)

    # ---- apt sources (only with a mirror: otherwise the distribution's own sources stay untouched)
    source_ops = []
    if settings.apt.mirror and settings.apt.manage_sources and not offline_repo:
        if distro_id not in DISTRIBUTIONS:
            raise ValueError(f"apt.mirror is set but {distro_id!r} is neither Debian nor Ubuntu")
        source_ops.append(put_text(
            f"Write /etc/apt/sources.list.d/{distro_id}.sources from {settings.apt.mirror}",
            apt_sources(distro_id, codename, settings.apt.mirror),
            f"/etc/apt/sources.list.d/{distro_id}.sources",
        ))
        source_ops.append(put_text(
            "Empty /etc/apt/sources.list (sources are deb822 files)",
            "# managed by llmrack: sources are in /etc/apt/sources.list.d/*.sources\n",
            "/etc/apt/sources.list",
        ))
    if offline_repo:
        # apt reads only this file's sources (the distribution's files stay as they are, unused)
        files.directory(name=f"Create {OFFLINE_SOURCES_DIR}", path=OFFLINE_SOURCES_DIR, mode="755")
        source_ops.append(put_text(
            f"Write {OFFLINE_SOURCES_DIR}/llmrack-bundle.sources (the offline bundle's repository)",
            f"# managed by llmrack: base.apt.offline\nTypes: deb\nURIs: file:{offline_repo}\nSuites: ./\n"
            "Trusted: yes\n",
            f"{OFFLINE_SOURCES_DIR}/llmrack-bundle.sources",
        ))
        source_ops.append(put_text(
            f"Write {OFFLINE_APT_CONF} (apt uses the offline bundle only)",
            "// managed by llmrack: base.apt.offline\n"
            'Dir::Etc::SourceList "/dev/null";\n'
            f'Dir::Etc::SourceParts "{OFFLINE_SOURCES_DIR}";\n',
            OFFLINE_APT_CONF,
        ))
        source_ops += list(offline_changed or [])
    if source_ops:
        apt.update(name="Update the apt cache after the sources changed",
                   _if=lambda: any(op.did_change() for op in source_ops), **APT_RETRIES)
    apt.update(name="Update the apt cache when older than a day", cache_time=APT_CACHE_MAX_AGE_S, **APT_RETRIES)

    # ---- chrony's configuration first, so its first start already has the right sources and policy
    chrony_restart = FollowUp("chrony-restart", "chrony's restart")
    chrony_restart.put(
        "Write /etc/chrony/chrony.conf",
        render_template("base", "/etc/chrony/chrony.conf", servers=settings.time.ntp_servers,
                        control_clock=settings.time.control_clock),
        "/etc/chrony/chrony.conf",
    )
    chrony_restart.put(
        "Write /etc/default/chrony",
        render_template("base", "/etc/default/chrony", control_clock=settings.time.control_clock),
        "/etc/default/chrony",
    )

    packages = base_packages(settings)
    apt.packages(name="Install the essential packages", packages=packages, no_recommends=True, **APT_RETRIES)

    systemd.service(name="Start and enable chrony", service="chrony", running=True, enabled=True)
    chrony_restart.run(systemd.service, name="Restart chrony after its configuration changed", service="chrony",
                       restarted=True)

    # ---- time zone (files only: timedatectl would also set the kernel's time zone)
    files.link(name=f"Link /etc/localtime to {settings.time.timezone}", path="/etc/localtime",
               target=f"/usr/share/zoneinfo/{settings.time.timezone}")
    put_text("Write /etc/timezone", f"{settings.time.timezone}\n", "/etc/timezone")

    # ---- hostname and /etc/hosts (put, not mv: in containers both files are bind mounts)
    put_text("Write /etc/hostname", f"{hostname}\n", "/etc/hostname")
    if host.get_fact(Hostname) != hostname:
        server.shell(name=f"Set the running hostname to {hostname}",
                     commands=[f"hostname {hostname}"], _ignore_errors=True)
    current_hosts = host.get_fact(FileContents, path="/etc/hosts")
    put_text("Write the llmrack hosts block of /etc/hosts", with_hosts_block(current_hosts, hosts),
             "/etc/hosts")

    # ---- kernel settings, limits, journald
    # a limit above PID 1's hard limit would make every unit (and PAM logins) fail to start: cap it there
    ceiling = host.get_fact(MaxOpenFilesCeiling)
    nofile = min(settings.nofile_limit, ceiling) if ceiling else settings.nofile_limit
    load_sysctl = FollowUp("sysctl-load", "loading /etc/sysctl.d/60-llmrack.conf", when=settings.apply_sysctl)
    load_sysctl.put(
        "Write /etc/sysctl.d/60-llmrack.conf",
        render_template("base", "/etc/sysctl.d/60-llmrack.conf", sysctl=sorted(settings.sysctl.items())),
        "/etc/sysctl.d/60-llmrack.conf",
    )
    load_sysctl.run(server.shell, name="Apply /etc/sysctl.d/60-llmrack.conf",
                    commands=["sysctl -p /etc/sysctl.d/60-llmrack.conf"])
    put_text(
        "Write /etc/security/limits.d/60-llmrack.conf",
        render_template("base", "/etc/security/limits.d/60-llmrack.conf", nofile=nofile),
        "/etc/security/limits.d/60-llmrack.conf",
    )
    reexec = FollowUp("systemd-reexec", "systemd's re-execution")
    reexec.put(
        "Write /etc/systemd/system.conf.d/60-llmrack.conf",
        render_template("base", "/etc/systemd/system.conf.d/60-llmrack.conf", nofile=nofile),
        "/etc/systemd/system.conf.d/60-llmrack.conf",
    )
    reexec.run(server.shell, name="Re-execute systemd to load its new default limits",
               commands=["systemctl daemon-reexec"])
    journald_restart = FollowUp("journald-restart", "journald's restart")
    journald_restart.put(
        "Write /etc/systemd/journald.conf.d/60-llmrack.conf",
        render_template("base", "/etc/systemd/journald.conf.d/60-llmrack.conf",
                        max_use=settings.journald_max_use),
        "/etc/systemd/journald.conf.d/60-llmrack.conf",
    )
    journald_restart.run(systemd.service, name="Restart journald after its configuration changed",
                         service="systemd-journald", restarted=True)

    # ---- data disk
    if data_disk is not None:
        files.directory(name=f"Create the mount point {data_disk.mount}", path=data_disk.mount)
        files.line(
            name=f"Add {data_disk.mount} to /etc/fstab", path="/etc/fstab",
            line=rf"^\S+\s+{data_disk.mount}\s+",
            replace=f"{data_disk.device} {data_disk.mount} {data_disk.fstype} {data_disk.options} 0 2",
        )
        server.mount(name=f"Mount {data_disk.mount}", path=data_disk.mount, mounted=True)
