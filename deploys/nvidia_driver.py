"""NVIDIA driver only: preflight, then the driver role (no CUDA, container toolkit or Docker).

    pyinfra inventories/office.py deploys/nvidia_driver.py

For a host whose Docker side is managed elsewhere, or to install and hold the driver ahead of the rest
(on Debian also on a host whose GPU is not fitted yet: the packages install and are held, no reboot).
"""

from pyinfra import host, logger

from llmrack.config import deploy_spec
from roles.nvidia_driver import nvidia_driver
from roles.preflight import preflight

spec = deploy_spec()
profile = spec.profile
data_path = spec.data_disk.mount if spec.data_disk else "/"
planned_tp = max([m.tensor_parallel_size or 1 for m in profile.stack.models] or [1])

problems = preflight(profile.hardware, profile.nvidia, tier=spec.tier, planned_tp=planned_tp, data_path=data_path)
if not problems and profile.nvidia.enabled:
    nvidia_driver(profile.nvidia, apt_mirror=profile.base.apt.mirror)
elif not problems:
    logger.info(f"{host.print_prefix}tier {spec.tier!r} turns the NVIDIA stack off: nothing to do")
