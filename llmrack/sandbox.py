"""Local sandbox: Debian bookworm "bare host" containers (systemd PID 1 + sshd) reached over real SSH.

The hosts are built locally (debootstrap -> ``docker import``), never pulled: no registry is needed.
Each host boots systemd, runs sshd published on a free 127.0.0.1 port, and keeps /var/lib/docker on a
named volume so nested Docker works. ``up`` writes ``state.json`` and an ``ssh_config`` under the state
directory; ``inventories/sandbox.py`` and the integration tests read them.

The CLI (``llmrack sandbox up/down/status``) is a thin layer over :func:`up`, :func:`down`, :func:`status`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from llmrack.errors import SandboxError

Log = Callable[[str], Any]

IMAGE = "llmrack/sandbox-host:bookworm"
ROOTFS_IMAGE = "llmrack/sandbox-host:bookworm-rootfs"
SUITE = "bookworm"
DEFAULT_PREFIX = "llmrack-sbx-"
DEFAULT_STATE_DIR = Path(".llmrack/sandbox")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CONTENT_LABEL = "io.llmrack.sandbox.content"
PREFIX_LABEL = "io.llmrack.sandbox.prefix"
STATE_FILE = "state.json"
SSH_CONFIG_FILE = "ssh_config"
KEY_FILE = "id_ed25519"

PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "sudo", "ca-certificates",
    "iproute2", "procps", "curl", "gnupg",
]
# Units that cannot work (or must not run) in a container sharing the machine's kernel.
MASKED_UNITS = [
    "getty.target", "console-getty.service", "getty@tty1.service", "serial-getty@.service",
    "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service", "systemd-udev-settle.service", "systemd-modules-load.service",
    "systemd-remount-fs.service", "systemd-firstboot.service", "sys-kernel-config.mount",
    "sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-fs-fuse-connections.mount",
    "systemd-timesyncd.service",
]
SSHD_CONFIG = (
    "# managed by llmrack (sandbox host image)\n"
    "PermitRootLogin prohibit-password\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "UseDNS no\n"
)
# Bump when the build steps below change: the image is rebuilt when its content label differs.
BUILD_REVISION = 3


# -------------------------------------------------------------------------------------------------- state


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
    control = control_dir or _control_dir(Path(state.state_dir))
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


def _control_dir(state_dir: Path) -> str:
    """Where ssh control sockets live: short enough for a unix socket path (108 bytes)."""
    candidate = state_dir.resolve() / "cm"
    if len(str(candidate)) + 42 < 100:
        return str(candidate)
    digest = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:10]
    return f"/tmp/llmrack-cm-{digest}"


# -------------------------------------------------------------------------------------------------- engine


def _docker_client(timeout: int = 120):
    import docker

    return docker.from_env(timeout=timeout)


def engine_answers() -> bool:
    try:
        _docker_client(timeout=5).ping()
    except Exception:
        return False
    return True


def _is_debian_like() -> bool:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return False
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    ids = {fields.get("ID", "").strip('"'), *fields.get("ID_LIKE", "").strip('"').split()}
    return bool(ids & {"debian", "ubuntu"})


def _apt_install(packages: list[str], log: Log) -> None:
    if os.geteuid() != 0 or not _is_debian_like():
        raise SandboxError(
            f"{', '.join(packages)} missing: install them (this machine is not a Debian/Ubuntu run as root)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log(f"installing {' '.join(packages)} from the distribution's apt mirror")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SandboxError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-500:]}")


def ensure_engine(log: Log = print) -> None:
    """Make sure a Docker engine answers; install the distro's docker.io and start dockerd if not."""
    if engine_answers():
        return
    missing = [p for p, binary in (("docker.io", "dockerd"), ("debootstrap", "debootstrap"), ("zstd", "zstd"))
               if not shutil.which(binary)]
    if missing:
        _apt_install(missing, log)
    if not engine_answers():
        logfile = Path("/var/log/llmrack-dockerd.log")
        log(f"starting dockerd in the background (log: {logfile})")
        with logfile.open("ab") as out:
            subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        deadline = time.monotonic() + 60
        while not engine_answers():
            if time.monotonic() > deadline:
                raise SandboxError(f"dockerd did not answer within 60 s: see {logfile}")
            time.sleep(1)
    log("docker engine answers")


# -------------------------------------------------------------------------------------------------- image


def parse_deb822_sources(text: str) -> list[dict[str, str]]:
    """Stanzas of a deb822 .sources file as dicts (keys lower-case, comments dropped)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for raw in text.splitlines() + [""]:
        line = raw.rstrip()
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
                current = {}
            continue
        if line[0].isspace() and current:
            key = list(current)[-1]
            current[key] += " " + line.strip()
            continue
        key, _, value = line.partition(":")
        current[key.strip().lower()] = value.strip()
    return stanzas


def machine_mirrors(etc_apt: Path = Path("/etc/apt")) -> tuple[str, str]:
    """(Debian mirror, Debian security mirror) this machine's apt uses; deb.debian.org when unknown."""
    mirror = security = ""
    deb822 = etc_apt / "sources.list.d" / "debian.sources"
    entries: list[tuple[str, list[str]]] = []
    if deb822.is_file():
        for st in parse_deb822_sources(deb822.read_text(encoding="utf-8")):
            for uri in st.get("uris", "").split():
                entries.append((uri, st.get("suites", "").split()))
    legacy = etc_apt / "sources.list"
    if legacy.is_file():
        for line in legacy.read_text(encoding="utf-8").splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                rest = [p for p in parts[1:] if not p.startswith("[")]
                if len(rest) >= 2:
                    entries.append((rest[0], [rest[1]]))
    for uri, suites in entries:
        if any(s.endswith("-security") for s in suites) or "security" in uri:
            security = security or uri
        else:
            mirror = mirror or uri
    mirror = (mirror or DEFAULT_MIRROR).rstrip("/")
    return mirror, (security or f"{mirror}-security").rstrip("/")


