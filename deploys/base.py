"""Base system only (the base stage of deploys/full_stack.py): `pyinfra inventories/<env>.py deploys/base.py`."""

from deploys.stages import cut, run

run(cut("base"))
