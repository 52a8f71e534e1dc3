"""Which TCP ports each host of an inventory exposes, and to whom: the firewall's allow list.

One table, by role (README "Ports each role exposes"):

* SSH: from ``hardening.admin_networks`` (every address when empty);
* the gateway's HTTPS (and HTTP redirect) port: from everywhere;
* a model published by an inference host without the gateway role (``stack.vllm.publish_port_base + i``):
  from the gateway hosts and the monitoring hosts of the inventory only;
* exporters (node, DCGM, nginx, postgres): from the monitoring hosts only;
* iperf3 (the acceptance checklist's network test, ``llmrack verify``): from the other hosts of the inventory
  only; nothing listens there but during that test;
* Prometheus / Alertmanager / Grafana, when ``monitoring.bind_address`` is not loopback: from the admin networks
  only (none when they are not set: use ``ssh -L``).

Everything else is dropped, on the input path (host-network services) and on the forward path (ports that
Docker publishes are forwarded to containers and never reach the input hook).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llmrack.config import HostSpec
from llmrack.errors import LlmrackError

# the ports Prometheus scrapes on other hosts (the defaults of llmrack.monitoring.prometheus.ScrapePorts)
NODE_EXPORTER, DCGM_EXPORTER, NGINX_EXPORTER, POSTGRES_EXPORTER = 9100, 9400, 9113, 9187
PROMETHEUS, ALERTMANAGER, GRAFANA = 9090, 9093, 3000
IPERF3 = 5201  # the acceptance network test's server (llmrack.verify.checklist)


@dataclass(frozen=True)
class Opening:
    """TCP ``ports`` open to ``sources`` (addresses/CIDRs; ``None``: every address). ``what`` names it."""

    what: str
    ports: tuple[int, ...]
    sources: tuple[str, ...] | None

    def split(self) -> tuple[list[str], list[str]]:
        """(IPv4, IPv6) networks of the sources, normalised and sorted."""
        v4: set[str] = set()
        v6: set[str] = set()
        for src in self.sources or ():
            net = ipaddress.ip_network(src, strict=False)
            (v4 if net.version == 4 else v6).add(str(net))
        return sorted(v4), sorted(v6)


def resolve(address: str) -> list[str]:
    """IP addresses of an inventory address (an IP literal, or a name resolved on the admin machine)."""
    try:
        return [str(ipaddress.ip_address(address))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(address, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise LlmrackError(f"cannot resolve {address!r} for the firewall's allow list: {exc}",
                           field="address") from None
    return sorted({str(info[4][0]) for info in infos})


def _addresses(hosts: Sequence[HostSpec], resolver: Callable[[str], list[str]]) -> tuple[str, ...]:
    out: set[str] = set()
    for h in hosts:
        for ip in resolver(h.address):
            if not ipaddress.ip_address(ip).is_loopback:
                out.add(ip)
    return tuple(sorted(out))


def gateway_ports(spec: HostSpec) -> list[int]:
    if not spec.has_role("gateway"):
        return []
    gw = spec.profile.stack.gateway
    return sorted({p for p in (gw.https_port, gw.http_port) if p})


def scrape_ports(spec: HostSpec, *, monitored_here: bool) -> list[int]:
    """Ports Prometheus on another host scrapes on ``spec`` (none when ``spec`` runs Prometheus itself)."""
    if monitored_here:
        return []
    ports = [NODE_EXPORTER]
    if spec.profile.hardware.gpu.count > 0 and spec.profile.monitoring.dcgm_exporter:
        ports.append(DCGM_EXPORTER)
    if spec.has_role("gateway"):
        ports.append(NGINX_EXPORTER)
        if spec.profile.stack.vector_store.kind == "pgvector":
            ports.append(POSTGRES_EXPORTER)
    return sorted(ports)


def published_model_ports(spec: HostSpec) -> list[int]:
    """Ports an inference host without the gateway role publishes its models on."""
    if not spec.has_role("inference") or spec.has_role("gateway"):
        return []
    stack = spec.profile.stack
    return [stack.vllm.publish_port_base + i for i in range(len(stack.models))]


def openings(spec: HostSpec, inventory: Sequence[HostSpec], *, ssh_ports: Sequence[int] = (22,),
             resolver: Callable[[str], list[str]] = resolve) -> list[Opening]:
    """What the firewall of ``spec`` lets in, besides loopback, Docker bridges and established traffic."""
    admin = tuple(spec.profile.hardening.admin_networks) or None
    return [Opening("SSH", tuple(sorted(set(ssh_ports))), admin),
            *service_openings(spec, inventory, resolver=resolver)]


def service_openings(spec: HostSpec, inventory: Sequence[HostSpec], *,
                     resolver: Callable[[str], list[str]] = resolve) -> list[Opening]:
    """The openings besides SSH (whose port the hardening role reads from the host's sshd)."""
    admin = tuple(spec.profile.hardening.admin_networks) or None
    out: list[Opening] = []
    if gw := gateway_ports(spec):
        out.append(Opening("gateway", tuple(gw), None))
    others = [h for h in inventory if h.name != spec.name]
    monitors = _addresses([h for h in others if h.has_role("monitoring")], resolver)
    gateways = _addresses([h for h in others if h.has_role("gateway")], resolver)
    if (models := published_model_ports(spec)) and (sources := tuple(sorted(set(monitors) | set(gateways)))):
        out.append(Opening("models, for the gateway and Prometheus", tuple(models), sources))
    if (scrape := scrape_ports(spec, monitored_here=spec.has_role("monitoring"))) and monitors:
        out.append(Opening("exporters, for Prometheus", tuple(scrape), monitors))
    if peers := _addresses(others, resolver):
        out.append(Opening("iperf3, for the acceptance network test from the other hosts", (IPERF3,), peers))
    mon = spec.profile.monitoring
    if spec.has_role("monitoring") and mon.enabled and admin and not _loopback(mon.bind_address):
        uis = [PROMETHEUS, ALERTMANAGER, *([GRAFANA] if mon.grafana else [])]
        out.append(Opening("monitoring web UIs, for the admin networks", tuple(sorted(uis)), admin))
    return out


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"
