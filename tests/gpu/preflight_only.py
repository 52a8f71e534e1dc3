"""Deploy file used on a GPU host by the gpu tests: the preflight role alone (no other operation)."""

from llmrack.deploy_input import deploy_spec
from roles.preflight import preflight_host

preflight_host(deploy_spec())
