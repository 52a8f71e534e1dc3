"""hardening on a sandbox host: converge -> converge again (0 changes) -> verify over SSH with testinfra.

Before the first converge the host is made to accept password logins (as a stock server often does), so
the assertions see the change. The firewall is enabled through the inventory's overrides: a sandbox host
has its own network namespace, so its nftables table filters only that container. Nothing here calls
deploy code; checks run through ssh and testinfra.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from harness import PROJECT, assert_converged, assert_no_changes, container, run_pyinfra

SANDBOX_HOSTS = 1
HARDENING = PROJECT / "deploys" / "hardening.py"

INVENTORY = '''
from llmrack.sandbox import SandboxState

_state = SandboxState.load({state_dir!r})
sandbox = [
    (h.name, {{
        "tier": "sandbox", "address": h.address, "roles": ["inference", "gateway", "monitoring"],
        "overrides": {{"hardening": {{"firewall": True}}}},
        "ssh_hostname": "127.0.0.1", "ssh_port": h.ssh_port, "ssh_user": "root", "ssh_key": h.key_path,
        "ssh_strict_host_key_checking": "no", "ssh_known_hosts_file": "/dev/null",
    }})
    for h in _state.hosts
]
'''


def ssh_attempt(state, user: str, *options: str) -> subprocess.CompletedProcess:
    """One non-interactive SSH login to host1 from this machine (no ControlMaster, fresh authentication)."""
    h = state.host("host1")
    cmd = ["ssh", "-p", str(h.ssh_port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "ControlMaster=no", "-o", "ControlPath=none",
           "-o", "ConnectTimeout=10", *options, f"{user}@127.0.0.1", "true"]
    for _ in range(20):  # sshd re-executes on reload: a connection in that instant is closed before auth
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if "kex_exchange_identification" not in done.stderr and "Connection refused" not in done.stderr:
            break
        time.sleep(0.5)
    return done


def password_attempt(state) -> subprocess.CompletedProcess:
    return ssh_attempt(state, "deploy", "-o", "PreferredAuthentications=password,keyboard-interactive",
                       "-o", "PubkeyAuthentication=no")


def offered_methods(done: subprocess.CompletedProcess) -> set[str]:
    """The methods sshd offered, from ``Permission denied (publickey,password).``"""
    for line in done.stderr.splitlines():
        if "Permission denied (" in line:
            return set(line.split("Permission denied (", 1)[1].split(")", 1)[0].split(","))
    return set()


def exec_in(state, cmd: str) -> str:
    code, out = container(state, "host1").exec_run(["sh", "-c", cmd])
    assert code == 0, out.decode()
    return out.decode()


@pytest.fixture(scope="module")
def runs(sandbox_state, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    # a stock-like start: password logins on, deploy has a password (test setup, outside the deploy)
    exec_in(sandbox_state, "rm -f /etc/ssh/sshd_config.d/50-llmrack-sandbox.conf && "
                           "printf 'PasswordAuthentication yes\\nKbdInteractiveAuthentication yes\\n' "
                           ">> /etc/ssh/sshd_config && echo 'deploy:Deploy-Pass-1' | chpasswd && "
                           "systemctl reload ssh")
    before = password_attempt(sandbox_state)
    inventory: Path = tmp_path_factory.mktemp("inv") / "inventory_hardening.py"
    inventory.write_text(INVENTORY.format(state_dir=sandbox_state.state_dir))
    first = run_pyinfra(inventory, HARDENING)
    second = run_pyinfra(inventory, HARDENING)
    return SimpleNamespace(before=before, first=first, second=second)


def test_password_login_was_offered_before(runs) -> None:
    assert runs.before.returncode != 0
    assert "password" in offered_methods(runs.before), runs.before.stderr


def test_first_converge_succeeds(runs) -> None:
    assert_converged(runs.first)
    changed = runs.first.changed_ops("host1")
    assert any("50-llmrack.conf checked by sshd -t" in n for n in changed), changed
    assert any("Reload sshd" in n for n in changed), changed


def test_second_converge_changes_nothing(runs) -> None:
    assert_no_changes(runs.second)
    assert not any("Reload sshd" in op.name for op in runs.second.operations)


# ---------------------------------------------------------------------------------------------- sshd


@pytest.mark.parametrize(("key", "expected"), [
    ("passwordauthentication", {"no"}),
    ("kbdinteractiveauthentication", {"no"}),
    ("permitrootlogin", {"without-password", "prohibit-password"}),
    ("x11forwarding", {"no"}),
    ("maxauthtries", {"3"}),
    ("loglevel", {"VERBOSE"}),
    ("clientaliveinterval", {"300"}),
    ("banner", {"/etc/issue.net"}),
])
def test_sshd_effective_configuration(runs, host1, key: str, expected: set[str]) -> None:
    lines = host1.check_output("/usr/sbin/sshd -T").splitlines()
    values = {ln.split(" ", 1)[1] for ln in lines if ln.split(" ", 1)[0] == key}
    assert values and values <= expected, (key, values)


def test_sshd_algorithms_are_strong(runs, host1) -> None:
    dump = dict(ln.split(" ", 1) for ln in host1.check_output("/usr/sbin/sshd -T").splitlines() if " " in ln)
    assert "cbc" not in dump["ciphers"] and "3des" not in dump["ciphers"]
    assert "sha1" not in dump["macs"] and "md5" not in dump["macs"]
    assert dump["kexalgorithms"].startswith("sntrup761x25519-sha512@openssh.com")


def test_dropin_file(runs, host1) -> None:
    f = host1.file("/etc/ssh/sshd_config.d/50-llmrack.conf")
    assert f.exists and f.user == "root" and f.mode == 0o644
    assert f.content_string.startswith("# managed by llmrack")
    assert not host1.file("/etc/ssh/sshd_config.d/50-llmrack.conf.new").exists


def test_password_login_is_refused(runs, sandbox_state) -> None:
    done = password_attempt(sandbox_state)
    assert done.returncode == 255, done.stderr
    methods = offered_methods(done)
    assert methods == {"publickey"}, done.stderr


def test_key_login_still_works(runs, sandbox_state) -> None:
    h = sandbox_state.host("host1")
    done = ssh_attempt(sandbox_state, "root", "-i", h.key_path, "-o", "IdentitiesOnly=yes")
    assert done.returncode == 0, done.stderr


def test_banner_is_shown_before_login(runs, sandbox_state) -> None:
    done = password_attempt(sandbox_state)
    assert "Authorized access only" in done.stderr


# ---------------------------------------------------------------------------------------------- OS


def test_unattended_upgrades_security_only(runs, host1) -> None:
    assert host1.package("unattended-upgrades").is_installed
    dump = host1.check_output("apt-config dump").splitlines()
    patterns = [ln for ln in dump if ln.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert patterns and all("security" in ln.lower() for ln in patterns), patterns
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump


def test_core_dumps_off(runs, host1) -> None:
    # a fresh login session (PAM limits) gets a hard core limit of 0
    assert host1.check_output("su - deploy -c 'ulimit -H -c'").strip() == "0"
    assert "Storage=none" in host1.file("/etc/systemd/coredump.conf.d/60-llmrack.conf").content_string


# ---------------------------------------------------------------------------------------------- firewall


def test_firewall_table_loaded_with_default_deny(runs, host1) -> None:
    assert host1.service("llmrack-firewall").is_enabled
    ruleset = host1.check_output("nft list table inet llmrack")
    assert "policy drop" in ruleset
    assert "tcp dport 22 accept" in ruleset or "tcp dport { 22 } accept" in ruleset
    assert "8443" in ruleset  # the sandbox gateway's https port


def test_firewall_blocks_other_ports_and_keeps_ssh(runs, sandbox_state, host1) -> None:
    """From this machine (through Docker's port mapping for SSH, directly to the container's address for the
    rest): SSH answers, an unlisted port with a listener behind it is dropped."""
    ip = exec_in(sandbox_state, "ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1").strip()
    exec_in(sandbox_state, "systemd-run --unit llmrack-test-listener python3 -m http.server 9099 "
                           "--bind 0.0.0.0 --directory /tmp")
    inside = host1.run("for i in $(seq 60); do c=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "
                       "http://127.0.0.1:9099/) && break; sleep 0.25; done; echo -n $c")
    outside = subprocess.run(["curl", "-s", "-o", "/dev/null", "-m", "5", f"http://{ip}:9099/"],
                             capture_output=True, text=True)
    exec_in(sandbox_state, "systemctl stop llmrack-test-listener")
    assert inside.stdout == "200", "the listener did not start (loopback must be allowed)"
    assert outside.returncode == 28, f"port 9099 answered from outside: rc={outside.returncode}"
    h = sandbox_state.host("host1")
    assert ssh_attempt(sandbox_state, "root", "-i", h.key_path, "-o", "IdentitiesOnly=yes").returncode == 0
