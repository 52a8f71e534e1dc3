"""Failure drills on the served site (served_site.py), after test_stack.py and test_verify.py used it.

1. A run stopped between its writes and the reloads they owe, for every role that reloads or restarts
   something: each watched file on host1 is made to differ from what the deploy writes, and the full stack runs
   with ``LLMRACK_DRILL_SKIP_FOLLOW_UPS`` (every write happens, every reload is left owed: the host as an
   interrupted run leaves it). The next plain run, with every file already right, must still reload each of
   them (seen on the host: new process ids), and the run after it changes nothing.
2. The host restarted: the container's systemd goes down and comes back (the restart policy, as after a power
   cut); with no deploy run, the stack serves again through the gateway (smoke with the RAG round trip) and a
   converge afterwards changes nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
import time

import docker
import pytest
from docker.errors import APIError
from harness import PROJECT, SANDBOX_INVENTORY, assert_converged, assert_no_changes, container, run_pyinfra, sandbox_env
from netcut import cut_outbound
from served_site import FULL

from llmrack.ops import PENDING_DIR, SKIP_FOLLOW_UPS_ENV
from llmrack.sandbox import PREFIX_LABEL

pytestmark = pytest.mark.integration
STACK_DIR = "/opt/llmrack/stack"
MONITORING_DIR = "/opt/llmrack/monitoring"
# follow-up key -> a live file it watches on host1 (the sandbox tier: sysctl, auditd and USBGuard stay off)
WATCHED = {
    "chrony-restart": "/etc/chrony/chrony.conf",
    "journald-restart": "/etc/systemd/journald.conf.d/60-llmrack.conf",
    "journald-cis-restart": "/etc/systemd/journald.conf.d/61-llmrack-cis.conf",
    "systemd-reexec": "/etc/systemd/system.conf.d/60-llmrack.conf",
    "docker-restart": "/etc/docker/daemon.json",
    "sshd-reload": "/etc/ssh/sshd_config.d/50-llmrack.conf",
    "firewall-reload": "/etc/llmrack/firewall.nft",
    "fail2ban-restart": "/etc/fail2ban/jail.local",
    "stack-reload": f"{STACK_DIR}/secrets/vllm.env",
    "gateway-reload": f"{STACK_DIR}/gateway/nginx.conf",
    "backup-timer-restart": "/etc/systemd/system/llmrack-backup.timer",
    "prometheus-reload": f"{MONITORING_DIR}/prometheus/prometheus.yml",
    "alertmanager-reload": f"{MONITORING_DIR}/alertmanager/alertmanager.yml",
}
# how a reload shows on the host: process ids that change (nginx workers, the restarted daemons' main pids)
PIDS = {
    "docker-restart": "systemctl show -p MainPID --value docker",
    "chrony-restart": "systemctl show -p MainPID --value chrony",
    "fail2ban-restart": "systemctl show -p MainPID --value fail2ban",
    "gateway-reload": "docker top llmrack-gateway-1 -o pid,args | awk '/nginx: worker/ {print $1}' | sort | head -1",
}


@pytest.fixture(scope="module")
def sandbox_state(served_site):
    return served_site.state


def on_host(state, command: str, timeout: int = 120) -> str:
    done = subprocess.run(["ssh", "-F", state.ssh_config, "host1", command], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout.strip()


def step(op: str) -> str:
    """An operation's own name, without its deploy's ("Docker engine | Write ..." -> "Write ...")."""
    return op.rsplit(" | ", 1)[-1]


def digests(state) -> dict[str, str]:
    """sha256 of each watched file on host1."""
    out = on_host(state, "sha256sum " + " ".join(WATCHED.values()))
    return {path: digest for digest, path in (line.split(maxsplit=1) for line in out.splitlines())}


def smoke(state, monkeypatch) -> list:
    from llmrack.config import load_inventory
    from llmrack.stack.smoke import smoke_inventory

    for k, v in sandbox_env(state).items():
        monkeypatch.setenv(k, v)
    return smoke_inventory(load_inventory(SANDBOX_INVENTORY, PROJECT), hosts={"host1"}, log=lambda m: None)


def wait_for_smoke(state, monkeypatch, timeout_s: float) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        results = smoke(state, monkeypatch)
        if all(r.ok for r in results) or time.monotonic() > deadline:
            return results
        time.sleep(10)


@pytest.fixture(scope="module")
def interrupted(served_site):
    state, env = served_site.state, served_site.env
    missing = on_host(state, " ; ".join(f"[ -f {p} ] || echo {p}" for p in WATCHED.values()))
    assert not missing, f"files the drill edits are not on host1: {missing}"
    deployed = digests(state)
    # every watched file differs from what the deploy writes: a trailing blank line, as a stray edit leaves
    on_host(state, " && ".join(f"echo >> {p}" for p in WATCHED.values()))
    stopped = run_pyinfra(served_site.inventory, FULL, env={**env, SKIP_FOLLOW_UPS_ENV: "1"}, timeout=1500)
    owed = on_host(state, f"ls -1 {PENDING_DIR} 2>/dev/null || true").split()
    written_back = digests(state)
    pids = {k: on_host(state, cmd) for k, cmd in PIDS.items()}
    finished = run_pyinfra(served_site.inventory, FULL, env=env, timeout=1500)
    after = {
        "owed": on_host(state, f"ls -1 {PENDING_DIR} 2>/dev/null || true").split(),
        "pids": {k: on_host(state, cmd) for k, cmd in PIDS.items()},
    }
    again = run_pyinfra(served_site.inventory, FULL, env=env, timeout=900)
    return {"stopped": stopped, "owed": owed, "deployed": deployed, "written_back": written_back, "pids": pids,
            "finished": finished, "after": after, "again": again}


def test_a_run_stopped_before_its_reloads_leaves_every_one_owed_on_the_host(interrupted) -> None:
    assert_converged(interrupted["stopped"])
    assert sorted(interrupted["owed"]) == sorted(WATCHED)
    # every edited file is back to what the deploy writes (its content, read on the host)
    assert interrupted["written_back"] == interrupted["deployed"]


def test_the_next_run_reloads_each_owed_service_although_every_file_matches(interrupted) -> None:
    finished = interrupted["finished"]
    assert_converged(finished)
    owed_ops = [op for op in finished.changed_ops("host1") if op.endswith("(owed by an earlier run)")]
    assert len(owed_ops) == len(WATCHED), owed_ops
    written = ("Write", "Upload", "Stage", "Check")
    assert not [op for op in finished.changed_ops("host1") if step(op).startswith(written)]
    assert interrupted["after"]["owed"] == []
    for key, before in interrupted["pids"].items():
        assert before and interrupted["after"]["pids"][key] and interrupted["after"]["pids"][key] != before, key


def test_the_run_after_changes_nothing(interrupted) -> None:
    assert_no_changes(interrupted["again"])


@contextlib.contextmanager
def address_kept(state, name: str):
    """While in the block, host ``name`` gets its own address back when its container restarts.

    A real server keeps its address across a restart; a container on Docker's default bridge takes the lowest
    free one when it starts again, which is another once a lower one was freed (sandbox hosts come and go in
    these tests). Placeholder containers hold every free address below the host's until the block ends; they
    carry the sandbox's label, so its teardown removes them too if the test stops early."""
    c = container(state, name)
    net = next(iter(c.attrs["NetworkSettings"]["Networks"].values()))
    own = ipaddress.ip_address(net["IPAddress"])
    client = docker.from_env()
    bridge = client.networks.get(net["NetworkID"])
    used = {ipaddress.ip_interface(e["IPv4Address"]).ip for e in bridge.attrs["Containers"].values()}
    first = ipaddress.ip_address(net["Gateway"]) + 1
    free = [first + i for i in range(int(own) - int(first)) if first + i not in used]
    held = [client.containers.run(c.image.id, entrypoint=["sleep", "3600"], detach=True, remove=True,
                                  name=f"{c.name}-holds-{i}", labels={PREFIX_LABEL: state.prefix})
            for i, _ in enumerate(free)]
    try:
        yield str(own)
    finally:
        for h in held:
            with contextlib.suppress(APIError):
                h.remove(force=True)


