"""Two sandbox hosts, both with ``base.apt.offline`` and a bundle holding only the local APT repository.

host2, whose outbound network is cut (nftables in its own namespace: only replies to the admin's SSH leave
it), converges the full stack's stages from preflight to Docker from the bundle alone, then runs again with
no change. host1 takes the reboot stage, forced (tests/integration/reboot_stages.py): with ``nvidia.reboot:
never`` the host stops with one line and nothing after the stage runs; with ``auto`` the host really restarts
(a marker left in /run is gone, PID 1 started after it and the container's restart count went up: the kernel
and its boot id are shared with the machine running the sandbox, so they cannot tell), the same pyinfra run
goes on to the Docker stage, and a second run changes nothing. Offline checks before any change: a bundle
lacking one of the tier's packages, and (NVIDIA stack on) one without the driver's, stop both hosts naming the
packages. The full stack's air-gapped converge and `llmrack verify` are proved on tests/integration/test_verify.py's
host.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from harness import PROJECT, SANDBOX_INVENTORY, assert_no_changes, build_lock, container, run_pyinfra, sandbox_env

pytestmark = pytest.mark.integration
SANDBOX_HOSTS = 2
CUT = """table inet llmrack_test_airgap {
  chain output {
    type filter hook output priority 0; policy drop; oif "lo" accept; ct state established,related accept;
  }
  chain forward { type filter hook forward priority 0; policy drop; }
}
"""
DEPLOY = PROJECT / "tests" / "integration" / "reboot_stages.py"
REQUEST = "/run/llmrack-test/reboot-request"
MARKER = "/run/llmrack-test/left-before-the-reboot"
DOCKER_OP = "Install the distribution's docker.io"


def _inventory(tmp: Path, policy: str, *, driver: bool = False) -> Path:
    inv = tmp / f"reboot_{policy}{'_driver' if driver else ''}.py"
    nvidia = {"reboot": policy, **({"enabled": True, "driver_branch": 535} if driver else {})}
    inv.write_text(
        "import runpy\n"
        f"_base = runpy.run_path({str(SANDBOX_INVENTORY)!r})\n"
        "sandbox = [(n, {**d, 'overrides': {**d['overrides'], "
        f"'nvidia': {nvidia!r}, 'base': {{'apt': {{'offline': True}}}}}}}}) "
        "for n, d in _base['sandbox']]\n"
    )
    return inv


def _pid1_start(host1) -> int:
    """PID 1's start time in clock ticks since the (shared) kernel booted: later after a container restart."""
    stat = host1.check_output("cat /proc/1/stat")
    return int(stat.rsplit(")", 1)[1].split()[19])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A bundle with the sandbox tier's local APT repository (and the compose .deb), no images or models."""
    from llmrack.bundle import build_bundle, fetch_compose_deb
    from llmrack.bundle_apt import build_apt_repo, tier_apt_packages
    from llmrack.config import load_tier
    from llmrack.images import cache_dir, debian_mirror

    out = tmp_path_factory.mktemp("bundle")
    with build_lock():  # the shared .deb caches
        deb = fetch_compose_deb(cache_dir() / "debs", log=lambda m: None)
        apt = build_apt_repo(out, codename="bookworm", mirror=debian_mirror(), extra_debs=[deb], log=lambda m: None,
                             packages=tier_apt_packages(load_tier("sandbox", PROJECT)))
    build_bundle(out, images=[], model_dirs={}, debs=[deb], apt={"bookworm": apt}, log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def airgap(sandbox_state, infra_hosts):
    """Cut host2's outbound network; return what an outbound connection does then."""
    pid = container(sandbox_state, "host2").attrs["State"]["Pid"]
    subprocess.run(["nsenter", "-t", str(pid), "-n", "nft", "-f", "-"], input=CUT, text=True, check=True)
    return infra_hosts["host2"].run("curl -sS -m 5 -o /dev/null http://deb.debian.org/debian/")


@pytest.fixture(scope="module")
def runs(sandbox_state, host1, infra_hosts, bundle, airgap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reboot")
    env = {**sandbox_env(sandbox_state), "LLMRACK_BUNDLE": str(bundle)}
    host2 = infra_hosts["host2"]
    # a bundle whose repository lacks jq (only its manifest: the stop comes before any upload)
    short = tmp / "short-bundle"
    short.mkdir()
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["apt"]["bookworm"]["packages"]["jq"]
    (short / "manifest.json").write_text(json.dumps(manifest))
    lacking = run_pyinfra(_inventory(tmp, "auto"), DEPLOY, env={**env, "LLMRACK_BUNDLE": str(short)},
                          expect_json=False)
    offline_conf_after_lacking = host2.file("/etc/apt/apt.conf.d/60llmrack-offline").exists
    # the NVIDIA stack on (Debian 12's branch): the bundle carries no driver package (built for the sandbox tier)
    no_driver = run_pyinfra(_inventory(tmp, "auto", driver=True), DEPLOY, env=env, expect_json=False)
    no_driver_after = SimpleNamespace(offline_conf=host2.file("/etc/apt/apt.conf.d/60llmrack-offline").exists,
                                      blacklist=host2.file("/etc/modprobe.d/llmrack-blacklist-nouveau.conf").exists)
    host1.run_test(f"mkdir -p /run/llmrack-test && touch {REQUEST} {MARKER}")
    pid1_before = _pid1_start(host1)
    restarts_before = container(sandbox_state, "host1").attrs["RestartCount"]
    never = run_pyinfra(_inventory(tmp, "never"), DEPLOY, env=env, expect_json=False)  # its only host stops
    after_never = SimpleNamespace(marker=host1.file(MARKER).exists, pid1=_pid1_start(host1),
                                  docker=host1.exists("dockerd"))
    host2_after_first = SimpleNamespace(docker=host2.run("docker info --format '{{.ServerVersion}}'"),
                                        sources=host2.run("apt-get indextargets --format '$(SITE)'").stdout)
    auto = run_pyinfra(_inventory(tmp, "auto"), DEPLOY, env=env, timeout=1200)
    after_auto = SimpleNamespace(marker=host1.file(MARKER).exists, request=host1.file(REQUEST).exists,
                                 pid1=_pid1_start(host1), system=host1.run("systemctl is-system-running").stdout,
                                 restarts=container(sandbox_state, "host1").attrs["RestartCount"],
                                 docker=host1.run("docker info --format '{{.ServerVersion}}'"))
    second = run_pyinfra(_inventory(tmp, "auto"), DEPLOY, env=env)
    return SimpleNamespace(never=never, after_never=after_never, auto=auto, after_auto=after_auto, second=second,
                           pid1_before=pid1_before, restarts_before=restarts_before, host2=host2_after_first,
                           lacking=lacking, offline_conf_after_lacking=offline_conf_after_lacking,
                           no_driver=no_driver, no_driver_after=no_driver_after)


def test_policy_never_stops_the_host_with_one_line_and_runs_nothing_after(runs) -> None:
    r = runs.never
    assert r.returncode != 0 and "[host1] Error: executed 0 commands" in r.stderr
    stops = [ln for ln in r.stderr.splitlines() if "stopped:" in ln]
    assert len(stops) == 1 and "reboot this host, then run the same deploy again" in stops[0], stops
    assert "Traceback" not in r.stderr
    assert runs.after_never.marker and runs.after_never.pid1 == runs.pid1_before  # not rebooted
    assert not runs.after_never.docker  # the Docker stage after the stop did not run


def test_policy_auto_really_restarts_the_host(runs) -> None:
    a = runs.after_auto
    assert not a.marker and not a.request  # /run started empty: a new boot
    assert a.pid1 > runs.pid1_before
    assert a.restarts == runs.restarts_before + 1
    assert a.system.strip() in ("running", "degraded")


def test_the_same_run_goes_on_after_the_reboot(runs) -> None:
    r = runs.auto
    assert r.ok, f"{r.errors()} {r.stderr[-3000:]}"
    names = [op.name for op in r.operations]
    reboot_at = next(i for i, n in enumerate(names) if "Reboot to load the new nvidia kernel module" in n)
    docker_at = next(i for i, n in enumerate(names) if DOCKER_OP in n)
    assert reboot_at < docker_at
    assert "host1" in r.operations[reboot_at].changed and "host1" in r.operations[docker_at].changed
    assert runs.after_auto.docker.rc == 0 and runs.after_auto.docker.stdout.strip()
    assert "rebooted: back after" in r.stderr


def test_second_run_changes_nothing(runs) -> None:
    assert_no_changes(runs.second)
    assert not any("Reboot to load" in n for n in runs.second.changed_ops())


def test_the_air_gapped_host_converges_from_the_bundle_alone(runs, airgap) -> None:
    assert airgap.rc != 0  # outbound cut: nothing outside answers host2
    r = runs.never  # host1 stops there; host2 converges in the same run
    assert "[host2] Error" not in r.stderr, r.stderr[-3000:]
    assert r.changes("host2") > 0 and not [op.name for op in r.operations if "host2" in op.error]
    assert "host2" in r.op(DOCKER_OP).changed
    assert runs.host2.docker.rc == 0 and runs.host2.docker.stdout.strip()
    sites = set(runs.host2.sources.split())
    assert sites and all(s.startswith("file:") for s in sites), sites  # apt knows no other source


def test_the_air_gapped_host_changes_nothing_on_later_runs(runs) -> None:
    assert "host2" not in {h for op in runs.auto.operations for h in op.changed}, runs.auto.changed_ops("host2")
    assert runs.auto.changes("host2") == 0 and runs.second.changes("host2") == 0


def test_a_bundle_missing_a_package_stops_the_hosts_before_any_change_naming_it(runs) -> None:
    r = runs.lacking
    assert r.returncode != 0 and "Traceback" not in r.stderr
    stops = [ln for ln in r.stderr.splitlines() if "stopped: offline" in ln]
    assert len(stops) == 2 and all("missing from the host and the bundle: jq" in ln for ln in stops), stops
    assert not runs.offline_conf_after_lacking


def test_a_bundle_without_the_driver_stops_a_driver_host_before_any_change_naming_the_packages(runs) -> None:
    r = runs.no_driver
    assert r.returncode != 0 and "Traceback" not in r.stderr
    stops = [ln for ln in r.stderr.splitlines() if "stopped: offline" in ln]
    assert len(stops) == 2, stops
    for ln in stops:
        named = ln.split("missing from the host and the bundle: ", 1)[1].split(", ")
        assert {"nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "firmware-nvidia-gsp"} <= set(named), ln
    assert not runs.no_driver_after.offline_conf and not runs.no_driver_after.blacklist
    assert "Install the NVIDIA driver" not in r.stderr
