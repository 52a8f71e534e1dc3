"""A four-host cluster from the sandbox inventory: host1 the gateway, host2 and host3 inference nodes, host4
the monitoring host (`LLMRACK_SANDBOX_ROLES=cluster`, the layout `llmrack sandbox up --hosts 4 --roles cluster`
keeps in its state).

host5 is never deployed: an office client on the same network.

One converge of deploys/full_stack.py (firewall on), a second run that changes nothing, then: `llmrack verify`
on every host; least-connections balancing over both nodes, seen in each node's own vLLM request counter;
Prometheus on host4 with every exporter of every host up; each port open only to the host that needs it,
probed from the other hosts, and full TCP scans (1-65535) from the office client and between the hosts; the
office client sending made-up keys gets banned by fail2ban and the alert fires. Last,
in this order: losing an inference node (the gateway keeps answering, the target-down alert fires, the node is
used again when it returns), removing/adding a node by editing the inventory (only the gateway's upstreams and
Prometheus's targets change), and rolling changes with `llmrack rollout` while a client streams through the
gateway: one that passes (no request fails) and one whose node fails its gate (rolled back, the other node
untouched, still no request fails).

Expected values are written here from the README's port table and role rules, never taken from deploy code.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from harness import (
    PROJECT,
    SANDBOX_INVENTORY,
    assert_converged,
    assert_no_changes,
    run_pyinfra,
    sandbox_bundle,
    sandbox_env,
)
from portscan import scan
from streams import Streams

SANDBOX_HOSTS = 5
FULL = PROJECT / "deploys" / "full_stack.py"
LLMRACK = Path(PROJECT / ".venv" / "bin" / "llmrack")
MODEL = "llmrack-tiny"
GATEWAY, NODES, MONITOR, CLIENT = "host1", ("host2", "host3"), "host4", "host5"
CLUSTER = "host1=gateway;host2,host3=inference;host4=monitoring"  # host5: not in the inventory
WITHOUT_HOST3 = "host1=gateway;host2=inference;host4=monitoring"
# two vLLMs load at once on a shared machine: a longer grace before "unhealthy" (it measures nothing here)
SLOW = {"stack": {"vllm": {"start_period_s": 1500}, "start_timeout_s": 1800}}


def ssh(state, name: str, command: str, timeout: int = 120) -> str:
    done = subprocess.run(["ssh", "-F", state.ssh_config, name, command], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{name}: {command}: {done.stderr[-500:]}"
    return done.stdout


@pytest.fixture(scope="module")
def cluster(sandbox_state, tmp_path_factory):
    bundle = sandbox_bundle()
    secrets = tmp_path_factory.mktemp("cluster-secrets")
    env = {**sandbox_env(sandbox_state), "LLMRACK_BUNDLE": str(bundle), "LLMRACK_SANDBOX_ROLES": CLUSTER,
           "LLMRACK_SECRETS_DIR": str(secrets), "LLMRACK_SANDBOX_OVERRIDES": json.dumps(SLOW)}
    first = run_pyinfra(SANDBOX_INVENTORY, FULL, env=env, timeout=2400)
    assert_converged(first)
    second = run_pyinfra(SANDBOX_INVENTORY, FULL, env=env, timeout=900)
    key = json.loads((secrets / GATEWAY / "api_keys.json").read_text())["tests"]
    return {"state": sandbox_state, "env": env, "first": first, "second": second, "key": key,
            "url": f"https://{sandbox_state.host(GATEWAY).address}:8443"}


def chat(cluster, n: int = 1, *, parallel: int = 1, timeout: float = 120) -> list[int]:
    """Status codes of ``n`` chat completions through the gateway (``parallel`` at a time)."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}

    def one(_i: int) -> int:
        try:
            with httpx.Client(verify=False, timeout=timeout, trust_env=False) as client:
                return client.post(f"{cluster['url']}/v1/chat/completions", json=body,
                                   headers={"Authorization": f"Bearer {cluster['key']}"}).status_code
        except httpx.HTTPError:
            return 0

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, range(n)))


def served(state, node: str) -> float:
    """vLLM's own count of finished requests on ``node`` (its /metrics, read on the node)."""
    addr = state.host(node).address
    text = ssh(state, node, f"curl -fsS --max-time 10 http://{addr}:18000/metrics")
    return sum(float(m.group(1)) for m in re.finditer(r'^vllm:request_success_total\{[^}]*\} (\S+)$', text, re.M))


