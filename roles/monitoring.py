"""Monitoring: Prometheus, Alertmanager, exporters (and Grafana) as the compose project ``llmrack-monitoring``.

Configuration files are staged in ``<directory>/staging/``; files whose live copy differs are checked with the
real tools inside the images that will read them (``promtool check config`` — which also checks the rule
files —, ``amtool check-config``), copied live, and only then is the running service reloaded over HTTP
(``/-/reload``, Prometheus runs with ``--web.enable-lifecycle``). The compose file is checked with
``docker compose config`` before ``up``; ``up`` runs only when it changed, a service is not running or a
running one differs from the live file (compose's config hash).
Images are never pulled: the offline bundle loaded them.
"""

from __future__ import annotations

import shlex

from pyinfra import host as pyinfra_host
from pyinfra.api import FactBase, deploy
from pyinfra.operations import files, server

from llmrack.config import HostSpec, Inventory
from llmrack.facts.stack import ComposeDrift
from llmrack.monitoring.images import MONITORING_UID
from llmrack.monitoring.prometheus import ScrapePorts
from llmrack.monitoring.render import PROJECT, compose_model, host_files
from llmrack.monitoring.secrets import MonitoringSecrets
from llmrack.ops import FollowUp, SetFile, install_checked, install_set
from llmrack.settings.monitoring import MonitoringSettings


class RunningServices(FactBase):
    """Names of the running services of a compose project (empty when none or no compose)."""

    def command(self, directory: str, project: str) -> str:
        return (f"cd {shlex.quote(directory)} 2>/dev/null && docker compose --project-name {shlex.quote(project)} "
                "ps --status running --services 2>/dev/null || true")

    def process(self, output: list[str]) -> list[str]:
        return sorted(line.strip() for line in output if line.strip())


def _check_commands(directory: str, settings: MonitoringSettings, stale: list[str]) -> list[str]:
    staging = shlex.quote(f"{directory}/staging")
    img = settings.images
    cmds = []
    if any(p.startswith("prometheus/") for p in stale):
        cmds.append(f"docker run --rm --pull never --network none -v {staging}/prometheus:/etc/prometheus:ro "
                    f"--entrypoint promtool {shlex.quote(img.prometheus)} check config /etc/prometheus/prometheus.yml")
    if any(p.startswith("alertmanager/") for p in stale):
        cmds.append(f"docker run --rm --pull never --network none -v {staging}/alertmanager:/etc/alertmanager:ro "
                    f"--entrypoint amtool {shlex.quote(img.alertmanager)} check-config "
                    "/etc/alertmanager/alertmanager.yml")
    return cmds


def _reload(settings: MonitoringSettings, ports: ScrapePorts, service: str, port: int) -> str:
    """POST /-/reload when the service runs (a stopped one reads the new files when it starts; one just started
    by ``up`` is waited for)."""
    url = f"http://{settings.bind_address}:{port}/-/reload"
    return (f"if docker compose --project-name {PROJECT} ps --status running -q {service} 2>/dev/null | grep -q .; "
            f"then curl -fsS -X POST --retry 15 --retry-delay 1 --retry-all-errors {shlex.quote(url)}; fi")


@deploy("Monitoring")
def monitoring(
    settings: MonitoringSettings, *, inventory: Inventory, host: HostSpec, secrets: MonitoringSecrets,
    ports: ScrapePorts | None = None, qdrant_api_key: str | None = None,
) -> None:
    """Write, check and activate the monitoring stack of one host (exporters everywhere, Prometheus and
    Alertmanager on the monitoring host). ``settings`` is ``host.profile.monitoring``; ``qdrant_api_key``: the
    key Prometheus scrapes the host's Qdrant with."""
    if not settings.enabled:
        return
    if settings != host.profile.monitoring:
        host = host.model_copy(update={"profile": host.profile.model_copy(update={"monitoring": settings})})
    ports = ports or ScrapePorts()
    d = settings.directory
    owner = "llmrack-monitoring"
    server.group(name=f"Create group {owner} (gid {MONITORING_UID}) that reads the monitoring secrets",
                 group=owner, gid=MONITORING_UID)
    everything = host_files(inventory, host, secrets, ports=ports, qdrant_api_key=qdrant_api_key)
    desired = [f for f in everything if f.path != "compose.yaml"]
    dirs = sorted({f"{d}/staging/{f.path.rsplit('/', 1)[0]}" for f in desired if "/" in f.path}
                  | {f"{d}/{f.path.rsplit('/', 1)[0]}" for f in desired if "/" in f.path})
    files.directory(name=f"Create {d}", path=d, mode="755")
    files.directory(name=f"Create {d}/staging", path=f"{d}/staging", mode="750")
    for path in dirs:
        secret_dir = path.endswith("/secrets")
        files.directory(name=f"Create {path}", path=path, mode="750" if secret_dir else "755",
                        group=owner if secret_dir else None)

    # a change owes the running service its reload (kept on the host until it ran: llmrack.ops.FollowUp)
    follow = {"prometheus": FollowUp("prometheus-reload", "Prometheus's reload"),
              "alertmanager": FollowUp("alertmanager-reload", "Alertmanager's reload"),
              "grafana": FollowUp("grafana-restart", "the restart of Grafana and the alert relay")}
    owner_of = {"prometheus/": "prometheus", "alertmanager/": "alertmanager", "grafana/": "grafana",
                "secrets/": "grafana"}
    by_service: dict[str, dict[str, SetFile]] = {}
    for f in desired:
        service = next((s for prefix, s in owner_of.items() if f.path.startswith(prefix)), "grafana")
        by_service.setdefault(service, {})[f.path] = SetFile(f.content, "640" if f.secret else "644",
                                                             owner if f.secret else None)
    for service, wanted in by_service.items():
        install_set(f"Check the {service} configuration and make it live", wanted, staging=f"{d}/staging",
                    live=d, check=lambda stale: " && ".join(_check_commands(d, settings, stale)),
                    follow_up=follow[service])

    # ---- compose project
    compose = everything[0]
    compose_changed = install_checked(
        f"Check {d}/compose.yaml with docker compose config and make it live", compose.content, f"{d}/compose.yaml",
        f"cd {shlex.quote(d)} && docker compose -f {{}} config -q",
    ) is not None
    wanted = sorted(compose_model(inventory, host, ports=ports).services)
    running = pyinfra_host.get_fact(RunningServices, directory=d, project=PROJECT)
    # decided from the running containers too: a run interrupted after the copy left them on the old file
    drift = pyinfra_host.get_fact(ComposeDrift, directory=d, project=PROJECT)
    if compose_changed or running != wanted or drift:
        server.shell(
            name=f"Start the compose project {PROJECT} ({', '.join(wanted)})",
            commands=[f"cd {shlex.quote(d)} && docker compose --project-name {PROJECT} up -d --remove-orphans "
                      ""],
        )
    # after ``up`` too: it recreates only services whose definition changed, not those whose files did
    follow["prometheus"].run(server.shell, name="Reload Prometheus after its configuration changed",
                             commands=[_reload(settings, ports, "prometheus", ports.prometheus)])
    follow["alertmanager"].run(server.shell, name="Reload Alertmanager after its configuration changed",
                               commands=[_reload(settings, ports, "alertmanager", ports.alertmanager)])
    follow["grafana"].run(server.shell, name="Restart Grafana and the alert relay after their files changed",
                          commands=[f"cd {shlex.quote(d)} && docker compose --project-name {PROJECT} "
                                    "restart grafana alert-relay 2>/dev/null || true"])
