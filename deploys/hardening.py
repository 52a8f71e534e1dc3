"""Hardening only: `pyinfra inventories/<env>.py deploys/hardening.py`.

sshd, security-only unattended upgrades, login banner, core dumps off and (when the tier asks for it) the
input firewall, which opens the gateway's ports on gateway hosts.
"""

from llmrack.config import deploy_spec
from roles.hardening import gateway_ports, hardening

spec = deploy_spec()
hardening(spec.profile.hardening, open_ports=gateway_ports(spec))
