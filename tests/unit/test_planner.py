"""GPU sizing planner: golden numbers, the seed's sizing tables checked against physics, TP rules, errors.

Arithmetic used in the comments (see llmrack/planner.py for the reasons behind each constant):
  usable per GPU   = gpu_mem_gib x 2^30 x 0.90
  reserve per GPU  = 1.0 GiB (+0.5 GiB when TP > 1)
                     + chunk x (3 x MLP width / TP + 4 x hidden) x 2 bytes     (chunk: 2048, or 8192 on
                       >= 70 GiB GPUs other than A100; MoE: top_k x (3 x expert width / TP + hidden) + 4h)
                     + max_num_seqs(64) x vocab x 4 bytes x 2                   (sampler logits + probs)
  KV free per GPU  = usable - weights / TP - reserve
  max KV tokens    = floor(KV free / (KV bytes per token per GPU x 16)) x 16   (whole 16-token blocks)
  int4 (AWQ/GPTQ)  = (params - embeddings) x 532/1024 bytes + embeddings x 2 bytes
"""

from __future__ import annotations

import pytest
from planner_common import H100, RTX4090

from llmrack.catalogue import CATALOGUE
from llmrack.errors import PlanError
from llmrack.planner import (
    _spec_from_config,
    catalogue_names,
    load_model_spec,
    plan,
    weight_bytes,
)

# ------------------------------------------------------------------------------------------------
# Catalogue
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.name)
def test_catalogue_architecture_reproduces_published_parameter_count(entry):
    """Recomputing parameters from the architecture numbers must land within 1.5 % of the published count.

    A wrong layer count, width or head count in the catalogue shows up here as a mismatch.
    """
    published = load_model_spec(entry.hf_id)
    computed = _spec_from_config(entry.config, name=entry.name, source="test")
    assert computed.params == pytest.approx(published.params, rel=0.015)
    if entry.active_params and entry.hf_id.startswith(("mistralai/", "deepseek-ai/DeepSeek-V3")):
        # Mixtral 8x7B: 12.9B active, 8x22B: 39.1B, DeepSeek-V3: 37B (cards).
        assert computed.active_params == pytest.approx(entry.active_params, rel=0.03)


def test_catalogue_holds_the_required_models():
    names = {n.lower() for n in catalogue_names()}
    required = [
        "qwen/qwen2.5-7b-instruct",
        "qwen/qwen2.5-14b-instruct",
        "qwen/qwen2.5-32b-instruct",
        "qwen/qwen2.5-72b-instruct",
        "meta-llama/llama-3.1-8b-instruct",
        "meta-llama/llama-3.1-70b-instruct",
        "meta-llama/meta-llama-3-8b-instruct",
        "deepseek-ai/deepseek-r1-distill-qwen-7b",
        "deepseek-ai/deepseek-r1-distill-qwen-14b",
        "deepseek-ai/deepseek-r1-distill-qwen-32b",
        "deepseek-ai/deepseek-r1-distill-llama-8b",
        "deepseek-ai/deepseek-r1-distill-llama-70b",
        "thudm/glm-4-9b-chat",
        "thudm/glm-4-9b-chat-1m",
        "01-ai/yi-1.5-34b-chat",
        "mistralai/mixtral-8x7b-instruct-v0.1",
        "mistralai/mixtral-8x22b-instruct-v0.1",
        "microsoft/phi-3-medium-128k-instruct",
    ]
    assert not [r for r in required if r not in names]
    assert catalogue_names() == sorted(catalogue_names(), key=str.lower)


