"""A NAS and a dead server for the data-safety tests and bench/operations.py: a sandbox host as the SFTP
backup target, the key a server's root reaches it with, and a server destroyed with its disks and replaced by a
bare one under the same name."""

from __future__ import annotations

import subprocess
from pathlib import Path

from llmrack import sandbox


def nas_ssh(nas_state, command: str, *, stdin: str | None = None) -> str:
    done = subprocess.run(["ssh", "-F", nas_state.ssh_config, "host1", command], input=stdin, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def grant_repository_access(state, nas_state, host: str = "host1") -> str:
    """What the admin does once per (new) server: give its root an SSH key the NAS accepts."""
    def on(command: str) -> str:
        done = subprocess.run(["ssh", "-F", state.ssh_config, host, command], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    pub = on("test -f /root/.ssh/id_ed25519 || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519; "
             "cat /root/.ssh/id_ed25519.pub")
    nas_ssh(nas_state, "mkdir -p /srv/llmrack && cat >> /root/.ssh/authorized_keys", stdin=pub)
    address = nas_state.host("host1").address
    on(f"ssh-keyscan -t ed25519 {address} >> /root/.ssh/known_hosts 2>/dev/null")
    return f"sftp:root@{address}:/srv/llmrack"


def destroy_and_recreate(state):
    """The server is gone (container and its disks removed) and a bare one takes its name."""
    import docker

    client = docker.from_env()
    cname = state.host("host1").container
    client.containers.get(cname).remove(force=True)
    client.volumes.get(f"{cname}-docker").remove(force=True)
    (Path(state.state_dir) / sandbox.HOSTS_DIR / cname).unlink()
    return sandbox.up(1, prefix=state.prefix, state_dir=Path(state.state_dir), log=lambda m: None)
