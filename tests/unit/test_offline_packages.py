"""The packages the stages install are the one list of llmrack/packages.py, which the offline bundle carries.

A role that names a package in its own ``apt.packages`` call (instead of taking it from llmrack/packages.py)
installs something the bundle builder and the offline preflight do not know: the first test fails on it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from llmrack import packages
from llmrack.bundle_apt import tier_apt_packages
from llmrack.config import load_tier
from llmrack.errors import LlmrackError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")
TIERS = sorted(p.stem for p in (ROOT / "tiers").glob("*.yaml"))


def _apt_package_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "packages"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "apt"):
            yield node


def test_no_role_names_a_package_of_its_own():
    calls, own = 0, []
    for path in sorted((ROOT / "roles").glob("*.py")):
        for call in _apt_package_calls(ast.parse(path.read_text(), str(path))):
            calls += 1
            arg = next((k.value for k in call.keywords if k.arg == "packages"), None)
            assert arg is not None, f"{path.name}:{call.lineno}: apt.packages without packages="
            own += [f"{path.name}:{call.lineno}: {c.value}" for c in ast.walk(arg)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str) and PACKAGE_NAME.match(c.value)]
    assert calls >= 9  # base, docker (2), hardening (3), host security, backup, CUDA, toolkit, driver
    assert not own, own


def test_the_host_security_and_backup_packages_are_in_the_sandbox_bundle_list():
    sandbox = set(tier_apt_packages(load_tier("sandbox", ROOT)))
    assert {"auditd", "fail2ban", "libpam-pwquality", "python3-systemd", "sudo", "restic"} <= sandbox
    assert {"docker.io", "openssh-server", "nftables", "unattended-upgrades", "chrony", "tzdata"} <= sandbox


@pytest.mark.parametrize("tier", TIERS)
def test_every_stage_list_of_every_tier_is_in_its_bundle_list(tier):
    profile = load_tier(tier, ROOT)
    bundle = set(tier_apt_packages(profile))
    h = profile.hardening
    stage_lists = {
        "base": packages.base_packages(profile.base), "docker": packages.docker_packages(profile.docker),
        "hardening": packages.hardening_packages(h), "host_security": packages.host_security_packages(h),
        "backup": packages.backup_packages(profile.backup),
    }
    if profile.nvidia.enabled:
        stage_lists["nvidia_driver"] = packages.debian_driver_packages(profile.nvidia)
    if profile.nvidia.enabled and profile.hardware.gpu.count > 0:
        stage_lists["container_toolkit"] = packages.toolkit_packages()
        if profile.nvidia.cuda.enabled:
            stage_lists["cuda"] = packages.cuda_packages(profile.nvidia.cuda)
    missing = {stage: sorted(set(pkgs) - bundle) for stage, pkgs in stage_lists.items() if set(pkgs) - bundle}
    assert not missing, missing


def test_a_setting_that_turns_a_stage_off_drops_its_packages():
    profile = load_tier("sandbox", ROOT)
    h = profile.hardening.model_copy(update={"host": profile.hardening.host.model_copy(update={"fail2ban": False})})
    assert "fail2ban" not in packages.host_security_packages(h) and "auditd" in packages.host_security_packages(h)
    off = profile.model_copy(update={"backup": profile.backup.model_copy(update={"enabled": False})})
    assert "restic" not in tier_apt_packages(off) and "restic" in tier_apt_packages(profile)


def _inventory(tmp_path: Path, hosts: str) -> Path:
    inv = tmp_path / "site.py"
    inv.write_text(f"servers = {hosts}\n")
    return inv


def test_the_releases_come_from_the_inventory_hosts_of_the_tier(tmp_path: Path):
    from llmrack.bundle_apt import inventory_releases
    from llmrack.config import load_inventory

    inv = _inventory(tmp_path, "[('a', {'tier': 'sandbox', 'ssh_hostname': '10.0.0.1'}), "
                               "('b', {'tier': 'sandbox', 'ssh_hostname': '10.0.0.2', 'overrides': "
                               "{'hardware': {'os_releases': ['debian 13', 'debian 12']}}}), "
                               "('c', {'tier': 'standard', 'ssh_hostname': '10.0.0.3'})]")
    assert inventory_releases(load_inventory(inv, ROOT), "sandbox") == ["bookworm", "trixie"]
    with pytest.raises(LlmrackError) as exc:  # the standard tier accepts Ubuntu releases too
        inventory_releases(load_inventory(inv, ROOT), "standard")
    assert exc.value.field == "c.hardware.os_releases.0" and "'ubuntu 22.04'" in str(exc.value)
    with pytest.raises(LlmrackError, match="no host of the inventory uses tier 'entry'"):
        inventory_releases(load_inventory(inv, ROOT), "entry")


def test_bundle_build_with_an_inventory_of_ubuntu_hosts_exits_2_before_writing(tmp_path: Path):
    from typer.testing import CliRunner

    from llmrack.cli import app

    inv = _inventory(tmp_path, "[('gpu1', {'tier': 'standard', 'ssh_hostname': '10.0.0.3'})]")
    out = tmp_path / "bundle"
    r = CliRunner().invoke(app, ["bundle", "build", "--tier", "standard", "--out", str(out), "--inventory", str(inv),
                                 "--project", str(ROOT)], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert "gpu1.hardware.os_releases.0" in r.output and "Traceback" not in r.output
    assert not out.exists()
