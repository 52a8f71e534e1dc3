"""Built-in model catalogue: the published ``config.json`` numbers of models users ask for by name.

Each entry holds the architecture keys of the model's Hugging Face ``config.json`` exactly as the
model publisher ships them (same key names, so one parser reads both a catalogue entry and a local
``config.json``), plus the published parameter count. Parameter counts are the ones on the model
cards / safetensors metadata; where the card gives only a rounded number it is written as such.
The unit tests recompute every count from the architecture and require agreement within 1.5 %,
which checks the numbers below against each other.

Where a number is less certain it carries a comment. Names the seed documents use that are not a
published model (e.g. "DeepSeek-V3-Lite-16B") are listed in ``NOT_PUBLISHED`` with what the user
most likely means, so the lookup error can say so instead of guessing silently.
"""

from __future__ import annotations

import re
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


def _llama(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    base.update(kw)
    return base


def _qwen2(**kw: Any) -> dict[str, Any]:
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
_QWEN25_7B = dict(
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
)
_QWEN25_14B = dict(
    hidden_size=5120,
    intermediate_size=13824,
    num_hidden_layers=48,
    num_attention_heads=40,
    num_key_value_heads=8,
)
_QWEN25_32B = dict(
    hidden_size=5120,
    intermediate_size=27648,
    num_hidden_layers=64,
    num_attention_heads=40,
    num_key_value_heads=8,
)
_QWEN25_72B = dict(
    hidden_size=8192,
    intermediate_size=29568,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
)
_LLAMA3_8B = dict(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
)
_LLAMA3_70B = dict(
    hidden_size=8192,
    intermediate_size=28672,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    vocab_size=128256,
)

# ChatGLM-style config keys, as THUDM/glm-4-9b-chat ships them (the "-hf" repos use Llama-style keys).
_GLM4_9B: dict[str, Any] = {
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
_DEEPSEEK_V3: dict[str, Any] = {
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
_MINIMAX_M2: dict[str, Any] = {
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

CATALOGUE: tuple[CatalogueEntry, ...] = (
    # --- Qwen2.5 -------------------------------------------------------------------------------
    CatalogueEntry(
        "Qwen/Qwen2.5-7B-Instruct", _qwen2(**_QWEN25_7B, max_position_embeddings=32768), params=7_615_616_512
    ),
    CatalogueEntry(
        "Qwen/Qwen2.5-14B-Instruct",
        _qwen2(**_QWEN25_14B, max_position_embeddings=32768),
        params=14_770_033_664,
        aliases=("qwen-14b",),
    ),
    CatalogueEntry(
        "Qwen/Qwen2.5-32B-Instruct",
        _qwen2(**_QWEN25_32B, max_position_embeddings=32768),
        params=32_763_876_352,
    ),
    CatalogueEntry(
        "Qwen/Qwen2.5-72B-Instruct",
        _qwen2(**_QWEN25_72B, max_position_embeddings=32768),
        params=72_706_203_648,
        aliases=("qwen-72b",),
        # Qwen's -AWQ / -GPTQ-Int4 repositories ship intermediate_size 29696 (29568 padded to a
        # multiple of 8 x 128); 29568 itself splits into whole groups only at TP 1.
        int4_intermediate_size=29696,
    ),
    # --- Llama 3 / 3.1 ---------------------------------------------------------------------------
    CatalogueEntry(
        "meta-llama/Llama-3.1-8B-Instruct",
        _llama(**_LLAMA3_8B, max_position_embeddings=131072),
        params=8_030_261_248,
        aliases=("meta-llama-3.1-8b-instruct",),
    ),
    CatalogueEntry(
        "meta-llama/Meta-Llama-3-8B-Instruct",
        _llama(**_LLAMA3_8B, max_position_embeddings=8192),
        params=8_030_261_248,
        aliases=("llama-3-8b", "llama-3-8b-instruct"),
    ),
    CatalogueEntry(
        "meta-llama/Llama-3.1-70B-Instruct",
        _llama(**_LLAMA3_70B, max_position_embeddings=131072),
        params=70_553_706_496,
        aliases=("meta-llama-3.1-70b-instruct", "llama-70b", "llama-70b-128k"),
    ),
    CatalogueEntry(
        "meta-llama/Llama-3.1-405B-Instruct",
        _llama(
            hidden_size=16384,
            intermediate_size=53248,
            num_hidden_layers=126,
            num_attention_heads=128,
            num_key_value_heads=8,
            vocab_size=128256,
            max_position_embeddings=131072,
        ),
        params=405_853_388_800,
        aliases=("meta-llama-3.1-405b-instruct",),
    ),
    # --- DeepSeek-R1 distills (Qwen2.5 / Llama bases; configs ship 131072 positions) -------------
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        _qwen2(**_QWEN25_7B, max_position_embeddings=131072),
        params=7_615_616_512,
        aliases=("deepseek-7b",),
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
        _qwen2(**_QWEN25_14B, max_position_embeddings=131072),
        params=14_770_033_664,
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        _qwen2(**_QWEN25_32B, max_position_embeddings=131072),
        params=32_763_876_352,
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        _llama(**_LLAMA3_8B, max_position_embeddings=131072),
        params=8_030_261_248,
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        _llama(**_LLAMA3_70B, max_position_embeddings=131072),
        params=70_553_706_496,
    ),
    # --- DeepSeek MoE ----------------------------------------------------------------------------
    CatalogueEntry(
        "deepseek-ai/DeepSeek-V3",
        _DEEPSEEK_V3,
        params=671_000_000_000,
        active_params=37_000_000_000,
        aliases=("deepseek-v3-0324",),
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1",
        _DEEPSEEK_V3,
        params=671_000_000_000,
        active_params=37_000_000_000,
        aliases=("deepseek-r1-0528",),
    ),
    # DeepSeek-V2-Lite: 15.7B total; the card's 2.4B active excludes embeddings, so it is not
    # given here (the computed active count includes them).
    CatalogueEntry(
        "deepseek-ai/DeepSeek-V2-Lite-Chat",
        {
            "architectures": ["DeepseekV2ForCausalLM"],
            "model_type": "deepseek_v2",
            "hidden_size": 2048,
            "intermediate_size": 10944,
            "moe_intermediate_size": 1408,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
            "num_key_value_heads": 16,
            "n_routed_experts": 64,
            "n_shared_experts": 2,
            "num_experts_per_tok": 6,
            "first_k_dense_replace": 1,
            "q_lora_rank": None,
            "kv_lora_rank": 512,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "v_head_dim": 128,
            "vocab_size": 102400,
            "max_position_embeddings": 163840,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
        params=15_700_000_000,
        aliases=("deepseek-v2-lite", "deepseek-16b"),
        note="the card advertises 32K context; config.json allows 163840 positions",
    ),
    CatalogueEntry(
        "deepseek-ai/deepseek-coder-6.7b-instruct",
        _llama(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=32256,
            max_position_embeddings=16384,
        ),
        params=6_740_000_000,
    ),
    CatalogueEntry(
        "deepseek-ai/deepseek-llm-7b-chat",
        _llama(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=30,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=102400,
            max_position_embeddings=4096,
        ),
        params=6_910_000_000,
    ),
    # --- GLM ---------------------------------------------------------------------------------------
    CatalogueEntry(
        "THUDM/glm-4-9b-chat",
        {**_GLM4_9B, "seq_length": 131072},
        params=9_400_000_000,
        aliases=("zai-org/glm-4-9b-chat",),
    ),
    CatalogueEntry(
        "THUDM/glm-4-9b-chat-1m",
        {**_GLM4_9B, "seq_length": 1048576},
        params=9_400_000_000,
        aliases=("zai-org/glm-4-9b-chat-1m",),
    ),
    # GLM-4.7 (same architecture as GLM-4.5/4.6). The seed's "400B" is wrong: the card says 355B total
    # / 32B active (HF shows 358B with the multi-token-prediction layer). Less certain:
    # max_position_embeddings 202752 (GLM-4.5 shipped 131072).
    CatalogueEntry(
        "zai-org/GLM-4.7",
        {
            "architectures": ["Glm4MoeForCausalLM"],
            "model_type": "glm4_moe",
            "hidden_size": 5120,
            "intermediate_size": 12288,
            "moe_intermediate_size": 1536,
            "num_hidden_layers": 92,
            "num_attention_heads": 96,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "n_routed_experts": 160,
            "n_shared_experts": 1,
            "num_experts_per_tok": 8,
            "first_k_dense_replace": 3,
            "vocab_size": 151552,
            "max_position_embeddings": 202752,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
        params=355_000_000_000,
        active_params=32_000_000_000,
        aliases=("glm-4.7",),
    ),
    # --- Yi ----------------------------------------------------------------------------------------
    # Yi-1.5-34B-Chat ships max_position_embeddings 4096; the 16K variant is a separate repository.
    # The seed's "200K" belongs to the older 01-ai/Yi-34B-200K, not to Yi-1.5.
    CatalogueEntry(
        "01-ai/Yi-1.5-34B-Chat",
        _llama(
            hidden_size=7168,
            intermediate_size=20480,
            num_hidden_layers=60,
            num_attention_heads=56,
            num_key_value_heads=8,
            vocab_size=64000,
            max_position_embeddings=4096,
        ),
        params=34_388_917_248,
    ),
    CatalogueEntry(
        "01-ai/Yi-1.5-34B-Chat-16K",
        _llama(
            hidden_size=7168,
            intermediate_size=20480,
            num_hidden_layers=60,
            num_attention_heads=56,
            num_key_value_heads=8,
            vocab_size=64000,
            max_position_embeddings=16384,
        ),
        params=34_388_917_248,
    ),
    # --- Mistral -----------------------------------------------------------------------------------
    CatalogueEntry(
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        {
            "architectures": ["MixtralForCausalLM"],
            "model_type": "mixtral",
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
            "vocab_size": 32000,
            "max_position_embeddings": 32768,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
        params=46_702_792_704,
        active_params=12_900_000_000,
        aliases=("mixtral-8x7b",),
    ),
    # Mixtral-8x22B: config.json allows 65536 positions (the seed's table says 32K).
    CatalogueEntry(
        "mistralai/Mixtral-8x22B-Instruct-v0.1",
        {
            "architectures": ["MixtralForCausalLM"],
            "model_type": "mixtral",
            "hidden_size": 6144,
            "intermediate_size": 16384,
            "num_hidden_layers": 56,
            "num_attention_heads": 48,
            "num_key_value_heads": 8,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
            "vocab_size": 32768,
            "max_position_embeddings": 65536,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
        params=140_620_634_112,
        active_params=39_100_000_000,
        aliases=("mixtral-8x22b",),
    ),
    # --- Microsoft ---------------------------------------------------------------------------------
    CatalogueEntry(
        "microsoft/Phi-3-medium-128k-instruct",
        {
            "architectures": ["Phi3ForCausalLM"],
            "model_type": "phi3",
            "hidden_size": 5120,
            "intermediate_size": 17920,
            "num_hidden_layers": 40,
            "num_attention_heads": 40,
            "num_key_value_heads": 10,
            "vocab_size": 32064,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
        params=13_960_238_080,
        aliases=("phi-3-medium-128k", "phi-3-medium"),
    ),
    # --- Others named in the sizing tables -------------------------------------------------------
    CatalogueEntry(
        "CohereForAI/c4ai-command-r-plus",
        {
            "architectures": ["CohereForCausalLM"],
            "model_type": "cohere",
            "hidden_size": 12288,
            "intermediate_size": 33792,
            "num_hidden_layers": 64,
            "num_attention_heads": 96,
            "num_key_value_heads": 8,
            "vocab_size": 256000,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": True,
            "torch_dtype": "float16",
        },
        params=103_810_674_688,
        aliases=("cohere-command-r-plus", "command-r-plus"),
    ),
    # Falcon-180B: parallel attention/MLP, non-gated GELU MLP of 4 x hidden, 8 KV groups of head
    # size 64. Less certain: whether lm_head is tied (assumed tied, as in the Falcon-7B/40B code);
    # the count is computed (~178.6B; the card says "180B").
    CatalogueEntry(
        "tiiuae/falcon-180B-chat",
        {
            "architectures": ["FalconForCausalLM"],
            "model_type": "falcon",
            "hidden_size": 14848,
            "num_hidden_layers": 80,
            "num_attention_heads": 232,
            "num_kv_heads": 8,
            "new_decoder_architecture": True,
            "vocab_size": 65024,
            "max_position_embeddings": 2048,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
        },
        aliases=("falcon-180b",),
    ),
    CatalogueEntry("MiniMaxAI/MiniMax-M2", _MINIMAX_M2, params=230_000_000_000, active_params=10_000_000_000),
    CatalogueEntry(
        "MiniMaxAI/MiniMax-M2.1",
        _MINIMAX_M2,
        params=230_000_000_000,
        active_params=10_000_000_000,
        aliases=("minimax-m2-1",),
    ),
)

# Names seen in planning documents that are not a published model, with what was probably meant.
NOT_PUBLISHED: dict[str, str] = {
    "deepseek-v3-lite-16b": "DeepSeek-V2-Lite-Chat (15.7B MoE, 2.4B active)",
    "deepseek-v3-lite": "DeepSeek-V2-Lite-Chat (15.7B MoE, 2.4B active)",
}


def normalize_name(name: str) -> str:
    """Lower-case, drop an ``org/`` prefix, and turn spaces/underscores into dashes."""
    name = name.strip().lower()
    if "/" in name:
        name = name.rsplit("/", 1)[-1]
    return re.sub(r"[\s_]+", "-", name)


def _short_forms(entry: CatalogueEntry) -> set[str]:
    """The canonical name, its aliases, and the name without -instruct/-chat/-vN.N suffixes."""
    forms = {normalize_name(entry.hf_id)} | {normalize_name(a) for a in entry.aliases}
    for form in list(forms):
        short = re.sub(r"-v\d+(\.\d+)*$", "", form)
        short = re.sub(r"-(instruct|chat)$", "", short)
        forms.add(short)
        # "meta-llama-3.1-8b" also answers as "llama-3.1-8b".
        if short.startswith("meta-"):
            forms.add(short[len("meta-") :])
    return forms


def _index() -> dict[str, CatalogueEntry]:
    index: dict[str, CatalogueEntry] = {}
    # Exact names first, so that "llama-3-8b" (an alias of Meta-Llama-3-8B-Instruct) is never taken
    # by a short form of another entry.
    for entry in CATALOGUE:
        index.setdefault(normalize_name(entry.hf_id), entry)
    for entry in CATALOGUE:
        for alias in entry.aliases:
            index.setdefault(normalize_name(alias), entry)
    for entry in CATALOGUE:
        for form in _short_forms(entry):
            index.setdefault(form, entry)
    return index


_INDEX = _index()


def find_entry(name: str) -> CatalogueEntry | None:
    """The entry for a catalogue name (case-insensitive, HF id or short name), or None."""
    return _INDEX.get(normalize_name(name))


def catalogue_names() -> list[str]:
    """Canonical Hugging Face ids of every built-in model, sorted case-insensitively."""
    return sorted((e.hf_id for e in CATALOGUE), key=str.lower)


def known_forms() -> list[str]:
    """Every accepted (normalized) name; used for "did you mean" hints."""
    return sorted(_INDEX)
