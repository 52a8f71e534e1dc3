"""Offline bundle: everything a host with no internet needs, in one directory with a checked manifest.

Layout::

    <bundle>/manifest.json          sorted keys: format, files (sha256 + size), images, models, debs
    <bundle>/images/<name>.tar      ``docker save`` of each image (``docker load -i`` on the host)
    <bundle>/models/<name>/...      model directories (mounted into vLLM as /models/<name>)
    <bundle>/debs/*.deb             packages the hosts install (e.g. docker compose v2)

Building is incremental: an image is saved again only when its image id differs from the manifest's, and
a file is copied again only when its size or modification time differs from the copy's. Files under
images/, models/ and debs/ that the new manifest does not name are removed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

from llmrack import __version__
from llmrack.errors import LlmrackError
from llmrack.images import IMAGES
from llmrack.manifest import FORMAT_VERSION, MANIFEST, read_manifest, sha256_file

MANAGED_DIRS = ("images", "models", "debs", "apt")
CHUNK = 1 << 20

Log = Callable[[str], object]


def _write_manifest(bundle: Path, manifest: dict) -> None:
    text = json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    path = bundle / MANIFEST
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _image_file_name(image: str) -> str:
    """Short names stay as they are; refs like ``repo/x:tag`` become ``repo_x_tag``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", image)


def _resolve_image(image: str) -> str:
    return IMAGES[image].ref if image in IMAGES else image


def _docker_image(ref: str) -> tuple[str, list[str]] | None:
    """(id, repo tags) of a local image, or None."""
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .}}", ref], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return None
    info = json.loads(proc.stdout)
    return info["Id"], sorted(info.get("RepoTags") or [])


def _docker_save(ref: str, dest: Path) -> dict:
    """``docker save`` into ``dest``, hashed as it is written (one pass); returns its manifest entry."""
    tmp = dest.with_name(dest.name + ".partial")
    h, size = hashlib.sha256(), 0
    with tmp.open("wb") as out, subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        while chunk := proc.stdout.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
            size += len(chunk)
        err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise LlmrackError(f"docker save {ref} failed: {err.strip()}")
    tmp.replace(dest)
    return {"sha256": h.hexdigest(), "size": size}


def _unchanged_copy(src: Path, dest: Path) -> bool:
    if not dest.is_file():
        return False
    s, d = src.stat(), dest.stat()
    return s.st_size == d.st_size and s.st_mtime_ns == d.st_mtime_ns


