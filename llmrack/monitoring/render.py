"""Every file the monitoring role writes on a host, rendered from the inventory and settings.

The compose project ``llmrack-monitoring`` (``<directory>/compose.yaml``, dumped from the stack's compose model,
:mod:`llmrack.stack.compose_file`) runs:

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

from llmrack.config import HostSpec, Inventory
from llmrack.monitoring import alertmanager as am
from llmrack.monitoring import grafana
from llmrack.monitoring.dashboards import dump_json
from llmrack.monitoring.images import MONITORING_UID
from llmrack.monitoring.prometheus import (
    QDRANT_KEY_FILE,
    RULES_FILE,
    ScrapePorts,
    dump_yaml,
    exporter_listen_address,
    has_gpu_exporter,
    prometheus_config,
    prometheus_flags,
    scrapes_qdrant,
)
from llmrack.monitoring.rules import alert_rules
from llmrack.monitoring.secrets import MonitoringSecrets
from llmrack.stack.compose_file import (
    ComposeFile,
    Deploy,
    DeviceRequest,
    Healthcheck,
    Ipam,
    IpamConfig,
    Network,
    Reservations,
    Resources,
    Service,
    Volume,
)
from llmrack.stack.layout import GATEWAY_STATUS_PORT, POSTGRES_PORT, StackPaths, backend_address

PROJECT = "llmrack-monitoring"
NETWORK = "monitoring"
NGINX_STUB_STATUS = f"http://{{gateway}}:{GATEWAY_STATUS_PORT}/stub_status"  # the gateway's, on the backend network
POSTGRES_URI = f"{{vector}}:{POSTGRES_PORT}/postgres?sslmode=disable"


# every exporter and server runs without capabilities (dcgm-exporter keeps SYS_ADMIN for the GPU's profiling
# counters and is left as it ships) and under a pids limit and a memory limit
PIDS_LIMIT = 512
# the exporters hold one scrape's worth of samples; Prometheus holds the head block of the scrape targets
# (a few hundred MiB for one rack at the default retention), Alertmanager its silences and notification log
MEM_LIMITS = {"prometheus": "4g", "alertmanager": "512m", "grafana": "1g"}
EXPORTER_MEM_LIMIT = "256m"


def http_check(port: int, path: str, address: str = "127.0.0.1") -> Healthcheck:
    """A healthcheck the images can run without an HTTP client: bash's /dev/tcp, one GET, status 200."""
    address = "127.0.0.1" if address in ("", "0.0.0.0") else address
    probe = (f"exec 3<>/dev/tcp/{address}/{int(port)} && "
             f"printf 'GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '")
    return Healthcheck(test=["CMD", "bash", "-c", probe], interval="30s", timeout="5s", retries=3,
                       start_period="60s")


def locked_down(name: str, service: Service) -> Service:
    if name == "dcgm-exporter":
        return service
    opts = sorted({*(service.security_opt or []), "no-new-privileges:true"})
    return service.model_copy(update={"cap_drop": ["ALL"], "pids_limit": PIDS_LIMIT, "security_opt": opts,
                                      "mem_limit": MEM_LIMITS.get(name, EXPORTER_MEM_LIMIT)})


@dataclass(frozen=True)
class HostFile:
    path: str  # relative to monitoring.directory
    content: str
    mode: str = "0644"
    secret: bool = False  # owned by root:MONITORING_UID, 0640


def is_monitoring_host(host: HostSpec) -> bool:
    return host.has_role("monitoring")


