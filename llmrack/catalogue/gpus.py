"""GPUs: seed 000's 服务器配置方案 table (memory, power, bandwidth, FP16, price per card), plus the
data-centre parts a buyer meets beside them (H200, H100 PCIe, A100 40GB: NVIDIA data sheets).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuEntry:
    """One GPU model. ``match``: lower-case substrings of the name nvidia-smi (or a tier) gives it."""

    name: str
    match: tuple[str, ...]
    memory_gib: float
    power_w: float  # board power (TDP) as the vendor rates it: the nameplate the power check compares with
    bandwidth_gbs: float  # memory bandwidth, GB/s (10^9 bytes)
    fp16_tflops: float
    price_cny: tuple[int, int] | None = None  # seed 000 参考价格(单卡)


GPU_CATALOGUE: tuple[GpuEntry, ...] = (
    # seed 000 rows (the seed's A100 row is the 80 GB PCIe card: 300 W, 1935 GB/s)
    GpuEntry("NVIDIA RTX 4090", ("4090",), 24, 450, 1008, 83, (13_000, 15_000)),
    GpuEntry("NVIDIA A100 80GB", ("a100 80", "a100-sxm4-80", "a100-pcie-80", "a100 80gb"), 80, 300, 1935, 312,
             (60_000, 80_000)),
    GpuEntry("NVIDIA A100 40GB", ("a100 40", "a100-sxm4-40", "a100-pcie-40"), 40, 250, 1555, 312),
    GpuEntry("NVIDIA H200", ("h200",), 141, 700, 4800, 990),
    GpuEntry("NVIDIA H100 80GB", ("h100",), 80, 350, 3350, 990, (200_000, 250_000)),
    GpuEntry("NVIDIA L40S", ("l40s",), 48, 350, 864, 363, (50_000, 60_000)),
    GpuEntry("Huawei Ascend 910B", ("910b",), 64, 310, 1200, 320, (120_000, 150_000)),
)


def find_gpu(name: str) -> GpuEntry | None:
    """The GPU entry whose match strings occur in ``name`` ("NVIDIA GeForce RTX 4090", "RTX 4090", "H200")."""
    low = name.lower()
    for gpu in GPU_CATALOGUE:
        if any(m in low for m in gpu.match):
            return gpu
    if "a100" in low:  # a bare "A100": the seed's card
        return GPU_CATALOGUE[1]
    return None
