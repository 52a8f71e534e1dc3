"""Everything a host of the inventory runs: `pyinfra inventories/office.py deploys/full_stack.py`.

A thin list of role calls; each role takes its settings from the host's tier profile.
"""

from pyinfra import host, inventory

from llmrack.config import spec_for_pyinfra_host
from roles.base import base
from roles.docker_engine import docker_engine

spec = spec_for_pyinfra_host(host)
profile = spec.profile

base(
    profile.base,
    hostname=host.name,
    hosts={h.name: spec_for_pyinfra_host(h).address for h in inventory},
    data_disk=spec.data_disk,
)
docker_engine(profile.docker, nvidia_runtime=profile.nvidia.enabled,
              compose_deb=profile.docker.compose_deb or None)
