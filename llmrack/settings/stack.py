"""Settings of the serving stack: models served by vLLM, the vector store and the gateway."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmrack.settings._model import Settings


class ModelSettings(Settings):
    name: str = Field(..., description="Catalogue name, Hugging Face id or local model directory.")
    served_name: str = Field("", description="Name clients put in the request's model field.")
    source: Literal["huggingface", "modelscope", "local", "bundle"] = Field(
        "huggingface", description="Where weights come from."
    )
    path: str = Field("", description="Local directory of the weights on the admin machine (source local/bundle).")
    quantization: Literal["fp16", "bf16", "fp8", "int8", "awq", "gptq"] = Field("bf16")
    kv_cache_dtype: Literal["auto", "fp8"] = Field("auto")
    max_model_len: int | None = Field(None, ge=128, description="Context length; None: the planner's largest fit.")
    tensor_parallel_size: int | None = Field(None, ge=1, description="None: chosen by the planner.")
    gpus: list[int] = Field([], description="GPU indices this model uses; empty: all GPUs of the host.")
    max_num_seqs: int = Field(64, ge=1)


class VllmSettings(Settings):
    gpu_memory_utilization: float = Field(0.90, gt=0.1, le=0.98)
    cpu_kv_cache_gib: int = Field(1, ge=1, description="KV cache in GiB on CPU-only hosts.")
    hf_endpoint: str = Field("", description="Hugging Face mirror, e.g. https://hf-mirror.com.")
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True


class VectorStoreSettings(Settings):
    kind: Literal["qdrant", "pgvector", "none"] = Field("qdrant")


class GatewaySettings(Settings):
    https_port: int = Field(443, ge=1, le=65535)
    http_port: int = Field(80, ge=0, le=65535, description="0 disables the plain HTTP redirect listener.")
    rate_limit_per_key: str = Field("20r/s", description="nginx limit_req rate per API key.")
    rate_limit_per_ip: str = Field("50r/s", description="nginx limit_req rate per client address.")


class StackSettings(Settings):
    models: list[ModelSettings] = Field(..., min_length=1, description="Models served, one vLLM service each.")
    vllm: VllmSettings = VllmSettings()
    vector_store: VectorStoreSettings = VectorStoreSettings()
    gateway: GatewaySettings = GatewaySettings()
