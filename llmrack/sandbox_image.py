"""The sandbox's Docker engine and host image: Debian bookworm built locally (debootstrap -> ``docker import``).

The image is never pulled: its apt sources follow this machine's own Debian mirrors, and a content label (mirror,
packages, build revision) decides whether it must be rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmrack.errors import SandboxError

Log = Callable[[str], Any]

IMAGE = "llmrack/sandbox-host:bookworm"
ROOTFS_IMAGE = "llmrack/sandbox-host:bookworm-rootfs"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CONTENT_LABEL = "io.llmrack.sandbox.content"

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


# -------------------------------------------------------------------------------------------------- engine


def docker_client(timeout: int = 120):
    import docker

    return docker.from_env(timeout=timeout)


def engine_answers() -> bool:
    try:
        docker_client(timeout=5).ping()
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
    client = docker_client(timeout=600)
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
