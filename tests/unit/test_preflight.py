"""preflight_problems with facts recorded on a real H200 host and hand-made 4x RTX 4090 ones; and the
preflight deploy run for real by pyinfra against this (GPU-less) machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmrack import facts
from llmrack.config import load_tier
from llmrack.settings.hardware import GpuExpectation, HardwareSettings
from llmrack.settings.nvidia import NvidiaSettings
from roles.preflight import preflight_problems

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "gpu"
REAL, HAND = FIX / "h200-ubuntu2404", FIX / "handmade"
PYINFRA = Path(sys.executable).parent / "pyinfra"


def read(path: Path) -> list[str]:
    return path.read_text().splitlines()


def os_release(path: Path) -> dict:
    out = {}
    for line in read(path):
        if "=" in line and not line.startswith(("$", "#")):
            k, v = line.split("=", 1)
            out[k.lower()] = v.strip('"')
    return out


def real_facts() -> dict:
    return {
        "gpus": facts.parse_nvidia_gpus(read(REAL / "nvidia_gpus.txt")),
        "os_release": os_release(REAL / "raw" / "os-release.txt"),
        "secure_boot": facts.parse_secure_boot(read(REAL / "secure_boot.txt")),
        "free_disk": facts.parse_free_disk(read(REAL / "free_disk.txt")),
    }


def rtx_facts(**over) -> dict:
    base = {
        "gpus": facts.parse_nvidia_gpus(read(HAND / "nvidia_gpus_4x4090.txt")),
        "os_release": os_release(HAND / "os_release_ubuntu2404.txt"),
        "secure_boot": "disabled",
        "free_disk": facts.parse_free_disk(read(HAND / "free_disk_data.txt")),
    }
    return {**base, **over}


H200 = HardwareSettings(gpu=GpuExpectation(count=1, model="H200", memory_gib=141), data_free_gib_min=10)


def test_real_h200_matches_an_h200_tier():
    assert preflight_problems(real_facts(), H200, NvidiaSettings(), tier="adhoc", planned_tp=1) == []


def test_real_h200_stops_on_the_standard_tier_with_what_to_fix():
    std = load_tier("standard", ROOT)
    problems = preflight_problems(real_facts(), std.hardware, std.nvidia, tier="standard", planned_tp=4)
    text = "\n".join(problems)
    assert "GPU count: found 1 (1x NVIDIA H200 140 GiB), tier 'standard' expects 4x RTX 4090 24 GiB" in text
    assert "GPU model" in text and "hardware.gpu.model" in text
    assert "GPU memory: GPU 0: 140.4 GiB" in text
    assert "Tensor parallelism: the plan uses 4 GPUs per model but this host has 1" in text
    assert "Disk:" in text and "1000 GiB" in text


def test_standard_tier_passes_on_four_4090s():
    std = load_tier("standard", ROOT)
    assert preflight_problems(rtx_facts(), std.hardware, std.nvidia, tier="standard", planned_tp=4) == []


def test_memory_tolerance_is_ten_percent():
    hw = lambda gib: HardwareSettings(gpu=GpuExpectation(count=4, model="4090", memory_gib=gib))  # noqa: E731
    assert preflight_problems(rtx_facts(), hw(26), NvidiaSettings(), tier="t") == []  # 24 within 10 % of 26
    assert any("GPU memory" in p for p in preflight_problems(rtx_facts(), hw(27), NvidiaSettings(), tier="t"))


def test_lspci_only_host_is_counted_but_memory_is_not_judged():
    std = load_tier("standard", ROOT)
    f = rtx_facts(gpus=facts.parse_nvidia_gpus(read(HAND / "nvidia_gpus_lspci_no_driver.txt")))
    problems = preflight_problems(f, std.hardware, std.nvidia, tier="standard", planned_tp=4)
    assert len(problems) == 3 and "found 3" in problems[0] and "H100 PCIe" in problems[1]
    assert "this host has 3" in problems[2] and not any("GPU memory" in p for p in problems)


def test_no_gpu_on_a_gpu_tier_names_the_missing_tool():
    std = load_tier("entry", ROOT)
    f = rtx_facts(gpus=facts.parse_nvidia_gpus(read(HAND / "nvidia_gpus_none.txt")))
    (problem,) = preflight_problems(f, std.hardware, std.nvidia, tier="entry", planned_tp=1)
    assert "none found" in problem and "pciutils" in problem


def test_sandbox_tier_passes_without_gpu_and_stops_on_wrong_os():
    sandbox = load_tier("sandbox", ROOT)
    f = rtx_facts(gpus=facts.NvidiaGpus.default(), os_release={"id": "debian", "version_id": "12"})
    assert preflight_problems(f, sandbox.hardware, sandbox.nvidia, tier="sandbox") == []
    (problem,) = preflight_problems(rtx_facts(gpus=facts.NvidiaGpus.default()), sandbox.hardware,
                                    sandbox.nvidia, tier="sandbox")
    assert problem.startswith("OS: ubuntu 24.04 is not one of debian 12")


def test_secure_boot_policy():
    std = load_tier("standard", ROOT)
    on = rtx_facts(secure_boot="enabled")
    (problem,) = preflight_problems(on, std.hardware, NvidiaSettings(), tier="standard", planned_tp=4)
    assert "Secure Boot is on" in problem and "nvidia.secure_boot: signed" in problem
    assert preflight_problems(on, std.hardware, NvidiaSettings(secure_boot="signed"), tier="standard") == []
    debian = {**on, "os_release": {"id": "debian", "version_id": "12"}}
    (problem,) = preflight_problems(debian, std.hardware, NvidiaSettings(secure_boot="signed"), tier="standard")
    assert "Debian" in problem
    assert preflight_problems(rtx_facts(secure_boot="unknown"), std.hardware, NvidiaSettings(), tier="s") == []


def _pyinfra(*args: str, tier: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLMRACK_TIER": tier, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(PYINFRA), "-y", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)


@pytest.mark.skipif(os.path.exists("/usr/bin/nvidia-smi"), reason="expects a machine without a GPU")
def test_gpu_host_plan_on_a_gpu_less_machine_is_only_the_stop():
    """Real pyinfra, real facts of this machine (no GPU): the standard tier's plan holds only the stop."""
    res = _pyinfra("tests/gpu/inventory_local.py", "deploys/gpu_host.py", "--dry", "--json", tier="standard")
    assert res.returncode == 0, res.stderr[-2000:]
    plan = json.loads(res.stdout)["plan"]
    assert [op["name"] for op in plan] == ["Preflight checks | Stop this host: it does not match tier standard "
                                          "(3 problem(s))"]  # no GPU, TP 4 > 0 GPUs, disk < 1000 GiB
    assert "GPU: none found" in res.stderr


@pytest.mark.skipif(os.path.exists("/usr/bin/nvidia-smi"), reason="expects a machine without a GPU")
def test_preflight_stop_fails_the_host_with_the_message_and_changes_nothing():
    res = _pyinfra("tests/gpu/inventory_local.py", "tests/gpu/preflight_only.py", tier="standard")
    assert res.returncode == 1
    out = res.stdout + res.stderr
    assert "stopped: preflight (tier 'standard'): GPU: none found" in out
    assert "executed 0 commands" in out
    assert "Traceback" not in out  # an expected stop, not a crash
