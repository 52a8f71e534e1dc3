"""API keys and passwords of the stack, generated once on the admin machine and kept there (mode 0600).

Layout under the project's ``.llmrack/secrets/`` (directories 0700, files 0600, never in the repository)::

    <host>/api_keys.json         {"client name": "sk-llmrack-..."}: the keys clients send to the gateway
    <host>/postgres_password     the vector store's database password
    <host>/qdrant_api_key        Qdrant's API key
    cluster/backend_api_key      the key the gateways present to every vLLM server of the cluster

Client keys are checked only at the gateway (per-key limits and logs). The vLLM servers check the one
cluster-wide backend key that the gateway sets on proxied requests, so a client key never reaches a
backend and a backend port reached by other means (a cluster node's published port) still needs a key.
Keys are lowercase hex: nginx ``map`` compares strings case-insensitively.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from llmrack.errors import LlmrackError

KEY_PREFIX = "sk-llmrack-"
KEY_RE = re.compile(r"^sk-llmrack-[0-9a-f]{48}$")
TOKEN_RE = re.compile(r"^[0-9a-f]{32,}$")
CLUSTER = "cluster"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_hex(24)


def new_token() -> str:
    return secrets.token_hex(24)


def secrets_root(project_dir: Path) -> Path:
    return Path(project_dir) / ".llmrack" / "secrets"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (created 0600, never world-readable for an instant)."""
    _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read_checked(path: Path, pattern: re.Pattern[str], what: str) -> str:
    value = path.read_text().strip()
    if not pattern.match(value):
        raise LlmrackError(f"not a valid {what} (delete the file to generate a new one)", source=str(path))
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return value


def token(path: Path, *, pattern: re.Pattern[str] = TOKEN_RE, what: str = "secret") -> str:
    """The token stored at ``path``, generated on first use."""
    if path.is_file():
        return _read_checked(path, pattern, what)
    value = new_token()
    write_private(path, value + "\n")
    return value


def api_keys(path: Path, clients: list[str]) -> dict[str, str]:
    """Client name -> key, kept in ``path``; keys of new clients are added, removed clients dropped."""
    current: dict[str, str] = {}
    if path.is_file():
        try:
            current = json.loads(path.read_text())
        except ValueError:
            raise LlmrackError("not valid JSON (delete the file to generate new keys)", source=str(path)) from None
        if not isinstance(current, dict):
            raise LlmrackError("must map client names to keys", source=str(path))
        for name, key in current.items():
            if not isinstance(key, str) or not KEY_RE.match(key):
                raise LlmrackError(f"the key of {name!r} is not a valid llmrack key", source=str(path))
    wanted = {name: current.get(name) or new_api_key() for name in clients}
    if wanted != current:
        write_private(path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    elif path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return wanted


@dataclass(frozen=True)
class StackSecrets:
    api_keys: dict[str, str]
    backend_api_key: str
    postgres_password: str
    qdrant_api_key: str

    def __repr__(self) -> str:  # never print secrets by accident
        return f"StackSecrets(clients={sorted(self.api_keys)})"


def stack_secrets(project_dir: Path, host: str, clients: list[str]) -> StackSecrets:
    """The host's secrets, generated on first use under ``<project>/.llmrack/secrets/``."""
    if not re.match(r"^[A-Za-z0-9._@-]+$", host) or host in (CLUSTER, ".", ".."):
        raise LlmrackError(f"host name {host!r} cannot name a secrets directory", field="host")
    root = secrets_root(project_dir)
    _private_dir(root)
    host_dir = _private_dir(root / host)
    return StackSecrets(
        api_keys=api_keys(host_dir / "api_keys.json", clients),
        backend_api_key=token(_private_dir(root / CLUSTER) / "backend_api_key", what="backend key"),
        postgres_password=token(host_dir / "postgres_password", what="password"),
        qdrant_api_key=token(host_dir / "qdrant_api_key", what="API key"),
    )


# ------------------------------------------------------------------------------------------------ renderings


def vllm_env(s: StackSecrets) -> str:
    return f"# managed by llmrack: read by the vLLM servers (mode 0600)\nVLLM_API_KEY={s.backend_api_key}\n"


def qdrant_env(s: StackSecrets) -> str:
    return f"# managed by llmrack: read by Qdrant (mode 0600)\nQDRANT__SERVICE__API_KEY={s.qdrant_api_key}\n"


def api_keys_json(s: StackSecrets) -> str:
    return json.dumps(s.api_keys, indent=2, sort_keys=True) + "\n"
