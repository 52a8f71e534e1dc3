"""GPU sizing planner: tensor-parallel rules, the vLLM arguments of a plan, CPU mode, model configs read
from disk, and errors naming the field (the golden sizing rows are in test_planner.py)."""

from __future__ import annotations

import json

import pytest
from planner_common import FIXTURES, H100, RTX4090

from llmrack.errors import LlmrackError, PlanError
from llmrack.planner import (
    check_tensor_parallel,
    kv_bytes_per_token,
    load_model_spec,
    plan,
    weight_bytes,
)


def test_tensor_parallel_rules():
    qwen7 = load_model_spec("qwen2.5-7b")  # 28 heads, 4 KV heads
    assert check_tensor_parallel(qwen7, 4) is None
    assert "28 attention heads" in check_tensor_parallel(qwen7, 8)
    glm = load_model_spec("glm-4-9b-chat")  # 32 heads, 2 KV heads: TP 8 replicates
    assert check_tensor_parallel(glm, 8) is None
    phi = load_model_spec("phi-3-medium-128k")  # 40 heads, 10 KV heads
    assert "10 key/value heads" in check_tensor_parallel(phi, 4)
    # int4 groups: 13696 / 2 = 6848 is not a multiple of 128, so GLM-4-9B AWQ cannot use TP 2.
    assert "group size 128" in check_tensor_parallel(glm, 2, "awq")
    assert check_tensor_parallel(glm, 2, "bf16") is None


def test_auto_tp_is_largest_valid_power_of_two():
    p = plan(load_model_spec("qwen2.5-7b"), gpu_count=8, gpu_mem_gib=24, gpu_name=RTX4090)
    assert p.tensor_parallel_size == 4
    assert any("uses 4 of 8 GPUs" in n for n in p.notes)
    assert plan(load_model_spec("qwen2.5-72b"), gpu_count=8, gpu_mem_gib=80).tensor_parallel_size == 8
    # 29568 / 2 = 14784 is not a multiple of 128: an AWQ plan on the unpadded width stays at TP 1 ...
    unpadded = load_model_spec("qwen2.5-72b").model_copy(update={"int4_intermediate_size": None})
    assert plan(unpadded, gpu_count=8, gpu_mem_gib=80, quantization="awq").tensor_parallel_size == 1
    # ... while Qwen's published AWQ checkpoint (intermediate_size 29696) runs at TP 8.
    awq_dir = load_model_spec(str(FIXTURES / "qwen2.5-72b-instruct-awq"))
    assert plan(awq_dir, gpu_count=8, gpu_mem_gib=80).tensor_parallel_size == 8


def test_explicit_tp_errors_name_the_field():
    spec = load_model_spec("qwen2.5-7b")
    with pytest.raises(PlanError) as err:
        plan(spec, gpu_count=2, gpu_mem_gib=24, tensor_parallel_size=4, source="tiers/entry.yaml")
    assert err.value.field == "tensor_parallel_size" and err.value.source == "tiers/entry.yaml"
    assert "more than the 2 GPUs" in str(err.value)
    with pytest.raises(PlanError) as err:
        plan(spec, gpu_count=4, gpu_mem_gib=24, tensor_parallel_size=3)
    assert err.value.field == "tensor_parallel_size" and "valid sizes" in str(err.value)
    assert plan(spec, gpu_count=4, gpu_mem_gib=24, tensor_parallel_size=2).tensor_parallel_size == 2


# ------------------------------------------------------------------------------------------------
# vLLM arguments and environment
# ------------------------------------------------------------------------------------------------


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_vllm_args_for_a_gpu_plan():
    p = plan(load_model_spec("qwen2.5-14b"), gpu_count=2, gpu_mem_gib=80, gpu_name=H100, max_num_seqs=128)
    args = p.vllm_args
    assert _arg(args, "--tensor-parallel-size") == "2"
    assert _arg(args, "--max-model-len") == "32768"
    assert _arg(args, "--gpu-memory-utilization") == "0.9"
    assert _arg(args, "--max-num-seqs") == "128"
    assert _arg(args, "--dtype") == "bfloat16"
    assert _arg(args, "--kv-cache-dtype") == "auto"
    assert "--enable-prefix-caching" in args and "--enable-chunked-prefill" in args
    assert "--quantization" not in args and "--disable-custom-all-reduce" not in args
    assert p.env == {}
    fp8 = plan(
        load_model_spec("qwen2.5-14b"), gpu_count=1, gpu_mem_gib=80, quantization="fp8", kv_cache_dtype="fp8"
    )
    assert _arg(fp8.vllm_args, "--quantization") == "fp8" and _arg(fp8.vllm_args, "--kv-cache-dtype") == "fp8"
    # AWQ: vLLM reads the format from the checkpoint and picks Marlin; forcing "awq" would disable it.
    awq = plan(load_model_spec("qwen2.5-14b"), gpu_count=1, gpu_mem_gib=24, quantization="awq")
    assert "--quantization" not in awq.vllm_args and _arg(awq.vllm_args, "--dtype") == "float16"
    assert any("pre-quantized checkpoint" in n for n in awq.notes)


