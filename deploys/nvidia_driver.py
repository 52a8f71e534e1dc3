"""NVIDIA driver only: preflight, then the driver and reboot stages of deploys/full_stack.py (no base, CUDA,
container toolkit or Docker).

    pyinfra inventories/office.py deploys/nvidia_driver.py

For a host whose Docker side is managed elsewhere, or to install and hold the driver ahead of the rest
(on Debian also on a host whose GPU is not fitted yet: the packages install and are held, no reboot).
"""

from deploys.stages import cut, run

run(cut("preflight", "reboot", skip=["base"]))
