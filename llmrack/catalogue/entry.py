"""A catalogue entry and the architecture keys that several entries share.

``CatalogueEntry`` holds one model's Hugging Face ``config.json`` architecture keys under the publisher's own
key names; ``llama``/``qwen2`` and the family dicts below are the keys common to a family, so that the table in
``llmrack.catalogue.table`` writes each published number once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CatalogueEntry:
    """One model: its Hugging Face id, its config.json architecture keys and published size."""

    hf_id: str
    config: Mapping[str, Any]
    params: int | None = None  # published total parameters; None: computed from the config
    active_params: int | None = None  # published active parameters per token (MoE only)
    aliases: tuple[str, ...] = ()
    note: str = ""
    # MLP width of the publisher's own int4 (AWQ/GPTQ) checkpoints when they pad it so that every TP
    # size up to 8 keeps whole 128-weight groups per GPU.
    int4_intermediate_size: int | None = None

    @property
    def name(self) -> str:
        return self.hf_id.split("/", 1)[-1]


def llama(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    base.update(kw)
    return base


def qwen2(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 152064,
    }
    base.update(kw)
    return base


# Qwen2.5 dense family: max_position_embeddings in config.json is 32768 (the card describes 128K
# with YaRN rope scaling enabled by editing the config; we plan for the shipped config).
QWEN25_7B = dict(
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
)
QWEN25_14B = dict(
    hidden_size=5120,
    intermediate_size=13824,
    num_hidden_layers=48,
    num_attention_heads=40,
    num_key_value_heads=8,
)
QWEN25_32B = dict(
    hidden_size=5120,
    intermediate_size=27648,
    num_hidden_layers=64,
    num_attention_heads=40,
    num_key_value_heads=8,
)
QWEN25_72B = dict(
    hidden_size=8192,
    intermediate_size=29568,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
)
LLAMA3_8B = dict(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
)
LLAMA3_70B = dict(
    hidden_size=8192,
    intermediate_size=28672,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    vocab_size=128256,
)

# ChatGLM-style config keys, as THUDM/glm-4-9b-chat ships them (the "-hf" repos use Llama-style keys).
GLM4_9B: dict[str, Any] = {
    "architectures": ["ChatGLMModel"],
    "model_type": "chatglm",
    "num_layers": 40,
    "hidden_size": 4096,
    "ffn_hidden_size": 13696,
    "num_attention_heads": 32,
    "multi_query_attention": True,
    "multi_query_group_num": 2,
    "kv_channels": 128,
    "padded_vocab_size": 151552,
    "add_qkv_bias": True,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}

# DeepSeek-V3 / R1 share one architecture: MLA attention, 1 shared + 256 routed experts (top 8),
# first 3 layers dense, weights published in FP8 with 128x128 blocks. The published 671B excludes
# the 14B multi-token-prediction module (HF shows 685B with it); vLLM does not load it by default.
DEEPSEEK_V3: dict[str, Any] = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "num_hidden_layers": 61,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "first_k_dense_replace": 3,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "vocab_size": 129280,
    "max_position_embeddings": 163840,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
}

# MiniMax-M2 and M2.1 share one architecture (230B total / ~10B active, FP8 128x128 blocks).
# Less certain: these numbers are from the M2 config.json as remembered (they reproduce the
# published 230B total within 1 %).
MINIMAX_M2: dict[str, Any] = {
    "architectures": ["MiniMaxM2ForCausalLM"],
    "model_type": "minimax_m2",
    "hidden_size": 3072,
    "intermediate_size": 1536,
    "num_hidden_layers": 62,
    "num_attention_heads": 48,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "num_local_experts": 256,
    "num_experts_per_tok": 8,
    "vocab_size": 200064,
    "max_position_embeddings": 196608,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
}
