"""Offline bundle: images, model weights and packages for a host that cannot download anything.

The bundle (``llmrack.bundle.build_bundle``) is uploaded file by file (pyinfra skips a file whose
checksum already matches), its sha256 sums are checked on the host after any upload, an image is
``docker load``-ed only when the engine lacks it (by image id), the compose v2 .deb is installed when the
plugin is missing, and model directories go straight into the models directory that vLLM mounts.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from llmrack.bundle import read_manifest
from llmrack.errors import LlmrackError
from llmrack.stack.facts import DockerImageIds
from roles.base import put_text
from roles.docker_engine import deb_control


def sums_file(entries: dict[str, dict], rels: Sequence[str], *, strip: str = "") -> str:
    """``sha256sum -c`` input for the given bundle paths (``strip``: a prefix removed from each path)."""
    lines = []  # sha256sum -c takes no comment lines
    for rel in sorted(rels):
        lines.append(f"{entries[rel]['sha256']}  {rel.removeprefix(strip)}")
    return "\n".join(lines) + "\n"


def bundle_model_files(manifest: dict, model_dir: str) -> dict[str, dict]:
    """Manifest entries of one model directory: ``{path relative to the model dir: entry}``."""
    prefix = f"models/{model_dir}/"
    return {rel.removeprefix(prefix): e for rel, e in manifest["files"].items() if rel.startswith(prefix)}


@deploy("Offline bundle")
def offline_bundle(
    bundle_dir: str | Path, *, remote_dir: str, models_dir: str, models: Sequence[str] = (),
    images: Sequence[str] | None = None,
) -> list:
    """Bring the host's images, models and packages up to the bundle's.

    ``models``: model directory names (``ModelSettings.dir_name``) to place under ``models_dir``;
    ``images``: image refs to load (default: every image of the bundle). Returns the operations whose
    change means the models on disk changed.
    """
    local = Path(bundle_dir)
    manifest = read_manifest(local)
    entries: dict[str, dict] = manifest["files"]
    remote = PurePosixPath(remote_dir)

    files.directory(name=f"Create {remote}", path=str(remote), mode="750")

    # ---- images: upload, check, load the ones the engine lacks
    wanted = [img for img in manifest.get("images", {}).values() if images is None or img["ref"] in images]
    missing_refs = [r for r in (images or []) if r not in {i["ref"] for i in wanted}]
    if missing_refs:
        raise LlmrackError(f"the bundle has no image {missing_refs[0]} (rebuild it)", source=str(local))
    # An image the engine already holds (same id) needs no upload: its tar is not hashed again on a no-op run.
    present = host.get_fact(DockerImageIds, refs=" ".join(img["ref"] for img in wanted)) if wanted else {}
    to_load = [img for img in wanted if present.get(img["ref"]) != img["id"]]
    uploads = []
    rels = [img["file"] for img in to_load] + list(manifest.get("debs", []))
    all_rels = [img["file"] for img in wanted] + list(manifest.get("debs", []))
    for rel in sorted({str(PurePosixPath(r).parent) for r in all_rels}):
        files.directory(name=f"Create {remote / rel}", path=str(remote / rel), mode="750")
    for rel in rels:
        uploads.append(files.put(name=f"Upload {rel}", src=str(local / rel), dest=str(remote / rel), mode="640"))
    if all_rels:
        put_text("Write the bundle's sha256 sums", sums_file(entries, all_rels), str(remote / "SHA256SUMS"),
                 mode="640")
        server.shell(
            name="Check the sha256 sums of the uploaded bundle",
            commands=[f"cd {shlex.quote(str(remote))} && sha256sum --quiet --strict --ignore-missing -c SHA256SUMS"],
            _if=any_changed(*uploads),
        )
    for img in to_load:
        server.shell(name=f"Load image {img['ref']}",
                     commands=[f"docker load --quiet -i {shlex.quote(str(remote / img['file']))}"])

    # ---- compose v2 plugin from the bundle when the host lacks that version
    installed = host.get_fact(DebPackages) or {}
    for rel in manifest.get("debs", []):
        control = deb_control(local / rel)
        if control["Version"] not in (installed.get(control["Package"]) or []):
            server.shell(name=f"Install {control['Package']} {control['Version']} from the bundle",
                         commands=[f"dpkg --force-confdef --force-confold -i {shlex.quote(str(remote / rel))}"])

    # ---- model weights straight into the models directory
    model_ops = []
    files.directory(name=f"Create {models_dir}", path=models_dir, mode="755")
    for name in models:
        model_files = bundle_model_files(manifest, name)
        if not model_files:
            raise LlmrackError(f"the bundle has no model {name!r} (models: {sorted(manifest.get('models', {}))})",
                               source=str(local))
        dest = PurePosixPath(models_dir, name)
        files.directory(name=f"Create {dest}", path=str(dest), mode="755")
        for sub in sorted({str(PurePosixPath(r).parent) for r in model_files} - {"."}):
            files.directory(name=f"Create {dest / sub}", path=str(dest / sub), mode="755")
        ops = [
            files.put(name=f"Upload model {name}/{rel}", src=str(local / "models" / name / rel), dest=str(dest / rel),
                      mode="644")
            for rel in sorted(model_files)
        ]
        sums = {f"models/{name}/{rel}": e for rel, e in model_files.items()}
        put_text(f"Write the sha256 sums of model {name}", sums_file(sums, list(sums), strip=f"models/{name}/"),
                 str(dest / ".llmrack-sha256"), mode="644")
        server.shell(
            name=f"Check the sha256 sums of model {name}",
            commands=[f"cd {shlex.quote(str(dest))} && sha256sum --quiet --strict -c .llmrack-sha256"],
            _if=any_changed(*ops),
        )
        model_ops += ops
    return model_ops
