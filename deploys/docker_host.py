"""Base system and Docker engine only: `pyinfra inventories/<env>.py deploys/docker_host.py`."""

from pyinfra import host, inventory

from llmrack.config import deploy_spec, spec_for_pyinfra_host
from roles.base import base
from roles.docker_engine import docker_engine

spec = deploy_spec()
profile = spec.profile
base(
    profile.base,
    hostname=host.name,
    hosts={h.name: spec_for_pyinfra_host(h).address for h in inventory},
    data_disk=spec.data_disk,
)
docker_engine(profile.docker, nvidia_runtime=profile.nvidia.enabled, compose_deb=profile.docker.compose_deb or None)
