"""Base system only: `pyinfra inventories/<env>.py deploys/base.py`."""

from pyinfra import host, inventory

from llmrack.config import spec_for_pyinfra_host
from roles.base import base

spec = spec_for_pyinfra_host(host)
base(
    spec.profile.base,
    hostname=host.name,
    hosts={h.name: spec_for_pyinfra_host(h).address for h in inventory},
    data_disk=spec.data_disk,
)
