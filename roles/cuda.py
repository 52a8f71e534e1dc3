"""CUDA toolkit on the host (optional, off by default: the serving containers carry their own CUDA).

Pinned ``cuda-toolkit-X-Y`` from NVIDIA's CUDA apt repository (or its mirror), or the distro's
``nvidia-cuda-toolkit``. The repository key and list are written like any other apt source (signed-by).
"""

from __future__ import annotations

from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.server import OsRelease
from pyinfra.operations import apt, files

from llmrack.facts import NvidiaPackages
from llmrack.settings.nvidia import CudaSettings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CUDA_REPOS = "https://developer.download.nvidia.com/compute/cuda/repos"
CUDA_KEY = "3bf863cc.pub"  # NVIDIA's CUDA repository signing key (ASCII armoured)
KEYRING = "/etc/apt/keyrings/llmrack-cuda.asc"


def cuda_repo_distro(os_release: dict) -> str | None:
    """'ubuntu2404' / 'debian12' as NVIDIA names its repositories."""
    distro_id, version = os_release.get("id", ""), os_release.get("version_id", "")
    if distro_id in ("ubuntu", "debian") and version:
        return f"{distro_id}{version.replace('.', '')}"
    return None


def cuda_packages(settings: CudaSettings) -> list[str]:
    if settings.source == "distro":
        return ["nvidia-cuda-toolkit"]
    return [f"cuda-toolkit-{settings.version.replace('.', '-')}"]


@deploy("CUDA toolkit")
def cuda(settings: CudaSettings) -> None:
    if not settings.enabled:
        return
    packages = cuda_packages(settings)
    installed = host.get_fact(NvidiaPackages)["installed"]
    if all(p in installed for p in packages):
        return
    if settings.source == "nvidia":
        distro = cuda_repo_distro(host.get_fact(OsRelease) or {})
        base = (settings.apt_mirror or CUDA_REPOS).rstrip("/")
        repo_url = f"{base}/{distro}/x86_64/"
        files.directory(name="Create /etc/apt/keyrings", path="/etc/apt/keyrings", mode="755")
        key = files.download(name=f"Download the CUDA repository key to {KEYRING}", src=repo_url + CUDA_KEY,
                             dest=KEYRING, mode="644")
        repo = files.template(
            name="Write /etc/apt/sources.list.d/llmrack-cuda.list",
            src=str(TEMPLATES / "cuda/etc/apt/sources.list.d/llmrack-cuda.list.j2"),
            dest="/etc/apt/sources.list.d/llmrack-cuda.list", mode="644", keyring=KEYRING, repo_url=repo_url,
        )
        apt.update(name="Update apt lists (CUDA repository)", _if=lambda: key.did_change() or repo.did_change())
    logger.info(f"{host.print_prefix}cuda: installing {', '.join(packages)}")
    apt.packages(name=f"Install the CUDA toolkit {settings.version}", packages=packages, no_recommends=True)
