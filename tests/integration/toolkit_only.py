"""Deploy file of the sandbox tests: the container toolkit role alone (run only with --dry there: NVIDIA's
repository is not reachable from the sandbox, and a GPU-less host has nothing for the toolkit to serve)."""

from llmrack.deploy_input import deploy_spec
from roles.container_toolkit import container_toolkit

container_toolkit(deploy_spec().profile.nvidia.container_toolkit)
