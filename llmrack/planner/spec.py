"""What the planner knows of a model: ``ModelSpec`` and the constants of weight formats and vLLM defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GIB = 1024**3
INT4_GROUP_SIZE = 128
INT4_BYTES = (INT4_GROUP_SIZE * 4 + 16 + 4) / INT4_GROUP_SIZE / 8  # 0.51953125
QUANT_BYTES: dict[str, float] = {
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "awq": INT4_BYTES,
    "gptq": INT4_BYTES,
}
QUANTIZATIONS = tuple(QUANT_BYTES)
KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
_QUANT_ALIASES = {
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "int4": "awq",
    "awq_marlin": "awq",
    "gptq_marlin": "gptq",
    "w8a8": "int8",
}

RUNTIME_RESERVE_GIB = 1.0
TP_RESERVE_GIB = 0.5
KV_BLOCK_TOKENS = 16  # vLLM's default block size on GPU
TYPICAL_CONTEXT = 4096  # "a typical chat request" for the concurrency figure
MIN_USEFUL_CONTEXT = 4096  # below this (or the model's own maximum) a plan is not worth serving
CONSUMER_GPU_MARKERS = ("4090", "geforce", "rtx 40")

_NON_GATED_MLP = {"falcon", "gpt2", "gpt_neox", "gptj", "gpt_bigcode", "opt", "bloom", "mpt", "phi"}


class ModelSpec(BaseModel):
    """The architecture numbers sizing needs, read from a config.json or the built-in catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Model name (catalogue id without org, or the directory name)")
    hf_id: str | None = Field(None, description="Hugging Face repository id, when known")
    source: str = Field("", description="Where the numbers came from: 'catalogue' or a config.json path")
    architecture: str
    model_type: str = ""
    params: int = Field(gt=0, description="Total parameters")
    active_params: int | None = Field(None, description="Parameters used per token (MoE models)")
    num_hidden_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(ge=0, description="Dense MLP width (expert width in all-MoE models)")
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    v_head_dim: int | None = Field(None, description="Value head size when it differs (MLA)")
    max_position_embeddings: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    tie_word_embeddings: bool = False
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    checkpoint_quantization: Literal["fp8", "int8", "awq", "gptq"] | None = Field(
        None, description="Format of a pre-quantized checkpoint"
    )
    quant_group_size: int | None = Field(None, description="Int4 group size or FP8 block size (input dim)")
    int4_intermediate_size: int | None = Field(
        None, description="MLP width of the publisher's int4 checkpoints when padded for TP"
    )
    num_experts: int = Field(0, ge=0, description="Routed experts per MoE layer (0: dense model)")
    num_experts_per_tok: int = Field(0, ge=0)
    moe_intermediate_size: int = Field(0, ge=0)
    num_dense_layers: int = Field(0, ge=0, description="Dense MLP layers in an MoE model")
    kv_lora_rank: int | None = Field(None, description="MLA latent size (DeepSeek-V2/V3)")
    qk_rope_head_dim: int | None = None

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def uses_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def embedding_params(self) -> int:
        """Token embeddings plus the LM head (once when tied): kept in 16 bits by quantized formats."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    @property
    def attention_output_width(self) -> int:
        return self.num_attention_heads * (self.v_head_dim or self.head_dim)

