"""Deploy file used on a GPU host by the gpu tests: the preflight role alone (no other operation)."""

from pyinfra import host

from llmrack.config import spec_for_pyinfra_host
from roles.preflight import preflight

spec = spec_for_pyinfra_host(host)
tp = max([m.tensor_parallel_size or 1 for m in spec.profile.stack.models] or [1])
preflight(spec.profile.hardware, spec.profile.nvidia, tier=spec.tier, planned_tp=tp)
