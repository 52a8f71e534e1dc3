"""Local sandbox: Debian bookworm "bare host" containers (systemd PID 1 + sshd) reached over real SSH.

The hosts are built locally (debootstrap -> ``docker import``), never pulled: no registry is needed.
Each host boots systemd, runs sshd published on a free 127.0.0.1 port, and keeps /var/lib/docker on a
named volume so nested Docker works. A host survives a reboot like a real one: ``reboot`` inside it ends the
container, whose restart policy brings it back in seconds with its files, /var/lib/docker and its own
/etc/hosts kept, and /run (a tmpfs) empty. ``up`` writes ``state.json`` and an ``ssh_config`` under the state
directory; ``inventories/sandbox.py`` and the integration tests read them.

The CLI (``llmrack sandbox up/down/status``) is a thin layer over :func:`up`, :func:`down`, :func:`status`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

from llmrack.errors import SandboxError
from llmrack.sandbox_image import (
    Log,
    build_host_image,
    docker_client,
    engine_answers,
    ensure_engine,
)
from llmrack.sandbox_state import (
    DEFAULT_STATE_DIR,
    STATE_FILE,
    HostStatus,
    SandboxHost,
    SandboxState,
    default_control_dir,
    host_name,
    render_ssh_config,
)

# The CLI, the benchmarks and the integration tests reach the whole sandbox through this module.
__all__ = [
    "DEFAULT_STATE_DIR",
    "HostStatus",
    "SandboxState",
    "build_host_image",
    "down",
    "engine_answers",
    "ensure_engine",
    "host_name",
    "render_ssh_config",
    "status",
    "up",
]

DEFAULT_PREFIX = "llmrack-sbx-"
PREFIX_LABEL = "io.llmrack.sandbox.prefix"
SSH_CONFIG_FILE = "ssh_config"
KEY_FILE = "id_ed25519"
HOSTS_DIR = "etc-hosts"  # one /etc/hosts per host, bind-mounted: it survives a container restart


# -------------------------------------------------------------------------------------------------- hosts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_key(state_dir: Path) -> Path:
    key = state_dir / KEY_FILE
    if not key.is_file():
        key.unlink(missing_ok=True)
        Path(f"{key}.pub").unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "llmrack-sandbox", "-f", str(key)],
                       check=True)
    key.chmod(0o600)
    return key


def _exec(container, cmd: list[str], user: str = "root") -> tuple[int, str]:
    code, out = container.exec_run(cmd, user=user)
    return code, (out or b"").decode(errors="replace")


def _published_port(container) -> int | None:
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get("22/tcp") or []
    for b in bindings:
        if b.get("HostIp") in ("127.0.0.1", "") and b.get("HostPort"):
            return int(b["HostPort"])
    return None


def _hosts_file(state_dir: Path, container_name: str, hostname: str) -> Path:
    """The host's own /etc/hosts, kept on the machine: Docker rewrites the one it manages at every container
    start, and a sandbox host must keep its files across a reboot like a real one."""
    path = Path(state_dir) / HOSTS_DIR / container_name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                        encoding="utf-8")
    return path


def _start_container(client, name: str, hostname: str, prefix: str, image: str, state_dir: Path):
    from docker.errors import APIError
    from docker.types import Mount

    hosts_file = _hosts_file(state_dir, name, hostname)

    for _attempt in range(5):
        port = _free_port()
        try:
            return client.containers.run(
                image, name=name, hostname=hostname, detach=True,
                labels={PREFIX_LABEL: prefix},
                cgroupns="host",
                mounts=[
                    Mount("/sys/fs/cgroup", "/sys/fs/cgroup", type="bind", read_only=False),
                    Mount("/var/lib/docker", f"{name}-docker", type="volume"),
                    Mount("/etc/hosts", str(hosts_file), type="bind", read_only=False),
                ],
                tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},
                cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
                security_opt=["seccomp=unconfined"],
                ports={"22/tcp": ("127.0.0.1", port)},
                restart_policy={"Name": "unless-stopped"},
            )
        except APIError as exc:
            if "port is already allocated" in str(exc) or "address already in use" in str(exc):
                client.containers.get(name).remove(force=True)
                continue
            raise SandboxError(f"cannot start sandbox host {name}: {exc.explanation or exc}") from None
    raise SandboxError(f"no free 127.0.0.1 port for {name} after 5 tries")


def _wait_booted(container, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    state = "unknown"
    while time.monotonic() < deadline:
        code, out = _exec(container, ["systemctl", "is-system-running"])
        state = out.strip() or state
        if state in ("running", "degraded"):
            return state
        time.sleep(0.5)
    raise SandboxError(f"{container.name}: systemd did not finish booting in {timeout:.0f} s (state {state})")


def _ssh_answers(state: SandboxState, name: str, timeout: float = 10) -> bool:
    try:
        done = subprocess.run(
            ["ssh", "-F", state.ssh_config, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(timeout)}",
             "-o", "ControlMaster=no", "-o", "ControlPath=none", name, "true"],
            capture_output=True, timeout=timeout + 5,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def _install_key(container, pubkey: str) -> None:
    script = (
        "set -e\n"
        "for d in /root /home/deploy; do mkdir -p $d/.ssh; chmod 700 $d/.ssh;"
        f" printf '%s\\n' '{pubkey}' > $d/.ssh/authorized_keys; chmod 600 $d/.ssh/authorized_keys; done\n"
        "chown -R deploy:deploy /home/deploy/.ssh\n"
    )
    code, out = _exec(container, ["sh", "-c", script])
    if code != 0:
        raise SandboxError(f"{container.name}: cannot install the SSH key: {out.strip()}")


def up(
    n_hosts: int = 1, *, prefix: str = DEFAULT_PREFIX, state_dir: Path = DEFAULT_STATE_DIR, log: Log = print,
    roles: str = "",
) -> SandboxState:
    """Start (or keep) ``n_hosts`` sandbox hosts and write the state file and ssh_config."""
    if n_hosts < 1:
        raise SandboxError("the sandbox needs at least one host", field="n_hosts")
    ensure_engine(log)
    image = build_host_image(log=log)
    client = docker_client()
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    Path(default_control_dir(state_dir)).mkdir(mode=0o700, parents=True, exist_ok=True)
    key = _ensure_key(state_dir)
    pubkey = Path(f"{key}.pub").read_text(encoding="utf-8").strip()

    from docker.errors import NotFound

    hosts: list[SandboxHost] = []
    containers = []
    for i in range(1, n_hosts + 1):
        name, cname = host_name(i), f"{prefix}{host_name(i)}"
        try:
            c = client.containers.get(cname)
            if c.status != "running":
                log(f"starting {cname}")
                c.start()
            else:
                log(f"{cname} is up")
        except NotFound:
            log(f"creating {cname}")
            c = _start_container(client, cname, name, prefix, image, state_dir)
        containers.append((name, c))
    for name, c in containers:
        _wait_booted(c)
        _install_key(c, pubkey)
        c.reload()
        port = _published_port(c)
        if port is None:
            raise SandboxError(f"{c.name}: SSH is not published on 127.0.0.1")
        address = c.attrs["NetworkSettings"].get("IPAddress") or next(
            (n["IPAddress"] for n in c.attrs["NetworkSettings"]["Networks"].values() if n.get("IPAddress")), ""
        )
        hosts.append(SandboxHost(name=name, container=c.name, ssh_port=port, address=address, key_path=str(key)))

    state = SandboxState(
        prefix=prefix, image=image, state_dir=str(state_dir), key_path=str(key),
        ssh_config=str(state_dir / SSH_CONFIG_FILE), hosts=hosts, roles=roles,
    )
    Path(state.ssh_config).write_text(render_ssh_config(state), encoding="utf-8")
    state.save()
    deadline = time.monotonic() + 30
    for h in hosts:
        while not _ssh_answers(state, h.name, timeout=5):
            if time.monotonic() > deadline:
                raise SandboxError(f"{h.container}: SSH on 127.0.0.1:{h.ssh_port} does not answer")
            time.sleep(0.5)
    log(f"{len(hosts)} sandbox host(s) up; state in {state_dir}")
    return state


def _prefixed_containers(client, prefix: str) -> list:
    return [c for c in client.containers.list(all=True, filters={"label": f"{PREFIX_LABEL}={prefix}"})]


def down(*, prefix: str | None = None, state_dir: Path = DEFAULT_STATE_DIR, log: Log = print) -> None:
    """Remove the sandbox's containers, their volumes and the state directory's files.

    ``prefix`` defaults to the one recorded in the state file (else ``llmrack-sbx-``)."""
    from docker.errors import NotFound

    if prefix is None:
        try:
            prefix = SandboxState.load(state_dir).prefix
        except SandboxError:
            prefix = DEFAULT_PREFIX
    client = docker_client()
    for c in _prefixed_containers(client, prefix):
        log(f"removing {c.name}")
        c.remove(force=True)
        with contextlib.suppress(NotFound):
            client.volumes.get(f"{c.name}-docker").remove(force=True)
    state_dir = Path(state_dir)
    control = Path(default_control_dir(state_dir))
    for name in (STATE_FILE, SSH_CONFIG_FILE, KEY_FILE, f"{KEY_FILE}.pub"):
        (state_dir / name).unlink(missing_ok=True)
    shutil.rmtree(control, ignore_errors=True)
    shutil.rmtree(state_dir / HOSTS_DIR, ignore_errors=True)
    if state_dir.is_dir() and not any(state_dir.iterdir()):
        state_dir.rmdir()


def status(*, state_dir: Path = DEFAULT_STATE_DIR) -> list[HostStatus]:
    """The sandbox's hosts, their containers' state and whether SSH answers."""
    from docker.errors import NotFound

    state = SandboxState.load(state_dir)
    client = docker_client()
    out = []
    for h in state.hosts:
        try:
            cstatus = client.containers.get(h.container).status
        except NotFound:
            cstatus = "missing"
        ok = cstatus == "running" and _ssh_answers(state, h.name, timeout=5)
        out.append(HostStatus(name=h.name, container=h.container, container_status=cstatus,
                              ssh_port=h.ssh_port, address=h.address, ssh_ok=ok))
    return out
