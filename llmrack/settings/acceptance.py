"""Thresholds of the acceptance checklist (seed 000), per tier, and how ``llmrack verify`` measures them."""

from __future__ import annotations

from pydantic import Field, field_validator

from llmrack.settings._model import Settings
from llmrack.settings.types import check_inventory_host_name


class AcceptanceSettings(Settings):
    single_stream_tokens_per_s_min: float = Field(50, gt=0, description="Single-stream decode tokens/s.")
    concurrency: int = Field(50, ge=1, description="Concurrent requests of the load test.")
    success_rate_min: float = Field(0.95, gt=0, le=1, description="Share of successful requests under load.")
    ttft_p99_ms_max: float = Field(500, gt=0)
    tpot_p99_ms_max: float = Field(100, gt=0)
    rag_p99_ms_max: float = Field(500, gt=0, description="RAG retrieval latency p99.")
    multi_gpu_scaling_min: float = Field(0.75, gt=0, description="N-GPU throughput / (N x one GPU).")
    burnin_minutes: int = Field(120, ge=1)
    # --- how verify measures (the thresholds above are what it compares against)
    driver_version_min: str = Field("535", description="Lowest NVIDIA driver version (checklist: 535+).")
    cuda_version_min: str = Field("12.1", description="Lowest CUDA version nvidia-smi reports in a container.")
    cuda_probe_image: str = Field(
        "", description="Local image for `docker run --gpus all IMAGE nvidia-smi`; empty: the vLLM image."
    )
    single_gpu_tokens_per_s: float = Field(
        0, ge=0, description="Aggregate tokens/s of the model on one GPU (reference for multi-GPU scaling); "
        "0: not measured, the scaling check is skipped.",
    )
    bench_max_tokens: int = Field(128, ge=2, le=4096, description="Completion tokens per benchmark request.")
    bench_single_requests: int = Field(5, ge=1, le=1000, description="Sequential requests at concurrency 1.")
    bench_requests_per_slot: int = Field(
        2, ge=1, le=100, description="Requests per concurrent slot at the other levels (level x this)."
    )
    bench_level_timeout_s: float = Field(300, gt=0, le=3600, description="Time limit of one concurrency level.")
    rag_queries: int = Field(100, ge=10, le=10000, description="Queries of the RAG retrieval test.")
    rag_corpus_size: int = Field(2000, ge=10, le=200000, description="Random vectors searched by the RAG test.")
    rag_dimensions: int = Field(384, ge=2, le=4096, description="Vector size of the RAG test (all-MiniLM: 384).")
    rag_embedding_model: str = Field(
        "", description="Model of /v1/embeddings through the gateway; empty: one whose id mentions 'embed'/'minilm'."
    )
    data_path: str = Field(
        "", description="A path on the data volume; empty: the inventory's data_disk mount, else /."
    )
    memory_tolerance: float = Field(
        0.05, ge=0, lt=0.5, description="Share of installed RAM the kernel may keep (MemTotal is below the DIMMs)."
    )
    probe_host: str = Field(
        "", description="Inventory host that `verify` scans the other hosts' ports from (a neighbour on their "
        "network); empty: the admin machine.",
    )
    exposed_ports_allowed: list[int] = Field(
        [], description="Ports besides SSH, the gateway and the exporters that may be reachable from outside."
    )
    seed_7b_tokens_per_s_min: float = Field(50, gt=0, description="A 7B model on one GPU, single stream (seed 000).")
    # --- checklist lines measured with distro tools (short runs by default; verify --full: the seed's durations)
    cpu_stress_s: int = Field(300, ge=1, le=86400, description="stress-ng on every CPU, s (--full: 4 h, seed 000).")
    memtest_mib: int = Field(1024, ge=1, description="memtester size, MiB (--full: 90 % of MemAvailable).")
    memtest_loops: int = Field(1, ge=1, le=100, description="memtester passes.")
    badblocks_scan: bool = Field(False, description="Read-only badblocks over every disk (hours; on with --full).")
    fio_runtime_s: int = Field(20, ge=1, le=3600, description="fio 4k random read, s (--full: 60 s, seed 000).")
    fio_size_mib: int = Field(256, ge=1, description="fio file size, MiB (--full: 1 GiB, seed 000).")
    fio_randread_iops_min: float = Field(0, ge=0, description="4k random read IOPS at least (0: record only).")
    iperf3_s: int = Field(10, ge=1, le=600, description="iperf3 run between two hosts, s (--full: 30 s).")
    network_gbps_min: float = Field(1.0, gt=0, description="iperf3 throughput between hosts, Gbit/s, at least.")
    power_load_ratio_min: float = Field(
        0.6, gt=0, le=1, description="Burn-in peak power / rated board power at least (below: not fully loaded)."
    )
    time_offset_ms_max: float = Field(100, gt=0, description="Largest clock offset chrony may report.")

    @field_validator("probe_host")
    @classmethod
    def _probe_host(cls, value: str) -> str:
        return check_inventory_host_name(value) if value else value
