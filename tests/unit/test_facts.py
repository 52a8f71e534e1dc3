"""The GPU facts' parsers fed with outputs recorded on a real H200 host and hand-made 4x RTX 4090 ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrack import facts

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "gpu"
REAL = FIX / "h200-ubuntu2404"
HAND = FIX / "handmade"


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize(
    "name,cls",
    [("nvidia_gpus", facts.NvidiaGpus), ("secure_boot", facts.SecureBoot), ("kernel_modules", facts.KernelModules),
     ("nvidia_packages", facts.NvidiaPackages), ("container_toolkit_version", facts.ContainerToolkitVersion),
     ("cdi_spec", facts.CdiSpec), ("xid_errors", facts.XidErrors), ("free_disk", facts.FreeDisk)],
)
def test_recorded_outputs_parse_as_on_the_host(name, cls):
    """The parse of each recorded output equals what the fact returned on the GPU host."""
    expected = json.loads((REAL / f"{name}.parsed.json").read_text())
    assert json.loads(json.dumps(cls().process(lines(REAL / f"{name}.txt")))) == expected


# Read by hand from the H200 host's raw tool output (tests/fixtures/gpu/h200-ubuntu2404/raw/nvidia-smi-q.txt unless
# said otherwise), not from the parser: each value next to the line of `nvidia-smi -q` it comes from.
H200_BY_HAND = {
    "name": ("NVIDIA H200", r"Product Name\s+: NVIDIA H200"),
    "uuid": ("GPU-c213ea9a-9dbd-a865-6568-fe7ca9ccb831", r"GPU UUID\s+: GPU-c213ea9a-9dbd-a865-6568-fe7ca9ccb831"),
    "memory_mib": (143771, r"FB Memory Usage\s+Total\s+: 143771 MiB"),
    "driver_version": ("580.159.04", r"Driver Version\s+: 580.159.04"),
    "persistence_mode": (True, r"Persistence Mode\s+: Enabled"),
    "ecc_mode": ("enabled", r"ECC Mode\s+Current\s+: Enabled"),
    "ecc_uncorrected_volatile": (0, r"Volatile\s+SRAM Correctable\s+: 0\s+SRAM Uncorrectable Parity\s+: 0"),
    "pcie_gen": (5, r"PCIe Generation\s+Max\s+: 5\s+Current\s+: 5"),
    "pcie_gen_max": (5, r"PCIe Generation\s+Max\s+: 5"),
    "pcie_width": (16, r"Link Width\s+Max\s+: 16x\s+Current\s+: 16x"),
    "pcie_width_max": (16, r"Link Width\s+Max\s+: 16x"),
    "power_limit_w": (700.0, r"Current Power Limit\s+: 700.00 W"),
    "temperature_c": (34, r"GPU Current Temp\s+: 34 C"),
    "utilization_pct": (0, r"Utilization\s+GPU\s+: 0 %"),
    "throttle_reasons": (["gpu_idle"], r"Clocks Event Reasons\s+Idle\s+: Active\s+Applications Clocks Setting\s+: "
                                       r"Not Active\s+SW Power Cap\s+: Not Active\s+HW Slowdown\s+: Not Active"),
}


def test_h200_golden_and_parse_match_the_values_read_by_hand():
    """The golden (.parsed.json, written on the host by the fact) and today's parse both equal the values a person
    reads off `nvidia-smi -q`; each stated value is itself found in that raw output."""
    import re

    raw = (REAL / "raw" / "nvidia-smi-q.txt").read_text()
    golden = json.loads((REAL / "nvidia_gpus.parsed.json").read_text())["gpus"][0]
    parsed = facts.parse_nvidia_gpus(lines(REAL / "nvidia_gpus.txt"))["gpus"][0]
    for key, (value, pattern) in H200_BY_HAND.items():
        assert re.search(pattern, raw), f"{key}: {pattern!r} is not in nvidia-smi -q"
        assert golden[key] == value, (key, golden[key], value)
        assert parsed[key] == value, (key, parsed[key], value)
    # compute capability is not in `nvidia-smi -q`: read from the --query-gpu line the fact ran (6th field)
    assert lines(REAL / "nvidia_gpus.txt")[1].split(", ")[5] == "9.0" == golden["compute_cap"] == parsed["compute_cap"]
    assert golden["memory_gib"] == parsed["memory_gib"] == round(143771 / 1024, 1)


def test_real_h200():
    g = facts.parse_nvidia_gpus(lines(REAL / "nvidia_gpus.txt"))
    assert g["source"] == "nvidia-smi" and g["count"] == 1 and g["error"] is None
    gpu = g["gpus"][0]
    assert gpu["name"] == "NVIDIA H200" and gpu["memory_mib"] == 143771 and gpu["memory_gib"] == 140.4
    assert g["driver_version"] == "580.159.04" and gpu["compute_cap"] == "9.0"
    assert gpu["persistence_mode"] is True and gpu["ecc_mode"] == "enabled" and gpu["ecc_uncorrected_volatile"] == 0
    assert (gpu["pcie_gen"], gpu["pcie_width"], gpu["power_limit_w"]) == (5, 16, 700.0)
    assert gpu["throttle_reasons"] == ["gpu_idle"]
    assert facts.driver_major(g["driver_version"]) == 580


def test_query_fields_are_documented_by_the_real_driver():
    help_text = (REAL / "raw" / "nvidia-smi-help-query-gpu.txt").read_text()
    for field in (*facts.SMI_FIELDS, "clocks_event_reasons.active"):
        assert f'"{field}"' in help_text, field


def test_four_4090_with_na_and_not_supported():
    g = facts.parse_nvidia_gpus(lines(HAND / "nvidia_gpus_4x4090.txt"))
    assert g["source"] == "nvidia-smi" and g["count"] == 4
    assert {x["name"] for x in g["gpus"]} == {"NVIDIA GeForce RTX 4090"}
    assert g["gpus"][0]["ecc_uncorrected_volatile"] is None and g["gpus"][0]["ecc_mode"] == "disabled"
    assert g["gpus"][2]["pcie_gen"] == 1 and g["gpus"][2]["pcie_width"] == 8
    assert g["gpus"][3]["power_limit_w"] is None and g["gpus"][3]["persistence_mode"] is False
    assert g["gpus"][3]["throttle_reasons"] == ["sw_power_cap", "sw_thermal_slowdown"]


def test_lspci_fallback_without_driver_skips_audio_functions():
    g = facts.parse_nvidia_gpus(lines(HAND / "nvidia_gpus_lspci_no_driver.txt"))
    assert g["source"] == "lspci" and g["count"] == 3 and g["driver_version"] is None
    assert [x["name"] for x in g["gpus"]] == ["GeForce RTX 4090", "GeForce RTX 4090", "H100 PCIe"]
    assert g["gpus"][2]["pci_class"] == "0302" and g["gpus"][2]["pci_device_id"] == "10de:2331"


@pytest.mark.parametrize("fixture", ["nvidia_gpus_none.txt", "nvidia_gpus_no_gpu_lspci.txt"])
def test_no_gpu(fixture):
    g = facts.parse_nvidia_gpus(lines(HAND / fixture))
    assert (g["source"], g["count"], g["error"]) == ("none", 0, None)
    assert g["lspci_available"] is (fixture == "nvidia_gpus_no_gpu_lspci.txt")
    assert facts.NvidiaGpus.default()["count"] == 0


def test_driver_library_mismatch_falls_back_to_lspci_and_keeps_the_error():
    g = facts.parse_nvidia_gpus(lines(HAND / "nvidia_gpus_mismatch.txt"))
    assert g["source"] == "lspci" and g["gpus"][0]["name"] == "A100 PCIe 80GB"
    assert "exit 18" in g["error"] and "version mismatch" in g["error"]
    g = facts.parse_nvidia_gpus(lines(HAND / "nvidia_gpus_no_driver_comm.txt"))
    assert g["count"] == 0 and "couldn't communicate" in g["error"]


def test_malformed_smi_line_is_reported_not_raised():
    g = facts.parse_nvidia_gpus(["##smi", "0, NVIDIA H200, only three", "##smi_rc=0"])
    assert g["count"] == 0 and "only three" in g["error"]


def test_throttle_decoding():
    assert facts.decode_throttle("0x0000000000000000") == []
    assert facts.decode_throttle("0x00000000000000C0") == ["hw_thermal_slowdown", "hw_power_brake_slowdown"]
    assert facts.decode_throttle("[N/A]") == [] and facts.decode_throttle("0x1000") == ["unknown_0x1000"]


@pytest.mark.parametrize(
    "fixture,state",
    [("secure_boot_enabled.txt", "enabled"), ("secure_boot_disabled.txt", "disabled"),
     ("secure_boot_efivar_only.txt", "enabled"), ("secure_boot_bios.txt", "unknown")],
)
def test_secure_boot(fixture, state):
    assert facts.parse_secure_boot(lines(HAND / fixture)) == state


def test_secure_boot_real_non_efi_vm():
    assert facts.parse_secure_boot(lines(REAL / "secure_boot.txt")) == "unknown"


def test_kernel_modules():
    real = facts.parse_kernel_modules(lines(REAL / "kernel_modules.txt"))
    assert real["loaded"] == ["nvidia", "nvidia_uvm"] and real["nvidia_version"] == "580.159.04"
    nouveau = facts.parse_kernel_modules(lines(HAND / "kernel_modules_nouveau.txt"))
    assert nouveau["nouveau"] and not nouveau["nvidia"] and nouveau["nvidia_version"] is None
    none = facts.parse_kernel_modules(lines(HAND / "kernel_modules_none.txt"))
    assert none["loaded"] == [] and none["readable"] is False


def test_packages():
    real = facts.parse_nvidia_packages(lines(REAL / "nvidia_packages.txt"))
    assert real["installed"]["cuda-compat-13-0"] == "580.95.05-0ubuntu1"
    assert "nvidia-libopencl1-dev" not in real["installed"]  # 'un': known but not installed
    assert "libnccl2" in real["held"]
    ubuntu = facts.parse_nvidia_packages(lines(HAND / "nvidia_packages_ubuntu_550.txt"))
    assert ubuntu["installed"]["nvidia-driver-550-server"].startswith("550.144.03")
    assert "nvidia-driver-535" not in ubuntu["installed"]
    assert ubuntu["held"] == ["linux-generic", "nvidia-driver-550-server"]
    assert facts.parse_nvidia_packages(lines(HAND / "nvidia_packages_none.txt")) == {
        "installed": {}, "held": [], "dpkg": False}


def test_container_toolkit_version():
    assert facts.parse_ctk_version(lines(HAND / "container_toolkit_version.txt")) == "1.17.8"
    assert facts.parse_ctk_version(lines(HAND / "container_toolkit_version_broken.txt")) is None
    assert facts.parse_ctk_version(lines(REAL / "container_toolkit_version.txt")) is None


def test_xid_errors():
    x = facts.parse_xid_errors(lines(HAND / "xid_errors.txt"))
    assert x["readable"] and x["count"] == 3 and x["codes"] == {"79": 1, "48": 2}
    assert "double bit" in x["last"]
    assert facts.parse_xid_errors(lines(HAND / "xid_errors_unreadable.txt"))["readable"] is False
    assert facts.parse_xid_errors(lines(REAL / "xid_errors.txt")) == {
        "readable": True, "source": "dmesg", "count": 0, "codes": {}, "last": None}


def test_cdi_spec():
    c = facts.parse_cdi_spec(lines(HAND / "cdi_spec_550.txt"))
    assert c["exists"] and c["driver_version"] == "550.144.03" and "all" in c["devices"]
    assert facts.parse_cdi_spec(lines(REAL / "cdi_spec.txt"))["exists"] is False


def test_free_disk():
    real = facts.parse_free_disk(lines(REAL / "free_disk.txt"))
    assert real["mount"] == "/" and real["free_gib"] == round(67033600 / 1024**2, 1)
    data = facts.parse_free_disk(lines(HAND / "free_disk_data.txt"))
    assert data["mount"] == "/data" and data["free_gib"] > 10000
    assert facts.parse_free_disk([])["free_gib"] is None
