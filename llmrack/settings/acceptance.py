"""Thresholds of the acceptance checklist (seed 000), per tier."""

from __future__ import annotations

from pydantic import Field

from llmrack.settings._model import Settings


class AcceptanceSettings(Settings):
    single_stream_tokens_per_s_min: float = Field(50, gt=0, description="Single-stream decode tokens/s.")
    concurrency: int = Field(50, ge=1, description="Concurrent requests of the load test.")
    success_rate_min: float = Field(0.95, gt=0, le=1, description="Share of successful requests under load.")
    ttft_p99_ms_max: float = Field(500, gt=0)
    tpot_p99_ms_max: float = Field(100, gt=0)
    rag_p99_ms_max: float = Field(500, gt=0, description="RAG retrieval latency p99.")
    multi_gpu_scaling_min: float = Field(0.75, gt=0, description="N-GPU throughput / (N x one GPU).")
    burnin_minutes: int = Field(120, ge=1)
