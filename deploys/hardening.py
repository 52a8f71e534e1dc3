"""Hardening only (the hardening stage of deploys/full_stack.py): `pyinfra inventories/<env>.py deploys/hardening.py`.

sshd, security-only unattended upgrades, login banner, core dumps off and (when the tier asks for it) the
input firewall, which opens the gateway's ports on gateway hosts.
"""

from deploys.stages import cut, run

run(cut("hardening"))
