"""Docker engine: packages (Docker CE pinned, or the distribution's docker.io), the compose v2 plugin,
/etc/docker/daemon.json (the one writer of that file), the service and the docker group.

daemon.json is merged on the admin side: a fact reads the host's file, ``llmrack.docker_daemon`` sets
llmrack's keys and keeps the others, and the file is written only when the bytes differ. dockerd restarts
only after that write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import apt, files, server, systemd

from llmrack.docker_daemon import DaemonConfig, dump_daemon_config, merge_daemon_config
from llmrack.facts.docker import DAEMON_JSON, DockerDaemonJson, DockerdVersion, dockerd_supports_validate
from llmrack.facts.system import distribution_codename, distribution_id
from llmrack.manifest import deb_control
from llmrack.ops import APT_RETRIES, FollowUp, install_checked, put_text, render_template
from llmrack.packages import DOCKER_CE, docker_packages
from llmrack.settings.docker import DockerSettings

DOCKER_UPSTREAM = "https://download.docker.com/linux"
DOCKER_KEYRING = "/etc/apt/keyrings/docker.asc"
DEB_CACHE = "/var/cache/llmrack/debs"
CE_PACKAGES = list(DOCKER_CE)
PINNED = ("docker-ce", "docker-ce-cli")  # the engine's version; the others follow Docker's repository


def docker_ce_version(version: str, distro_id: str, version_id: str, codename: str) -> str:
    """The apt version of Docker CE ``version`` for a distribution: ``5:27.5.1-1~ubuntu.24.04~noble``."""
    return f"5:{version}-1~{distro_id}.{version_id}~{codename}"


def _install_docker_ce(settings: DockerSettings, distro: dict[str, Any]) -> None:
    distro_id = distribution_id(distro)
    codename = distribution_codename(distro)
    version_id = str((distro.get("release_meta") or {}).get("VERSION_ID", "")).strip('"')
    if distro_id not in ("ubuntu", "debian"):
        raise OperationError(f"Docker CE is installed on Ubuntu or Debian only, this host runs {distro_id!r}")
    base_uri = (settings.apt_mirror or DOCKER_UPSTREAM).rstrip("/")
    uri = f"{base_uri}/{distro_id}"
    files.directory(name="Create /etc/apt/keyrings", path="/etc/apt/keyrings", mode="755")
    key = files.download(name=f"Download Docker's apt signing key to {DOCKER_KEYRING}", src=f"{uri}/gpg",
                         dest=DOCKER_KEYRING, mode="644")
    sources = put_text(
        "Write /etc/apt/sources.list.d/docker.sources",
        render_template("docker_engine", "/etc/apt/sources.list.d/docker.sources", uri=uri, codename=codename,
                        arch="amd64", keyring=DOCKER_KEYRING),
        "/etc/apt/sources.list.d/docker.sources",
    )
    pin = docker_ce_version(settings.version, distro_id, version_id, codename)
    put_text(
        "Write /etc/apt/preferences.d/docker-ce",
        render_template("docker_engine", "/etc/apt/preferences.d/docker-ce",
                        epoch_version=pin.split("~", 1)[0]),
        "/etc/apt/preferences.d/docker-ce",
    )
    apt.update(name="Update the apt cache after Docker's source changed",
               _if=lambda: key.did_change() or sources.did_change(), **APT_RETRIES)
    apt.packages(
        name=f"Install Docker CE {settings.version}",
        packages=[f"{p}={pin}" if p in PINNED else p for p in docker_packages(settings)],
        no_recommends=True, **APT_RETRIES,
    )


def _install_compose_deb(compose_deb: str) -> None:
    control = deb_control(compose_deb)
    package, version = control["Package"], control["Version"]
    installed = host.get_fact(DebPackages).get(package) or []
    if version in installed:
        return
    remote = f"{DEB_CACHE}/{Path(compose_deb).name}"
    files.directory(name=f"Create {DEB_CACHE}", path=DEB_CACHE, mode="755")
    files.put(name=f"Upload {Path(compose_deb).name}", src=compose_deb, dest=remote, mode="644")
    server.shell(name=f"Install {package} {version} from the offline bundle",
                 commands=[f"dpkg --force-confdef --force-confold -i {remote}"])


@deploy("Docker engine")
def docker_engine(
    settings: DockerSettings, *, nvidia_runtime: bool = False, compose_deb: str | None = None,
) -> None:
    distro = host.get_fact(LinuxDistribution)

    # ---- daemon.json first: the engine's first start already uses it
    current = host.get_fact(DockerDaemonJson)
    if current["error"]:
        raise OperationError(
            f"{DAEMON_JSON} on {host.name} is not valid JSON ({current['error']}): fix or remove it, then re-run"
        )
    merged = merge_daemon_config(
        current["config"], DaemonConfig.from_settings(settings, nvidia_runtime=nvidia_runtime)
    )
    text = dump_daemon_config(merged)
    changed = merged != current["config"] or not current["exists"]
    files.directory(name="Create /etc/docker", path="/etc/docker", mode="755")
    dockerd = host.get_fact(DockerdVersion)
    restart = FollowUp("docker-restart", "dockerd's restart")
    if changed and dockerd_supports_validate(dockerd):
        install_checked(f"Write {DAEMON_JSON} checked by dockerd --validate", text, DAEMON_JSON,
                        "dockerd --validate --config-file={}", follow_up=restart)
    else:
        restart.put(f"Write {DAEMON_JSON}", text, DAEMON_JSON)

    # ---- packages
    if settings.source == "distro":
        apt.packages(name="Install the distribution's docker.io", packages=docker_packages(settings),
                     no_recommends=True, **APT_RETRIES)
    else:
        _install_docker_ce(settings, distro)
    if compose_deb:
        _install_compose_deb(compose_deb)

    # ---- service
    systemd.service(name="Start and enable docker", service="docker", running=True, enabled=True)
    restart.run(systemd.service, name="Restart docker after daemon.json changed", service="docker", restarted=True)
    for user in settings.admin_users:
        server.user(name=f"Add {user} to the docker group", user=user, groups=["docker"], append=True)
