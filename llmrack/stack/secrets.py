"""The stack's secrets as the host's files hold them; the secrets themselves live in :mod:`llmrack.secrets`.

The names below are re-exported from there, so ``from llmrack.stack.secrets import ...`` keeps working.
"""

from __future__ import annotations

import json

from llmrack.secrets import (  # noqa: F401 (re-exported)
    CLUSTER,
    HOST_FILES,
    KEY_PREFIX,
    KEY_RE,
    TOKEN_RE,
    AdminSecrets,
    StackSecrets,
    adopt_host_secrets,
    api_keys,
    new_api_key,
    new_token,
    parse_host_secrets,
    restic_password,
    secrets_root,
    stack_secrets,
    token,
    write_private,
)


def vllm_env(s: StackSecrets) -> str:
    return f"# managed by llmrack: read by the vLLM servers (mode 0600)\nVLLM_API_KEY={s.backend_api_key}\n"


def qdrant_env(s: StackSecrets) -> str:
    return f"# managed by llmrack: read by Qdrant (mode 0600)\nQDRANT__SERVICE__API_KEY={s.qdrant_api_key}\n"


def api_keys_json(s: StackSecrets) -> str:
    return json.dumps(s.api_keys, indent=2, sort_keys=True) + "\n"
