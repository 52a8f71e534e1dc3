"""The planner's output as the compose builder takes it: one ``ServedModelPlan`` per served model."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from llmrack.models import plan_served
from llmrack.planner import load_model_spec
from llmrack.settings.stack import ModelSettings, StackSettings
from llmrack.stack.compose_file import ComposeModel


class ServedModelPlan(ComposeModel):
    """One model to serve: its settings plus the vLLM arguments and environment the planner chose."""

    model: ModelSettings
    vllm_args: list[str] = Field(description="Server arguments from the planner (TP, max-model-len, ...).")
    env: dict[str, str] = Field({}, description="Environment from the planner (NCCL_P2P_DISABLE, ...).")
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    content_id: str = Field("", description="Changes when the weights change (recreates the service).")

    @classmethod
    def from_plan(cls, model: ModelSettings, plan: Any, *, content_id: str = "") -> ServedModelPlan:
        """From ``llmrack.planner.Plan`` (anything with vllm_args, env, tensor_parallel_size, max_model_len)."""
        return cls(
            model=model, vllm_args=list(plan.vllm_args), env=dict(plan.env),
            tensor_parallel_size=int(plan.tensor_parallel_size), max_model_len=plan.max_model_len,
            content_id=content_id,
        )


def plan_models(
    stack: StackSettings, *, gpu_count: int, gpu_mem_gib: float, gpu_name: str = "",
    config_paths: Mapping[str, Path] | None = None, content_ids: Mapping[str, str] | None = None,
    require_fit: bool = True,
) -> list[ServedModelPlan]:
    """Size every model of the stack with ``llmrack.planner`` (raises PlanError when one does not fit).

    ``config_paths`` maps a model's ``name`` to a local config.json (or its directory) for models the
    catalogue does not know (local/bundle weights, e.g. the sandbox's tiny model).
    """
    out = []
    for i, m in enumerate(stack.models):
        where = (config_paths or {}).get(m.name)
        spec = load_model_spec(str(where) if where else m.name)
        p = plan_served(spec, m, stack.vllm, gpu_count=gpu_count, gpu_mem_gib=gpu_mem_gib, gpu_name=gpu_name,
                        source=f"stack.models.{i}")
        if require_fit:
            p.require_fit()
        out.append(ServedModelPlan.from_plan(m, p, content_id=(content_ids or {}).get(m.name, "")))
    return out


def content_id_of_files(files: Iterable[tuple[str, str]]) -> str:
    """A short id of a model's files from (relative path, sha256) pairs (e.g. the bundle manifest)."""
    h = hashlib.sha256()
    for rel, digest in sorted(files):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()[:16]
