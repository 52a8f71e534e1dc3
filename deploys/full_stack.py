"""Everything a host of the inventory runs: `pyinfra inventories/office.py deploys/full_stack.py`.

base -> docker engine -> hardening -> serving stack (offline bundle, vLLM, vector store, gateway)
-> monitoring. GPU hosts run deploys/gpu_host.py first (driver, container toolkit). A thin list of role
calls; each role takes its settings from the host's tier profile. Bad input stops before any operation.
"""

from pathlib import Path

from pyinfra import host, local

from llmrack.config import Inventory, deploy_specs, exit_on_bad_input, find_project_dir
from llmrack.monitoring.secrets import default_secrets_path, load_or_create_secrets
from roles.base import base
from roles.docker_engine import docker_engine
from roles.hardening import gateway_ports, hardening
from roles.monitoring import monitoring

spec, specs = deploy_specs()
profile = spec.profile
project = find_project_dir(Path.cwd())

base(profile.base, hostname=host.name, hosts={s.name: s.address for s in specs}, data_disk=spec.data_disk)
docker_engine(profile.docker, nvidia_runtime=profile.nvidia.enabled, compose_deb=profile.docker.compose_deb or None)
if profile.hardening.enabled:
    hardening(profile.hardening, open_ports=gateway_ports(spec))
local.include("deploys/stack.py")
if profile.monitoring.enabled:
    with exit_on_bad_input():
        monitoring_secrets = load_or_create_secrets(default_secrets_path(project))
    monitoring(
        profile.monitoring,
        inventory=Inventory(path="inventory", project_dir=str(project), hosts=specs),
        host=spec,
        secrets=monitoring_secrets,
    )