def test_a_restarted_host_serves_again_by_itself(served_site, monkeypatch) -> None:
    """Last in the module (after the interrupted-run drills, in file order)."""
    state = served_site.state
    restarts = container(state, "host1").attrs["RestartCount"]
    with address_kept(state, "host1") as address:
        with contextlib.suppress(subprocess.TimeoutExpired):  # the connection ends with the host
            subprocess.run(["ssh", "-F", state.ssh_config, "host1", "systemctl reboot"], capture_output=True,
                           timeout=60)
        deadline = time.monotonic() + 180
        while container(state, "host1").attrs["RestartCount"] == restarts:
            assert time.monotonic() < deadline, "host1 did not come back within 180 s"
            time.sleep(2)
    nets = container(state, "host1").attrs["NetworkSettings"]["Networks"]
    assert [n["IPAddress"] for n in nets.values()] == [address], "host1 came back with another address"
    cut_outbound(state, "host1")  # a new network namespace: air-gapped again before anything runs on it
    started = time.monotonic()
    results = wait_for_smoke(state, monkeypatch, timeout_s=900)
    assert all(r.ok for r in results), [r.line() for r in results]
    print(f"host1 served again {time.monotonic() - started:.0f} s after it was back")
    # the unit's start (compose up --wait) waits for every healthcheck, vLLM's included: give it its time
    deadline = time.monotonic() + 900
    while (unit := on_host(state, "systemctl is-active llmrack-stack || true")) == "activating":
        assert time.monotonic() < deadline, "llmrack-stack still starting 900 s after the host was back"
        time.sleep(5)
    assert unit == "active"
    assert_no_changes(run_pyinfra(served_site.inventory, FULL, env=served_site.env, timeout=900))
