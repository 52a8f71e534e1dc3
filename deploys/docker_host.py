"""Base system and Docker engine only: `pyinfra inventories/<env>.py deploys/docker_host.py`."""

from pyinfra import host

from llmrack.config import deploy_specs
from roles.base import base
from roles.docker_engine import docker_engine

spec, specs = deploy_specs()
profile = spec.profile
base(profile.base, hostname=host.name, hosts={s.name: s.address for s in specs}, data_disk=spec.data_disk)
docker_engine(profile.docker, nvidia_runtime=profile.nvidia.enabled, compose_deb=profile.docker.compose_deb or None)