def _copy_file(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.copy2(src, tmp)
    tmp.replace(dest)


def _safe_name(name: str, what: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise LlmrackError(f"{what} name {name!r} must be letters, digits, '.', '_' or '-'", field=what)
    return name


SavedImage = tuple[str, dict, dict]  # (path in the bundle, its file entry, its manifest image entry)


def previous_manifest(out: Path) -> dict:
    """The bundle's manifest as it is on disk (empty when there is none yet): what an incremental build reuses."""
    try:
        return read_manifest(Path(out))
    except LlmrackError:
        return {"files": {}, "images": {}}


def save_image(out: Path, image: str, old: dict, *, log: Log = print) -> SavedImage:
    """One image's tar in the bundle ``out``: ``docker save``-d unless ``old`` (the previous manifest) already
    has this image id in a file of the recorded size."""
    name = _image_file_name(image)
    ref = _resolve_image(image)
    found = _docker_image(ref)
    if found is None:
        raise LlmrackError(f"image {ref} is not in the local Docker engine; build it first", field="images")
    iid, tags = found
    rel = f"images/{name}.tar"
    dest = Path(out) / rel
    prev = old.get("images", {}).get(name, {})
    prev_file = old.get("files", {}).get(rel)
    if prev.get("id") == iid and prev_file and dest.is_file() and dest.stat().st_size == prev_file.get("size"):
        log(f"{rel}: unchanged ({iid[:19]})")
        entry = prev_file
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        t = time.monotonic()
        entry = _docker_save(ref, dest)
        log(f"{rel}: saved {entry['size'] / 2**20:.0f} MiB in {time.monotonic() - t:.1f} s")
    return rel, entry, {"file": rel, "id": iid, "ref": ref, "tags": tags}


def build_bundle(
    out_dir: Path,
    *,
    images: list[str],
    model_dirs: dict[str, Path],
    debs: Iterable[Path] = (),
    apt: dict | None = None,
    saved: Mapping[str, SavedImage] | None = None,
    log: Log = print,
) -> dict:
    """Write (or bring up to date) an offline bundle in ``out_dir``; returns the manifest.

    ``apt``: ``{codename: section}`` of the local APT repositories already written under ``out_dir/apt``
    (``llmrack.bundle_apt.build_apt_repo``); their files join the manifest's sums.

    ``images`` are short names from :data:`llmrack.images.IMAGES` or image refs (they must exist in the
    local engine: build them first); ``model_dirs`` maps a served model name to its directory. ``saved``: what
    :func:`save_image` returned for images saved already (as each was built), by the name given in ``images``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    old = previous_manifest(out)
    old_files: dict = old.get("files", {})
    files: dict[str, dict] = {}
    manifest_images: dict[str, dict] = {}
    t0 = time.monotonic()

    for image in images:
        name = _image_file_name(image)
        rel, entry, manifest_images[name] = (saved or {}).get(image) or save_image(out, image, old, log=log)
        files[rel] = entry
    manifest_models: dict[str, dict] = {}
    for model, src_dir in sorted(model_dirs.items()):
        _safe_name(model, "model")
        src_dir = Path(src_dir)
        if not src_dir.is_dir():
            raise LlmrackError(f"model directory {src_dir} does not exist", field=f"models.{model}")
        count = 0
        for src in sorted(p for p in src_dir.rglob("*") if p.is_file()):
            rel = f"models/{model}/{src.relative_to(src_dir).as_posix()}"
            files[rel] = _place(src, out / rel, old_files.get(rel))
            count += 1
        if count == 0:
            raise LlmrackError(f"model directory {src_dir} is empty", field=f"models.{model}")
        manifest_models[model] = {"dir": f"models/{model}", "files": count}

    manifest_debs: list[str] = []
    for deb in debs:
        deb = Path(deb)
        if not deb.is_file() or deb.suffix != ".deb":
            raise LlmrackError(f"{deb} is not a .deb file", field="debs")
        rel = f"debs/{_safe_name(deb.name, 'deb')}"
        files[rel] = _place(deb, out / rel, old_files.get(rel))
        manifest_debs.append(rel)

    for codename in sorted(apt or {}):
        for path in sorted((out / "apt" / codename).iterdir()):
            rel = f"apt/{codename}/{path.name}"
            files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}

    _prune(out, set(files))
    manifest = {
        "apt": apt or {},
        "debs": sorted(manifest_debs),
        "files": files,
        "format": FORMAT_VERSION,
        "images": manifest_images,
        "models": manifest_models,
        "tool": f"llmrack {__version__}",
    }
    _write_manifest(out, manifest)
    total = sum(f["size"] for f in files.values())
    log(f"bundle {out}: {len(files)} files, {total / 2**20:.0f} MiB, {time.monotonic() - t0:.1f} s")
    return manifest


def _place(src: Path, dest: Path, prev: dict | None) -> dict:
    """Copy ``src`` to ``dest`` unless the copy is already there; returns its manifest entry."""
    if prev and _unchanged_copy(src, dest) and prev.get("size") == dest.stat().st_size:
        return prev
    _copy_file(src, dest)
    return {"sha256": sha256_file(dest), "size": dest.stat().st_size}


def _prune(out: Path, keep: set[str]) -> None:
    for sub in MANAGED_DIRS:
        root = out / sub
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*"), reverse=True):
            rel = path.relative_to(out).as_posix()
            if path.is_file() or path.is_symlink():
                if rel not in keep:
                    path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def _bad_path(rel: str) -> bool:
    p = PurePosixPath(rel)
    return p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] not in MANAGED_DIRS


def verify_bundle(dir: Path, *, check_hashes: bool = True) -> list[str]:  # noqa: A002 - public name
    """Problems found in a bundle (empty list: every file is present with its size and sha256)."""
    bundle = Path(dir)
    try:
        manifest = read_manifest(bundle)
    except LlmrackError as exc:
        return [str(exc)]
    problems: list[str] = []
    if manifest.get("format") != FORMAT_VERSION:
        problems.append(f"manifest format {manifest.get('format')!r} is not the supported {FORMAT_VERSION}")
    files: dict = manifest["files"]
    for rel, entry in sorted(files.items()):
        if _bad_path(rel):
            problems.append(f"{rel}: path outside images/, models/, debs/")
            continue
        path = bundle / rel
        if not isinstance(entry, dict) or "sha256" not in entry or "size" not in entry:
            problems.append(f"{rel}: manifest entry lacks sha256/size")
        elif not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry["size"]:
            problems.append(f"{rel}: size {path.stat().st_size} != {entry['size']} in the manifest")
        elif check_hashes and sha256_file(path) != entry["sha256"]:
            problems.append(f"{rel}: sha256 differs from the manifest (file changed or corrupt)")
    for name, image in sorted(manifest.get("images", {}).items()):
        if image.get("file") not in files:
            problems.append(f"image {name}: its file {image.get('file')!r} is not in the manifest")
        if not str(image.get("id", "")).startswith("sha256:"):
            problems.append(f"image {name}: no image id")
    for deb in manifest.get("debs", []):
        if deb not in files:
            problems.append(f"{deb}: listed in debs but not in files")
    for sub in MANAGED_DIRS:
        root = bundle / sub
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                rel = path.relative_to(bundle).as_posix()
                if rel not in files:
                    problems.append(f"{rel}: not in the manifest")
    return problems