def host_apt_sources(mirror: str, security: str) -> str:
    return (
        "# the Debian mirror of the machine running the sandbox\n"
        f"Types: deb\nURIs: {mirror}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {SUITE}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def image_content_key(mirror: str, security: str) -> str:
    spec = {
        "suite": SUITE, "packages": PACKAGES, "masked": MASKED_UNITS, "sshd": SSHD_CONFIG,
        "mirror": mirror, "security": security, "revision": BUILD_REVISION,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _image_label(client, tag: str) -> str | None:
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return (image.labels or {}).get(CONTENT_LABEL)


def _customise_rootfs(root: Path, apt_sources: str) -> None:
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    systemd_dir = root / "etc/systemd/system"
    systemd_dir.mkdir(parents=True, exist_ok=True)
    for unit in MASKED_UNITS:
        link = systemd_dir / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config.d/50-llmrack-sandbox.conf").write_text(SSHD_CONFIG)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(apt_sources)
    (root / "etc/hostname").write_text("localhost\n")
    sudoers = root / "etc/sudoers.d/deploy"
    sudoers.write_text("deploy ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    done = subprocess.run(
        ["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", "deploy"],
        capture_output=True, text=True,
    )
    if done.returncode not in (0, 9):  # 9: the user exists
        raise SandboxError(f"cannot create the deploy user in the image: {done.stderr.strip()}")
    for home in (root / "root", root / "home/deploy"):
        (home / ".ssh").mkdir(mode=0o700, parents=True, exist_ok=True)
    subprocess.run(["chroot", str(root), "chown", "-R", "deploy:deploy", "/home/deploy/.ssh"], check=True)
    for cache in (root / "var/cache/apt/archives").glob("*.deb"):
        cache.unlink()


def build_host_image(force: bool = False, log: Log = print) -> str:
    """Build ``llmrack/sandbox-host:bookworm`` (skipped when the image with the same content exists)."""
    client = _docker_client(timeout=600)
    mirror, security = machine_mirrors()
    key = image_content_key(mirror, security)
    if not force and _image_label(client, IMAGE) == key:
        log(f"{IMAGE} is up to date ({key})")
        return IMAGE
    if os.geteuid() != 0:
        raise SandboxError("building the sandbox host image needs root (debootstrap)")
    if not shutil.which("debootstrap"):
        _apt_install(["debootstrap"], log)
    workdir = Path(tempfile.mkdtemp(prefix="llmrack-rootfs-", dir="/var/tmp"))
    root = workdir / "root"
    try:
        log(f"debootstrap {SUITE} from {mirror} (about a minute)")
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SandboxError(f"debootstrap failed: {(done.stdout + done.stderr).strip()[-800:]}")
        _customise_rootfs(root, host_apt_sources(mirror, security))
        log(f"importing the root filesystem as {ROOTFS_IMAGE}")
        tar = subprocess.Popen(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-c", "."],
                               stdout=subprocess.PIPE)
        imp = subprocess.run(["docker", "import", "-", ROOTFS_IMAGE], stdin=tar.stdout,
                             capture_output=True, text=True)
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imp.returncode != 0:
            raise SandboxError(f"docker import failed: {imp.stderr.strip()}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    dockerfile = (
        f"FROM {ROOTFS_IMAGE}\n"
        "STOPSIGNAL SIGRTMIN+3\n"
        'CMD ["/lib/systemd/systemd"]\n'
    )
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=IMAGE, pull=False, rm=True,
                        labels={CONTENT_LABEL: key})
    log(f"built {IMAGE} ({key})")
    return IMAGE


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


def _start_container(client, name: str, hostname: str, prefix: str, image: str):
    from docker.errors import APIError
    from docker.types import Mount

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
) -> SandboxState:
    """Start (or keep) ``n_hosts`` sandbox hosts and write the state file and ssh_config."""
    if n_hosts < 1:
        raise SandboxError("the sandbox needs at least one host", field="n_hosts")
    ensure_engine(log)
    image = build_host_image(log=log)
    client = _docker_client()
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    Path(_control_dir(state_dir)).mkdir(mode=0o700, parents=True, exist_ok=True)
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
            c = _start_container(client, cname, name, prefix, image)
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
        ssh_config=str(state_dir / SSH_CONFIG_FILE), hosts=hosts,
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
    client = _docker_client()
    for c in _prefixed_containers(client, prefix):
        log(f"removing {c.name}")
        c.remove(force=True)
        with contextlib.suppress(NotFound):
            client.volumes.get(f"{c.name}-docker").remove(force=True)
    state_dir = Path(state_dir)
    control = Path(_control_dir(state_dir))
    for name in (STATE_FILE, SSH_CONFIG_FILE, KEY_FILE, f"{KEY_FILE}.pub"):
        (state_dir / name).unlink(missing_ok=True)
    shutil.rmtree(control, ignore_errors=True)
    if state_dir.is_dir() and not any(state_dir.iterdir()):
        state_dir.rmdir()


def status(*, state_dir: Path = DEFAULT_STATE_DIR) -> list[HostStatus]:
    """The sandbox's hosts, their containers' state and whether SSH answers."""
    from docker.errors import NotFound

    state = SandboxState.load(state_dir)
    client = _docker_client()
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

