"""The serving stack (the stack stage of deploys/full_stack.py): `pyinfra inventories/office.py deploys/stack.py`.

offline bundle -> LLM stack files -> gateway -> start/reload the stack, for hosts with the inference or
gateway role. Settings come from each host's tier profile; the gateway's upstreams from every inference
host of the inventory.
"""

from deploys.stages import cut, run

run(cut("stack"))