@pytest.mark.parametrize(
    ("gpu_name", "gpus", "consumer_tp"),
    [
        (RTX4090, 2, True),
        ("NVIDIA GeForce RTX 4090 D", 4, True),
        ("NVIDIA GeForce RTX 4080", 2, True),
        ("NVIDIA L40S", 2, False),
        ("NVIDIA RTX 6000 Ada Generation", 2, False),
        ("NVIDIA GeForce RTX 3090", 2, True),
        (H100, 2, False),
        (RTX4090, 1, False),  # no tensor parallel, nothing to disable
    ],
)
def test_consumer_cards_get_nccl_p2p_disabled_under_tp(gpu_name, gpus, consumer_tp):
    p = plan(load_model_spec("qwen2.5-7b"), gpu_count=gpus, gpu_mem_gib=24, gpu_name=gpu_name)
    assert ("--disable-custom-all-reduce" in p.vllm_args) is consumer_tp
    assert (p.env.get("NCCL_P2P_DISABLE") == "1") is consumer_tp


# ------------------------------------------------------------------------------------------------
# CPU mode (the sandbox)
# ------------------------------------------------------------------------------------------------


def test_cpu_mode_uses_kv_space_and_no_gpu_flags():
    """The sandbox's tiny model: 2 layers x 2 KV heads x 64 x 2 x 2 B = 1,024 B per token, so
    VLLM_CPU_KVCACHE_SPACE=2 holds 2 x 2^30 / 1024 = 2,097,152 tokens (measured: 1 GiB held ~1M)."""
    spec = load_model_spec(str(FIXTURES / "tiny-llama"))
    p = plan(spec, gpu_count=0, gpu_mem_gib=0, cpu_kv_cache_gib=2, max_model_len=512)
    assert p.cpu and p.fits and p.tensor_parallel_size == 1
    assert p.kv_bytes_per_token == 1024 and p.max_kv_tokens == 2_097_152
    assert p.env == {"VLLM_CPU_KVCACHE_SPACE": "2"}
    assert "--tensor-parallel-size" not in p.vllm_args and "--gpu-memory-utilization" not in p.vllm_args
    assert _arg(p.vllm_args, "--max-model-len") == "512" and _arg(p.vllm_args, "--dtype") == "bfloat16"
    assert plan(spec, gpu_count=0, gpu_mem_gib=0).max_model_len == 2048  # capped at the model's maximum
    assert not plan(spec, gpu_count=0, gpu_mem_gib=0, max_model_len=4096).fits
    with pytest.raises(LlmrackError) as err:
        plan(spec, gpu_count=0, gpu_mem_gib=0, quantization="awq")
    assert err.value.field == "quantization"


def test_cpu_mode_kv_too_small_suggests_more_space():
    # Llama-3.1-8B: 32 x 8 x 128 x 2 x 2 = 131,072 B/token; 1 GiB holds 8,192 tokens < 32K asked.
    p = plan(load_model_spec("llama-3.1-8b"), gpu_count=0, gpu_mem_gib=0, max_model_len=32768)
    assert p.max_kv_tokens == 8192 and not p.fits
    assert any("cpu_kv_cache_gib >= 4" in s for s in p.suggestions)


# ------------------------------------------------------------------------------------------------
# config.json loading
# ------------------------------------------------------------------------------------------------


def test_config_json_matches_catalogue_numbers():
    local = load_model_spec(str(FIXTURES / "qwen2.5-7b-instruct"))
    cat = load_model_spec("qwen2.5-7b")
    for field in (
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "max_position_embeddings",
        "vocab_size",
        "intermediate_size",
    ):
        assert getattr(local, field) == getattr(cat, field), field
    # Computed from the config: 152064 x 3584 x 2 + 28 x (attention 32,112,640 + MLP 203,685,888)
    assert local.params == 152064 * 3584 * 2 + 28 * (2 * 3584 * 3584 + 2 * 3584 * 512 + 3 * 3584 * 18944)
    assert local.source.endswith("config.json") and local.name == "qwen2.5-7b-instruct"
    # A path to the file itself works too.
    assert load_model_spec(str(FIXTURES / "qwen2.5-7b-instruct" / "config.json")).params == local.params


def test_chatglm_and_moe_configs():
    glm = load_model_spec(str(FIXTURES / "glm-4-9b-chat"))
    assert (glm.num_hidden_layers, glm.num_key_value_heads, glm.head_dim) == (40, 2, 128)
    assert glm.max_position_embeddings == 131072 and glm.hf_id == "THUDM/glm-4-9b-chat"
    assert glm.params == pytest.approx(9.4e9, rel=0.01)
    mix = load_model_spec(str(FIXTURES / "mixtral-8x7b-instruct"))
    assert mix.num_experts == 8 and mix.num_experts_per_tok == 2
    assert mix.params == pytest.approx(46.7e9, rel=0.005)
    assert mix.active_params == pytest.approx(12.9e9, rel=0.01)
    # KV cache does not depend on experts: 32 x 8 x 128 x 2 x 2.
    assert kv_bytes_per_token(mix) == 131_072


