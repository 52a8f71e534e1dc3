"""The Debian non-free NVIDIA driver, and a dry run of the container toolkit, on a GPU-less sandbox host
(Debian 12, no GPU, a kernel not from a Debian package). The GPU deploy with a GPU tier stops in preflight,
and a branch the release does not ship stops the driver, both with nothing changed; dry runs name the apt
sources and packages and touch nothing; the converge installs and holds the driver packages, blacklists
nouveau and nova_core, enables nvidia-persistenced, does not reboot; a second converge changes nothing.

The nvidia module is never loaded here (no GPU and no headers for the shared kernel); that is the point:
the packages, holds and configuration are what this host can prove. Runs deploys/nvidia_driver.py with the
sandbox tier plus a tier override turning the NVIDIA stack on.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from harness import PROJECT, SANDBOX_INVENTORY, assert_converged, assert_no_changes, run_pyinfra, sandbox_env

pytestmark = pytest.mark.integration
SANDBOX_HOSTS = 1
DEPLOY = PROJECT / "deploys" / "nvidia_driver.py"
SOURCES = "/etc/apt/sources.list.d/llmrack-non-free.sources"
GPU_HOST = PROJECT / "deploys" / "gpu_host.py"
BLACKLIST = "/etc/modprobe.d/llmrack-blacklist-nouveau.conf"
TOOLKIT_ONLY = PROJECT / "tests" / "integration" / "toolkit_only.py"
TOOLKIT_LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
PACKAGES = ["nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "nvidia-persistenced", "firmware-nvidia-gsp"]


def _inventory(tmp: Path, branch: int, tier: str = "sandbox") -> Path:
    inv = tmp / f"driver_{branch}_{tier}.py"
    over = {"nvidia": {"enabled": True, "driver_branch": branch}} if tier == "sandbox" else {}
    inv.write_text(
        "import runpy\n"
        f"_base = runpy.run_path({str(SANDBOX_INVENTORY)!r})\n"
        f"sandbox = [(n, {{**d, 'tier': {tier!r}, 'overrides': {{**d['overrides'], **{over!r}}}}}) "
        "for n, d in _base['sandbox']]\n"
    )
    return inv


@pytest.fixture(scope="module")
def runs(sandbox_state, host1, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("driver")
    env = sandbox_env(sandbox_state)
    gpu_tier = run_pyinfra(_inventory(tmp, 550, tier="standard"), GPU_HOST, env=env, expect_json=False)
    changed_after_gpu_tier = [p for p in (BLACKLIST, SOURCES, TOOLKIT_LIST) if host1.file(p).exists]
    too_new = run_pyinfra(_inventory(tmp, 550), DEPLOY, env=env, expect_json=False)  # its only host stops
    sources_after_stop = host1.file(SOURCES).exists
    inv = _inventory(tmp, 535)
    dry = run_pyinfra(inv, DEPLOY, dry=True, env=env)
    sources_after_dry = host1.file(SOURCES).exists
    toolkit_dry = run_pyinfra(inv, TOOLKIT_ONLY, dry=True, env=env)
    toolkit_list_after_dry = host1.file(TOOLKIT_LIST).exists
    first = run_pyinfra(inv, DEPLOY, env=env, timeout=1200)
    boot_id = host1.file("/proc/sys/kernel/random/boot_id").content_string
    second = run_pyinfra(inv, DEPLOY, env=env)
    return SimpleNamespace(
        gpu_tier=gpu_tier, changed_after_gpu_tier=changed_after_gpu_tier, too_new=too_new,
        sources_after_stop=sources_after_stop, dry=dry, sources_after_dry=sources_after_dry,
        toolkit_dry=toolkit_dry, toolkit_list_after_dry=toolkit_list_after_dry, first=first, second=second,
        boot_id=boot_id)


def test_a_gpu_tier_on_a_gpu_less_host_stops_in_preflight_with_nothing_changed(runs) -> None:
    r = runs.gpu_tier
    assert r.returncode != 0
    assert "stopped: preflight (tier 'standard'): GPU" in r.stderr
    assert "[host1] Error: executed 0 commands" in r.stderr and "Traceback" not in r.stderr
    assert runs.changed_after_gpu_tier == []


def test_a_branch_debian_12_does_not_ship_stops_the_host_with_nothing_changed(runs, host1) -> None:
    r = runs.too_new
    assert r.returncode != 0
    assert "Debian 12 ships NVIDIA driver branch 535 in non-free; the tier asks for 550" in r.stderr
    assert "[host1] Error: executed 0 commands" in r.stderr
    assert "Traceback" not in r.stderr
    assert not runs.sources_after_stop


def test_dry_run_names_the_source_and_packages_and_touches_nothing(runs) -> None:
    assert runs.dry.returncode == 0, runs.dry.stderr[-2000:]
    planned = {op["name"] for op in runs.dry.plan if "host1" in op["hosts_with_change"]}
    assert any("non-free" in n for n in planned), planned
    assert any("Install the NVIDIA driver branch 535" in n for n in planned), planned
    line = next(ln for ln in runs.dry.stderr.splitlines() if "nvidia driver: packages" in ln)
    assert line.split("packages ", 1)[1].split() == PACKAGES  # no linux-headers-*: the kernel is not Debian's
    assert "nvidia driver: holds" in runs.dry.stderr
    assert not runs.sources_after_dry


def test_container_toolkit_dry_run_plans_the_signed_repository_and_pinned_packages(runs) -> None:
    r = runs.toolkit_dry
    assert r.returncode == 0, r.stderr[-2000:]
    planned = [op["name"] for op in r.plan if "host1" in op["hosts_with_change"] + op["hosts_with_conditional_change"]]
    for expected in ("Download the NVIDIA container toolkit key to /etc/apt/keyrings/nvidia-container-toolkit.asc",
                     f"Write {TOOLKIT_LIST}", "Install the NVIDIA container toolkit 1.17.8",
                     "Hold the NVIDIA container toolkit packages", "Generate the CDI spec /etc/cdi/nvidia.yaml"):
        assert any(expected in n for n in planned), (expected, planned)
    assert "container toolkit: none -> 1.17.8" in r.stderr
    assert not runs.toolkit_list_after_dry


def test_converge_installs_and_holds_without_reboot(runs, host1) -> None:
    assert_converged(runs.first)
    assert "Reboot" not in " ".join(runs.first.changed_ops())
    held = set(host1.check_output("apt-mark showhold").split())
    for pkg in PACKAGES:
        assert host1.package(pkg).is_installed, pkg
        assert pkg in held, (pkg, held)
    assert host1.package("nvidia-smi").version.startswith("535.")
    assert not host1.package("xserver-xorg-core").is_installed  # compute only: no X server
    assert host1.file(SOURCES).contains("non-free")


def test_nouveau_and_nova_blacklisted_persistenced_enabled_module_not_loaded(runs, host1) -> None:
    conf = host1.file(BLACKLIST)
    assert conf.contains("^blacklist nouveau") and conf.contains("^blacklist nova_core")
    assert host1.service("nvidia-persistenced").is_enabled
    assert not host1.file("/sys/module/nvidia").exists  # not loaded: no GPU, no module built for this kernel


def test_second_converge_changes_nothing_and_the_host_was_not_rebooted(runs, host1) -> None:
    assert_no_changes(runs.second)
    assert host1.file("/proc/sys/kernel/random/boot_id").content_string == runs.boot_id
