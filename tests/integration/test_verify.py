"""``llmrack verify`` against an air-gapped sandbox host running the stack, then against the same host broken
on purpose, then the alert pipeline on that host. The host is the served site of served_site.py, shared with
test_stack.py (which runs first and leaves it serving).

Air gap: before the first converge the host's outbound network is cut (tests/integration/netcut.py: only
replies to connections made to it leave it, proved by a connection out that works before the cut and fails
after it) and the inventory sets ``base.apt.offline``: the full stack converges from the bundle alone (its
local APT repository, images, model and compose .deb), and a second converge changes nothing.

Streaming: the deployed gateway's nginx.conf switched to ``proxy_buffering on`` with gzip for event streams
(real buffering, reloaded in the container); perf.streaming and the smoke stream check must fail, and pass again
once it is switched back.

Broken: a tier override naming a model the host does not serve, a 4 MiB tmpfs as the 'data volume', and
the vLLM container stopped. The matching checks fail with their messages; the others still pass.

Alerts: the host is deployed with short scrape/evaluation intervals, a 10 s ``for:`` on target-down and an
Alertmanager webhook receiver (a one-file HTTP server in a container on the host's monitoring network).
Killing the real vLLM container must bring LlmrackTargetDown to that receiver within the rule's ``for`` plus
one scrape (and the evaluation and group_wait delays it cannot avoid).
"""

from __future__ import annotations

import calendar
import json
import os
import shlex
import time
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from harness import PROJECT, SANDBOX_INVENTORY, assert_converged, assert_no_changes
from served_site import EVAL_S, FOR_DOWN_S, GROUP_INTERVAL_S, GROUP_WAIT_S, SCRAPE_S

from llmrack.config import load_inventory, load_tier
from llmrack.tls import trust_anchor
from llmrack.verify import report, suite

