"""@local inventory for the GPU host runs.

LLMRACK_TIER picks the tier (default: standard); LLMRACK_CPU_STRESS_S and
LLMRACK_MEMTEST_MIB shorten the CPU stress and memory test lines. With LLMRACK_GPU_MODEL / LLMRACK_GPU_COUNT /
LLMRACK_GPU_MEMORY_GIB set, the tier is overridden into an ad-hoc tier for the machine at hand (e.g. 1x H100
80 GiB): hardware.gpu, one model with tensor_parallel_size 1, and a small disk and CPU sizing.
"""

import os

tier = os.environ.get("LLMRACK_TIER", "standard")
data: dict = {"tier": tier}
if os.environ.get("LLMRACK_GPU_MODEL"):
    data["overrides"] = {
        "hardware": {
            "gpu": {
                "count": int(os.environ.get("LLMRACK_GPU_COUNT", "1")),
                "model": os.environ["LLMRACK_GPU_MODEL"],
                "memory_gib": float(os.environ["LLMRACK_GPU_MEMORY_GIB"]),
            },
            "cpu_cores_min": 8,
            "ram_gib_min": 64,
            "data_free_gib_min": 10,
        },
        "stack": {"models": [{"name": "Qwen/Qwen2.5-7B-Instruct", "served_name": "qwen2.5-7b",
                              "tensor_parallel_size": 1}]},
    }

# Shorter checklist runs than the tier's defaults, for a GPU host lent for minutes.
for var, key in (("LLMRACK_CPU_STRESS_S", "cpu_stress_s"), ("LLMRACK_MEMTEST_MIB", "memtest_mib")):
    if os.environ.get(var):
        data.setdefault("overrides", {}).setdefault("acceptance", {})[key] = int(os.environ[var])

if os.environ.get("LLMRACK_DRIVER_BRANCH"):
    data.setdefault("overrides", {})["nvidia"] = {"driver_branch": int(os.environ["LLMRACK_DRIVER_BRANCH"])}

hosts = [("@local", data)]
