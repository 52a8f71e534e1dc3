"""Settings of the docker_engine role (the one owner of /etc/docker/daemon.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmrack.settings._model import Settings


class DockerSettings(Settings):
    source: Literal["docker-ce", "distro"] = Field(
        "docker-ce", description="Docker CE from Docker's apt repository (or its mirror), or the distro's docker.io."
    )
    version: str = Field("27.5.1", description="Docker CE version to pin (ignored for the distro package).")
    min_version: str = Field("24.0", description="Lowest acceptable engine version (acceptance checklist).")
    apt_mirror: str = Field(
        "", description="Mirror of download.docker.com/linux (e.g. https://mirrors.aliyun.com/docker-ce/linux)."
    )
    registry_mirrors: list[str] = Field([], description="Registry mirrors written to daemon.json.")
    log_max_size: str = Field("100m", description="json-file log rotation size.")
    log_max_file: int = Field(3, ge=1, description="json-file log files kept.")
    data_root: str = Field("", description="Docker data-root; empty keeps /var/lib/docker.")
    live_restore: bool = Field(True, description="Keep containers running while dockerd restarts.")
    admin_users: list[str] = Field([], description="Users added to the docker group.")
    compose_deb: str = Field(
        "",
        description="Path on the admin machine of a docker compose v2 .deb (offline bundle) installed when the "
        "engine comes from the distribution; empty: none.",
    )