pytestmark = pytest.mark.integration
HOOK = ("import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_POST(self):\n"
        "        body = self.rfile.read(int(self.headers['Content-Length']))\n"
        "        sys.stdout.write(body.decode() + '\\n'); sys.stdout.flush()\n"
        "        self.send_response(200); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        "http.server.HTTPServer(('0.0.0.0', 8080), H).serve_forever()\n")


@pytest.fixture(scope="module")
def sandbox_state(served_site):
    return served_site.state


@pytest.fixture(scope="module")
def inventory(served_site) -> Path:
    return served_site.inventory


@pytest.fixture(scope="module")
def airgapped(served_site, host1):
    """The host cut off, then the full stack converged twice from the bundle alone (served_site.py)."""
    return SimpleNamespace(**vars(served_site),
                           sites=host1.run("apt-get indextargets --format '$(SITE)'").stdout.split())


@pytest.fixture(scope="module")
def deployed(sandbox_state, airgapped):
    assert_converged(airgapped.first)
    env = airgapped.env
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield sandbox_state
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_the_host_reaches_nothing_outside(airgapped) -> None:
    cut = airgapped.cut
    assert cut.before_rc == 0, cut  # the same connection worked before the cut
    assert cut.after_rc != 0, cut


def test_the_full_stack_converges_from_the_bundle_alone_and_again_with_no_change(airgapped) -> None:
    assert_converged(airgapped.first)
    assert airgapped.first.changes("host1") > 0
    assert airgapped.sites and all(s.startswith("file:") for s in airgapped.sites), airgapped.sites
    assert_no_changes(airgapped.second)


def _by_id(result: suite.VerifyResult) -> dict[str, suite.CheckResult]:
    return {c.id: c for c in result.hosts[0].checks}


def test_verify_passes_on_a_deployed_sandbox_host(deployed, inventory, tmp_path):
    inv = load_inventory(inventory, PROJECT)
    res = suite.verify(inv, report_dir=tmp_path, log=lambda m: None)
    checks = _by_id(res)
    bad = {k: c.message for k, c in checks.items() if c.status in ("fail", "error")}
    assert not bad, bad
    assert res.exit_code == 0
    for cid in ("sw.vllm", "sw.vector_store", "sw.gateway_tls", "sw.prometheus", "sw.docker", "sw.compose",
                "perf.single_stream", "perf.concurrency", "perf.streaming", "perf.rag", "sec.gateway_auth",
                "sec.exposure"):
        assert checks[cid].status == "pass", (cid, checks[cid].message)
    # the gateway's certificate was checked against the CA this machine holds, not merely read
    ca = trust_anchor(PROJECT, "host1", inv.hosts[0].profile.stack.gateway.tls)
    assert checks["sw.gateway_tls"].message.endswith(f"checked against {ca}"), checks["sw.gateway_tls"].message
    for cid in ("hw.gpu_count", "sw.driver", "perf.multi_gpu", "sw.grafana"):
        assert checks[cid].status == "not_applicable" and checks[cid].message, cid
    # the sandbox tier runs the embeddings service: the RAG line timed embed (through the gateway) + search,
    # and the nearest document to its question was the right one
    rag = checks["perf.rag"]
    assert rag.details["embedded"] is True and "nearest to 'When do the backups run?' is the right" in rag.message
    assert rag.details["embed_p99_ms"] > 0 and rag.details["search_p99_ms"] > 0
    assert checks["hw.smart"].status == "manual" and "smartctl" in checks["hw.smart"].how  # no disk in a container
    print(f"perf.rag: {rag.message}")
    print(f"perf.streaming: {checks['perf.streaming'].message}")
    # checklist lines measured with the distro tools the base role installs (short sandbox durations)
    for cid in ("hw.stress_cpu", "hw.memtest", "hw.disk_io"):
        assert checks[cid].status == "pass", (cid, checks[cid].message)
    assert checks["hw.stress_cpu"].value["bogo_ops"] > 0 and checks["hw.disk_io"].value["iops"] > 0
    for cid in ("hw.network", "perf.seed_7b", "hw.thermal_load", "hw.power"):
        assert checks[cid].status == "not_applicable", (cid, checks[cid].message)
    assert checks["hw.noise"].status == checks["hw.psu_failover"].status == "manual"
    doc = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(doc, report.load_schema())
    assert doc["hosts"][0]["bench"]["levels"][-1]["concurrency"] == 20


# a panel that can only show data after an event the sandbox does not cause (vLLM answering 5xx)
EVENT_ONLY = {"API 5xx share (vLLM)"}


def test_every_dashboard_panel_has_data_from_the_real_vllm_after_traffic(deployed, host1) -> None:
    """The dashboards' queries against the host's own Prometheus, scraping the real vLLM, nginx, node and
    PostgreSQL exporters, after the benchmark of the test above and a few refused requests (4xx): every panel of
    a source this tier deploys returns data, latency quantiles included."""
    from llmrack.monitoring.dashboards import panel_queries
    from llmrack.stack.smoke_http import request

    gw = load_tier("sandbox", PROJECT).stack.gateway
    key = suite.find_api_key(PROJECT, "host1", gw.api_clients)
    ca = trust_anchor(PROJECT, "host1", gw.tls)
    url = f"https://{deployed.host('host1').address}:8443/v1/completions"

    for _ in range(3):  # unknown model: vLLM answers 404, counted in http_requests_total{status="4xx"}
        assert request("POST", url, api_key=key, body={"model": "no-such-model", "prompt": "x"}, ca=ca)[0] == 404
    time.sleep(3 * SCRAPE_S)
    deployed_sources = {"vllm", "node", "nginx", "postgres", "prometheus"}  # no GPU (dcgm), pgvector not Qdrant
    empty = []
    for q in panel_queries():
        if q.source not in deployed_sources or q.panel in EVENT_ONLY:
            continue
        out = host1.check_output("curl -sf http://127.0.0.1:9090/api/v1/query --data-urlencode %s",
                                 f"query={q.expr}")
        data = json.loads(out)
        assert data["status"] == "success", (q.panel, q.expr, data)
        if not data["data"]["result"]:
            empty.append((q.dashboard, q.panel, q.expr))
    assert not empty, f"panels without data after real traffic: {empty}"


GATEWAY_CONF = "/opt/llmrack/stack/gateway/nginx.conf"


def _reload_gateway(host) -> None:
    gw = host.check_output("docker ps -q --filter label=org.llmrack.role=gateway")
    assert gw, "no gateway container"
    assert host.run(f"docker exec {gw} nginx -c /etc/nginx/llmrack/nginx.conf -t").rc == 0
    assert host.run(f"docker exec {gw} nginx -c /etc/nginx/llmrack/nginx.conf -s reload").rc == 0
    time.sleep(2)  # the old workers finish, the new ones take over


def test_streaming_check_fails_when_the_gateway_buffers(deployed, inventory, host1) -> None:
    """Real buffering: the deployed gateway's nginx.conf switched to `proxy_buffering on` with gzip for event
    streams (nginx then holds a compressed answer until it ends, for every client that accepts gzip, as the
    OpenAI SDKs and browsers do). verify's perf.streaming and the smoke check must both fail, then pass once the
    config is back."""
    from llmrack.stack.smoke_stream import timed_stream

    inv = load_inventory(inventory, PROJECT)
    spec = inv.hosts[0]
    url = f"https://{spec.address}:{spec.profile.stack.gateway.https_port}/v1/completions"
    key = suite.find_api_key(PROJECT, spec.name, spec.profile.stack.gateway.api_clients)
    ca = trust_anchor(PROJECT, spec.name, spec.profile.stack.gateway.tls)
    conf = host1.file(GATEWAY_CONF).content_string
    assert "proxy_buffering off;" in conf and "gzip off;" in conf
    saved = "/root/nginx.conf.before-buffering"
    host1.run_test(f"cp -p {GATEWAY_CONF} {saved}")
    try:
        host1.run_test(f"sed -i -e 's/proxy_buffering off;/proxy_buffering on;/' "
                       f"-e 's/gzip off;/gzip on; gzip_types text\\/event-stream;/' {GATEWAY_CONF}")
        _reload_gateway(host1)
        res = _by_id(suite.verify(inv, only={"perf.streaming"}, log=lambda m: None))["perf.streaming"]
        assert res.status == "fail" and "buffered on the way" in res.message, res.message
        passed, seen = timed_stream(url, "llmrack-tiny", api_key=key, ca=ca).verdict()
        assert not passed and "buffered on the way" in seen, seen
        print(f"buffering on: {res.message}")
    finally:
        host1.run(f"cp -p {saved} {GATEWAY_CONF} && rm -f {saved}")
        _reload_gateway(host1)
    assert host1.file(GATEWAY_CONF).content_string == conf
    res = _by_id(suite.verify(inv, only={"perf.streaming"}, log=lambda m: None))["perf.streaming"]
    assert res.status == "pass", res.message
    print(f"buffering off: {res.message}")


def _broken_inventory(tmp_path: Path, data_path: str) -> Path:
    over = {
        "stack": {"models": [{"name": "llmrack-tiny", "served_name": "no-such-model", "source": "bundle",
                              "max_model_len": 512}]},
        "acceptance": {"data_path": data_path},
    }
    inv = tmp_path / "broken.py"
    inv.write_text(
        "import runpy\n"
        f"_base = runpy.run_path({str(SANDBOX_INVENTORY)!r})\n"
        f"sandbox = [(n, {{**d, 'overrides': {over!r}}}) for n, d in _base['sandbox'] if n == 'host1']\n"
    )
    return inv


def test_verify_reports_a_broken_host(deployed, inventory, infra_hosts, tmp_path):
    host = infra_hosts["host1"]
    mnt = "/mnt/llmrack-acc-tiny"
    assert host.run(f"mkdir -p {mnt} && mount -t tmpfs -o size=4m llmrack-acc-tiny {mnt}").rc == 0
    try:
        inv = load_inventory(_broken_inventory(tmp_path, mnt), PROJECT)
        res = suite.verify(inv, only={"software", "hardware"}, log=lambda m: None)
        checks = _by_id(res)
        assert res.exit_code == 1
        assert checks["sw.vllm"].status == "fail"
        assert "model(s) not served: no-such-model (served: llmrack-tiny)" in checks["sw.vllm"].message
        assert checks["hw.data_free"].status == "fail" and "below 1 GiB" in checks["hw.data_free"].message
        for cid in ("sw.os", "sw.docker", "sw.vector_store", "sw.prometheus", "hw.ram", "hw.cpu"):
            assert checks[cid].status == "pass", (cid, checks[cid].message)

        vllm = [n for n in host.run("docker ps --format '{{.Names}}'").stdout.split() if "vllm" in n]
        assert vllm, "no vLLM container to stop"
        assert host.run(f"docker stop {vllm[0]}").rc == 0
        ok_inv = load_inventory(inventory, PROJECT)
        res2 = suite.verify(ok_inv, only={"sw.vllm", "sw.vector_store", "perf.single_stream"}, log=lambda m: None)
        checks2 = _by_id(res2)
        assert checks2["sw.vllm"].status == "fail" and f"container {vllm[0]} is exited" in checks2["sw.vllm"].message
        assert checks2["sw.vector_store"].status == "pass"
        assert checks2["perf.single_stream"].status == "fail"
        assert res2.exit_code == 1
    finally:
        host.run(f"umount {mnt}")
        host.run("docker ps -aq --filter name=vllm | xargs -r docker start")


def _epoch(rfc3339: str) -> float:
    """Seconds since the epoch of Alertmanager's '2026-11-22T00:55:01.123456789Z' (to the second)."""
    return calendar.timegm(time.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S"))


def _prometheus(host, path: str) -> dict:
    return json.loads(host.check_output(f"curl -sf 'http://127.0.0.1:9090{path}'"))


def test_killed_vllm_fires_target_down_to_the_webhook(deployed, host1):
    vllm = next(n for n in host1.check_output("docker ps --format '{{.Names}}'").split() if "vllm" in n)
    network = next(n for n in host1.check_output("docker network ls --format '{{.Name}}'").split()
                   if n.startswith("llmrack-monitoring"))
    image = host1.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {vllm}")
    hook = "llmrack-test-alert-hook"
    host1.run(f"docker rm -f {hook}")
    assert host1.run(f"docker run -d --name {hook} --network {network} --network-alias alert-hook "
                     f"--entrypoint python3 {image} -u -c {shlex.quote(HOOK)}").rc == 0
    try:
        deadline = time.monotonic() + 300  # vLLM restarted by the previous test may still be starting
        while True:
            active = _prometheus(host1, "/api/v1/targets")["data"]["activeTargets"]
            if active and all(t["health"] == "up" for t in active):
                break
            assert time.monotonic() < deadline, [(t["scrapeUrl"], t["health"]) for t in active]
            time.sleep(2)
        assert "vllm" in {t["labels"]["job"] for t in active}

        assert host1.run(f"docker kill {vllm}").rc == 0
        killed, killed_wall = time.monotonic(), time.time()
        bound = FOR_DOWN_S + SCRAPE_S + 2 * EVAL_S + max(GROUP_WAIT_S, GROUP_INTERVAL_S) + 5
        while time.monotonic() < killed + bound + 30:
            lines = [ln for ln in host1.check_output(f"docker logs {hook} 2>&1").splitlines() if ln.startswith("{")]
            # only this outage: the previous test stopped vLLM too, and its alert may still be repeated
            alerts = [a for ln in lines for a in json.loads(ln)["alerts"]
                      if a["labels"]["alertname"] == "LlmrackTargetDown" and a["status"] == "firing"
                      and _epoch(a["startsAt"]) >= killed_wall - 1]
            if alerts:
                elapsed = time.monotonic() - killed
                assert {a["labels"]["job"] for a in alerts} == {"vllm"}, alerts
                assert alerts[0]["labels"]["severity"] == "critical" and alerts[0]["labels"]["host"] == "host1"
                assert FOR_DOWN_S <= elapsed <= bound, elapsed  # held back by `for:`, then sent at once
                print(f"target-down reached the webhook {elapsed:.1f} s after the kill (bound {bound} s)")
                return
            time.sleep(1)
        rules = _prometheus(host1, "/api/v1/alerts")["data"]["alerts"]
        am = host1.run("docker logs --tail 20 llmrack-monitoring-alertmanager-1 2>&1").stdout
        pytest.fail(f"no LlmrackTargetDown alert reached the webhook within {bound + 30} s; Prometheus alerts: "
                    f"{[(a['labels']['alertname'], a['labels'].get('job'), a['state']) for a in rules]}; "
                    f"Alertmanager log: {am[-2000:]}")
    finally:
        host1.run(f"docker rm -f {hook}")
        host1.run(f"docker start {vllm}")
