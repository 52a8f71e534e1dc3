#!/usr/bin/python3.11
# managed by llmrack: healthy when vLLM answers 200 on /health.
import os
import sys
import urllib.request

port = os.environ.get("LLMRACK_VLLM_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=4) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except Exception:
    sys.exit(1)
