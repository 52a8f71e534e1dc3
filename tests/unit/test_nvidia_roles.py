"""Plans of the driver, CUDA and container toolkit roles from recorded facts; templates; burn-in verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest

from llmrack import burnin, facts
from llmrack.settings.nvidia import ContainerToolkitSettings, CudaSettings, NvidiaSettings
from roles.container_toolkit import cdi_needs_generate, toolkit_packages
from roles.cuda import cuda_packages, cuda_repo_distro
from roles.nvidia_driver import kernel_flavour, plan_driver

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "gpu"
REAL, HAND = FIX / "h200-ubuntu2404", FIX / "handmade"
UBUNTU = {"id": "ubuntu", "version_id": "24.04", "version_codename": "noble"}
KERNEL = "6.8.0-51-generic"


def read(path: Path) -> list[str]:
    return path.read_text().splitlines()


def real_facts() -> dict:
    return {
        "os_release": UBUNTU, "kernel": (REAL / "raw" / "uname-r.txt").read_text().splitlines()[-1],
        "gpus": facts.parse_nvidia_gpus(read(REAL / "nvidia_gpus.txt")),
        "modules": facts.parse_kernel_modules(read(REAL / "kernel_modules.txt")),
        "packages": facts.parse_nvidia_packages(read(REAL / "nvidia_packages.txt")),
        "secure_boot": facts.parse_secure_boot(read(REAL / "secure_boot.txt")),
    }


def bare_facts(**over) -> dict:
    """A fresh Ubuntu 24.04 host with 4090s and no driver (lspci sees the cards)."""
    base = {
        "os_release": UBUNTU, "kernel": KERNEL,
        "gpus": facts.parse_nvidia_gpus(read(HAND / "nvidia_gpus_lspci_no_driver.txt")),
        "modules": facts.parse_kernel_modules(read(HAND / "kernel_modules_nouveau.txt")),
        "packages": {"installed": {"linux-generic": "6.8.0-51.52", "linux-image-generic": "6.8.0-51.52",
                                   f"linux-image-{KERNEL}": "6.8.0-51.52"}, "held": []},
        "secure_boot": "disabled",
    }
    return {**base, **over}


def test_real_host_driver_580_satisfies_branch_550_and_is_left_alone():
    plan = plan_driver(real_facts(), NvidiaSettings(driver_branch=550))
    assert plan.action == "keep" and plan.packages == [] and plan.installed_version == "580.159.04"
    assert plan.hold == []  # this driver is not from packages: nothing to hold
    assert plan.reboot_pending is False


def test_real_host_older_than_branch_590_installs_it():
    plan = plan_driver(real_facts(), NvidiaSettings(driver_branch=590))
    assert plan.action == "install" and "older than branch 590" in plan.reason
    # that host boots a kernel that is not an Ubuntu package: no linux-headers-* package exists for it
    assert plan.packages == ["dkms", "nvidia-driver-590-server"] and plan.reboot_on_change
    signed = plan_driver({**real_facts(), "secure_boot": "enabled"},
                         NvidiaSettings(driver_branch=590, secure_boot="signed"))
    assert signed.action == "stop" and "not one of Ubuntu's packaged kernels" in signed.reason


def test_fresh_ubuntu_dkms_server():
    plan = plan_driver(bare_facts(), NvidiaSettings())
    assert plan.action == "install"
    assert plan.packages == [f"linux-headers-{KERNEL}", "dkms", "nvidia-driver-550-server"]
    assert plan.hold == ["linux-generic", f"linux-image-{KERNEL}", "linux-image-generic", "nvidia-driver-550-server"]


def test_fresh_ubuntu_headless_and_desktop():
    assert plan_driver(bare_facts(), NvidiaSettings(driver_flavor="headless", driver_branch=570)).packages == [
        f"linux-headers-{KERNEL}", "dkms", "nvidia-headless-570-server", "nvidia-utils-570-server"]
    assert plan_driver(bare_facts(), NvidiaSettings(driver_flavor="desktop")).packages[-1] == "nvidia-driver-550"


def test_secure_boot_stops_unless_signed_modules_are_chosen():
    stop = plan_driver(bare_facts(secure_boot="enabled"), NvidiaSettings())
    assert stop.action == "stop" and "nvidia.secure_boot: signed" in stop.reason
    signed = plan_driver(bare_facts(secure_boot="enabled"), NvidiaSettings(secure_boot="signed"))
    assert signed.action == "install"
    # the prebuilt module for the running kernel, not the flavour meta package (that one follows the GA kernel)
    assert signed.packages == [f"linux-modules-nvidia-550-server-{KERNEL}", "nvidia-headless-no-dkms-550-server",
                               "nvidia-utils-550-server"]
    opened = plan_driver(bare_facts(secure_boot="enabled"),
                         NvidiaSettings(secure_boot="signed", open_kernel_module=True, driver_branch=580))
    assert opened.packages == [f"linux-modules-nvidia-580-server-open-{KERNEL}",
                               "nvidia-headless-no-dkms-580-server-open", "nvidia-utils-580-server"]
    assert not any(p == "dkms" or p.startswith("linux-headers") for p in signed.packages)


def test_installed_550_is_kept_and_unheld_packages_are_held():
    f = bare_facts(
        gpus=facts.parse_nvidia_gpus(read(HAND / "nvidia_gpus_4x4090.txt")),
        packages=facts.parse_nvidia_packages(read(HAND / "nvidia_packages_ubuntu_550.txt")),
        modules={"nvidia": True, "loaded": ["nvidia"]},
    )
    plan = plan_driver(f, NvidiaSettings(driver_branch=550))
    assert plan.action == "keep"
    # nvidia-driver-550-server and linux-generic are already held; the container toolkit is not the driver's
    assert plan.hold == ["libnvidia-compute-550-server", f"linux-headers-{KERNEL}", "linux-headers-generic",
                         f"linux-image-{KERNEL}", "linux-image-generic", "nvidia-dkms-550-server",
                         "nvidia-utils-550-server"]
    assert plan_driver(f, NvidiaSettings(hold_packages=False)).hold == []


def test_installed_packages_without_loaded_module_want_a_reboot():
    f = bare_facts(gpus=facts.parse_nvidia_gpus(read(HAND / "nvidia_gpus_mismatch.txt")),
                   packages=facts.parse_nvidia_packages(read(HAND / "nvidia_packages_ubuntu_550.txt")))
    plan = plan_driver(f, NvidiaSettings())
    assert plan.action == "keep" and plan.installed_version == "550.144.03" and plan.reboot_pending


BOOKWORM = {"id": "debian", "version_id": "12", "version_codename": "bookworm"}


def test_debian_uses_non_free_and_dkms_without_x():
    kernel = "6.1.0-28-amd64"
    f = bare_facts(os_release=BOOKWORM, kernel=kernel,
                   packages={"installed": {f"linux-image-{kernel}": "6.1.119-1", "linux-image-amd64": "6.1.119-1"},
                             "held": []})
    plan = plan_driver(f, NvidiaSettings(driver_branch=535))
    assert plan.action == "install" and plan.non_free_sources == "bookworm" and plan.reboot_on_change
    assert plan.packages == [f"linux-headers-{kernel}", "nvidia-kernel-dkms", "nvidia-smi", "libcuda1",
                             "nvidia-persistenced", "firmware-nvidia-gsp"]
    assert plan.hold == ["firmware-nvidia-gsp", "libcuda1", f"linux-image-{kernel}", "linux-image-amd64",
                         "nvidia-kernel-dkms", "nvidia-persistenced", "nvidia-smi"]
    assert "nvidia-open-kernel-dkms" in plan_driver(f, NvidiaSettings(driver_branch=535,
                                                                      open_kernel_module=True)).packages
    on = plan_driver(bare_facts(os_release={"id": "debian", "version_id": "13"}, secure_boot="enabled"),
                     NvidiaSettings(secure_boot="signed"))
    assert on.action == "stop" and "Secure Boot" in on.reason


def test_debian_branch_above_the_release_stops():
    stop = plan_driver(bare_facts(os_release=BOOKWORM), NvidiaSettings(driver_branch=550))
    assert stop.action == "stop" and "Debian 12 ships NVIDIA driver branch 535" in stop.reason
    assert "nvidia.driver_branch: 535" in stop.reason
    trixie = plan_driver(bare_facts(os_release={"id": "debian", "version_id": "13"}), NvidiaSettings(driver_branch=550))
    assert trixie.action == "install" and trixie.non_free_sources == "trixie"


def test_debian_without_gpu_or_distro_kernel_installs_without_headers_or_reboot_and_then_keeps():
    """A GPU-less host on a kernel not from a Debian package (the sandbox): no headers package, no reboot."""
    f = bare_facts(os_release=BOOKWORM, kernel="6.18.44-custom", gpus=facts.parse_nvidia_gpus([]),
                   packages={"installed": {}, "held": []}, modules={"nvidia": False, "loaded": []})
    plan = plan_driver(f, NvidiaSettings(driver_branch=535))
    assert plan.action == "install" and not plan.reboot_on_change
    assert not any(p.startswith("linux-headers") for p in plan.packages)
    installed = {p: "535.261.03-1" for p in plan.packages}
    after = plan_driver({**f, "packages": {"installed": installed, "held": sorted(plan.hold)}},
                        NvidiaSettings(driver_branch=535))
    assert after.action == "keep" and after.installed_version == "535.261.03"
    assert after.hold == [] and after.reboot_pending is False


def test_unsupported_os_stops():
    plan = plan_driver(bare_facts(os_release={"id": "rocky", "version_id": "9"}), NvidiaSettings())
    assert plan.action == "stop" and "rocky 9" in plan.reason


def test_kernel_flavour():
    assert kernel_flavour("6.8.0-45-generic") == "generic" and kernel_flavour("6.8.0-1015-nvidia") == "nvidia"


def test_toolkit_and_cuda_helpers():
    assert toolkit_packages("1.17.8") == [
        "nvidia-container-toolkit=1.17.8-1", "nvidia-container-toolkit-base=1.17.8-1",
        "libnvidia-container-tools=1.17.8-1", "libnvidia-container1=1.17.8-1"]
    cdi = facts.parse_cdi_spec(read(HAND / "cdi_spec_550.txt"))
    assert cdi_needs_generate(cdi, "550.144.03") is False
    assert cdi_needs_generate(cdi, "580.159.04") is True
    assert cdi_needs_generate(facts.parse_cdi_spec(read(REAL / "cdi_spec.txt")), "580.159.04") is True
    assert cuda_packages(CudaSettings(version="12.4")) == ["cuda-toolkit-12-4"]
    assert cuda_packages(CudaSettings(source="distro")) == ["nvidia-cuda-toolkit"]
    assert cuda_repo_distro(UBUNTU) == "ubuntu2404" and cuda_repo_distro({"id": "debian", "version_id": "12"}) \
        == "debian12"
    assert ContainerToolkitSettings().check_image


@pytest.mark.parametrize(
    "template", sorted(p for role in ("nvidia_driver", "container_toolkit", "cuda")
                       for p in (ROOT / "templates" / role).glob("**/*.j2")),
)
def test_templates_begin_with_the_managed_comment(template):
    text = jinja2.Template(template.read_text(), undefined=jinja2.StrictUndefined).render(
        keyring="/etc/apt/keyrings/k.asc", base_url="https://mirror.example/libnvidia-container",
        repo_url="https://mirror.example/cuda/ubuntu2404/x86_64/")
    assert text.startswith("# managed by llmrack")


def test_blacklist_covers_nouveau_and_nova_core():
    text = (ROOT / "templates/nvidia_driver/etc/modprobe.d/llmrack-blacklist-nouveau.conf.j2").read_text()
    assert {"blacklist nouveau", "blacklist nova_core", "options nouveau modeset=0"} <= set(text.splitlines())


def test_toolkit_source_line_uses_signed_by_and_the_mirror():
    t = ROOT / "templates/container_toolkit/etc/apt/sources.list.d/nvidia-container-toolkit.list.j2"
    line = jinja2.Template(t.read_text()).render(keyring="/etc/apt/keyrings/nvidia-container-toolkit.asc",
                                                 base_url="https://mirrors.ustc.edu.cn/libnvidia-container")
    assert line.splitlines()[-1] == ("deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit.asc] "
                                     "https://mirrors.ustc.edu.cn/libnvidia-container/stable/deb/$(ARCH) /")


# ------------------------------------------------------------------------------------------------ burn-in

def real_burnin() -> dict:
    return json.loads((REAL / "burnin.json").read_text())


def samples_of(report: dict) -> dict[int, list[dict]]:
    return {int(i): s for i, s in report["samples"].items()}


def test_real_burnin_passes_and_power_cap_is_not_a_failure():
    r = real_burnin()
    assert r["verdict"] == "pass" and r["tflops"]["0"] > 400
    assert "sw_power_cap" in r["gpus"]["0"]["throttle_reasons_seen"]
    assert burnin.judge(samples_of(r), {0: r["tflops"]["0"]}, xid_before=r["xid"]["before"],
                        xid_after=r["xid"]["after"]) == []


def test_burnin_fails_on_thermal_throttle_ecc_xid_and_a_slow_peer():
    r = real_burnin()
    s0 = samples_of(r)[0]
    hot = [{**x, "throttle": ["hw_thermal_slowdown"], "temp_c": 91.0} for x in s0]
    ecc = [{**x, "ecc_uncorrected": float(i > 3)} for i, x in enumerate(s0)]
    problems = burnin.judge({0: s0, 1: hot, 2: ecc, 3: s0}, {0: 665.0, 1: 660.0, 2: 662.0, 3: 480.0},
                            xid_before={"count": 0}, xid_after={"count": 2, "last": "NVRM: Xid ...: 79"})
    text = "\n".join(problems)
    assert "GPU 1: throttled by hw_thermal_slowdown" in text and "GPU 1: reached 91 C" in text
    assert "GPU 2: uncorrected ECC errors rose from 0 to 1" in text
    assert "2 new NVRM Xid" in text
    assert "GPU 3: 480 TFLOP/s" in text and "GPU 0:" not in text


def test_burnin_sample_parser_on_a_recorded_line():
    line = "0, 57, 1470, 1980, 692.44, 700.00, 100, 1139, 0x0000000000000004, 0"
    (reading,) = burnin.parse_sample([line], 15.1).values()
    assert reading["sm_mhz"] == 1470 and reading["throttle"] == ["sw_power_cap"] and reading["ecc_uncorrected"] == 0
    assert burnin.parse_sample(["No devices were found"], 0) == {}


def test_burnin_without_nvidia_smi_fails_cleanly(monkeypatch):
    # Boundary that cannot exist here: this machine has no nvidia-smi, so PATH is emptied to be sure.
    monkeypatch.setenv("PATH", "")
    r = burnin.run_burnin(0.1, log=lambda m: None)
    assert r["verdict"] == "fail" and "nvidia-smi" in r["problems"][0]
