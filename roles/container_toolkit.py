"""NVIDIA Container Toolkit: NVIDIA's apt repository (or its mirror) with a signed-by key, a pinned version,
held; the CDI spec; and a final ``docker run --gpus all`` check.

The nvidia runtime is registered in /etc/docker/daemon.json by the docker_engine role only
(``docker_engine(settings, nvidia_runtime=True)``); this role never writes daemon.json. Order in a deploy:
``container_toolkit`` (packages + CDI), then ``docker_engine(..., nvidia_runtime=True)``, then
``docker_gpu_check`` — dockerd must find nvidia-container-runtime when it starts with the new daemon.json.
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import apt, files, server

from llmrack import packages as pkg_lists
from llmrack.facts.drivers import CdiSpec, ContainerToolkitVersion, NvidiaPackages
from llmrack.facts.gpu import NvidiaGpus
from llmrack.ops import put_text, render_template
from llmrack.settings.nvidia import ContainerToolkitSettings

UPSTREAM = "https://nvidia.github.io/libnvidia-container"
KEYRING = "/etc/apt/keyrings/nvidia-container-toolkit.asc"
LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
CDI_SPEC = "/etc/cdi/nvidia.yaml"
PACKAGES = tuple(pkg_lists.toolkit_packages())


def toolkit_packages(version: str) -> list[str]:
    """Pinned package list (NVIDIA's packages are versioned '<version>-1')."""
    v = version if "-" in version else f"{version}-1"
    return [f"{name}={v}" for name in PACKAGES]


def cdi_needs_generate(cdi: dict, driver_version: str | None) -> bool:
    """A missing spec, or one made for another driver version, must be (re)generated."""
    if not cdi.get("exists"):
        return True
    return bool(driver_version and cdi.get("driver_version") and cdi["driver_version"] != driver_version)


@deploy("NVIDIA container toolkit")
def container_toolkit(settings: ContainerToolkitSettings, *, offline: bool = False) -> list[OperationMeta]:
    """Install the pinned toolkit and generate the CDI spec; return the operations that may change the host.

    ``offline`` (``base.apt.offline``): the packages come from the bundle's repository; no key or list."""
    changed: list[OperationMeta] = []
    installed_version = host.get_fact(ContainerToolkitVersion)
    if offline:
        key = repo = files.directory(name="Create /etc/apt/keyrings", path="/etc/apt/keyrings", mode="755")
    else:
        base = (settings.apt_mirror or UPSTREAM).rstrip("/")
        files.directory(name="Create /etc/apt/keyrings", path="/etc/apt/keyrings", mode="755")
        key = files.download(name=f"Download the NVIDIA container toolkit key to {KEYRING}", src=f"{base}/gpgkey",
                             dest=KEYRING, mode="644")
        repo = put_text(
            f"Write {LIST}", render_template("container_toolkit", LIST, keyring=KEYRING, base_url=base), LIST,
            mode="644",
        )
    changed += [key, repo]
    if installed_version != settings.version.split("-")[0]:
        logger.info(f"{host.print_prefix}container toolkit: {installed_version or 'none'} -> {settings.version}")
        apt.update(name="Update apt lists (NVIDIA container toolkit repository)",
                   _if=lambda: key.did_change() or repo.did_change())
        changed.append(apt.packages(
            name=f"Install the NVIDIA container toolkit {settings.version}",
            packages=toolkit_packages(settings.version), allow_downgrades=True,
        ))
    held = set(host.get_fact(NvidiaPackages)["held"])
    to_hold = [p for p in PACKAGES if p not in held]
    if to_hold:
        server.shell(name="Hold the NVIDIA container toolkit packages", commands=[f"apt-mark hold {' '.join(to_hold)}"])

    driver = host.get_fact(NvidiaGpus)["driver_version"]
    generate = cdi_needs_generate(host.get_fact(CdiSpec, path=CDI_SPEC), driver)
    cdi_if: Callable[[], bool] | None = None if generate else (
        (lambda: any(op.did_change() for op in changed[2:])) if len(changed) > 2 else None)
    if generate or cdi_if:
        files.directory(name="Create /etc/cdi", path="/etc/cdi", mode="755")
        changed.append(server.shell(
            name=f"Generate the CDI spec {CDI_SPEC}",
            commands=[f"nvidia-ctk cdi generate --output={CDI_SPEC}"],
            _if=cdi_if,
        ))
    return changed


@deploy("Check GPUs in containers")
def docker_gpu_check(settings: ContainerToolkitSettings, *, after: list[OperationMeta] | None = None) -> None:
    """Run ``nvidia-smi -L`` in a container with ``--gpus all`` (only where a GPU exists).

    With ``after``, the check runs only when one of those operations changed the host, so a converged host
    sees no change on a second run (the acceptance suite checks containers on every run).
    """
    if not settings.check_image:
        return
    if not host.get_fact(NvidiaGpus)["count"]:
        logger.info(f"{host.print_prefix}container toolkit: no GPU, container GPU check skipped")
        return
    ops = list(after or [])
    server.shell(
        name="Check that a container sees the GPUs (docker run --gpus all ... nvidia-smi -L)",
        commands=[f"docker run --rm --gpus all {settings.check_image} nvidia-smi -L"],
        _if=(lambda: any(op.did_change() for op in ops)) if ops else None,
    )
