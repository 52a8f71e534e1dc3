"""prometheus.yml as a model, and the scrape jobs every host of an inventory needs.

Addressing (one rule, used by the config and by the role that starts the exporters):

* Prometheus runs in the compose project ``llmrack-monitoring`` on the monitoring host and joins the serving
  stack's network (``llmrack_backend``) as external, so services of *its own* host are scraped by service name
  (``vllm-<model>:8000``, ``nginx-exporter:9113``, ``postgres-exporter:9187``, ``qdrant:6333``).
* Services of *other* hosts are scraped at ``<host address>:<port>``: model ``i`` on
  ``stack.vllm.publish_port_base + i`` (the stack publishes it on cluster nodes), Qdrant on its port, the
  nginx/postgres exporters on the host's exporter address.
* node-exporter and the DCGM exporter run on the host network of every host and listen on
  :func:`exporter_listen_address`: the host's address, or the monitoring bridge's gateway when the address is
  loopback (a single-box install), which only the host and its containers can reach.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml
from pydantic import Field

from llmrack.config import HostSpec, Inventory
from llmrack.settings._model import Settings
from llmrack.settings.monitoring import MonitoringSettings
from llmrack.settings.stack import ModelSettings
from llmrack.stack.layout import QDRANT_HTTP_PORT

PROMETHEUS_DIR = "/etc/prometheus"  # inside the container
RULES_FILE = "rules/llmrack.rules.yml"
QDRANT_KEY_FILE = "secrets/qdrant_api_key"  # next to prometheus.yml: Qdrant's /metrics needs its API key


class ScrapePorts(Settings):
    """Ports of everything Prometheus scrapes (container ports for service names, host ports otherwise)."""

    node_exporter: int = Field(9100, ge=1, le=65535)
    vllm: int = Field(8000, ge=1, le=65535, description="vLLM container port (serves /metrics).")
    nginx_exporter: int = Field(9113, ge=1, le=65535)
    dcgm_exporter: int = Field(9400, ge=1, le=65535)
    postgres_exporter: int = Field(9187, ge=1, le=65535)
    qdrant: int = Field(QDRANT_HTTP_PORT, ge=1, le=65535)
    prometheus: int = Field(9090, ge=1, le=65535)
    alertmanager: int = Field(9093, ge=1, le=65535)
    relay: int = Field(9095, ge=1, le=65535, description="WeCom/DingTalk relay (inside the monitoring network).")
    grafana: int = Field(3000, ge=1, le=65535)


# ------------------------------------------------------------------------------------------------- models


class StaticConfig(Settings):
    targets: list[str]
    labels: dict[str, str] = {}


class Authorization(Settings):
    """``Authorization: <type> <credentials>``, the credentials read from a file (never in prometheus.yml)."""

    type: str = "Bearer"
    credentials_file: str


class ScrapeJob(Settings):
    job_name: str
    metrics_path: str = "/metrics"
    scheme: str = "http"
    authorization: Authorization | None = None
    static_configs: list[StaticConfig]


class GlobalConfig(Settings):
    scrape_interval: str
    scrape_timeout: str
    evaluation_interval: str
    external_labels: dict[str, str] = {}


class AlertmanagerTargets(Settings):
    static_configs: list[StaticConfig]


class AlertingConfig(Settings):
    alertmanagers: list[AlertmanagerTargets]


class PrometheusConfig(Settings):
    """The subset of prometheus.yml llmrack writes (field names are Prometheus's own)."""

    global_: GlobalConfig = Field(..., alias="global")
    rule_files: list[str]
    alerting: AlertingConfig
    scrape_configs: list[ScrapeJob]

    model_config = Settings.model_config | {"populate_by_name": True}

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_defaults=True)


# ------------------------------------------------------------------------------------------------- naming


def served_name(model: ModelSettings) -> str:
    return model.public_name


def vllm_service(model: ModelSettings) -> str:
    """Compose service name of the vLLM serving one model (the stack's own naming)."""
    return model.service


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def bridge_gateway(settings: MonitoringSettings) -> str:
    """Gateway (host side) address of the monitoring bridge network."""
    net = ipaddress.ip_network(settings.network_subnet)
    return str(next(net.hosts()))


def exporter_listen_address(host: HostSpec) -> str:
    """Where host-network exporters of ``host`` listen: its internal address, never every interface."""
    return bridge_gateway(host.profile.monitoring) if _is_loopback(host.address) else host.address


def has_gpu_exporter(host: HostSpec) -> bool:
    return host.profile.hardware.gpu.count > 0 and host.profile.monitoring.dcgm_exporter


# ------------------------------------------------------------------------------------------------- config


