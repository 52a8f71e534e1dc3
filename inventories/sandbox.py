"""Local sandbox hosts (Debian systemd containers reached over SSH on 127.0.0.1).

Start them with `llmrack sandbox up` (state in .llmrack/sandbox, or the directory named by the
LLMRACK_SANDBOX_DIR environment variable), then: `pyinfra inventories/sandbox.py deploys/full_stack.py`.
Every host runs every role of the sandbox tier (CPU only, tiny model), unless a role layout is given: by
`llmrack sandbox up --roles LAYOUT` (kept in the state) or the LLMRACK_SANDBOX_ROLES environment variable
(which wins). `cluster` makes the first host the gateway, the last the monitoring host and the others inference
nodes; `host1=gateway;host2,host3=inference;host4=monitoring` names them (hosts left out are not deployed).
"""

import json
import os
from pathlib import Path

from llmrack.cluster import ENV_ROLES, sandbox_roles
from llmrack.sandbox import SandboxState
from llmrack.yamlfile import deep_merge

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
if os.environ.get("LLMRACK_SANDBOX_OVERRIDES"):  # JSON deep-merged onto these, e.g. '{"stack": {"vllm": {...}}}'
    _overrides = deep_merge(_overrides, json.loads(os.environ["LLMRACK_SANDBOX_OVERRIDES"]))
if os.environ.get("LLMRACK_BACKUP_REPOSITORY"):  # e.g. sftp:root@172.17.0.3:/srv/llmrack (another sandbox host)
    _overrides["backup"] = {"repository": os.environ["LLMRACK_BACKUP_REPOSITORY"]}

_layout = os.environ.get(ENV_ROLES, _state.roles)
_roles = sandbox_roles(_layout, [h.name for h in _state.hosts],
                       source=ENV_ROLES if ENV_ROLES in os.environ else str(_state_dir / "state.json"))

sandbox = [
    (
        h.name,
        {
            "tier": "sandbox",
            "address": h.address,
            "roles": _roles[h.name],
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
    if h.name in _roles
]
