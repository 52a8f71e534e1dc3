"""GPU host: preflight -> base -> NVIDIA driver -> reboot -> (CUDA) -> container toolkit -> Docker with the nvidia
runtime -> GPU container check, the first stages of deploys/full_stack.py.

    pyinfra inventories/office.py deploys/gpu_host.py

The container toolkit is installed before the Docker stage registers the nvidia runtime in daemon.json, so
dockerd finds nvidia-container-runtime the first time it starts with it. A host that fails preflight gets
no further operations (nothing on it is changed); the other hosts go on.
"""

from deploys.stages import cut, run

run(cut("preflight", "gpu_check"))
