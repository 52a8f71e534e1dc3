"""CUDA toolkit on the host (optional, off by default: the serving containers carry their own CUDA).

Pinned ``cuda-toolkit-X-Y`` from NVIDIA's CUDA apt repository (or its mirror), or the distro's
``nvidia-cuda-toolkit``. The repository key and list are written like any other apt source (signed-by).
"""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.server import OsRelease
from pyinfra.operations import apt, files

from llmrack import packages as pkg_lists
from llmrack.facts.drivers import NvidiaPackages
from llmrack.ops import put_text, render_template
from llmrack.settings.nvidia import CudaSettings

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
    return pkg_lists.cuda_packages(settings)


@deploy("CUDA toolkit")
def cuda(settings: CudaSettings, *, offline: bool = False) -> None:
    """``offline`` (``base.apt.offline``): the packages come from the bundle's repository; no key or list."""
    if not settings.enabled:
        return
    packages = cuda_packages(settings)
    installed = host.get_fact(NvidiaPackages)["installed"]
    if all(p in installed for p in packages):
        return
    if settings.source == "nvidia" and not offline:
        distro = cuda_repo_distro(host.get_fact(OsRelease) or {})
        base = (settings.apt_mirror or CUDA_REPOS).rstrip("/")
        repo_url = f"{base}/{distro}/x86_64/"
        files.directory(name="Create /etc/apt/keyrings", path="/etc/apt/keyrings", mode="755")
        key = files.download(name=f"Download the CUDA repository key to {KEYRING}", src=repo_url + CUDA_KEY,
                             dest=KEYRING, mode="644")
        repo = put_text(
            "Write /etc/apt/sources.list.d/llmrack-cuda.list",
            render_template("cuda", "/etc/apt/sources.list.d/llmrack-cuda.list", keyring=KEYRING, repo_url=repo_url),
            "/etc/apt/sources.list.d/llmrack-cuda.list", mode="644",
        )
        apt.update(name="Update apt lists (CUDA repository)", _if=lambda: key.did_change() or repo.did_change())
    logger.info(f"{host.print_prefix}cuda: installing {', '.join(packages)}")
    apt.packages(name=f"Install the CUDA toolkit {settings.version}", packages=packages, no_recommends=True)
