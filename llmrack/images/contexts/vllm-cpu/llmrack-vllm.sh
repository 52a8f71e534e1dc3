#!/bin/sh
# managed by llmrack: start the OpenAI-compatible vLLM server; arguments go to `vllm serve`
# (e.g. --model /models/NAME --served-model-name NAME --max-model-len 512 --dtype bfloat16 --enforce-eager).
# The environment carries a `vllm` metadata entry whose version contains "cpu" (CPU platform).
set -eu
exec /opt/vllm/bin/vllm serve \
    --host "${LLMRACK_VLLM_HOST:-0.0.0.0}" --port "${LLMRACK_VLLM_PORT:-8000}" "$@"