def prometheus(state, path: str) -> dict:
    return json.loads(ssh(state, MONITOR, f"curl -fsS --max-time 10 'http://127.0.0.1:9090{path}'"))["data"]


def targets(state) -> dict[tuple[str, str], str]:
    """(job, host label) -> health of every active scrape target of the monitoring host."""
    return {(t["labels"]["job"], t["labels"].get("host", "")): t["health"]
            for t in prometheus(state, "/api/v1/targets?state=active")["activeTargets"]}


def wait_for(what: str, probe, timeout: float, every: float = 5):
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


PROBE = ("import socket,sys\ns=socket.socket();s.settimeout(3)\ntry:\n r=s.connect_ex((sys.argv[1],int(sys.argv[2])))"
         "\n print('open' if r==0 else 'closed')\nexcept OSError:\n print('filtered')\n")


def reach(state, source: str, target: str, port: int) -> str:
    """What ``source`` sees of ``target``'s TCP ``port``: open, or blocked (reset by the firewall's reject or
    no listener, or dropped). Every port probed blocked here is open from the host it is meant for, so a
    listener is there and the firewall is what blocks it."""
    addr = state.host(target).address
    done = subprocess.run(["ssh", "-F", state.ssh_config, source, "python3", "-", addr, str(port)], input=PROBE,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return "open" if done.stdout.strip() == "open" else "blocked"


# ----------------------------------------------------------------------------------------------- converge


def test_second_converge_changes_nothing(cluster) -> None:
    assert_no_changes(cluster["second"])
    print(f"4-host cluster: first converge {cluster['first'].wall_s:.0f} s, no-op {cluster['second'].wall_s:.0f} s")


def test_verify_passes_on_every_host(cluster, tmp_path) -> None:
    """`llmrack verify` as a user runs it: every host, checks chosen by each host's roles."""
    done = subprocess.run([str(LLMRACK), "verify", str(SANDBOX_INVENTORY), "--report", str(tmp_path)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=1500,
                          env={**__import__("os").environ, **cluster["env"]})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    doc = json.loads((tmp_path / "report.json").read_text())
    hosts = {h["name"]: {c["id"]: c["status"] for c in h["checks"]} for h in doc["hosts"]}
    assert sorted(hosts) == ["host1", "host2", "host3", "host4"]
    assert hosts[GATEWAY]["sw.vector_store"] == "pass" and hosts[GATEWAY]["perf.rag"] == "pass"
    for node in NODES:
        assert hosts[node]["sw.vllm"] == "pass"
        assert hosts[node]["sw.vector_store"] == "not_applicable"  # pgvector runs on the gateway host
    assert hosts[MONITOR]["sw.prometheus"] == "pass" and hosts[MONITOR]["sw.vllm"] == "not_applicable"


# ------------------------------------------------------------------------------------------------ serving


def test_gateway_spreads_requests_over_both_nodes(cluster) -> None:
    state = cluster["state"]
    before = {n: served(state, n) for n in NODES}
    codes = chat(cluster, 24, parallel=6)
    assert codes == [200] * 24
    after = {n: served(state, n) for n in NODES}
    got = {n: after[n] - before[n] for n in NODES}
    print(f"least_conn over 24 requests, 6 at a time: {got}")
    assert sum(got.values()) == 24
    # both took a real share (least_conn gives the faster node more, never all): not a failover trickle
    assert min(got.values()) >= 4, got


def test_prometheus_scrapes_every_exporter_of_every_node(cluster) -> None:
    expected = {("node", h) for h in ("host1", "host2", "host3", "host4")} | {
        ("vllm", "host2"), ("vllm", "host3"), ("nginx", "host1"), ("postgres", "host1"),
        ("prometheus", "host4"), ("alertmanager", "host4")}
    got = wait_for("every target up", lambda: (t := targets(cluster["state"])) and all(
        v == "up" for v in t.values()) and set(t) == expected and t, timeout=90)
    assert set(got) == expected


def test_each_port_is_open_only_to_the_host_that_needs_it(cluster) -> None:
    state = cluster["state"]
    probes = {  # (from, to, port): expected
        ("host4", "host1", 9100): "open", ("host4", "host1", 9113): "open", ("host4", "host1", 9187): "open",
        ("host3", "host1", 9100): "blocked", ("host3", "host1", 9113): "blocked",
        ("host3", "host1", 9187): "blocked", ("host3", "host1", 8443): "open",
        ("host1", "host2", 18000): "open", ("host4", "host2", 18000): "open", ("host4", "host2", 9100): "open",
        ("host3", "host2", 18000): "blocked", ("host3", "host2", 9100): "blocked",
        ("host1", "host2", 9100): "blocked",
        ("host1", "host4", 9100): "blocked",
    }
    with ThreadPoolExecutor(8) as pool:
        got = dict(zip(probes, pool.map(lambda p: reach(state, *p), probes), strict=True))
    assert got == probes


# ------------------------------------------------------------------------------------- what the LAN sees

# (from, to): every open TCP port, from the README's port table
SCANS = {
    (CLIENT, "host1"): [22, 8443],  # the office client: SSH and the gateway, nothing else anywhere
    (CLIENT, "host2"): [22],  # vLLM's published port is forwarded only for the gateway and Prometheus
    (CLIENT, "host4"): [22],  # Prometheus and Alertmanager listen on loopback
    ("host4", "host1"): [22, 8443, 9100, 9113, 9187],  # monitoring: node, nginx and postgres exporters
    ("host4", "host2"): [22, 9100, 18000],  # monitoring: node exporter and vLLM's /metrics
    ("host1", "host2"): [22, 18000],  # the gateway: its backend
}


@pytest.fixture(scope="module")
def scans(cluster) -> dict[tuple[str, str], list[int]]:
    with ThreadPoolExecutor(len(SCANS)) as pool:
        return dict(zip(SCANS, pool.map(lambda p: scan(cluster["state"], *p), SCANS), strict=True))


@pytest.mark.parametrize("pair", list(SCANS), ids=[f"{a}-to-{b}" for a, b in SCANS])
def test_a_full_scan_finds_only_the_ports_meant_for_the_scanning_host(scans, pair) -> None:
    assert scans[pair] == SCANS[pair]


def test_the_published_model_port_is_in_docker_nat_and_dropped_in_forward(cluster, scans) -> None:
    """The port is really published (a DNAT rule), so the office client's failure comes from the forward filter."""
    state = cluster["state"]
    nat = ssh(state, "host2", "iptables -t nat -S 2>/dev/null; nft list ruleset 2>/dev/null | grep -i dnat || true")
    assert "dport 18000" in nat or "--dport 18000" in nat, nat[-2000:]
    counters = ssh(state, "host2", "nft list chain inet llmrack forward")
    dropped = [ln for ln in counters.splitlines() if "published port dropped by llmrack" in ln]
    assert dropped and "packets 0 " not in dropped[0], counters


def test_no_vector_store_or_its_exporter_on_an_inference_host(cluster) -> None:
    names = ssh(cluster["state"], "host2", "docker ps --format '{{.Names}}'")
    assert "postgres" not in names and "vllm" in names, names


# ------------------------------------------------------------------------------------- rejected keys

BAD_KEYS = ("import ssl,sys,urllib.request as u\nctx=ssl._create_unverified_context()\nout=[]\n"
            "for i in range(int(sys.argv[2])):\n"
            " r=u.Request(f'https://{sys.argv[1]}:8443/v1/models',headers={'Authorization':f'Bearer sk-made-up-{i}'})\n"
            " try:\n  out.append(u.urlopen(r,context=ctx,timeout=5).status)\n"
            " except u.HTTPError as e:\n  out.append(e.code)\n"
            " except OSError:\n  out.append(0)\nprint(out)\n")


def test_an_address_sending_made_up_keys_is_banned_and_the_alert_fires(cluster, scans) -> None:
    """The office client sends 30 requests with made-up keys: the gateway host's fail2ban bans it from the
    published ports (host3 still gets through), its ban counter reaches Prometheus and the alert fires."""
    state = cluster["state"]
    gateway = state.host(GATEWAY).address
    sent = subprocess.run(["ssh", "-F", state.ssh_config, CLIENT, "python3", "-", gateway, "30"], input=BAD_KEYS,
                          capture_output=True, text=True, timeout=300)
    assert sent.returncode == 0, sent.stderr
    codes = json.loads(sent.stdout.strip().splitlines()[-1])
    assert codes[0] == 401 and set(codes) <= {401, 429, 0}, codes
    try:
        wait_for("the office client banned", lambda: reach(state, CLIENT, GATEWAY, 8443) == "blocked", timeout=90)
        assert reach(state, "host3", GATEWAY, 8443) == "open"
        jail = ssh(state, GATEWAY, "fail2ban-client status llmrack-gateway")
        assert state.host(CLIENT).address in jail, jail

        def firing():
            alerts = prometheus(state, "/api/v1/alerts")["alerts"]
            return [a for a in alerts if a["labels"].get("alertname") == "GatewayRejectedKeysBurst"
                    and a["labels"].get("host") == GATEWAY and a["state"] == "firing"]

        wait_for("GatewayRejectedKeysBurst for host1 firing", firing, timeout=180)
        bans = prometheus(state, "/api/v1/query?query=llmrack_gateway_bans_total")["result"]
        assert [float(r["value"][1]) for r in bans if r["metric"].get("host") == GATEWAY] == [1.0], bans
    finally:
        ssh(state, GATEWAY, f"fail2ban-client set llmrack-gateway unbanip {state.host(CLIENT).address}")
    wait_for("the office client let in again", lambda: reach(state, CLIENT, GATEWAY, 8443) == "open", timeout=60)
    assert chat(cluster, 2) == [200, 200]


# ------------------------------------------------------------------------------------------- node loss


def test_losing_an_inference_node_keeps_the_gateway_answering_and_fires_the_alert(cluster) -> None:
    state = cluster["state"]
    vllm = ssh(state, "host3", "docker ps --format '{{.Names}}' --filter name=vllm").split()
    assert len(vllm) == 1, vllm
    ssh(state, "host3", f"docker stop {vllm[0]}")
    try:
        before = served(state, "host2")
        codes = chat(cluster, 12, parallel=4)
        assert codes == [200] * 12  # retried on host2 (proxy_next_upstream), then host3 is marked down
        assert served(state, "host2") - before == 12

        def firing():
            alerts = prometheus(state, "/api/v1/alerts")["alerts"]
            return [a for a in alerts if a["labels"].get("alertname") == "LlmrackTargetDown"
                    and a["labels"].get("host") == "host3" and a["state"] == "firing"]

        fired = wait_for("LlmrackTargetDown for host3 firing", firing, timeout=240)
        assert {a["labels"]["job"] for a in fired} == {"vllm"}
    finally:
        ssh(state, "host3", f"docker start {vllm[0]}")
    wait_for("host3's vLLM healthy again", lambda: "healthy" in ssh(
        state, "host3", f"docker inspect --format '{{{{.State.Health.Status}}}}' {vllm[0]}"), timeout=600)
    wait_for("host3's target up again", lambda: targets(state)[("vllm", "host3")] == "up", timeout=120)

    def used_again():  # fail_timeout (30 s) over, least_conn sends it requests again
        before = served(state, "host3")
        assert chat(cluster, 8, parallel=4) == [200] * 8
        return served(state, "host3") > before

    wait_for("host3 used again", used_again, timeout=120, every=10)


# ------------------------------------------------------------------------------------ add/remove a node

# what a node joining or leaving may change: the gateway's upstreams (checked by nginx -t, then a reload),
# Prometheus's targets (promtool, then a reload), every host's /etc/hosts entry for it and the firewalls that let
# it in (the acceptance network test's port is open to every other host); nothing restarts
ALLOWED = re.compile(r"(nginx|gateway|prometheus|/etc/hosts|firewall)", re.I)


def _changed(result) -> dict[str, list[str]]:
    return {op.name: sorted(op.changed) for op in result.operations if op.changed}


def test_removing_then_adding_a_node_changes_only_upstreams_and_targets(cluster) -> None:
    state, env = cluster["state"], cluster["env"]
    removed = run_pyinfra(SANDBOX_INVENTORY, FULL, env={**env, "LLMRACK_SANDBOX_ROLES": WITHOUT_HOST3}, timeout=900)
    assert_converged(removed)
    changed = _changed(removed)
    print(f"node removed: {changed}")
    assert changed and all(ALLOWED.search(name) for name in changed), changed
    assert not [n for n, hosts in changed.items() if "restart" in n.lower() or "Start the compose" in n], changed
    conf = ssh(state, GATEWAY, "cat /opt/llmrack/stack/gateway/nginx.conf")
    assert state.host("host3").address not in conf and state.host("host2").address in conf
    wait_for("host3 gone from the targets", lambda: ("vllm", "host3") not in targets(state), timeout=60)
    assert chat(cluster, 4, parallel=2) == [200] * 4

    added = run_pyinfra(SANDBOX_INVENTORY, FULL, env=env, timeout=900)
    assert_converged(added)
    changed = _changed(added)
    print(f"node added: {changed}")
    assert changed and all(ALLOWED.search(name) for name in changed), changed
    assert state.host("host3").address in ssh(state, GATEWAY, "cat /opt/llmrack/stack/gateway/nginx.conf")
    wait_for("host3 back in the targets, up", lambda: targets(state).get(("vllm", "host3")) == "up", timeout=90)
    assert_no_changes(run_pyinfra(SANDBOX_INVENTORY, FULL, env=env, timeout=900))


# ------------------------------------------------------------------------------------------ rolling change

def rollout(env: dict[str, str], timeout: int = 2400) -> tuple[int, str]:
    """(exit code, its output with line wrapping undone)."""
    done = subprocess.run([str(LLMRACK), "rollout", str(SANDBOX_INVENTORY), "--yes"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=timeout, env={**__import__("os").environ, **env})
    return done.returncode, " ".join((done.stdout + "\n" + done.stderr).split())


def vllm_command(state, node: str) -> list[str]:
    return json.loads(ssh(state, node, "docker inspect --format '{{json .Config.Cmd}}' "
                                       "$(docker ps -q --filter name=vllm)"))


def compose_sha(state, node: str) -> str:
    return ssh(state, node, "sha256sum /opt/llmrack/stack/compose.yaml").split()[0]


# the change rolled: vLLM's prefix caching off (a vLLM argument; the gateway's configuration does not change)
CHANGED = {"stack": {**SLOW["stack"], "vllm": {**SLOW["stack"]["vllm"], "enable_prefix_caching": False}}}


def test_a_rolling_change_over_both_nodes_fails_no_request(cluster) -> None:
    state = cluster["state"]
    env = {**cluster["env"], "LLMRACK_SANDBOX_OVERRIDES": json.dumps(CHANGED)}
    assert all("--enable-prefix-caching" in vllm_command(state, n) for n in NODES)
    with Streams(cluster) as streams:
        rc, text = rollout(env)
    print(f"rolling change over 2 nodes: {len(streams.done)} streamed requests, {len(streams.failed())} failed, "
          f"longest gap {streams.longest_gap():.1f} s, {streams.t1 - streams.t0:.0f} s\n{text[-2000:]}")
    assert rc == 0, text[-5000:]
    for node in NODES:
        assert f"{node}: drain at host1" in text and f"{node}: done (drained in" in text
        args = vllm_command(state, node)
        assert "--no-enable-prefix-caching" in args and "--enable-prefix-caching" not in args, args
    assert streams.failed() == [] and len(streams.done) >= 20, streams.failed()[:5]
    assert chat(cluster, 12, parallel=4) == [200] * 12
    assert_no_changes(run_pyinfra(SANDBOX_INVENTORY, FULL, env=env, timeout=900))


def test_a_node_failing_its_gate_is_rolled_back_and_the_rollout_stops(cluster) -> None:
    """The change breaks vLLM's start (an unknown logging level): host2 fails, runs its previous compose file
    again and goes back into the gateway; host3 is never touched; no client request fails."""
    state = cluster["state"]
    broken = json.loads(json.dumps(CHANGED))
    broken["stack"]["vllm"]["env"] = {"VLLM_LOGGING_LEVEL": "NO_SUCH_LEVEL"}
    broken["stack"]["start_timeout_s"] = 90
    env = {**cluster["env"], "LLMRACK_SANDBOX_OVERRIDES": json.dumps(broken)}
    before = {n: compose_sha(state, n) for n in NODES}
    with Streams(cluster) as streams:
        rc, text = rollout(env)
    print(f"failed gate: {len(streams.done)} streamed requests, {len(streams.failed())} failed, longest gap "
          f"{streams.longest_gap():.1f} s\n{text[-2000:]}")
    assert rc == 1, text[-5000:]
    assert "host2 failed" in text and "runs its previous configuration again" in text
    assert "not changed: host3" in text
    assert "host3: drain at host1" not in text  # the plan names host3; the run never drains it
    assert {n: compose_sha(state, n) for n in NODES} == before
    assert streams.failed() == [], streams.failed()[:5]
    before2 = served(state, "host2")
    assert chat(cluster, 16, parallel=4) == [200] * 16
    assert served(state, "host2") > before2, "host2 takes requests again"
