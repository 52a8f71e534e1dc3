"""The worker that makes the tiny model (:mod:`llmrack.tinymodel`): run as a script by the vLLM staging venv's
interpreter, which has torch, transformers and tokenizers (the tool's venv does not).

``python -P tinymodel_worker.py OUT RECIPE_JSON``: the recipe comes in as JSON, so this file needs nothing from
the project; its module-level imports are stdlib only, and the heavy ones are imported where the work is done.
"""

from __future__ import annotations

import json
import random
import sys
import sysconfig
from pathlib import Path
from typing import Any


def _corpus(limit: int) -> list[str]:
    """Deterministic training text: Python's stdlib sources in sorted order, up to ``limit`` bytes."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts: list[str] = []
    total = 0
    for path in sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.append(text)
        total += len(text)
        if total >= limit:
            break
    return texts


def build(out: Path, recipe: dict[str, Any], special_tokens: list[str], chat_template: str) -> None:
    """Train the tokenizer, initialise the model, save both in ``out`` (which must not exist yet)."""
    # not installed in the tool's venv, only in the staging venv that runs this file
    import numpy as np
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    seed = recipe["seed"]
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=recipe["vocab_size"],
        special_tokens=special_tokens,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(recipe["corpus_bytes"]), trainer=trainer)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=recipe["max_position_embeddings"],
    )
    fast.chat_template = chat_template
    out.mkdir(parents=True)
    fast.save_pretrained(out)

    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=recipe["hidden_size"],
        intermediate_size=recipe["intermediate_size"],
        num_hidden_layers=recipe["num_hidden_layers"],
        num_attention_heads=recipe["num_attention_heads"],
        num_key_value_heads=recipe["num_key_value_heads"],
        max_position_embeddings=recipe["max_position_embeddings"],
        bos_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        tie_word_embeddings=False,
        torch_dtype=recipe["dtype"],
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = config.eos_token_id
    model.save_pretrained(out, safe_serialization=True)


if __name__ == "__main__":
    _spec = json.loads(sys.argv[2])
    build(Path(sys.argv[1]), _spec["recipe"], _spec["special_tokens"], _spec["chat_template"])