def compose_model(inventory: Inventory, host: HostSpec, *, ports: ScrapePorts | None = None) -> ComposeFile:
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
            healthcheck=http_check(ports.node_exporter, "/metrics", listen),
            volumes=["/:/host:ro,rslave"],
            command=[
                "--path.rootfs=/host",
                f"--web.listen-address={listen}:{ports.node_exporter}",
                "--collector.filesystem.mount-points-exclude=^/(dev|proc|run|sys|var/lib/docker/.+)($|/)",
                f"--collector.textfile.directory=/host{host.profile.backup.textfile_dir}",  # llmrack_backup_*
            ],
        ),
    }
    if has_gpu_exporter(host):
        services["dcgm-exporter"] = Service(
            image=img.dcgm_exporter,
            network_mode="host",
            cap_add=["SYS_ADMIN"],
            environment={"DCGM_EXPORTER_LISTEN": f"{listen}:{ports.dcgm_exporter}"},
            deploy=Deploy(resources=Resources(reservations=Reservations(devices=[DeviceRequest(count="all")]))),
        )
    if host.has_role("gateway"):
        services["nginx-exporter"] = Service(
            image=img.nginx_exporter,
            user=uid,
            networks=nets,
            read_only=True,
            security_opt=hardening,
            healthcheck=http_check(ports.nginx_exporter, "/metrics"),
            command=[
                f"-nginx.scrape-uri={NGINX_STUB_STATUS.format(gateway=backend_address(host.profile.stack, 'gateway'))}",
                f"-web.listen-address=:{ports.nginx_exporter}",
            ],
            ports=[f"{listen}:{ports.nginx_exporter}:{ports.nginx_exporter}"] if published else None,
        )
    if host.has_role("gateway") and host.profile.stack.vector_store.kind == "pgvector":  # where Postgres runs
        pg = host.profile.stack.vector_store.pgvector
        services["postgres-exporter"] = Service(
            # root in the container only to read the stack's 0600 password file; read-only, no new privileges
            image=img.postgres_exporter,
            user="0",
            networks=nets,
            read_only=True,
            security_opt=hardening,
            healthcheck=http_check(ports.postgres_exporter, "/metrics"),
            environment={
                "DATA_SOURCE_URI": POSTGRES_URI.format(vector=backend_address(host.profile.stack, "vector")).replace(
                    "/postgres?", f"/{pg.database}?"
                ),
                "DATA_SOURCE_USER": pg.user,
                "DATA_SOURCE_PASS_FILE": "/run/secrets/postgres_password",
            },
            volumes=[f"{StackPaths.of(host.profile.stack).secrets_dir}/postgres_password:/run/secrets/postgres_password:ro"],
            command=[f"--web.listen-address=:{ports.postgres_exporter}"],
            ports=[f"{listen}:{ports.postgres_exporter}:{ports.postgres_exporter}"] if published else None,
        )
    volumes: dict[str, Volume] = {}
    if is_monitoring_host(host):
        services["prometheus"] = Service(
            image=img.prometheus,
            user=uid,
            networks=nets,
            read_only=True,  # writes only to its TSDB volume
            security_opt=hardening,
            healthcheck=http_check(ports.prometheus, "/-/healthy"),
            command=prometheus_flags(mon, ports),
            volumes=["./prometheus:/etc/prometheus:ro", "prometheus-data:/prometheus"],
            ports=[f"{bind}:{ports.prometheus}:{ports.prometheus}"],
        )
        services["alertmanager"] = Service(
            image=img.alertmanager,
            user=uid,
            networks=[NETWORK],
            read_only=True,  # writes only to its storage volume
            security_opt=hardening,
            healthcheck=http_check(ports.alertmanager, "/-/healthy"),
            command=[
                "--config.file=/etc/alertmanager/alertmanager.yml",
                "--storage.path=/alertmanager",
                f"--web.listen-address=:{ports.alertmanager}",
                "--cluster.listen-address=",
            ],
            volumes=["./alertmanager:/etc/alertmanager:ro", "alertmanager-data:/alertmanager"],
            ports=[f"{bind}:{ports.alertmanager}:{ports.alertmanager}"],
        )
        volumes = {"alertmanager-data": Volume(), "prometheus-data": Volume()}
        if am.needs_relay(mon):
            services["alert-relay"] = Service(
                image=img.relay,
                user=uid,
                networks=[NETWORK],
                read_only=True,
                security_opt=hardening,
                healthcheck=http_check(ports.relay, "/-/healthy"),
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
            volumes["grafana-data"] = Volume()
    networks = {NETWORK: Network(ipam=Ipam(config=[IpamConfig(subnet=mon.network_subnet)]))}
    if on_stack:
        networks["backend"] = Network(external=True, name=mon.stack_network)
    services = {name: locked_down(name, svc) for name, svc in sorted(services.items())}
    return ComposeFile(name=PROJECT, services=services, networks=networks, volumes=volumes)


def host_files(
    inventory: Inventory,
    host: HostSpec,
    secrets: MonitoringSecrets,
    *,
    ports: ScrapePorts | None = None,
    qdrant_api_key: str | None = None,
) -> list[HostFile]:
    """Files of ``host`` (paths relative to ``monitoring.directory``), compose file included.

    ``qdrant_api_key``: the key Prometheus sends to the host's Qdrant (a file in its config directory)."""
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
    if scrapes_qdrant(host) and qdrant_api_key is not None:
        files.append(HostFile(f"prometheus/{QDRANT_KEY_FILE}", qdrant_api_key, mode="0640", secret=True))
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
