"""Settings of the GPU roles: NVIDIA driver, CUDA toolkit, NVIDIA container toolkit."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmrack.settings._model import Settings


class CudaSettings(Settings):
    enabled: bool = Field(False, description="Install the CUDA toolkit on the host (containers carry CUDA).")
    version: str = Field("12.4", description="CUDA toolkit version to pin.")


class ContainerToolkitSettings(Settings):
    version: str = Field("1.17.8", description="nvidia-container-toolkit version to pin.")
    apt_mirror: str = Field("", description="Mirror of nvidia.github.io/libnvidia-container.")


class NvidiaSettings(Settings):
    enabled: bool = Field(True, description="Install and manage the NVIDIA stack (off for CPU-only tiers).")
    driver_branch: int = Field(550, ge=535, description="Driver branch (>= 535).")
    driver_flavor: Literal["server", "headless", "desktop"] = Field("server", description="Ubuntu package flavour.")
    secure_boot: Literal["stop", "signed"] = Field(
        "stop", description="With Secure Boot on: stop with a message, or use signed prebuilt module packages."
    )
    cuda: CudaSettings = CudaSettings()
    container_toolkit: ContainerToolkitSettings = ContainerToolkitSettings()
