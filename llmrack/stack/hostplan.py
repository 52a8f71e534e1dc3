"""Everything the stack roles need for one host, computed on the admin machine without touching a host.

Used by ``deploys/stack.py`` and by the CLI/tests: plans (planner), the compose model, the gateway's render
context (upstreams from every inference host of the inventory; the key map's retired keys still in their grace
period, :mod:`llmrack.retired_keys`) and the host's secrets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmrack.config import HostSpec
from llmrack.errors import LlmrackError
from llmrack.manifest import read_manifest
from llmrack.retired_keys import gateway_retired_keys
from llmrack.settings.stack import ModelSettings, StackSettings
from llmrack.stack import compose as c
from llmrack.stack import nginx as n
from llmrack.stack import secrets as sec
from llmrack.stack import served


@dataclass(frozen=True)
class HostStack:
    spec: HostSpec
    inference: bool
    gateway: bool
    bundle_dir: Path | None
    plans: list[c.ServedModelPlan]
    compose: c.ComposeFile
    context: n.GatewayContext | None
    secrets: sec.StackSecrets
    local_model_paths: dict[str, str]

    @property
    def stack(self) -> StackSettings:
        return self.spec.profile.stack


def resolve_path(project_dir: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_dir / p


def model_config_path(m: ModelSettings, stack: StackSettings, project_dir: Path) -> Path | None:
    """Where the planner reads a local/bundle model's config.json on the admin machine."""
    if m.source == "local":
        return resolve_path(project_dir, m.path)
    if m.source == "bundle":
        if m.path:
            return resolve_path(project_dir, m.path)
        return resolve_path(project_dir, stack.bundle.path) / "models" / m.dir_name
    return None


def model_content_id(m: ModelSettings, stack: StackSettings, project_dir: Path) -> str:
    """Changes when the weights the host should serve change (bundle sums, local file sizes/times, revision)."""
    if m.source == "bundle":
        manifest = read_manifest(resolve_path(project_dir, stack.bundle.path))
        prefix = f"models/{m.dir_name}/"
        found = [(rel, e["sha256"]) for rel, e in manifest["files"].items() if rel.startswith(prefix)]
        if not found:
            raise LlmrackError(f"the offline bundle has no model {m.dir_name!r}", field="stack.models")
        return served.content_id_of_files(found)
    if m.source == "local":
        root = resolve_path(project_dir, m.path)
        if not root.is_dir():
            raise LlmrackError(f"model directory {root} does not exist", field="stack.models.path")
        h = hashlib.sha256()
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(root)}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
        return h.hexdigest()[:16]
    return m.revision


def host_stack(
    spec: HostSpec, inventory: Sequence[HostSpec], project_dir: Path, *,
    plans: list[c.ServedModelPlan] | None = None,
) -> HostStack:
    """The stack of ``spec`` within ``inventory`` (plans from the planner unless given)."""
    stack = spec.profile.stack
    inference, gateway = spec.has_role("inference"), spec.has_role("gateway")
    gpu = spec.profile.hardware.gpu
    if plans is None and inference:
        plans = served.plan_models(
            stack, gpu_count=gpu.count, gpu_mem_gib=gpu.memory_gib, gpu_name=gpu.model,
            config_paths={m.name: p for m in stack.models if (p := model_config_path(m, stack, project_dir))},
            content_ids={m.name: model_content_id(m, stack, project_dir) for m in stack.models},
        )
    plans = plans or []
    compose = c.build_compose(stack, plans=plans, gpu_count=gpu.count, inference=inference, gateway=gateway,
                              publish_address=spec.address)
    routes = None
    if gateway:
        backends = [(h.address, h.profile.stack, h.name == spec.name) for h in inventory if h.has_role("inference")]
        lens = {p.model.public_name: p.max_model_len for p in plans if p.max_model_len}
        routes = n.model_routes(stack, backends, lens)
    secrets = sec.stack_secrets(project_dir, spec.name, stack.gateway.api_clients)
    context = None
    if routes is not None:
        context = n.gateway_context(stack, routes, server_name=stack.gateway.tls.common_name or "_",
                                    address=spec.address,
                                    retired_api_keys=gateway_retired_keys(project_dir, spec.name, secrets.api_keys))
    bundle = resolve_path(project_dir, stack.bundle.path) if stack.image_source == "bundle" or any(
        m.source == "bundle" for m in stack.models) else None
    local_paths = {m.name: str(resolve_path(project_dir, m.path)) for m in stack.models if m.source == "local"}
    return HostStack(spec=spec, inference=inference, gateway=gateway, bundle_dir=bundle, plans=plans,
                     compose=compose, context=context, secrets=secrets, local_model_paths=local_paths)


def bundle_images(hs: HostStack) -> list[str]:
    """Image refs this host's compose project runs (the ones to load from the bundle)."""
    return sorted({svc.image for svc in hs.compose.services.values()})
