"""Every file the monitoring role writes on a host, rendered from the inventory and settings.

The compose project ``llmrack-monitoring`` (``<directory>/compose.yaml``, dumped from a model) runs:

* on every host: node-exporter (host network, listens on :func:`exporter_listen_address`), the DCGM exporter on
  GPU tiers, the nginx exporter on gateway hosts and the postgres exporter next to pgvector;
* on the monitoring host also: Prometheus, Alertmanager, the robot relay (when robots are configured) and
  Grafana (when enabled), publishing their ports on ``monitoring.bind_address`` only.

The project joins the serving stack's network (``llmrack_backend``, created by the stack) as external so
Prometheus and the exporters reach stack services by name; deploy the stack first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmrack.config import HostSpec, Inventory
from llmrack.monitoring import alertmanager as am
from llmrack.monitoring import grafana
from llmrack.monitoring.dashboards import dump_json
from llmrack.monitoring.images import MONITORING_UID
from llmrack.monitoring.prometheus import (
    RULES_FILE,
    ScrapePorts,
    dump_yaml,
    exporter_listen_address,
    has_gpu_exporter,
    prometheus_config,
    prometheus_flags,
)
from llmrack.monitoring.rules import alert_rules
from llmrack.monitoring.secrets import MonitoringSecrets
from llmrack.stack.compose import backend_address

PROJECT = "llmrack-monitoring"
NETWORK = "monitoring"
NGINX_STUB_STATUS = "http://{gateway}:8082/stub_status"  # the gateway's status server on the backend network
POSTGRES_URI = "{vector}:5432/postgres?sslmode=disable"
STACK_SECRETS = "/opt/llmrack/stack/secrets"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Service(_M):
    image: str
    pull_policy: str = "never"
    restart: str = "unless-stopped"
    user: str | None = None
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    ports: list[str] | None = None
    volumes: list[str] | None = None
    networks: list[str] | None = None
    network_mode: str | None = None
    pid: str | None = None
    cap_add: list[str] | None = None
    depends_on: list[str] | None = None
    deploy: dict[str, Any] | None = None
    read_only: bool | None = None
    security_opt: list[str] | None = None


class Network(_M):
    external: bool | None = None
    name: str | None = None
    ipam: dict[str, Any] | None = None


class Compose(_M):
    name: str = PROJECT
    services: dict[str, Service]
    networks: dict[str, Network] = Field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class HostFile:
    path: str  # relative to monitoring.directory
    content: str
    mode: str = "0644"
    secret: bool = False  # owned by root:MONITORING_UID, 0640


def is_monitoring_host(host: HostSpec) -> bool:
    return host.has_role("monitoring")


def compose_model(inventory: Inventory, host: HostSpec, *, ports: ScrapePorts | None = None) -> Compose:
    ports = ports or ScrapePorts()
    mon = host.profile.monitoring
    img = mon.images
    listen = exporter_listen_address(host)
    uid = f"{MONITORING_UID}:{MONITORING_UID}"
    bind = mon.bind_address
    hardening = ["no-new-privileges:true"]
    on_stack = host.has_role("inference") or host.has_role("gateway")
    nets = [NETWORK, "backend"] if on_stack else [NETWORK]
    published = not is_monitoring_host(host)  # remote exporters are scraped on the host's address
    services: dict[str, Service] = {
        "node-exporter": Service(
            image=img.node_exporter,
            user=uid,
            network_mode="host",
            pid="host",
            read_only=True,
            security_opt=hardening,
            volumes=["/:/host:ro,rslave"],
            command=[
                "--path.rootfs=/host",
                f"--web.listen-address={listen}:{ports.node_exporter}",
                "--collector.filesystem.mount-points-exclude=^/(dev|proc|run|sys|var/lib/docker/.+)($|/)",
            ],
        ),
    }
    if has_gpu_exporter(host):
        services["dcgm-exporter"] = Service(
            image=img.dcgm_exporter,
            network_mode="host",
            cap_add=["SYS_ADMIN"],
            environment={"DCGM_EXPORTER_LISTEN": f"{listen}:{ports.dcgm_exporter}"},
            deploy={
                "resources": {
                    "reservations": {"devices": [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}
                }
            },
        )
    if host.has_role("gateway"):
        services["nginx-exporter"] = Service(
            image=img.nginx_exporter,
            user=uid,
            networks=nets,
            read_only=True,
            security_opt=hardening,
            command=[
                f"-nginx.scrape-uri={NGINX_STUB_STATUS.format(gateway=backend_address(host.profile.stack, 'gateway'))}",
                f"-web.listen-address=:{ports.nginx_exporter}",
            ],
            ports=[f"{listen}:{ports.nginx_exporter}:{ports.nginx_exporter}"] if published else None,
        )
    if host.has_role("inference") and host.profile.stack.vector_store.kind == "pgvector":
        pg = host.profile.stack.vector_store.pgvector
        services["postgres-exporter"] = Service(
            # root in the container only to read the stack's 0600 password file; read-only, no new privileges
            image=img.postgres_exporter,
            user="0",
            networks=nets,
            read_only=True,
            security_opt=hardening,
            environment={
                "DATA_SOURCE_URI": POSTGRES_URI.format(vector=backend_address(host.profile.stack, "vector")).replace(
                    "/postgres?", f"/{pg.database}?"
                ),
                "DATA_SOURCE_USER": pg.user,
                "DATA_SOURCE_PASS_FILE": "/run/secrets/postgres_password",
            },
            volumes=[f"{STACK_SECRETS}/postgres_password:/run/secrets/postgres_password:ro"],
            command=[f"--web.listen-address=:{ports.postgres_exporter}"],
            ports=[f"{listen}:{ports.postgres_exporter}:{ports.postgres_exporter}"] if published else None,
        )
    volumes: dict[str, dict[str, Any]] = {}
    if is_monitoring_host(host):
        services["prometheus"] = Service(
            image=img.prometheus,
            user=uid,
            networks=nets,
            security_opt=hardening,
            command=prometheus_flags(mon, ports),
            volumes=["./prometheus:/etc/prometheus:ro", "prometheus-data:/prometheus"],
            ports=[f"{bind}:{ports.prometheus}:{ports.prometheus}"],
        )
        services["alertmanager"] = Service(
            image=img.alertmanager,
            user=uid,
            networks=[NETWORK],
            security_opt=hardening,
            command=[
                "--config.file=/etc/alertmanager/alertmanager.yml",
                "--storage.path=/alertmanager",
                f"--web.listen-address=:{ports.alertmanager}",
                "--cluster.listen-address=",
            ],
            volumes=["./alertmanager:/etc/alertmanager:ro", "alertmanager-data:/alertmanager"],
            ports=[f"{bind}:{ports.alertmanager}:{ports.alertmanager}"],
        )
        volumes = {"alertmanager-data": {}, "prometheus-data": {}}
        if am.needs_relay(mon):
            services["alert-relay"] = Service(
                image=img.relay,
                user=uid,
                networks=[NETWORK],
                read_only=True,
                security_opt=hardening,
                command=["--config", "/run/secrets/relay.json", "--listen", f"0.0.0.0:{ports.relay}"],
                volumes=["./secrets/relay.json:/run/secrets/relay.json:ro"],
            )
        if mon.grafana:
            services["grafana"] = Service(
                image=img.grafana,
                user=uid,
                networks=[NETWORK],
                security_opt=hardening,
                environment=grafana.environment(ports.grafana),
                volumes=[
                    "./grafana/provisioning:/etc/grafana/provisioning:ro",
                    "./grafana/dashboards:/var/lib/grafana/dashboards:ro",
                    "grafana-data:/var/lib/grafana",
                    f"./secrets/grafana_admin_password:{grafana.ADMIN_PASSWORD_FILE}:ro",
                ],
                ports=[f"{bind}:{ports.grafana}:{ports.grafana}"],
                depends_on=["prometheus"],
            )
            volumes["grafana-data"] = {}
    networks = {NETWORK: Network(ipam={"config": [{"subnet": mon.network_subnet}]})}
    if on_stack:
        networks["backend"] = Network(external=True, name=mon.stack_network)
    return Compose(services=dict(sorted(services.items())), networks=networks, volumes=volumes)


def host_files(
    inventory: Inventory,
    host: HostSpec,
    secrets: MonitoringSecrets,
    *,
    ports: ScrapePorts | None = None,
) -> list[HostFile]:
    """Files of ``host`` (paths relative to ``monitoring.directory``), compose file included."""
    mon = host.profile.monitoring
    files = [HostFile("compose.yaml", dump_yaml(compose_model(inventory, host, ports=ports).dump()))]
    if not is_monitoring_host(host):
        return files
    files += [
        HostFile("prometheus/prometheus.yml", dump_yaml(prometheus_config(inventory, this_host=host, ports=ports))),
        HostFile(f"prometheus/{RULES_FILE}", dump_yaml(alert_rules(mon, gpu=has_gpu_exporter(host)))),
        HostFile("alertmanager/alertmanager.yml", dump_yaml(am.alertmanager_config(mon))),
        HostFile("alertmanager/secrets/smtp_password", secrets.smtp_password, mode="0640", secret=True),
    ]
    if am.needs_relay(mon):
        files.append(
            HostFile(
                "secrets/relay.json",
                json.dumps(secrets.relay_config(), indent=2, sort_keys=True),
                mode="0640",
                secret=True,
            )
        )
    if mon.grafana:
        files += [
            HostFile("grafana/provisioning/datasources/llmrack.yaml", dump_yaml(grafana.datasources())),
            HostFile("grafana/provisioning/dashboards/llmrack.yaml", dump_yaml(grafana.dashboard_provider())),
            HostFile("secrets/grafana_admin_password", secrets.grafana_admin_password, mode="0640", secret=True),
        ]
        files += [
            HostFile(f"grafana/dashboards/{uid}.json", dump_json(d)) for uid, d in grafana.dashboards_for(host).items()
        ]
    return files
