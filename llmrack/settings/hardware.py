"""What the tier expects of the machine: checked by preflight and signed off by ``llmrack verify``."""

from __future__ import annotations

from pydantic import Field

from llmrack.settings._model import Settings


class GpuExpectation(Settings):
    count: int = Field(0, ge=0, le=16, description="GPUs per host; 0 means a CPU-only host (sandbox).")
    model: str = Field("", description="GPU model class as nvidia-smi names it, matched as a substring.")
    memory_gib: float = Field(0, ge=0, description="Memory per GPU in GiB.")
    min_pcie_gen: int = Field(4, ge=1, le=6, description="PCIe link generation below which a link is degraded.")
    min_pcie_width: int = Field(16, ge=1, le=32, description="PCIe link width below which a link is degraded.")
    max_idle_temp_c: int = Field(60, description="Highest acceptable GPU temperature at idle.")
    max_load_temp_c: int = Field(87, description="Highest acceptable GPU temperature under burn-in load.")


class HardwareSettings(Settings):
    gpu: GpuExpectation = GpuExpectation()
    cpu_cores_min: int = Field(1, ge=1, description="Logical CPUs the host must have at least.")
    ram_gib_min: int = Field(1, ge=1, description="RAM in GiB the host must have at least.")
    system_disk: str = Field("", description="System disks as bought, e.g. '2x 2TB NVMe SSD'.")
    data_disk: str = Field("", description="Data disks as bought, e.g. '4x 4TB HDD'.")
    nic: str = Field("", description="Network interfaces as bought.")
    data_free_gib_min: int = Field(1, ge=0, description="Free space required on the data volume, GiB.")
    os_releases: list[str] = Field(
        ["ubuntu 22.04", "ubuntu 24.04", "debian 12", "debian 13"],
        description="Accepted 'id version_id' pairs from /etc/os-release.",
    )
