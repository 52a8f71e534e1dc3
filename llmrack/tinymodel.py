"""A tiny chat model made fully offline, for the sandbox's real vLLM server.

Byte-level BPE tokenizer (4096 tokens) trained with ``tokenizers`` on Python's standard library sources,
ChatML chat template, wrapped as a transformers fast tokenizer; a random-init ``LlamaForCausalLM``
(2 layers, hidden 128, 2 heads) in bf16, saved as safetensors. Seeded, so the same machine makes the same
files. torch/transformers are not in the tool's venv: the work runs in the vLLM staging venv (which has
both), by running :mod:`llmrack.images.tinymodel_worker` there as a script, given the recipe as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from llmrack.errors import LlmrackError
from llmrack.images import cache_lock, tinymodel_worker, vllm_staging_venv

RECIPE = {
    "version": 1,
    "vocab_size": 4096,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "seed": 1234,
    "corpus_bytes": 4_000_000,
    "dtype": "bfloat16",
}
MARKER = ".llmrack-tinymodel.json"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
EXPECTED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def recipe_hash() -> str:
    return hashlib.sha256(
        json.dumps([RECIPE, CHAT_TEMPLATE, SPECIAL_TOKENS], sort_keys=True).encode()
    ).hexdigest()[:16]


def is_built(out_dir: Path) -> bool:
    """True when ``out_dir`` holds a complete model made by the current recipe."""
    marker = out_dir / MARKER
    if not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text())
    except ValueError:
        return False
    return data.get("recipe") == recipe_hash() and all((out_dir / f).is_file() for f in EXPECTED_FILES)


def build_tiny_model(out_dir: Path, *, python: Path | None = None, log=print) -> Path:
    """Make the tiny model in ``out_dir`` (no-op when already made by the same recipe); returns out_dir.

    ``python`` is an interpreter with torch + transformers + tokenizers; default: the vLLM staging venv
    (built on first use by :func:`llmrack.images.vllm_staging_venv`).
    """
    out_dir = Path(out_dir).resolve()
    if is_built(out_dir):
        return out_dir
    with cache_lock("tinymodel-" + hashlib.sha256(str(out_dir).encode()).hexdigest()[:12]):
        if is_built(out_dir):  # made by another process meanwhile
            return out_dir
        return _build(out_dir, python, log)


def _build(out_dir: Path, python: Path | None, log) -> Path:
    if python is None:
        python = vllm_staging_venv(log=log) / "bin" / "python"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    t0 = time.monotonic()
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONHASHSEED="0",
    )
    recipe = json.dumps({"recipe": RECIPE, "special_tokens": SPECIAL_TOKENS, "chat_template": CHAT_TEMPLATE})
    proc = subprocess.run(  # -P: the worker's directory stays off sys.path (its venv.py is not stdlib's)
        [str(python), "-P", str(Path(tinymodel_worker.__file__).resolve()), str(tmp), recipe],
        capture_output=True, text=True, env=env,
    )
    if proc.returncode != 0:
        raise LlmrackError(
            f"building the tiny model failed:\n{(proc.stderr or proc.stdout)[-3000:]}", source=str(out_dir)
        )
    for item in tmp.iterdir():
        item.chmod(0o644)  # readable by the unprivileged user of the vLLM container
        item.replace(out_dir / item.name)
    tmp.rmdir()
    (out_dir / MARKER).write_text(
        json.dumps({"recipe": recipe_hash(), **RECIPE}, sort_keys=True, indent=1) + "\n"
    )
    log(f"tiny model built in {out_dir} in {time.monotonic() - t0:.1f} s")
    return out_dir
