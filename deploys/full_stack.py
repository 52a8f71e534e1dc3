"""Everything a host of the inventory runs: `pyinfra inventories/office.py deploys/full_stack.py`.

A bare GPU server in, a serving host out, in the one ordered list of stages of deploys/stages.py:

    preflight -> base -> NVIDIA driver -> reboot (when the kernel module changed; nvidia.reboot: auto|never)
    -> CUDA (optional) -> container toolkit -> Docker (nvidia runtime once its binary is installed)
    -> GPU container check -> hardening -> serving stack -> backup (restic, timer) -> monitoring

The GPU stages act only on GPU tiers. A host that fails preflight gets nothing; the other hosts go on. Each
stage takes its settings from the host's tier profile; bad input stops before any operation.
"""

from deploys.stages import FULL_STACK, run

run(FULL_STACK)
