"""Offline bundle: images, model weights and packages for a host that cannot download anything.

An image the engine lacks (by image id) is streamed from the bundle's tar through SSH into ``docker load``
(``llmrack.ssh_stream``: the tar's sha256 checked as it is sent, no copy staged on the host, the loaded id
compared with the bundle's); an image the engine holds costs one fact. The packages are uploaded file by file
(pyinfra skips a file whose checksum already matches) and their sha256 sums checked on the host after any
upload; the compose v2 .deb is installed when the plugin is missing; model files go straight into the models
directory that vLLM mounts, each skipped when its checksum matches, and checked against the bundle's sums.
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

from llmrack.errors import LlmrackError
from llmrack.facts.stack import DockerImageIds
from llmrack.manifest import deb_control, read_manifest
from llmrack.ops import put_text
from llmrack.progress import Progress
from llmrack.ssh_stream import stream_file


def sums_file(entries: dict[str, dict], rels: Sequence[str], *, strip: str = "") -> str:
    """``sha256sum -c`` input for the given bundle paths (``strip``: a prefix removed from each path)."""
    lines = []  # sha256sum -c takes no comment lines
    for rel in sorted(rels):
        lines.append(f"{entries[rel]['sha256']}  {rel.removeprefix(strip)}")
    return "\n".join(lines) + "\n"


def load_command(ref: str, image_id: str) -> str:
    """``docker load`` from standard input, then the loaded image's id compared with the bundle's (docker
    checks every layer against the image's config, and the id is that config's sha256)."""
    q_ref, q_id = shlex.quote(ref), shlex.quote(image_id)
    return (f"docker load --quiet && got=$(docker image inspect --format '{{{{.Id}}}}' {q_ref}) && "
            f"{{ [ \"$got\" = {q_id} ] || {{ printf 'image %s loaded as %s, the bundle says %s\\n' {q_ref} "
            f"\"$got\" {q_id}; exit 1; }}; }}")


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

    # ---- images the engine lacks: each tar streamed into `docker load` (no copy on the host), its id checked
    wanted = [img for img in manifest.get("images", {}).values() if images is None or img["ref"] in images]
    missing_refs = [r for r in (images or []) if r not in {i["ref"] for i in wanted}]
    if missing_refs:
        raise LlmrackError(f"the bundle has no image {missing_refs[0]} (rebuild it)", source=str(local))
    present = host.get_fact(DockerImageIds, refs=" ".join(img["ref"] for img in wanted)) if wanted else {}
    to_load = [img for img in wanted if present.get(img["ref"]) != img["id"]]
    progress = Progress("image load", sum(entries[img["file"]]["size"] for img in to_load), len(to_load))
    for img in to_load:
        entry = entries[img["file"]]
        stream_file(name=f"Load image {img['ref']} from the bundle (streamed)", src=str(local / img["file"]),
                    command=load_command(img["ref"], img["id"]), sha256=entry["sha256"],
                    done=progress.reporter(img["ref"], entry["size"]))

    # ---- packages: uploaded (pyinfra skips a file whose checksum matches), sums checked after an upload
    debs = list(manifest.get("debs", []))
    for rel in sorted({str(PurePosixPath(r).parent) for r in debs}):
        files.directory(name=f"Create {remote / rel}", path=str(remote / rel), mode="750")
    uploads = [files.put(name=f"Upload {rel}", src=str(local / rel), dest=str(remote / rel), mode="640")
               for rel in debs]
    if debs:
        put_text("Write the bundle's sha256 sums", sums_file(entries, debs), str(remote / "SHA256SUMS"),
                 mode="640")
        server.shell(
            name="Check the sha256 sums of the uploaded bundle",
            commands=[f"cd {shlex.quote(str(remote))} && sha256sum --quiet --strict --ignore-missing -c SHA256SUMS"],
            _if=any_changed(*uploads),
        )

    # ---- compose v2 plugin from the bundle when the host lacks that version (checked again when the install
    # runs: on a first converge the Docker engine role installs the same package a few operations earlier)
    installed = host.get_fact(DebPackages) or {}
    for rel in manifest.get("debs", []):
        control = deb_control(local / rel)
        package, version = control["Package"], control["Version"]
        if version not in (installed.get(package) or []):
            have = shlex.quote(f"install ok installed {version}")
            server.shell(name=f"Install {package} {version} from the bundle",
                         commands=[f"dpkg-query -W -f='${{Status}} ${{Version}}\\n' {shlex.quote(package)} 2>/dev/null"
                                   f" | grep -qx {have} || dpkg --force-confdef --force-confold -i "
                                   f"{shlex.quote(str(remote / rel))}"])

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


@deploy("Offline bundle: APT repository")
def bundle_apt_repo(bundle_dir: str | Path, *, remote_dir: str, codename: str) -> tuple[str, list]:
    """Upload the bundle's ``apt/<codename>`` repository (before any package is installed) and check its
    sums; returns the host's repository path and the operations whose change means it changed."""
    local = Path(bundle_dir)
    entries: dict[str, dict] = read_manifest(local)["files"]
    prefix = f"apt/{codename}/"
    rels = sorted(r for r in entries if r.startswith(prefix))
    if not rels:
        raise LlmrackError(f"the bundle has no APT repository for {codename} (rebuild it with "
                           f"`llmrack bundle build --release {codename}`)", source=str(local))
    remote = PurePosixPath(remote_dir)
    repo = remote / "apt" / codename
    # the bundle directory with the mode offline_bundle gives it (one owner of its mode, or runs would flip it)
    files.directory(name=f"Create {remote}", path=str(remote), mode="750")
    for d in (remote / "apt", repo):
        files.directory(name=f"Create {d}", path=str(d), mode="755")
    uploads = [files.put(name=f"Upload {rel}", src=str(local / rel), dest=str(remote / rel), mode="644")
               for rel in rels]
    sums = put_text(f"Write the sha256 sums of {prefix}", sums_file(entries, rels, strip=prefix),
                    str(repo / ".llmrack-sha256"), mode="644")
    check = server.shell(
        name=f"Check the sha256 sums of the uploaded {prefix}",
        commands=[f"cd {shlex.quote(str(repo))} && sha256sum --quiet --strict -c .llmrack-sha256"],
        _if=any_changed(*uploads, sums),
    )
    return str(repo), [*uploads, sums, check]
