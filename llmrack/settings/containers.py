"""Limits of the stack's containers (pids and memory per service), part of the tier's ``stack`` block.

Capabilities, users, read-only root filesystems and ``no-new-privileges`` are not settings: they follow
from what each service needs (``llmrack.stack.security``). Limits depend on the machine and the models,
so the tier sets them; an empty memory limit means "no limit" (vLLM on a GPU server sizes itself).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from llmrack.settings._model import Settings

MEMORY_RE = re.compile(r"^\d+[kmg]$")


class ServiceLimits(Settings):
    pids: int = Field(..., ge=16, le=1_000_000, description="Most processes/threads in the container (pids_limit).")
    memory: str = Field("", description="Memory limit (e.g. 2g, 512m); empty: no limit.")

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if value and not MEMORY_RE.match(value):
            raise ValueError(f"{value!r}: a size such as 512m or 4g")
        return value


class ContainerLimits(Settings):
    vllm: ServiceLimits = ServiceLimits(pids=4096)  # torch/OpenMP threads per core, tokenizer workers
    gateway: ServiceLimits = ServiceLimits(pids=1024, memory="1g")
    vector_store: ServiceLimits = ServiceLimits(pids=1024, memory="8g")
    embeddings: ServiceLimits = ServiceLimits(pids=512, memory="3g")
