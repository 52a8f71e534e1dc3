"""The full stack's stage list and its cuts, the reboot policy, and the offline (air-gapped) checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmrack.bundle_apt import build_apt_repo, offline_problems, repo_packages, tier_apt_packages
from llmrack.config import load_tier
from llmrack.errors import LlmrackError
from roles.nvidia_driver import DriverPlan, reboot_condition

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))


def test_full_stack_runs_every_stage_in_the_documented_order():
    sys.path.insert(0, str(ROOT))  # pyinfra runs deploy files from the project root, which is on its path
    from deploys.stages import NAMES, cut

    assert NAMES == ["preflight", "base", "nvidia_driver", "reboot", "cuda", "container_toolkit", "docker",
                     "gpu_check", "hardening", "stack", "backup", "monitoring"]
    assert [n for n, _ in cut("preflight", "gpu_check")] == NAMES[:8]
    assert [n for n, _ in cut("preflight", "reboot", skip=["base"])] == ["preflight", "nvidia_driver", "reboot"]
    assert "from deploys.stages import FULL_STACK, run" in (ROOT / "deploys" / "full_stack.py").read_text()


def test_the_smaller_deploy_files_are_cuts_not_copies():
    for name in ("gpu_host", "nvidia_driver", "docker_host", "base", "hardening", "stack", "backup"):
        text = (ROOT / "deploys" / f"{name}.py").read_text()
        assert "from deploys.stages import cut, run" in text and "roles." not in text, name


def test_reboot_condition_follows_the_driver_plan():
    assert reboot_condition(DriverPlan(action="keep", reason="")) is None
    assert reboot_condition(DriverPlan(action="keep", reason="", reboot_pending=True))() is True

    class Op:
        def did_change(self) -> bool:
            return False

    op = Op()
    assert reboot_condition(DriverPlan(action="install", reason="", module_op=op)) == op.did_change


def _run_local(tmp_path: Path, overrides: str) -> subprocess.CompletedProcess:
    inv = ROOT / "inventories" / f"_test_stages_{tmp_path.name}.py"
    inv.write_text(f"hosts = [('@local', {{'tier': 'sandbox', 'overrides': {overrides}}})]\n")
    try:
        return subprocess.run([PYINFRA, "-y", str(inv), "deploys/full_stack.py"], cwd=ROOT, capture_output=True,
                              text=True, timeout=180)
    finally:
        inv.unlink()


def test_an_unknown_reboot_policy_exits_2_naming_the_field(tmp_path: Path):
    proc = _run_local(tmp_path, "{'nvidia': {'reboot': 'maybe'}}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "overrides.nvidia.reboot: Input should be 'auto' or 'never'" in out and "Traceback" not in out
    assert "Beginning operation run" not in out


def test_offline_without_a_bundle_exits_2_before_any_operation(tmp_path: Path):
    missing = tmp_path / "no-bundle"
    proc = _run_local(tmp_path, f"{{'base': {{'apt': {{'offline': True}}}}, 'stack': {{'bundle': {{'path': "
                                f"{str(missing)!r}}}}}}}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"base.apt.offline is on but {missing} holds no offline bundle" in out and "Traceback" not in out
    assert "Beginning operation run" not in out


def test_tier_packages_cover_base_docker_hardening_and_the_gpu_stack():
    sandbox = tier_apt_packages(load_tier("sandbox", ROOT))
    assert {"docker.io", "chrony", "jq", "openssh-server"} <= set(sandbox)
    assert not any(p.startswith("nvidia") for p in sandbox)
    gpu = tier_apt_packages(load_tier("standard", ROOT))
    assert {"nvidia-kernel-dkms", "nvidia-smi", "nvidia-container-toolkit"} <= set(gpu)


def test_offline_problems_name_each_package_neither_installed_nor_bundled():
    bundle = {"bookworm": {"packages": {"docker.io": "20.10.24", "jq": "1.6"}}}
    problems = offline_problems(["docker.io", "jq", "curl", "nvidia-smi"], bundle, {"curl": ["7.88"]}, "bookworm")
    assert len(problems) == 1 and problems[0].startswith("package nvidia-smi is neither installed")
    assert offline_problems(["jq"], bundle, {}, "bookworm") == []
    assert "no APT repository for trixie" in offline_problems(["jq"], bundle, {}, "trixie")[0]


def test_a_bad_release_name_is_refused_before_anything_is_written(tmp_path: Path):
    with pytest.raises(LlmrackError, match="not a release codename"):
        build_apt_repo(tmp_path, codename="../etc", mirror="http://x", packages=["jq"])
    assert not (tmp_path / "apt").exists()


def test_repo_packages_reads_a_packages_index(tmp_path: Path):
    (tmp_path / "Packages").write_text("Package: jq\nVersion: 1.6-2.1\n\nPackage: libjq1\nVersion: 1.6-2.1\n")
    assert repo_packages(tmp_path) == {"jq": "1.6-2.1", "libjq1": "1.6-2.1"}


def test_progress_lines_give_size_rate_and_what_is_left():
    from llmrack.progress import Progress

    lines: list[str] = []

    class Host:
        def log_styled(self, text: str, **_kw) -> None:
            lines.append(text)

    p = Progress("image load", total=3 * 2**20, count=2)
    p.reporter("a:1", 2**20)(Host(), 0.5)
    p.reporter("b:1", 2 * 2**20)(Host(), 0.0)
    assert lines[0] == "image load 1/2 a:1: 1 MiB in 0.5 s (2 MiB/s); 2 MiB and 1 left"
    assert lines[1].endswith("0 MiB and 0 left")
