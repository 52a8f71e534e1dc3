"""Prometheus scrapes Qdrant's /metrics with Qdrant's API key, read from a file next to prometheus.yml.

The real Prometheus (the Debian package) runs the scrape job llmrack renders. Qdrant itself is the boundary:
no Qdrant image can be fetched here, so a small HTTP server stands in for its /metrics and answers as Qdrant
does with an API key set (401 without ``Authorization: Bearer <key>`` / ``api-key: <key>``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from llmrack.monitoring.example import example_inventory
from llmrack.monitoring.render import compose_model, host_files
from llmrack.secrets import MonitoringSecrets

KEY = "cd" * 24
SECRETS = MonitoringSecrets(grafana_admin_password="g" * 24)


class FakeQdrantMetrics(BaseHTTPRequestHandler):
    seen: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        given = self.headers.get("api-key") or self.headers.get("Authorization", "").removeprefix("Bearer ")
        FakeQdrantMetrics.seen.append(given)
        ok = self.path == "/metrics" and given == KEY
        body = b"# TYPE collections_total gauge\ncollections_total 1\n" if ok else b"Invalid api-key"
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(tmp: Path, key: str | None) -> Path:
    inv = example_inventory("standard")
    host = inv.hosts[0]
    assert host.profile.stack.vector_store.kind == "qdrant"
    for f in host_files(inv, host, SECRETS, qdrant_api_key=key):
        dest = tmp / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f.content)
    return tmp / "prometheus"


def test_the_key_is_in_a_file_only(tmp_path: Path) -> None:
    inv = example_inventory("standard")
    files = {f.path: f for f in host_files(inv, inv.hosts[0], SECRETS, qdrant_api_key=KEY)}
    key_file = files["prometheus/secrets/qdrant_api_key"]
    assert key_file.content == KEY and key_file.secret
    assert not [p for p, f in files.items() if KEY in f.content and not f.secret]
    assert KEY not in json.dumps([compose_model(inv, h).dump() for h in inv.hosts])  # no command line, no env
    job = next(j for j in yaml.safe_load(files["prometheus/prometheus.yml"].content)["scrape_configs"]
               if j["job_name"] == "qdrant")
    assert job["authorization"] == {"credentials_file": "secrets/qdrant_api_key"}


@pytest.mark.parametrize("key", [KEY, "ef" * 24])
def test_prometheus_scrapes_qdrant_with_the_key_from_the_file(tmp_path: Path, key: str) -> None:
    prometheus = shutil.which("prometheus") or pytest.fail("prometheus is not installed: apt-get install prometheus")
    d = _files(tmp_path, key)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeQdrantMetrics)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    cfg = yaml.safe_load((d / "prometheus.yml").read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "qdrant")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{srv.server_address[1]}"]}]
    cfg.update({"scrape_configs": [job], "global": {**cfg["global"], "scrape_interval": "1s", "scrape_timeout": "1s"}})
    cfg.pop("alerting", None)
    (d / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    port = _free_port()
    proc = subprocess.Popen([prometheus, f"--config.file={d / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'db'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    health = last_error = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and health in (None, "unknown"):
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2) as r:
                    active = json.loads(r.read())["data"]["activeTargets"]
            except OSError:
                continue
            if active:
                health, last_error = active[0]["health"], active[0]["lastError"]
    finally:
        proc.terminate()
        proc.wait(10)
        srv.shutdown()
    if key == KEY:
        assert health == "up", (health, last_error)
    else:  # the file holds another key: Qdrant refuses it, the target is down (proves the file is what is sent)
        assert health == "down" and "401" in last_error, (health, last_error)
    assert FakeQdrantMetrics.seen and FakeQdrantMetrics.seen[-1] == key
