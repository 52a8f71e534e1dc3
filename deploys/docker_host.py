"""Base system and Docker engine only (the base and docker stages of deploys/full_stack.py):
`pyinfra inventories/<env>.py deploys/docker_host.py`. On a GPU tier the nvidia runtime stays registered
when its binary is on the host."""

from deploys.stages import cut, run

run([*cut("base"), *cut("docker")])
