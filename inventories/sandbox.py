"""Local sandbox hosts (Debian systemd containers reached over SSH on 127.0.0.1).

Start them with `llmrack sandbox up` (state in .llmrack/sandbox, or the directory named by the
LLMRACK_SANDBOX_DIR environment variable), then: `pyinfra inventories/sandbox.py deploys/full_stack.py`.
Every host runs every role of the sandbox tier (CPU only, tiny model).
"""

import os
from pathlib import Path

from llmrack.sandbox import SandboxState

_project = Path(__file__).resolve().parent.parent
_state_dir = Path(os.environ.get("LLMRACK_SANDBOX_DIR", ".llmrack/sandbox"))
if not _state_dir.is_absolute():
    _state_dir = _project / _state_dir

_state = SandboxState.load(_state_dir)  # raises "run `llmrack sandbox up` first" when there is none
# The offline bundle (`llmrack bundle build --tier sandbox --out .llmrack/bundle`) carries the images, the
# tiny model and the docker compose v2 .deb for the hosts' distro engine.
_bundle = Path(os.environ.get("LLMRACK_BUNDLE", ".llmrack/bundle"))
if not _bundle.is_absolute():
    _bundle = _project / _bundle
_debs = sorted((_bundle / "debs").glob("docker-compose_*.deb")) if (_bundle / "debs").is_dir() else []
_compose_deb = os.environ.get("LLMRACK_COMPOSE_DEB", "") or (str(_debs[-1]) if _debs else "")
_overrides: dict = {"stack": {"bundle": {"path": str(_bundle)}}}
if _compose_deb:
    _overrides["docker"] = {"compose_deb": _compose_deb}

sandbox = [
    (
        h.name,
        {
            "tier": "sandbox",
            "address": h.address,
            "overrides": _overrides,
            "ssh_hostname": "127.0.0.1",
            "ssh_port": h.ssh_port,
            "ssh_user": "root",
            "ssh_key": h.key_path,
            "ssh_strict_host_key_checking": "no",
            "ssh_known_hosts_file": "/dev/null",
        },
    )
    for h in _state.hosts
]
