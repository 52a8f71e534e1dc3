"""GPU host: preflight -> NVIDIA driver -> (CUDA) -> container toolkit -> Docker with the nvidia runtime -> check.

    pyinfra inventories/office.py deploys/gpu_host.py

The container toolkit is installed before docker_engine registers the nvidia runtime in daemon.json, so
dockerd finds nvidia-container-runtime the first time it starts with it. A host that fails preflight gets
no further operations (nothing on it is changed); the other hosts go on.
"""

from pyinfra import host, logger

from llmrack.config import deploy_spec
from roles.container_toolkit import container_toolkit, docker_gpu_check
from roles.cuda import cuda
from roles.docker_engine import docker_engine
from roles.nvidia_driver import nvidia_driver
from roles.preflight import preflight_host

spec = deploy_spec()
profile = spec.profile

problems = preflight_host(spec)
gpu_host = profile.nvidia.enabled and profile.hardware.gpu.count > 0

if not problems and gpu_host:
    plan = nvidia_driver(profile.nvidia, apt_mirror=profile.base.apt.mirror)
    if plan.action != "stop":
        cuda(profile.nvidia.cuda)
        changed = container_toolkit(profile.nvidia.container_toolkit)
        docker_engine(profile.docker, nvidia_runtime=True)  # the only writer of /etc/docker/daemon.json
        docker_gpu_check(profile.nvidia.container_toolkit, after=changed)
elif not problems:
    logger.info(f"{host.print_prefix}tier {spec.tier!r} has no GPUs: nothing for the GPU roles to do")
