"""Monitoring pipeline on real images: Prometheus + Alertmanager + exporters + a webhook receiver.

The files are the ones the role writes for a sandbox host (``host_files``), with short intervals and ``for:``
durations. node-exporter runs on the host network listening on the monitoring bridge's gateway, as the
compose file runs it. The scrape target standing in for vLLM serves a static exposition with vLLM's current
metric names (tests/fixtures/monitoring/vllm_metrics.prom): this test checks the alert pipeline and that every
dashboard query evaluates, not vLLM itself. test_verify.py runs every panel's query against a deployed sandbox
host's Prometheus scraping the real vLLM after real traffic (each must return data), and kills that vLLM
container and waits for the alert at a webhook there. Every container and the network are named
``llmrack-mon-*`` and removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import build_lock

from llmrack.monitoring.dashboards import panel_queries
from llmrack.monitoring.example import example_inventory
from llmrack.monitoring.images import build_monitoring_images
from llmrack.monitoring.prometheus import bridge_gateway
from llmrack.monitoring.render import host_files
from llmrack.monitoring.secrets import MonitoringSecrets
from llmrack.settings.monitoring import MonitoringSettings

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "monitoring"
P = "llmrack-mon-"
NET = f"{P}net"
FOR_DOWN_S = 6
SCRAPE_S = 2

HOOK = r"""
import json, http.server
got = []
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200); self.end_headers()
    def do_GET(self):
        body = json.dumps(got).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}: {out.stderr.strip()}")
    return out


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def host_port(name: str, port: int) -> int:
    return int(docker("port", name, f"{port}/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1])


def cleanup() -> None:
    names = docker("ps", "-aq", "--filter", f"name=^{P}", check=False).stdout.split()
    if names:
        docker("rm", "-f", *names, check=False)
    docker("network", "rm", NET, check=False)


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, object]]:
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.fail("no Docker engine answers: the monitoring integration test needs one")
    with build_lock():
        images = build_monitoring_images(log=lambda m: None,
                                         names=["prometheus", "alertmanager", "node-exporter", "nginx-exporter",
                                                "postgres-exporter", "alert-relay"])
    cleanup()
    mon = MonitoringSettings.model_validate({
        "grafana": False, "dcgm_exporter": False, "retention_time": "1d", "retention_size": "1GB",
        "scrape_interval": f"{SCRAPE_S}s", "scrape_timeout": f"{SCRAPE_S}s", "evaluation_interval": "1s",
        "alert_for": {"target_down": f"{FOR_DOWN_S}s"},
        "alertmanager": {"webhook_urls": ["http://hook:8080/"], "group_wait": "1s", "group_interval": "2s"},
    })
    inv = example_inventory("sandbox")
    host = inv.hosts[0]
    host = host.model_copy(update={"profile": host.profile.model_copy(update={"monitoring": mon})})
    inv = inv.model_copy(update={"hosts": [host]})
    work = Path(tempfile.mkdtemp(prefix=P))
    os.chmod(work, 0o755)
    for f in host_files(inv, host, MonitoringSecrets(grafana_admin_password="x" * 24)):
        dest = work / f.path
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        dest.write_text(f.content)
        dest.chmod(0o644)
    for d in [work, *work.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)
    static = work / "static"
    static.mkdir(mode=0o755)
    shutil.copy(FIXTURES / "vllm_metrics.prom", static / "metrics")
    shutil.copy(FIXTURES / "stub_status", static / "stub_status")
    for f in static.iterdir():
        f.chmod(0o644)

    docker("network", "create", "--subnet", mon.network_subnet, NET)
    run = ["run", "-d", "--pull", "never", "--network", NET]
    serve = ["--entrypoint", "python3", "-v", f"{static}:/srv:ro", images["alert-relay"], "-m", "http.server",
             "--directory", "/srv"]
    docker(*run, "--name", f"{P}vllm", "--network-alias", "vllm-llmrack-tiny", *serve, "8000")
    docker(*run, "--name", f"{P}gateway", "--network-alias", "gateway", *serve, "8081")
    docker(*run, "--name", f"{P}hook", "--network-alias", "hook", "-p", "127.0.0.1::8080",
           "--entrypoint", "python3", images["alert-relay"], "-c", HOOK)
    docker(*run, "--name", f"{P}nginx-exporter", "--network-alias", "nginx-exporter", images["nginx-exporter"],
           "-nginx.scrape-uri=http://gateway:8081/stub_status", "-nginx.retries=10")
    docker(*run, "--name", f"{P}postgres-exporter", "--network-alias", "postgres-exporter",
           # refused at once: pg_up 0
           "-e", "DATA_SOURCE_NAME=postgresql://nobody@127.0.0.1:5432/postgres?sslmode=disable",
           images["postgres-exporter"])
    gw = bridge_gateway(mon)
    # as in compose.yaml, but / is a private mount on this machine: no rslave propagation
    docker("run", "-d", "--pull", "never", "--network", "host", "--pid", "host", "-v", "/:/host:ro",
           "--name", f"{P}node", images["node-exporter"], "--path.rootfs=/host",
           f"--web.listen-address={gw}:9100")
    docker(*run, "--name", f"{P}alertmanager", "--network-alias", "alertmanager",
           "-v", f"{work}/alertmanager:/etc/alertmanager:ro", images["alertmanager"],
           "--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager",
           "--cluster.listen-address=")
    docker(*run, "--name", f"{P}prometheus", "--network-alias", "prometheus", "-p", "127.0.0.1::9090",
           "-v", f"{work}/prometheus:/etc/prometheus:ro", images["prometheus"],
           "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
           "--web.enable-lifecycle")
    state = {"prom": f"http://127.0.0.1:{host_port(f'{P}prometheus', 9090)}",
             "hook": f"http://127.0.0.1:{host_port(f'{P}hook', 8080)}"}
    try:
        yield state
    finally:
        cleanup()
        shutil.rmtree(work, ignore_errors=True)


