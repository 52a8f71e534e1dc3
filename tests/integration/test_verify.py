"""``llmrack verify`` against a sandbox host running the stack, then against the same host broken on purpose,
then the alert pipeline on that host.

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

import jsonschema
import pytest
from harness import PROJECT, SANDBOX_INVENTORY, assert_converged, run_pyinfra, sandbox_env

from llmrack.config import load_inventory
from llmrack.verify import report, suite

pytestmark = pytest.mark.integration
SANDBOX_HOSTS = 1
SCRAPE_S, EVAL_S, FOR_DOWN_S, GROUP_WAIT_S, GROUP_INTERVAL_S = 5, 5, 10, 1, 2
MONITORING = {
    "scrape_interval": f"{SCRAPE_S}s", "scrape_timeout": f"{SCRAPE_S}s", "evaluation_interval": f"{EVAL_S}s",
    "alert_for": {"target_down": f"{FOR_DOWN_S}s"},
    # group_interval: the previous test's outage left an aggregation group behind; a new alert in it waits for that
    "alertmanager": {"webhook_urls": ["http://alert-hook:8080/"], "group_wait": f"{GROUP_WAIT_S}s",
                     "group_interval": f"{GROUP_INTERVAL_S}s"},
}
HOOK = ("import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_POST(self):\n"
        "        body = self.rfile.read(int(self.headers['Content-Length']))\n"
        "        sys.stdout.write(body.decode() + '\\n'); sys.stdout.flush()\n"
        "        self.send_response(200); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        "http.server.HTTPServer(('0.0.0.0', 8080), H).serve_forever()\n")


def _alerting_inventory(directory: Path) -> Path:
    inv = directory / "alerting.py"
    inv.write_text(
        "import runpy\n"
        f"_base = runpy.run_path({str(SANDBOX_INVENTORY)!r})\n"
        f"sandbox = [(n, {{**d, 'overrides': {{**d['overrides'], 'monitoring': {MONITORING!r}}}}}) "
        "for n, d in _base['sandbox']]\n"
    )
    return inv


@pytest.fixture(scope="module")
def inventory(tmp_path_factory) -> Path:
    return _alerting_inventory(tmp_path_factory.mktemp("inventory"))


@pytest.fixture(scope="module")
def deployed(sandbox_state, inventory):
    from llmrack.bundle import build_bundle_for_tier
    from llmrack.config import load_tier

    bundle = PROJECT / ".llmrack" / "bundle"  # the default bundle path; the builder is incremental
    build_bundle_for_tier(load_tier("sandbox", PROJECT), bundle, project_dir=PROJECT)
    env = {**sandbox_env(sandbox_state), "LLMRACK_BUNDLE": str(bundle)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    result = run_pyinfra(inventory, PROJECT / "deploys" / "full_stack.py", env=env, timeout=1500)
    assert_converged(result)
    yield sandbox_state
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


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
                "perf.single_stream", "perf.concurrency", "perf.rag", "sec.gateway_auth", "sec.ports"):
        assert checks[cid].status == "pass", (cid, checks[cid].message)
    for cid in ("hw.gpu_count", "sw.driver", "perf.multi_gpu"):
        assert checks[cid].status == "skip" and checks[cid].skip_reason == "not applicable"
    doc = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(doc, report.load_schema())
    assert doc["hosts"][0]["bench"]["levels"][-1]["concurrency"] == 20


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
        f"sandbox = [(n, {{**d, 'overrides': {over!r}}}) for n, d in _base['sandbox']]\n"
    )
    return inv


def test_verify_reports_a_broken_host(deployed, inventory, infra_hosts, tmp_path):
    host = next(iter(infra_hosts.values()))
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
