"""The serving stack: `pyinfra inventories/office.py deploys/stack.py`.

offline bundle -> LLM stack files -> gateway -> start/reload the stack, for hosts with the inference or
gateway role. Settings come from each host's tier profile; the gateway's upstreams from every inference
host of the inventory.
"""

from pathlib import Path

from llmrack.bundle import tier_images
from llmrack.config import deploy_specs, exit_on_bad_input, find_project_dir
from llmrack.stack.hostplan import bundle_images, host_stack
from roles.gateway import gateway
from roles.llm_stack import activate_stack, llm_stack
from roles.offline_bundle import offline_bundle

spec, specs = deploy_specs()
if spec.has_role("inference") or spec.has_role("gateway"):
    with exit_on_bad_input():
        hs = host_stack(spec, specs, find_project_dir(Path.cwd()))
    stack = hs.stack
    changes = []
    if hs.bundle_dir is not None:
        changes += offline_bundle(
            hs.bundle_dir, remote_dir=stack.bundle.remote_dir, models_dir=stack.models_dir,
            models=[m.dir_name for m in stack.models if m.source == "bundle"] if hs.inference else [],
            images=sorted({*bundle_images(hs), *tier_images(spec.profile)}) if stack.image_source == "bundle" else [],
        )
    changes += llm_stack(stack, compose=hs.compose, secrets=hs.secrets, inference=hs.inference,
                         gateway=hs.gateway, local_model_paths=hs.local_model_paths)
    if hs.gateway and hs.context is not None:
        gateway(stack, context=hs.context, secrets=hs.secrets, address=spec.address)
    activate_stack(changes)
