"""base + docker_engine on sandbox hosts: dry run -> converge -> converge again (0 changes) -> verify.

Verification is testinfra over SSH; nothing here calls deploy code. Also: a hand-edited daemon.json is
converged back with exactly one docker restart, and an unreachable host fails alone, named.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from harness import (
    PROJECT,
    SANDBOX_INVENTORY,
    Sandbox,
    assert_converged,
    assert_no_changes,
    container,
    run_pyinfra,
    sandbox_env,
)
from harness import testinfra_hosts as ssh_hosts_of

SANDBOX_HOSTS = 1
FULL_STACK = PROJECT / "deploys" / "docker_host.py"
BASE_ONLY = PROJECT / "deploys" / "base.py"
DAEMON_JSON = "/etc/docker/daemon.json"
# docker compose v2 for the distro engine: Debian trixie's package (depends only on libc6 >= 2.34)
UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"  # journald MESSAGE_ID of "Started <unit>"


def compose_deb() -> Path:
    """The compose .deb from the offline bundle (LLMRACK_COMPOSE_DEB) or fetched once from the Debian mirror."""
    if os.environ.get("LLMRACK_COMPOSE_DEB"):
        return Path(os.environ["LLMRACK_COMPOSE_DEB"])
    from llmrack.bundle import fetch_compose_deb
    from llmrack.images import cache_dir

    return fetch_compose_deb(cache_dir() / "debs", log=lambda msg: None)


@pytest.fixture(scope="module")
def env(sandbox_state) -> dict[str, str]:
    out = sandbox_env(sandbox_state)
    out["LLMRACK_COMPOSE_DEB"] = str(compose_deb())
    return out


@pytest.fixture(scope="module")
def runs(sandbox_state, env, host1) -> SimpleNamespace:
    dry = run_pyinfra(SANDBOX_INVENTORY, FULL_STACK, dry=True, env=env)
    docker_after_dry = host1.exists("dockerd")
    first = run_pyinfra(SANDBOX_INVENTORY, FULL_STACK, env=env)
    second = run_pyinfra(SANDBOX_INVENTORY, FULL_STACK, env=env)
    return SimpleNamespace(dry=dry, docker_after_dry=docker_after_dry, first=first, second=second)


# ---------------------------------------------------------------------------------------------- sequence


def test_dry_run_plans_changes_and_touches_nothing(runs) -> None:
    assert runs.dry.returncode == 0, runs.dry.stderr[-2000:]
    assert runs.dry.operations == [], "a dry run has no results"
    assert runs.dry.planned_changes("host1") >= 10
    planned = {op["name"] for op in runs.dry.plan if "host1" in op["hosts_with_change"]}
    assert any("Install the distribution's docker.io" in n for n in planned), planned
    assert not runs.docker_after_dry, "the dry run installed docker"


def test_first_converge_succeeds_with_changes(runs) -> None:
    assert_converged(runs.first)
    assert runs.first.changes("host1") >= 10
    assert any("Write /etc/docker/daemon.json" in n for n in runs.first.changed_ops("host1"))


def test_second_converge_changes_nothing(runs) -> None:
    assert_no_changes(runs.second)
    assert runs.second.operations and all(op.no_change == ["host1"] for op in runs.second.operations)
    assert runs.second.wall_s < runs.first.wall_s


# ---------------------------------------------------------------------------------------------- verify


@pytest.mark.parametrize("package", ["chrony", "tzdata", "jq", "curl", "smartmontools", "fio", "docker.io"])
def test_packages_installed(runs, host1, package: str) -> None:
    assert host1.package(package).is_installed


def test_chrony_runs_without_sources_or_clock_control(runs, host1) -> None:
    assert host1.service("chrony").is_running
    assert host1.service("chrony").is_enabled
    args = host1.check_output("ps -o args= -C chronyd")
    assert " -x" in f" {args} ", args
    conf = host1.file("/etc/chrony/chrony.conf").content_string
    assert conf.startswith("# managed by llmrack")
    assert not [ln for ln in conf.splitlines() if ln.split()[:1] in (["server"], ["pool"], ["sourcedir"])]
    sources = host1.check_output("chronyc -n sources")
    assert "^" not in sources, f"chrony has time sources: {sources}"


def test_sysctl_limits_journald_dropins(runs, host1, sandbox_state) -> None:
    sysctl = host1.file("/etc/sysctl.d/60-llmrack.conf")
    assert sysctl.mode == 0o644
    lines = [ln for ln in sysctl.content_string.splitlines() if not ln.startswith("#")]
    assert "vm.swappiness = 10" in lines and "net.core.somaxconn = 65535" in lines
    assert lines == sorted(lines)
    # 1048576 (the tier) capped at PID 1's hard limit: the container engine's own limit here
    pid1_hard = int(host1.check_output("awk '/^Max open files/ {print $5}' /proc/1/limits"))
    expected = str(min(1048576, pid1_hard))
    limits = host1.file("/etc/security/limits.d/60-llmrack.conf").content_string.split("\n")
    assert any(ln.split() == ["*", "hard", "nofile", expected] for ln in limits)
    assert host1.check_output("systemctl show -p DefaultLimitNOFILE --value") == expected
    fresh = subprocess.run(["ssh", "-F", sandbox_state.ssh_config, "-o", "ControlPath=none", "host1", "ulimit -Hn"],
                           capture_output=True, text=True, timeout=30)
    assert fresh.returncode == 0, f"a new SSH login fails with the limits: {fresh.stderr}"
    assert fresh.stdout.strip() == expected, "pam_limits did not apply the limit to a new session"
    assert "SystemMaxUse=2G" in host1.file("/etc/systemd/journald.conf.d/60-llmrack.conf").content_string


def test_timezone_hostname_and_hosts(runs, host1) -> None:
    assert host1.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Asia/Shanghai"
    assert host1.check_output("date +%Z") == "CST"
    assert host1.file("/etc/hostname").content_string == "host1\n"
    assert host1.check_output("hostname") == "host1"
    hosts = host1.file("/etc/hosts").content_string
    assert "# BEGIN llmrack hosts" in hosts and hosts.count("# BEGIN llmrack hosts") == 1
    assert host1.addr("host1").is_resolvable


def test_daemon_json_and_docker_service(runs, host1) -> None:
    f = host1.file(DAEMON_JSON)
    text = f.content_string
    cfg = json.loads(text)
    assert cfg["log-driver"] == "json-file"
    assert cfg["log-opts"] == {"max-file": "3", "max-size": "100m"}
    assert cfg["live-restore"] is True
    assert "runtimes" not in cfg, "no NVIDIA runtime on a CPU tier"
    assert list(cfg) == sorted(cfg)
    docker = host1.service("docker")
    assert docker.is_running and docker.is_enabled
    assert host1.check_output("docker info --format '{{.LiveRestoreEnabled}}'") == "true"
    assert host1.check_output("docker info --format '{{.LoggingDriver}}'") == "json-file"


def test_compose_plugin(runs, env, host1) -> None:
    out = host1.check_output("docker compose version --short")
    assert out.startswith("2."), out


STACK_LINES = ("sw.vllm", "sw.vector_store", "sw.gateway_tls", "sw.prometheus", "sec.gateway_auth",
               "perf.single_stream", "perf.concurrency", "perf.ttft", "perf.tpot", "perf.throughput",
               "perf.streaming", "perf.rag")


def test_verify_against_the_full_stack_inventory_fails_every_stack_line(runs, env, tmp_path) -> None:
    """The host has base + Docker only; the sandbox inventory gives it every role of the sandbox tier (stack,
    gateway, monitoring). `llmrack verify` fails each of those lines as expected by the inventory and not
    deployed, and exits 1: a server without its LLM service never signs off green."""
    import sys

    done = subprocess.run([str(Path(sys.executable).parent / "llmrack"), "verify", str(SANDBOX_INVENTORY),
                           "--report", str(tmp_path)], cwd=PROJECT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "report.json").read_text())
    checks = {c["id"]: c for c in doc["hosts"][0]["checks"]}
    for cid in STACK_LINES:
        assert checks[cid]["status"] == "fail", (cid, checks[cid]["status"], checks[cid]["message"])
        assert checks[cid]["message"].startswith("expected by the inventory, not deployed: the llmrack "), cid
    assert "/opt/llmrack/monitoring/compose.yaml" in checks["sw.prometheus"]["message"]
    assert checks["sw.grafana"]["status"] == "not_applicable"  # the sandbox tier runs no Grafana
    for cid in ("sw.os", "sw.docker", "sw.compose", "sw.time", "hw.ram", "hw.cpu"):
        assert checks[cid]["status"] == "pass", (cid, checks[cid]["message"])
    assert doc["summary"]["exit_code"] == 1 and doc["summary"]["verdict"] == "fail"
    assert "verdict: fail" in done.stdout


# ---------------------------------------------------------------------------------------------- drift


def _docker_starts_since(host: Any, since: int) -> int:
    out = host.check_output(f"journalctl -u docker.service --since @{since} -o json --no-pager")
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    return sum(1 for e in entries if e.get("MESSAGE_ID") == UNIT_STARTED)


def test_hand_edited_daemon_json_is_converged_back_with_one_restart(runs, env, host1) -> None:
    pid_before = host1.check_output("systemctl show -p MainPID --value docker.service")
    cfg = json.loads(host1.file(DAEMON_JSON).content_string)
    cfg["log-opts"]["max-size"] = "1m"
    cfg["max-concurrent-uploads"] = 3
    host1.run_test("echo %s > %s", json.dumps(cfg), DAEMON_JSON)
    since = int(host1.check_output("date +%s"))
    time.sleep(1)

    third = run_pyinfra(SANDBOX_INVENTORY, FULL_STACK, env=env)
    assert_converged(third)
    changed = third.changed_ops("host1")
    assert any("Write /etc/docker/daemon.json" in n for n in changed), changed
    assert any("Restart docker" in n for n in changed), changed
    owed = [n for n in changed if "Record that dockerd's restart is owed" in n or "Clear the mark: dockerd's" in n]
    assert len(owed) == 2, f"the restart is recorded as owed before the write and cleared after it: {changed}"
    assert len(changed) == 4, f"only daemon.json and the restart should change: {changed}"

    after = json.loads(host1.file(DAEMON_JSON).content_string)
    assert after["log-opts"]["max-size"] == "100m"
    assert after["max-concurrent-uploads"] == 3, "a key llmrack does not manage was dropped"
    assert host1.check_output("systemctl show -p MainPID --value docker.service") != pid_before
    assert _docker_starts_since(host1, since) == 1
    assert host1.service("docker").is_running

    fourth = run_pyinfra(SANDBOX_INVENTORY, FULL_STACK, env=env)
    assert_no_changes(fourth)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def two_hosts(docker_engine_ready, tmp_path_factory):
    with Sandbox(2, tmp_path_factory.mktemp("sandbox-two"), prefix=f"llmrack-test-{os.getpid()}-two-") as st:
        yield st


def test_unreachable_host_fails_alone_and_is_named(two_hosts) -> None:
    container(two_hosts, "host2").stop(timeout=5)
    env = sandbox_env(two_hosts)
    result = run_pyinfra(SANDBOX_INVENTORY, BASE_ONLY, env=env)
    assert result.returncode != 0
    assert result.failed_hosts == ["host2"]
    assert "host2" in result.stderr
    assert not result.errors(), "host1's operations must not fail"
    assert result.changes("host1") >= 5
    assert result.changes("host2") == 0
    h1 = ssh_hosts_of(two_hosts)["host1"]
    assert h1.package("chrony").is_installed
    hosts = h1.file("/etc/hosts").content_string
    assert f"{two_hosts.host('host2').address} host2" in hosts, "the other host's entry is written anyway"


def test_invalid_daemon_json_stops_the_run_and_is_left_alone(runs, env, host1) -> None:
    host1.run_test("echo %s > %s", '{"log-driver": ', DAEMON_JSON)
    result = run_pyinfra(SANDBOX_INVENTORY, FULL_STACK, env=env, expect_json=False)
    assert result.returncode != 0
    assert "daemon.json on host1 is not valid JSON" in result.stderr
    assert host1.file(DAEMON_JSON).content_string == '{"log-driver": \n'


APT_HOLDER = ("import fcntl, sys, time\n"
              "f = open('/var/lib/dpkg/lock-frontend', 'w')\n"
              "fcntl.lockf(f, fcntl.LOCK_EX)\n"
              "print('locked', flush=True)\n"
              "time.sleep(float(sys.argv[1]))\n")


def test_a_deploy_waits_for_another_apt_holding_the_lock_and_succeeds(runs, env, host1, sandbox_state) -> None:
    """Drill: another apt (unattended-upgrades, an admin) holds dpkg's frontend lock for 25 s while the deploy
    must install a package: the run retries and succeeds once the lock is free."""
    host1.run_test("dpkg --purge jq libjq1 >/dev/null")
    assert not host1.package("jq").is_installed
    holder = subprocess.Popen(["ssh", "-F", sandbox_state.ssh_config, "host1", "python3", "-", "25"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    holder.stdin.write(APT_HOLDER)
    holder.stdin.close()
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        result = run_pyinfra(SANDBOX_INVENTORY, BASE_ONLY, env=env)
        took = time.monotonic() - t0
    finally:
        holder.wait(timeout=60)
    assert_converged(result)
    assert host1.package("jq").is_installed
    assert took > 10, f"the install cannot have waited for the lock: {took:.0f} s"
    print(f"deploy with apt locked for 25 s: {took:.0f} s")


STREAM_PROBE = PROJECT / "tests" / "integration" / "stream_probe.py"


def test_a_streamed_file_arrives_whole_and_a_wrong_sum_or_short_read_fails(runs, env, host1, tmp_path) -> None:
    """llmrack.ssh_stream (how bundle images reach ``docker load``) over the real SSH connection: 24 MiB plus
    an odd tail arrive byte for byte; a file whose sha256 is not the expected one, and a command that stops
    reading early, fail the operation with their own messages."""
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(24 * 2**20 + 4097))
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()

    def stream(cmd: str, sha: str = digest):
        return run_pyinfra(SANDBOX_INVENTORY, STREAM_PROBE, expect_json=False,
                           env={**env, "STREAM_SRC": str(blob), "STREAM_CMD": cmd, "STREAM_SHA": sha})

    host1.run_test("rm -f /tmp/streamed")
    assert_converged(stream("cat > /tmp/streamed"))
    assert host1.check_output("sha256sum /tmp/streamed").split()[0] == digest

    wrong = stream("cat > /dev/null", sha="0" * 64)
    assert wrong.returncode != 0 and "its manifest says 0000000000000000..." in wrong.stderr, wrong.stderr[-2000:]
    short = stream("head -c 1000 > /dev/null")
    assert short.returncode != 0 and "closed its input early" in short.stderr, short.stderr[-2000:]
    failing = stream("cat > /dev/null; echo no space left >&2; exit 3")
    assert failing.returncode != 0 and "no space left" in failing.stderr, failing.stderr[-2000:]
