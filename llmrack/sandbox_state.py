"""Sandbox state on the admin machine: the hosts ``llmrack sandbox up`` started, and the ssh_config that reaches them.

``state.json`` and ``ssh_config`` live in the state directory; ``inventories/sandbox.py`` and the integration
tests read them through :class:`SandboxState`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ValidationError

from llmrack.errors import SandboxError

DEFAULT_STATE_DIR = Path(".llmrack/sandbox")
STATE_FILE = "state.json"


class SandboxHost(BaseModel):
    name: str
    container: str
    ssh_port: int
    address: str
    key_path: str


class SandboxState(BaseModel):
    prefix: str
    image: str
    state_dir: str
    key_path: str
    ssh_config: str
    hosts: list[SandboxHost]
    roles: str = ""  # role layout for inventories/sandbox.py (llmrack.cluster.sandbox_roles); "": every role

    @classmethod
    def load(cls, state_dir: Path | str = DEFAULT_STATE_DIR) -> SandboxState:
        path = Path(state_dir) / STATE_FILE
        if not path.is_file():
            raise SandboxError(
                "no sandbox is running here: run `llmrack sandbox up` first", source=str(path)
            )
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise SandboxError(
                f"the sandbox state file is damaged ({exc.errors()[0]['msg']}): "
                "run `llmrack sandbox down` then `llmrack sandbox up`",
                source=str(path),
            ) from None

    def save(self) -> Path:
        path = Path(self.state_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def host(self, name: str) -> SandboxHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise SandboxError(f"no sandbox host named {name!r}", source=str(Path(self.state_dir) / STATE_FILE))


class HostStatus(BaseModel):
    name: str
    container: str
    container_status: str
    ssh_port: int
    address: str
    ssh_ok: bool


def host_name(index: int) -> str:
    return f"host{index}"


def render_ssh_config(state: SandboxState, control_dir: str | None = None) -> str:
    """An ssh_config with one ``Host`` alias per sandbox host (used by ssh, testinfra and ``scp``)."""
    control = control_dir or default_control_dir(Path(state.state_dir))
    lines = ["# managed by llmrack: sandbox hosts (host keys are shared: checking is off for them only)"]
    for h in state.hosts:
        lines += [
            f"Host {h.name}",
            "    HostName 127.0.0.1",
            f"    Port {h.ssh_port}",
            "    User root",
            f"    IdentityFile {h.key_path}",
            "    IdentitiesOnly yes",
            "    StrictHostKeyChecking no",
            "    UserKnownHostsFile /dev/null",
            "    LogLevel ERROR",
            "    ControlMaster auto",
            f"    ControlPath {control}/%C",
            "    ControlPersist 60s",
            "",
        ]
    return "\n".join(lines)


def default_control_dir(state_dir: Path) -> str:
    """Where ssh control sockets live: short enough for a unix socket path (108 bytes)."""
    candidate = state_dir.resolve() / "cm"
    if len(str(candidate)) + 42 < 100:
        return str(candidate)
    digest = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:10]
    return f"/tmp/llmrack-cm-{digest}"