def test_awq_config_is_sized_as_int4():
    spec = load_model_spec(str(FIXTURES / "qwen2.5-72b-instruct-awq"))
    assert spec.checkpoint_quantization == "awq" and spec.quant_group_size == 128 and spec.dtype == "fp16"
    # About the size of Qwen's published AWQ files (~41.6 GB).
    assert weight_bytes(spec) == pytest.approx(41.6e9, rel=0.02)
    p = plan(spec, gpu_count=1, gpu_mem_gib=80)
    assert p.weight_format == "awq" and p.fits


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "field", "text"),
    [
        ("missing-layers", "num_hidden_layers", "missing"),
        ("bad-kv-heads", "num_key_value_heads", "'8'"),
        ("broken-json", None, "cannot read a JSON config"),
    ],
)
def test_malformed_configs_name_file_and_field(fixture, field, text):
    with pytest.raises(LlmrackError) as err:
        load_model_spec(str(FIXTURES / fixture))
    assert err.value.field == field
    assert err.value.source.endswith(f"{fixture}/config.json")
    assert text in str(err.value) and fixture in str(err.value)


def test_unknown_models():
    with pytest.raises(LlmrackError) as err:
        load_model_spec("qwen2.5-7")
    assert err.value.field == "model" and "qwen2.5-7b" in str(err.value)
    with pytest.raises(LlmrackError) as err:
        load_model_spec("DeepSeek-V3-Lite-16B")
    assert "not a published model" in str(err.value) and "DeepSeek-V2-Lite" in str(err.value)
    with pytest.raises(LlmrackError) as err:
        load_model_spec(str(FIXTURES))  # a directory without config.json
    assert err.value.field == "config.json"
    with pytest.raises(LlmrackError) as err:
        load_model_spec("./no/such/model")
    assert err.value.field == "model"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quantization": "int3"}, "quantization"),
        ({"kv_cache_dtype": "int8"}, "kv_cache_dtype"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
        ({"gpu_count": -1}, "gpu_count"),
        ({"gpu_mem_gib": 0}, "gpu_mem_gib"),
        ({"max_model_len": 0}, "max_model_len"),
        ({"max_num_seqs": 0}, "max_num_seqs"),
    ],
)
def test_bad_plan_arguments_name_the_field(kwargs, field):
    args = {"gpu_count": 1, "gpu_mem_gib": 24, **kwargs}
    with pytest.raises(LlmrackError) as err:
        plan(load_model_spec("qwen2.5-7b"), source="tiers/standard.yaml", **args)
    assert err.value.field == field
    assert str(err.value).startswith(f"tiers/standard.yaml: {field}: ")


def test_plan_is_frozen_and_serializable():
    p = plan(load_model_spec("qwen2.5-7b"), gpu_count=1, gpu_mem_gib=24)
    assert p.require_fit() is p
    data = json.loads(json.dumps(p.to_dict()))
    assert data["fits"] is True and data["gib"]["weights"] == pytest.approx(14.19, abs=0.01)
    with pytest.raises(ValueError):
        p.fits = False  # type: ignore[misc]


def test_decode_roofline_is_bandwidth_over_bytes_read_per_token():
    """Qwen2.5-7B bf16 on one RTX 4090 (1008 GB/s): 7.62e9 params x 2 bytes = 15.2 GB read per token -> 66 tokens/s.
    MoE (Mixtral 8x7B, 12.9B of 46.7B active) reads only the routed experts."""
    from llmrack.planner.roofline import decode_roofline

    spec = load_model_spec("Qwen/Qwen2.5-7B-Instruct")
    p = plan(spec, gpu_count=1, gpu_mem_gib=24, gpu_name=RTX4090)
    roof = decode_roofline(p, spec)
    assert roof is not None
    assert roof["tokens_per_s"] == pytest.approx(1008e9 / (spec.params * 2), rel=0.001)
    assert 60 < roof["tokens_per_s"] < 70
    longer = decode_roofline(p, spec, context_tokens=4096)
    assert longer is not None and longer["tokens_per_s"] < roof["tokens_per_s"]
    moe = load_model_spec("mistralai/Mixtral-8x7B-Instruct-v0.1")
    pm = plan(moe, gpu_count=2, gpu_mem_gib=80, gpu_name=H100)
    rm = decode_roofline(pm, moe)
    assert rm is not None
    assert rm["bytes_per_token_per_gpu"] == pytest.approx(pm.weight_bytes_per_gpu * moe.active_params / moe.params,
                                                          rel=0.001)
    assert decode_roofline(plan(spec, gpu_count=0, gpu_mem_gib=0), spec) is None
