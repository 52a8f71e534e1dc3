"""Settings of the GPU roles: NVIDIA driver, CUDA toolkit, NVIDIA container toolkit."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmrack.settings._model import Settings


class CudaSettings(Settings):
    enabled: bool = Field(False, description="Install the CUDA toolkit on the host (containers carry CUDA).")
    version: str = Field("12.4", pattern=r"^\d+\.\d+$", description="CUDA toolkit version to pin (major.minor).")
    source: Literal["nvidia", "distro"] = Field(
        "nvidia", description="NVIDIA's CUDA apt repository (cuda-toolkit-X-Y), or the distro's nvidia-cuda-toolkit."
    )
    apt_mirror: str = Field(
        "", description="Mirror of developer.download.nvidia.com/compute/cuda/repos (same layout below it)."
    )


class ContainerToolkitSettings(Settings):
    version: str = Field("1.17.8", description="nvidia-container-toolkit version to pin.")
    apt_mirror: str = Field("", description="Mirror of nvidia.github.io/libnvidia-container.")
    check_image: str = Field(
        "nvidia/cuda:12.4.1-base-ubuntu22.04",
        description="Image used for the final `docker run --gpus all ... nvidia-smi -L` check; empty skips it.",
    )


class NvidiaSettings(Settings):
    enabled: bool = Field(True, description="Install and manage the NVIDIA stack (off for CPU-only tiers).")
    driver_branch: int = Field(550, ge=535, description="Driver branch (>= 535).")
    open_kernel_module: bool = Field(
        False, description="NVIDIA's open kernel module packages (-open): required on Blackwell GPUs, recommended by "
        "NVIDIA for Turing and newer from branch 560.",
    )
    driver_flavor: Literal["server", "headless", "desktop"] = Field("server", description="Ubuntu package flavour.")
    secure_boot: Literal["stop", "signed"] = Field(
        "stop", description="With Secure Boot on: stop with a message, or use signed prebuilt module packages."
    )
    reboot: Literal["auto", "never"] = Field(
        "auto", description="When the nvidia kernel module changed: auto reboots the host, waits for it and goes on "
        "in the same run; never stops the host with a line saying to reboot and run the deploy again.",
    )
    hold_packages: bool = Field(True, description="apt-mark hold the driver and kernel packages.")
    cuda: CudaSettings = CudaSettings()
    container_toolkit: ContainerToolkitSettings = ContainerToolkitSettings()