@pytest.mark.parametrize(
    ("query", "hf_id"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"),
        ("qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct"),
        ("QWEN2.5-7B-INSTRUCT", "Qwen/Qwen2.5-7B-Instruct"),
        ("llama-3-8b", "meta-llama/Meta-Llama-3-8B-Instruct"),
        ("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct"),
        ("meta-llama/Meta-Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"),
        ("mixtral-8x7b", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
        ("GLM-4-9B-Chat-1M", "THUDM/glm-4-9b-chat-1m"),
        ("deepseek-r1-distill-qwen-32b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"),
        ("yi-1.5-34b", "01-ai/Yi-1.5-34B-Chat"),
    ],
)
def test_catalogue_lookup_accepts_hf_ids_and_short_names(query, hf_id):
    assert load_model_spec(query).hf_id == hf_id


def test_catalogue_distinguishes_context_lengths_of_related_models():
    # Llama-3-8B has an 8K window, Llama-3.1-8B 128K; the R1 distill of Qwen2.5-7B ships 131072
    # positions while Qwen2.5-7B-Instruct's config.json ships 32768.
    assert load_model_spec("llama-3-8b").max_position_embeddings == 8192
    assert load_model_spec("llama-3.1-8b").max_position_embeddings == 131072
    assert load_model_spec("qwen2.5-7b").max_position_embeddings == 32768
    assert load_model_spec("deepseek-r1-distill-qwen-7b").max_position_embeddings == 131072
    assert load_model_spec("glm-4-9b-chat-1m").max_position_embeddings == 1048576
    glm = load_model_spec("glm-4-9b-chat")
    assert (glm.num_key_value_heads, glm.head_dim, glm.vocab_size) == (2, 128, 151552)


def test_quantized_checkpoint_name_is_understood():
    spec = load_model_spec("Qwen/Qwen2.5-72B-Instruct-AWQ")
    assert spec.checkpoint_quantization == "awq"
    assert spec.hf_id == "Qwen/Qwen2.5-72B-Instruct-AWQ"
    # A bf16 request on an AWQ checkpoint is sized as what vLLM loads: the int4 weights.
    assert weight_bytes(spec, "bf16") == weight_bytes(load_model_spec("qwen2.5-72b"), "awq")


# ------------------------------------------------------------------------------------------------
# Golden numbers: seed 000, 24 GB table (RTX 4090)
# ------------------------------------------------------------------------------------------------


def test_glm4_9b_on_one_24gb_card_golden():
    """Seed: GLM-4-9B-Chat on 1x24GB ✅ 32K. Agrees: bf16 fits with ~72K of context.

    weights   = 9.40e9 x 2 = 18,800,000,000 B (17.5 GiB)
    KV/token  = 40 layers x 2 KV heads x 128 x 2 (K,V) x 2 B = 40,960 B
    usable    = 24 x 2^30 x 0.9 = 23,192,823,398
    reserve   = 2^30 + 2048 x (3 x 13696 + 4 x 4096) x 2 + 64 x 151552 x 8
              = 1,073,741,824 + 235,405,312 + 77,594,624 = 1,386,741,760
    KV free   = 23,192,823,398 - 18,800,000,000 - 1,386,741,760 = 3,006,081,638
    tokens    = floor(3,006,081,638 / (40,960 x 16)) x 16 = 4586 x 16 = 73,376
    limit     = 73,376 rounded down to 1024 = 72,704 (< 131,072 positions)
    4K conc.  = 73,376 // 4096 = 17
    """
    p = plan(load_model_spec("glm-4-9b-chat"), gpu_count=1, gpu_mem_gib=24, gpu_name=RTX4090)
    assert p.weight_bytes == 18_800_000_000
    assert p.kv_bytes_per_token == 40 * 2 * 128 * 2 * 2 == 40_960
    assert p.usable_bytes_per_gpu == 23_192_823_398
    assert p.reserve_bytes_per_gpu == 1_386_741_760
    assert p.kv_cache_bytes_per_gpu == 3_006_081_638
    assert p.max_kv_tokens == 73_376
    assert p.max_model_len_limit == p.max_model_len == 72_704
    assert (p.concurrency_full_context, p.concurrency_4k) == (1, 17)
    assert p.fits and p.tensor_parallel_size == 1
    assert plan(load_model_spec("glm-4-9b-chat"), gpu_count=1, gpu_mem_gib=24, max_model_len=32768).fits


def test_glm4_9b_on_two_24gb_cards_golden():
    """Seed: GLM-4-9B-Chat on 2x24GB ✅ 128K. Agrees: full 131,072 context, TP 2.

    weights/GPU = 18.8e9 / 2 = 9,400,000,000; KV/token/GPU = 40 x 1 head x 128 x 2 x 2 = 20,480
    reserve = 1.5 GiB + 2048 x (3 x 6848 + 16384) x 2 + 77,594,624
            = 1,610,612,736 + 151,257,088 + 77,594,624 = 1,839,464,448
    KV free = 23,192,823,398 - 9,400,000,000 - 1,839,464,448 = 11,953,358,950
    tokens  = floor(11,953,358,950 / 327,680) x 16 = 36,478 x 16 = 583,648
    """
    p = plan(load_model_spec("glm-4-9b-chat"), gpu_count=2, gpu_mem_gib=24, gpu_name=RTX4090)
    assert p.tensor_parallel_size == 2
    assert p.weight_bytes_per_gpu == 9_400_000_000
    assert p.kv_bytes_per_token_per_gpu == 20_480
    assert p.reserve_bytes_per_gpu == 1_839_464_448
    assert p.max_kv_tokens == 583_648
    assert p.fits and p.max_model_len == 131_072
    assert p.concurrency_full_context == 583_648 // 131_072 == 4


def test_glm4_9b_on_four_24gb_cards_replicates_kv_heads():
    """Seed: GLM-4-9B-Chat on 4x24GB ✅ 128K. Agrees.

    GLM-4-9B has 2 KV heads: at TP 4 vLLM replicates them (4 % 2 == 0), so each GPU still holds one
    head: KV/token/GPU = 40 x 1 x 128 x 2 x 2 = 20,480 B, the same as at TP 2, not 10,240.
    """
    p = plan(load_model_spec("glm-4-9b-chat"), gpu_count=4, gpu_mem_gib=24, gpu_name=RTX4090)
    assert p.tensor_parallel_size == 4
    assert p.kv_bytes_per_token_per_gpu == 20_480 == p.kv_bytes_per_token // 2
    assert p.fits and p.max_model_len == 131_072


@pytest.mark.parametrize(("gpus", "seed_context"), [(1, 8192), (2, 32768), (4, 131072)])
def test_glm4_9b_1m_seed_contexts_fit(gpus, seed_context):
    """Seed: GLM-4-9B-Chat-1M ✅ 8K / 32K / 128K on 1/2/4x24GB. Agrees (the seed is conservative:
    the planner finds ~72K / ~580K / ~815K tokens of KV cache)."""
    spec = load_model_spec("glm-4-9b-chat-1m")
    p = plan(spec, gpu_count=gpus, gpu_mem_gib=24, gpu_name=RTX4090, max_model_len=seed_context)
    assert p.fits, p.reasons
    assert plan(spec, gpu_count=gpus, gpu_mem_gib=24).max_model_len_limit >= seed_context


def test_qwen25_32b_bf16_cannot_load_on_one_24gb_card():
    """Seed: Qwen2.5-32B-Instruct on 1x24GB ✅ 8K. Wrong for bf16, right for int4 + fp8 KV.

    bf16 weights = 32,763,876,352 x 2 = 65.5 GB (61.0 GiB): cannot load on a 24 GB card.
    AWQ weights  = (32,763,876,352 - 152,064 x 5120 x 2) x 532/1024 + 152,064 x 5120 x 2 x 2
                 = 31,206,740,992 x 0.51953125 + 3,114,270,720 = 19,327,147,876 B (18.0 GiB)
    reserve      = 2^30 + 2048 x (3 x 27648 + 4 x 5120) x 2 + 64 x 152064 x 8 = 1,575,223,296
    KV free      = 23,192,823,398 - 19,327,147,876 - 1,575,223,296 = 2,290,452,226
    tokens       = floor(2,290,452,226 / (64 x 8 x 128 x 2 x 2 x 16)) x 16 = 546 x 16 = 8,736
    So AWQ holds one 8K request (the seed's 8K), with 2 concurrent 4K requests.
    """
    spec = load_model_spec("qwen2.5-32b")
    bf16 = plan(spec, gpu_count=1, gpu_mem_gib=24, gpu_name=RTX4090)
    assert not bf16.fits
    assert bf16.weight_bytes == 32_763_876_352 * 2
    assert "more than the 21.6 GiB" in bf16.reasons[0]
    assert any("AWQ" in s for s in bf16.suggestions)
    with pytest.raises(PlanError) as err:
        bf16.require_fit()
    assert err.value.field == "model" and "AWQ" in str(err.value)

    awq = plan(spec, gpu_count=1, gpu_mem_gib=24, gpu_name=RTX4090, quantization="awq", max_model_len=8192)
    assert awq.weight_bytes == 19_327_147_876
    assert awq.kv_cache_bytes_per_gpu == 2_290_452_226
    assert awq.max_kv_tokens == 8_736
    assert awq.fits and awq.concurrency_4k == 2


def test_qwen25_32b_on_two_24gb_cards_needs_int4():
    """Seed: Qwen2.5-32B-Instruct on 2x24GB ✅ 32K. Wrong for bf16 (30.5 GiB per GPU > 21.6 GiB usable);
    right with an int4 checkpoint (9.0 GiB per GPU leaves ~10.8 GiB of KV: 88K tokens), and fp8
    weights (32 GiB, 16 per GPU) give almost the full 32K."""
    spec = load_model_spec("qwen2.5-32b")
    bf16 = plan(spec, gpu_count=2, gpu_mem_gib=24, gpu_name=RTX4090)
    assert not bf16.fits and bf16.weight_bytes_per_gpu == 32_763_876_352
    assert any(s.startswith("quantize to fp8") for s in bf16.suggestions)
    awq = plan(spec, gpu_count=2, gpu_mem_gib=24, gpu_name=RTX4090, quantization="awq", max_model_len=32768)
    assert awq.fits and awq.tensor_parallel_size == 2 and awq.max_kv_tokens > 80_000


def test_qwen25_32b_on_four_24gb_cards_bf16_fits_full_context():
    """Seed: Qwen2.5-32B-Instruct on 4x24GB ✅ 32K. Agrees: 15.3 GiB weights per GPU, ~4.6 GiB KV per
    GPU at 65,536 B/token/GPU (64 x 2 heads x 128 x 2 x 2) = 75K tokens."""
    p = plan(load_model_spec("qwen2.5-32b"), gpu_count=4, gpu_mem_gib=24, gpu_name=RTX4090)
    assert p.kv_bytes_per_token_per_gpu == 64 * 2 * 128 * 2 * 2
    assert p.fits and p.max_model_len == 32768 and p.tensor_parallel_size == 4


def test_llama31_70b_on_two_24gb_cards_is_partial():
    """Seed: Llama-3.1-70B-Instruct on 2x24GB ⚠️ 16K (partial). Roughly right, but only with int4
    weights and an fp8 KV cache, and a little under 16K:
      bf16: 141 GB of weights, 65.7 GiB per GPU: cannot load.
      AWQ : (70,553,706,496 - 2,101,346,304) x 532/1024 + 2,101,346,304 x 2 = 39,765,832,864 B,
            19.9 GB per GPU; KV free 1,323,248,662 B per GPU.
      KV/token/GPU = 80 x 4 heads x 128 x 2 x 2 = 163,840 (auto) or 81,920 (fp8)
      -> 8,064 tokens (auto) or 16,144 tokens (fp8): max-model-len 15,360, not 16,384.
    """
    spec = load_model_spec("llama-3.1-70b")
    assert not plan(spec, gpu_count=2, gpu_mem_gib=24, gpu_name=RTX4090).fits
    awq = plan(spec, gpu_count=2, gpu_mem_gib=24, gpu_name=RTX4090, quantization="awq")
    assert awq.weight_bytes == 39_765_832_864
    assert awq.kv_cache_bytes_per_gpu == 1_323_248_662
    assert awq.max_kv_tokens == 8_064
    fp8kv = plan(
        spec, gpu_count=2, gpu_mem_gib=24, gpu_name=RTX4090, quantization="awq", kv_cache_dtype="fp8"
    )
    assert fp8kv.max_kv_tokens == 16_144 and fp8kv.max_model_len == 15_360
    asked = plan(
        spec, gpu_count=2, gpu_mem_gib=24, quantization="awq", kv_cache_dtype="fp8", max_model_len=16384
    )
    assert not asked.fits
    assert any("lower max_model_len to <= 15360" in s for s in asked.suggestions)


def test_llama31_70b_bf16_does_not_fit_four_24gb_cards():
    """Seed: Llama-3.1-70B-Instruct on 4x24GB ✅ 64K. Wrong for bf16: 141 GB / 4 = 32.9 GiB per GPU is
    more than a 24 GB card. With int4 (9.3 GiB per GPU) the full 128K context fits."""
    spec = load_model_spec("llama-3.1-70b")
    bf16 = plan(spec, gpu_count=4, gpu_mem_gib=24, gpu_name=RTX4090)
    assert not bf16.fits and bf16.kv_cache_bytes_per_gpu == 0 and bf16.max_kv_tokens == 0
    awq = plan(spec, gpu_count=4, gpu_mem_gib=24, gpu_name=RTX4090, quantization="awq", max_model_len=65536)
    assert awq.fits
    assert plan(spec, gpu_count=4, gpu_mem_gib=24, quantization="awq").max_model_len == 131072


# ------------------------------------------------------------------------------------------------
# Golden numbers: seed 000, 80 GB table (A100/H100)
# ------------------------------------------------------------------------------------------------


def test_qwen25_72b_bf16_cannot_load_on_one_80gb_card():
    """Seed: Qwen2.5-72B-Instruct on 1x80GB ✅ 8K. Wrong: bf16 weights are 72,706,203,648 x 2 = 145.4 GB,
    about twice the card. An int4 (AWQ) checkpoint fits with the full 32K context:
      AWQ = (72,706,203,648 - 2,491,416,576) x 532/1024 + 2,491,416,576 x 2 = 41,461,609,248 B (38.6 GiB)
      reserve (H100: chunk 8192) = 2^30 + 8192 x (3 x 29568 + 4 x 8192) x 2 + 64 x 152064 x 8
                                 = 1,073,741,824 + 1,990,197,248 + 77,856,768 = 3,141,795,840
      KV free = 80 x 2^30 x 0.9 - 41,461,609,248 - 3,141,795,840
              = 77,309,411,328 - 41,461,609,248 - 3,141,795,840 = 32,706,006,240
      tokens  = floor(32,706,006,240 / (327,680 x 16)) x 16 = 6238 x 16 = 99,808
    """
    spec = load_model_spec("Qwen/Qwen2.5-72B-Instruct")
    bf16 = plan(spec, gpu_count=1, gpu_mem_gib=80, gpu_name=H100)
    assert not bf16.fits and bf16.weight_bytes == 145_412_407_296
    assert any("AWQ" in s and "max-model-len up to 32768" in s for s in bf16.suggestions)
    awq = plan(spec, gpu_count=1, gpu_mem_gib=80, gpu_name=H100, quantization="awq")
    assert awq.weight_bytes == 41_461_609_248
    assert awq.reserve_bytes_per_gpu == 3_141_795_840
    assert awq.kv_cache_bytes_per_gpu == 32_706_006_240
    assert awq.max_kv_tokens == 99_808
    assert awq.fits and awq.max_model_len == 32768 and awq.concurrency_4k == 99_808 // 4096 == 24


def test_qwen25_72b_on_two_80gb_cards_does_not_reach_32k_in_bf16():
    """Seed: Qwen2.5-72B-Instruct on 2x80GB ✅ 32K. Overstated: bf16 loads (67.7 GiB per GPU) but leaves
    ~1.5 GiB of KV per GPU at 163,840 B/token/GPU: about 10K tokens. 32K needs fp8 weights or int4."""
    spec = load_model_spec("qwen2.5-72b")
    p = plan(spec, gpu_count=2, gpu_mem_gib=80, gpu_name=H100, max_model_len=32768)
    assert not p.fits
    assert p.max_kv_tokens < 16_384 and p.max_model_len_limit < 16_384
    assert any(s.startswith("quantize to fp8") and "32768" in s for s in p.suggestions)
    assert plan(
        spec, gpu_count=2, gpu_mem_gib=80, gpu_name=H100, quantization="fp8", max_model_len=32768
    ).fits


def test_yi15_34b_chat_context_is_4k_not_200k():
    """Seed: Yi-1.5-34B-Chat, 200K context, ✅ 16K on 1x80GB. The context is wrong: Yi-1.5-34B-Chat ships
    max_position_embeddings 4096 (200K was the older Yi-34B-200K); the Chat-16K variant does fit 16K
    on one 80 GB card: 64.1 GiB bf16 weights leave ~5.5 GiB = 24K tokens at 245,760 B/token
    (60 x 8 x 128 x 2 x 2)."""
    chat = plan(load_model_spec("yi-1.5-34b-chat"), gpu_count=1, gpu_mem_gib=80, gpu_name=H100)
    assert chat.fits and chat.max_model_len == 4096
    too_long = plan(load_model_spec("yi-1.5-34b-chat"), gpu_count=1, gpu_mem_gib=80, max_model_len=16384)
    assert not too_long.fits and "max_position_embeddings 4096" in too_long.reasons[0]
    long16 = plan(load_model_spec("01-ai/Yi-1.5-34B-Chat-16K"), gpu_count=1, gpu_mem_gib=80, gpu_name=H100)
    assert long16.kv_bytes_per_token == 245_760
    assert long16.fits and long16.max_model_len == 16384


def test_phi3_medium_fits_and_chooses_tp2_on_four_cards():
    """Seed: Phi-3-Medium-128K ✅ 64K on 1x80GB, ✅ 128K on 4x80GB. Agrees (1x80GB even holds 128K:
    26 GiB weights, ~44 GiB KV at 204,800 B/token). On 4 GPUs TP 4 is impossible: 10 KV heads are
    neither divisible by 4 nor a divisor of 4, so the planner uses TP 2."""
    spec = load_model_spec("phi-3-medium-128k")
    one = plan(spec, gpu_count=1, gpu_mem_gib=80, gpu_name=H100, max_model_len=65536)
    assert one.fits and one.kv_bytes_per_token == 40 * 10 * 128 * 2 * 2
    four = plan(spec, gpu_count=4, gpu_mem_gib=80, gpu_name=H100)
    assert four.tensor_parallel_size == 2 and four.fits and four.max_model_len == 131072
    assert any("TP 4 is not possible" in n for n in four.notes)


def test_mixtral_8x22b_seed_rows():
    """Seed: Mixtral-8x22B ❌ on 1x80GB (agrees: 281 GB bf16), ✅ 16K on 4x80GB (agrees: 65.5 GiB per
    GPU, KV 57,344 B/token/GPU, the full 64K fits). All 8 experts stay resident: MoE saves compute, not
    weight memory (the seed's "active x 2 B + all x 1 B" formula does not describe vLLM)."""
    spec = load_model_spec("mixtral-8x22b")
    assert spec.active_params and spec.active_params < spec.params / 3
    assert not plan(spec, gpu_count=1, gpu_mem_gib=80).fits
    four = plan(spec, gpu_count=4, gpu_mem_gib=80, gpu_name=H100, max_model_len=16384)
    assert four.fits and four.weight_bytes == spec.params * 2
    assert four.kv_bytes_per_token_per_gpu == 56 * 2 * 128 * 2 * 2


def test_llama31_405b_and_deepseek_v3_do_not_fit_eight_80gb_cards_as_seeded():
    """Seed: Llama-3.1-405B ✅ 64K-128K and DeepSeek-V3 ✅ 32K-64K on 8x80GB. Wrong as stated:
    405B bf16 = 811.7 GB > 8 x 80 GB (fp8 fits, 47.7 GiB per GPU, full 128K); DeepSeek-V3's published
    FP8 weights are 627 GiB = 78.3 GiB per GPU at TP 8, more than 72 GiB usable; it needs 141 GB GPUs
    (H200) or an int4 conversion."""
    llama = load_model_spec("llama-3.1-405b")
    assert not plan(llama, gpu_count=8, gpu_mem_gib=80, gpu_name=H100).fits
    assert plan(
        llama, gpu_count=8, gpu_mem_gib=80, gpu_name=H100, quantization="fp8", max_model_len=131072
    ).fits
    v3 = load_model_spec("deepseek-v3")
    p = plan(v3, gpu_count=8, gpu_mem_gib=80, gpu_name=H100)
    assert p.weight_format == "fp8" and not p.fits
    # MLA: one 576-element latent per layer, replicated on every GPU: 61 x 576 x 2 = 70,272 B.
    assert p.kv_bytes_per_token == p.kv_bytes_per_token_per_gpu == 61 * (512 + 64) * 2
    assert plan(v3, gpu_count=8, gpu_mem_gib=141, gpu_name="NVIDIA H200").fits


# ------------------------------------------------------------------------------------------------
# Tensor parallelism
# ------------------------------------------------------------------------------------------------
