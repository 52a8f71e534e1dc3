"""The built-in models: published ``config.json`` numbers and sizes, one entry per model users ask for.

Order matters: when two entries share a short form (a name without -instruct/-chat), the earlier one keeps it.
"""

from __future__ import annotations

from llmrack.catalogue.entry import (
    DEEPSEEK_V3,
    GLM4_9B,
    LLAMA3_8B,
    LLAMA3_70B,
    MINIMAX_M2,
    QWEN25_7B,
    QWEN25_14B,
    QWEN25_32B,
    QWEN25_72B,
    CatalogueEntry,
    llama,
    qwen2,
)

CATALOGUE: tuple[CatalogueEntry, ...] = (
    # --- Qwen2.5 -------------------------------------------------------------------------------
    CatalogueEntry(
        "Qwen/Qwen2.5-7B-Instruct", qwen2(**QWEN25_7B, max_position_embeddings=32768), params=7_615_616_512
    ),
    CatalogueEntry(
        "Qwen/Qwen2.5-14B-Instruct",
        qwen2(**QWEN25_14B, max_position_embeddings=32768),
        params=14_770_033_664,
        aliases=("qwen-14b",),
    ),
    CatalogueEntry(
        "Qwen/Qwen2.5-32B-Instruct",
        qwen2(**QWEN25_32B, max_position_embeddings=32768),
        params=32_763_876_352,
    ),
    CatalogueEntry(
        "Qwen/Qwen2.5-72B-Instruct",
        qwen2(**QWEN25_72B, max_position_embeddings=32768),
        params=72_706_203_648,
        aliases=("qwen-72b",),
        # Qwen's -AWQ / -GPTQ-Int4 repositories ship intermediate_size 29696 (29568 padded to a
        # multiple of 8 x 128); 29568 itself splits into whole groups only at TP 1.
        int4_intermediate_size=29696,
    ),
    # --- Llama 3 / 3.1 ---------------------------------------------------------------------------
    CatalogueEntry(
        "meta-llama/Llama-3.1-8B-Instruct",
        llama(**LLAMA3_8B, max_position_embeddings=131072),
        params=8_030_261_248,
        aliases=("meta-llama-3.1-8b-instruct",),
    ),
    CatalogueEntry(
        "meta-llama/Meta-Llama-3-8B-Instruct",
        llama(**LLAMA3_8B, max_position_embeddings=8192),
        params=8_030_261_248,
        aliases=("llama-3-8b", "llama-3-8b-instruct"),
    ),
    CatalogueEntry(
        "meta-llama/Llama-3.1-70B-Instruct",
        llama(**LLAMA3_70B, max_position_embeddings=131072),
        params=70_553_706_496,
        aliases=("meta-llama-3.1-70b-instruct", "llama-70b", "llama-70b-128k"),
    ),
    CatalogueEntry(
        "meta-llama/Llama-3.1-405B-Instruct",
        llama(
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
        qwen2(**QWEN25_7B, max_position_embeddings=131072),
        params=7_615_616_512,
        aliases=("deepseek-7b",),
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
        qwen2(**QWEN25_14B, max_position_embeddings=131072),
        params=14_770_033_664,
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        qwen2(**QWEN25_32B, max_position_embeddings=131072),
        params=32_763_876_352,
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        llama(**LLAMA3_8B, max_position_embeddings=131072),
        params=8_030_261_248,
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        llama(**LLAMA3_70B, max_position_embeddings=131072),
        params=70_553_706_496,
    ),
    # --- DeepSeek MoE ----------------------------------------------------------------------------
    CatalogueEntry(
        "deepseek-ai/DeepSeek-V3",
        DEEPSEEK_V3,
        params=671_000_000_000,
        active_params=37_000_000_000,
        aliases=("deepseek-v3-0324",),
    ),
    CatalogueEntry(
        "deepseek-ai/DeepSeek-R1",
        DEEPSEEK_V3,
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
        llama(
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
        llama(
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
        {**GLM4_9B, "seq_length": 131072},
        params=9_400_000_000,
        aliases=("zai-org/glm-4-9b-chat",),
    ),
    CatalogueEntry(
        "THUDM/glm-4-9b-chat-1m",
        {**GLM4_9B, "seq_length": 1048576},
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
        llama(
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
        llama(
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
    CatalogueEntry("MiniMaxAI/MiniMax-M2", MINIMAX_M2, params=230_000_000_000, active_params=10_000_000_000),
    CatalogueEntry(
        "MiniMaxAI/MiniMax-M2.1",
        MINIMAX_M2,
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
