"""Base system only: `pyinfra inventories/<env>.py deploys/base.py`."""

from pyinfra import host

from llmrack.config import deploy_specs
from roles.base import base

spec, specs = deploy_specs()
base(spec.profile.base, hostname=host.name, hosts={s.name: s.address for s in specs}, data_disk=spec.data_disk)
