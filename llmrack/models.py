"""Glue between the tier's model settings and the planner: one place that turns a served model into a plan."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llmrack import planner
from llmrack.errors import LlmrackError
from llmrack.settings.stack import ModelSettings, VllmSettings
from llmrack.tinymodel import RECIPE

# Suffixes of published quantized checkpoints: the architecture is the base model's.
_QUANT_SUFFIX = re.compile(r"-(awq|gptq(-int[48])?|int4|int8|fp8)$", re.IGNORECASE)

# The sandbox's tiny model, built offline by llmrack.tinymodel; its shape is fixed there.
TINY_MODEL_NAME = "llmrack-tiny"


def model_spec_for(model: ModelSettings, *, project_dir: Path | None = None, source: str = "") -> Any:
    """The planner's ModelSpec of a served model: a local config.json, the tiny model, or the catalogue."""
    if model.path:
        path = Path(model.path)
        if not path.is_absolute() and project_dir is not None:
            path = project_dir / path
        if not path.exists():
            raise LlmrackError(f"model path {model.path!r} does not exist", source=source, field="stack.models.path")
        return planner.load_model_spec(str(path))
    if model.name == TINY_MODEL_NAME:
        return planner.load_model_spec(str(_tiny_config()))
    try:
        try:
            return planner.load_model_spec(model.name)
        except LlmrackError:
            return planner.load_model_spec(_QUANT_SUFFIX.sub("", model.name))
    except LlmrackError as exc:
        raise LlmrackError(
            f"{exc.message} — set stack.models[].path to a directory with the model's config.json",
            source=source,
            field="stack.models.name",
        ) from None


def plan_served(
    spec: Any, model: ModelSettings, vllm: VllmSettings, *, gpu_count: int, gpu_mem_gib: float, gpu_name: str = "",
    source: str = "",
) -> Any:
    """The one call of the planner for a served model: ``plan``/``validate`` and the deploy both come here.

    ``gpu_count`` is the host's; a model that names a GPU subset (``gpus``) is planned on that subset.
    """
    return planner.plan(
        spec,
        gpu_count=len(model.gpus) or gpu_count,
        gpu_mem_gib=gpu_mem_gib,
        gpu_name=gpu_name,
        quantization=model.quantization,
        kv_cache_dtype=model.kv_cache_dtype,
        gpu_memory_utilization=vllm.gpu_memory_utilization,
        max_model_len=model.max_model_len,
        tensor_parallel_size=model.tensor_parallel_size,
        max_num_seqs=model.max_num_seqs,
        cpu_kv_cache_gib=vllm.cpu_kv_cache_gib,
        source=source,
    )


def plan_for(profile: Any, model: ModelSettings, *, project_dir: Path | None = None, source: str = "") -> Any:
    """Plan one served model on the GPUs of a tier profile (the model's GPU subset when it names one)."""
    spec = model_spec_for(model, project_dir=project_dir, source=source)
    gpu = profile.hardware.gpu
    return plan_served(spec, model, profile.stack.vllm, gpu_count=gpu.count, gpu_mem_gib=gpu.memory_gib,
                       gpu_name=gpu.model, source=source)


def _tiny_config() -> Path:
    """config.json of the sandbox's tiny model, from the recipe it is built with (no torch needed)."""
    import hashlib
    import json
    import tempfile


    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "torch_dtype": RECIPE["dtype"],
        **{
            k: RECIPE[k]
            for k in (
                "vocab_size",
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "max_position_embeddings",
            )
        },
        "tie_word_embeddings": False,
    }
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    d = Path(tempfile.gettempdir()) / f"llmrack-{TINY_MODEL_NAME}-{digest}"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg, sort_keys=True))
    return d
