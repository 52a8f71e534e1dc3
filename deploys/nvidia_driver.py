"""NVIDIA driver only: preflight, then the driver role (no CUDA, container toolkit or Docker).

    pyinfra inventories/office.py deploys/nvidia_driver.py

For a host whose Docker side is managed elsewhere, or to install and hold the driver ahead of the rest
(on Debian also on a host whose GPU is not fitted yet: the packages install and are held, no reboot).
"""

from pyinfra import host, logger

from llmrack.config import deploy_spec
from roles.nvidia_driver import nvidia_driver
from roles.preflight import preflight_host

spec = deploy_spec()
profile = spec.profile

problems = preflight_host(spec)
if not problems and profile.nvidia.enabled:
    nvidia_driver(profile.nvidia, apt_mirror=profile.base.apt.mirror)
elif not problems:
    logger.info(f"{host.print_prefix}tier {spec.tier!r} turns the NVIDIA stack off: nothing to do")