def targets(prom: str) -> list[dict]:
    return get_json(f"{prom}/api/v1/targets")["data"]["activeTargets"]  # type: ignore[index]


def wait_all_up(prom: str, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            active = targets(prom)
        except OSError:
            active = []
        if active and all(t["health"] == "up" for t in active):
            return active
        if time.monotonic() > deadline:
            pytest.fail("targets not up: " + json.dumps([(t["scrapeUrl"], t["health"], t["lastError"])
                                                         for t in active]))
        time.sleep(1)


def test_all_targets_up(stack):
    active = wait_all_up(stack["prom"])
    assert {t["labels"]["job"] for t in active} == {"node", "vllm", "nginx", "postgres", "prometheus",
                                                      "alertmanager"}
    assert all(t["labels"]["host"] == "node1" for t in active)


def test_every_dashboard_panel_query_evaluates(stack):
    wait_all_up(stack["prom"])
    time.sleep(3 * SCRAPE_S)  # two samples for rate()
    running = {"vllm", "node", "nginx", "postgres", "prometheus"}
    # the postgres exporter runs without a database here (pg_up 0): per-database series cannot exist
    no_database = {"PostgreSQL connections", "PostgreSQL database size"}
    empty = []
    for q in panel_queries():
        data = get_json(f"{stack['prom']}/api/v1/query?" + urllib.parse.urlencode({"query": q.expr}))
        assert data["status"] == "success", (q.dashboard, q.panel, q.expr, data)  # type: ignore[index]
        if q.expects_series and q.source in running and q.panel not in no_database \
                and not data["data"]["result"]:  # type: ignore[index]
            empty.append((q.dashboard, q.panel, q.expr))
    assert not empty, f"panels without data although their exporter is scraped: {empty}"


def test_killed_target_fires_target_down_to_the_webhook(stack):
    wait_all_up(stack["prom"])
    docker("kill", f"{P}vllm")
    killed = time.monotonic()
    deadline = killed + FOR_DOWN_S + SCRAPE_S + 30
    while time.monotonic() < deadline:
        got = get_json(stack["hook"])
        alerts = [a for msg in got for a in msg["alerts"]  # type: ignore[union-attr]
                  if a["labels"]["alertname"] == "LlmrackTargetDown" and a["status"] == "firing"]
        assert {a["labels"]["instance"] for a in alerts} <= {"vllm-llmrack-tiny:8000"}, alerts  # no other target
        if alerts:
            elapsed = time.monotonic() - killed
            assert alerts[0]["labels"]["severity"] == "critical"
            assert elapsed >= FOR_DOWN_S  # `for:` held the alert back
            print(f"target-down reached the webhook {elapsed:.1f} s after the kill")
            return
        time.sleep(1)
    pytest.fail("no LlmrackTargetDown alert reached the webhook")
