"""Facts and preflight on a real NVIDIA host (``pytest -m gpu tests/gpu``); skipped where there is no GPU."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from llmrack import facts
from llmrack.settings.hardware import GpuExpectation, HardwareSettings
from llmrack.settings.nvidia import NvidiaSettings
from roles.preflight import preflight_problems

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no nvidia-smi: not a GPU host"),
]


def run_fact(cls, **kwargs):
    out = subprocess.run(["bash", "-c", str(cls().command(**kwargs))], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return cls().process(out.splitlines())


def smi(field: str) -> list[str]:
    out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    return [ln.strip() for ln in out.splitlines() if ln.strip()]


def test_nvidia_gpus_matches_nvidia_smi():
    gpus = run_fact(facts.NvidiaGpus)
    assert gpus["source"] == "nvidia-smi", gpus
    assert gpus["count"] == len(smi("index")) >= 1
    assert [g["name"] for g in gpus["gpus"]] == smi("name")
    assert gpus["driver_version"] == smi("driver_version")[0]
    assert all(g["memory_gib"] and g["memory_gib"] > 10 for g in gpus["gpus"])
    assert gpus["error"] is None


def test_every_queried_field_is_known_to_this_driver():
    help_text = subprocess.run(["nvidia-smi", "--help-query-gpu"], capture_output=True, text=True).stdout
    for name in facts.SMI_FIELDS:
        assert f'"{name}"' in help_text, name


def test_preflight_passes_for_the_machine_and_stops_for_standard():
    gpus = run_fact(facts.NvidiaGpus)
    first = gpus["gpus"][0]
    with open("/etc/os-release") as f:
        os_release = dict(ln.split("=", 1) for ln in f.read().splitlines() if "=" in ln)
    found = {
        "gpus": gpus, "secure_boot": run_fact(facts.SecureBoot), "free_disk": run_fact(facts.FreeDisk, path="/"),
        "os_release": {k.lower(): v.strip('"') for k, v in os_release.items()},
    }
    model = "H200" if "H200" in first["name"] else "H100" if "H100" in first["name"] else first["name"]
    match = HardwareSettings(gpu=GpuExpectation(count=gpus["count"], model=model,
                                                memory_gib=round(first["memory_gib"])), data_free_gib_min=1)
    assert preflight_problems(found, match, NvidiaSettings(), tier="adhoc", planned_tp=gpus["count"]) == []
    standard = HardwareSettings(gpu=GpuExpectation(count=4, model="RTX 4090", memory_gib=24))
    problems = preflight_problems(found, standard, NvidiaSettings(), tier="standard", planned_tp=4)
    text = " ".join(problems)
    assert "GPU count" in text and "GPU model" in text and "Tensor parallelism" in text