def scrape_jobs(inventory: Inventory, *, this_host: HostSpec, ports: ScrapePorts) -> list[ScrapeJob]:
    """Scrape jobs for every host of the inventory, by role (sorted by job name, targets sorted)."""
    jobs: dict[str, list[StaticConfig]] = {}

    def add(job: str, target: str, host: HostSpec, **labels: str) -> None:
        jobs.setdefault(job, []).append(StaticConfig(targets=[target], labels={"host": host.name, **labels}))

    for host in inventory.hosts:
        local = host.name == this_host.name
        listen = exporter_listen_address(host)
        add("node", f"{listen}:{ports.node_exporter}", host)
        if has_gpu_exporter(host):
            add("dcgm", f"{listen}:{ports.dcgm_exporter}", host)
        stack = host.profile.stack
        if host.has_role("inference"):
            for i, model in enumerate(stack.models):
                remote_port = stack.vllm.publish_port_base + i  # published by the stack on cluster nodes
                target = f"{vllm_service(model)}:{ports.vllm}" if local else f"{host.address}:{remote_port}"
                add("vllm", target, host, model=served_name(model))
        if host.has_role("gateway"):  # the gateway hosts run the vector store (llmrack.stack.compose)
            target = "nginx-exporter" if local else exporter_listen_address(host)
            add("nginx", f"{target}:{ports.nginx_exporter}", host)
            kind = stack.vector_store.kind
            if kind == "qdrant" and local:  # Qdrant is not published: scraped by the Prometheus of its host
                add("qdrant", f"qdrant:{ports.qdrant}", host)
            elif kind == "pgvector":
                target = "postgres-exporter" if local else exporter_listen_address(host)
                add("postgres", f"{target}:{ports.postgres_exporter}", host)
    add("prometheus", f"localhost:{ports.prometheus}", this_host)
    add("alertmanager", f"alertmanager:{ports.alertmanager}", this_host)
    auth = {"qdrant": Authorization(credentials_file=QDRANT_KEY_FILE)}  # relative to prometheus.yml
    return [
        ScrapeJob(job_name=name, authorization=auth.get(name),
                  static_configs=sorted(cfgs, key=lambda c: (c.targets, sorted(c.labels.items()))))
        for name, cfgs in sorted(jobs.items())
    ]


def scrapes_qdrant(host: HostSpec) -> bool:
    """Whether the Prometheus of ``host`` scrapes a Qdrant (its own: Qdrant is not published)."""
    return host.has_role("monitoring") and host.has_role("gateway") and host.profile.stack.vector_store.kind == "qdrant"


def prometheus_model(
    inventory: Inventory, *, this_host: HostSpec, ports: ScrapePorts | None = None
) -> PrometheusConfig:
    ports = ports or ScrapePorts()
    mon = this_host.profile.monitoring
    return PrometheusConfig(
        global_=GlobalConfig(
            scrape_interval=mon.scrape_interval, scrape_timeout=mon.scrape_timeout,
            evaluation_interval=mon.evaluation_interval, external_labels={"monitor": f"llmrack-{this_host.name}"},
        ),
        rule_files=[RULES_FILE],  # relative to prometheus.yml: checkable anywhere
        alerting=AlertingConfig(
            alertmanagers=[AlertmanagerTargets(static_configs=[StaticConfig(targets=[f"alertmanager:{ports.alertmanager}"])])]
        ),
        scrape_configs=scrape_jobs(inventory, this_host=this_host, ports=ports),
    )


def prometheus_config(inventory: Inventory, *, this_host: HostSpec, ports: ScrapePorts | None = None) -> dict[str, Any]:
    """prometheus.yml of the monitoring host ``this_host`` as a plain dict."""
    return prometheus_model(inventory, this_host=this_host, ports=ports).dump()


def prometheus_flags(settings: MonitoringSettings, ports: ScrapePorts | None = None) -> list[str]:
    """Command-line flags of the Prometheus container (retention from the settings, lifecycle for reloads)."""
    ports = ports or ScrapePorts()
    return [
        f"--config.file={PROMETHEUS_DIR}/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        f"--storage.tsdb.retention.time={settings.retention_time}",
        f"--storage.tsdb.retention.size={settings.retention_size}",
        f"--web.listen-address=:{ports.prometheus}",
        "--web.enable-lifecycle",
    ]


def dump_yaml(data: Any) -> str:
    """YAML with sorted keys and a 'managed by' header: the one way llmrack writes monitoring files."""
    body = yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True, width=4096)
    return "# managed by llmrack: generated from the inventory and tier settings; edits are overwritten\n" + body
