"""The compose file as a typed model: only the keys llmrack uses, unknown keys are errors. Both compose
projects are built from it: the serving stack (:mod:`llmrack.stack.compose`) and monitoring
(:mod:`llmrack.monitoring.render`).

``ComposeFile.to_yaml`` dumps it with sorted keys (never templated), so the same project always gives the same
bytes.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict


class ComposeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Healthcheck(ComposeModel):
    test: list[str]
    interval: str = "10s"
    timeout: str = "5s"
    retries: int = 3
    start_period: str = "30s"


class Ulimit(ComposeModel):
    soft: int
    hard: int


class DeviceRequest(ComposeModel):
    driver: str = "nvidia"
    device_ids: list[str] | None = None
    count: int | Literal["all"] | None = None
    capabilities: list[str] = ["gpu"]


class Reservations(ComposeModel):
    devices: list[DeviceRequest]


class Resources(ComposeModel):
    reservations: Reservations


class Deploy(ComposeModel):
    resources: Resources


class ServiceNetwork(ComposeModel):
    ipv4_address: str | None = None


class ServiceSecret(ComposeModel):
    source: str
    target: str
    mode: int = 0o400


class Logging(ComposeModel):
    driver: str
    options: dict[str, str] | None = None


class Service(ComposeModel):
    image: str
    pull_policy: Literal["never", "missing", "always"] = "never"
    restart: Literal["unless-stopped", "always", "no", "on-failure"] = "unless-stopped"
    entrypoint: list[str] | None = None
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    env_file: list[str] | None = None
    user: str | None = None
    volumes: list[str] | None = None
    networks: dict[str, ServiceNetwork] | list[str] | None = None
    network_mode: str | None = None
    pid: str | None = None
    depends_on: list[str] | None = None
    ports: list[str] | None = None
    healthcheck: Healthcheck | None = None
    shm_size: str | None = None
    ulimits: dict[str, Ulimit | int] | None = None
    deploy: Deploy | None = None
    labels: dict[str, str] | None = None
    secrets: list[ServiceSecret] | None = None
    stop_grace_period: str | None = None
    init: bool | None = None
    read_only: bool | None = None
    security_opt: list[str] | None = None
    cap_drop: list[str] | None = None  # llmrack.stack.security sets these four and the two above
    cap_add: list[str] | None = None
    tmpfs: list[str] | None = None
    pids_limit: int | None = None
    mem_limit: str | None = None
    logging: Logging | None = None


class IpamConfig(ComposeModel):
    subnet: str


class Ipam(ComposeModel):
    driver: str | None = None  # compose's default
    config: list[IpamConfig]


class Network(ComposeModel):
    name: str | None = None
    driver: str | None = None  # compose's default (bridge)
    external: bool | None = None
    internal: bool | None = None
    ipam: Ipam | None = None


class Volume(ComposeModel):
    name: str | None = None


class Secret(ComposeModel):
    file: str


class ComposeFile(ComposeModel):
    name: str
    services: dict[str, Service]
    networks: dict[str, Network]
    volumes: dict[str, Volume] | None = None
    secrets: dict[str, Secret] | None = None

    def dump(self) -> dict[str, Any]:
        """The file as plain data: keys left unset (None) are not written."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_yaml(self) -> str:
        body = yaml.safe_dump(self.dump(), sort_keys=True, default_flow_style=False, width=200)
        return "# managed by llmrack: the serving stack (generated from tiers/*.yaml; do not edit)\n" + body
