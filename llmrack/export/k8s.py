"""The same service for an existing Kubernetes cluster: Helm values and manifests from a tier or an inventory.

What comes out (one directory, every file YAML except the README):

* ``vllm-stack-values.yaml``: values of the vLLM production-stack chart (``vllm-stack``): one ``modelSpec`` per
  served model with the planner's tensor parallelism, context length and GPU memory utilisation, resources from
  the tier's hardware, and the API key as a reference to a Secret the user creates (never a value).
* ``gpu-operator-values.yaml`` (GPU tiers): NVIDIA GPU Operator values: driver branch, container toolkit, DCGM
  exporter with its ServiceMonitor.
* ``keda-scaledobjects.yaml``: one KEDA ScaledObject per model, scaling the chart's Deployment on
  ``vllm:num_requests_waiting`` at the tier's own alert threshold.
* ``vector-store.yaml``: Qdrant or PostgreSQL + pgvector as a StatefulSet and Service (secrets by reference).
* ``prometheus-rules.yaml`` / ``grafana-dashboards.yaml``: the alert rules and dashboards llmrack installs on
  hosts, as a PrometheusRule and ConfigMaps for the Grafana sidecar (label ``grafana_dashboard``).

Replicas: with an inventory, a model served by N inference hosts gets N replicas (the KEDA minimum).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmrack import planner
from llmrack.config import HostSpec, Inventory, TierProfile
from llmrack.errors import LlmrackError
from llmrack.export.manifests import dashboard_configmaps, namespace, prometheus_rule, scaled_objects, vector_store
from llmrack.export.options import (
    _DNS_LABEL,
    API_KEY_SECRET,
    HEADER,
    K8S_VERSION,
    PGVECTOR_SECRET,
    QDRANT_SECRET,
    ExportOptions,
    Served,
    k8s_name,
)
from llmrack.export.readme import readme
from llmrack.models import model_spec_for, plan_for
from llmrack.settings.stack import ModelSettings
from llmrack.stack.compose import image_name

# planner flag -> vllm-stack vllmConfig key (the chart writes these flags itself)
_VLLM_CONFIG = {
    "--tensor-parallel-size": ("tensorParallelSize", int),
    "--max-model-len": ("maxModelLen", int),
    "--gpu-memory-utilization": ("gpuMemoryUtilization", float),
    "--max-num-seqs": ("maxNumSeqs", int),
    "--dtype": ("dtype", str),
}
_SWITCHES = {"--enable-prefix-caching": "enablePrefixCaching", "--enable-chunked-prefill": "enableChunkedPrefill"}



def served_models(hosts: list[HostSpec] | None, profile: TierProfile | None, *, source: str,
                  project_dir: Path, opts: ExportOptions) -> list[Served]:
    """Every served model once, planned on its tier's GPUs; a model that does not fit is bad input."""
    entries: list[tuple[TierProfile, ModelSettings, str]] = []
    if hosts is not None:
        for host in hosts:
            if "inference" in host.roles:
                entries += [(host.profile, m, f"{host.name}.stack.models.{i}")
                            for i, m in enumerate(host.profile.stack.models)]
        if not entries:
            raise LlmrackError("no host has the inference role", source=source, field="roles")
    else:
        assert profile is not None
        entries = [(profile, m, f"stack.models.{i}") for i, m in enumerate(profile.stack.models)]
    room = len(opts.release) + len("--deployment-vllm")  # the chart's Deployment name must stay a DNS label
    out: dict[str, Served] = {}
    for prof, model, field in entries:
        name = k8s_name(model.public_name, source=source, field=f"{field}.served_name", room=room)
        if name in out:
            first = out[name]
            if first.model != model:
                raise LlmrackError(f"served name {model.public_name!r} is configured differently on two hosts",
                                   source=source, field=field)
            out[name] = Served(first.model, first.plan, first.profile, first.replicas + 1, name, first.weight_bytes)
            continue
        plan = plan_for(prof, model, project_dir=project_dir, source=source)
        try:
            plan.require_fit()
        except LlmrackError as exc:
            exc.field = field
            raise
        spec = model_spec_for(model, project_dir=project_dir, source=source)
        weights = planner.weight_bytes(spec, model.quantization if prof.hardware.gpu.count else spec.dtype)
        out[name] = Served(model, plan, prof, 1, name, weights)
    return list(out.values())


# ---------------------------------------------------------------------------------------------- vllm-stack


def _quantity_gi(n_gib: float) -> str:
    return f"{max(1, math.ceil(n_gib))}Gi"


def _shm(size: str) -> str:
    """Compose's ``16gb`` / ``512m`` as a Kubernetes quantity (``16Gi`` / ``512Mi``)."""
    m = re.match(r"^(\d+)([kKmMgG]?)[bB]?$", size)
    assert m, size  # validated at load (stack.vllm.shm_size)
    unit = {"": "", "k": "Ki", "m": "Mi", "g": "Gi"}[m.group(2).lower()]
    return f"{m.group(1)}{unit}"


def _vllm_config(s: Served) -> dict[str, Any]:
    cfg: dict[str, Any] = {"enablePrefixCaching": False, "enableChunkedPrefill": False}
    extra: list[str] = []
    args = list(s.plan.vllm_args)
    i = 0
    while i < len(args):
        flag = args[i]
        has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
        if flag in _VLLM_CONFIG and has_value:
            key, kind = _VLLM_CONFIG[flag]
            cfg[key] = kind(args[i + 1])
        elif flag in _SWITCHES:
            cfg[_SWITCHES[flag]] = True
        else:
            extra += args[i : i + 2] if has_value else [flag]
        i += 2 if has_value else 1
    if s.profile.stack.vllm.enforce_eager and "--enforce-eager" not in extra:
        extra.append("--enforce-eager")
    cfg["extraArgs"] = [*extra, "--served-model-name", s.model.public_name, *s.model.extra_args]
    return cfg


def _model_url(model: ModelSettings) -> str:
    if model.source in ("local", "bundle"):
        return f"/data/models/{model.dir_name}"  # copied into the model's volume beforehand (README)
    return model.name


def _resources(s: Served) -> dict[str, Any]:
    """The pod's share of the tier's host (its GPUs' fraction of CPUs and RAM), 80 % requested."""
    hw = s.profile.hardware
    gpus = (s.plan.to_dict().get("tensor_parallel_size") or 1) if hw.gpu.count else 0
    share = gpus / hw.gpu.count if hw.gpu.count else 1.0
    cpu, ram = hw.cpu_cores_min * share, hw.ram_gib_min * share
    return {
        "requestCPU": max(1, int(cpu * 0.8)),
        "requestMemory": _quantity_gi(ram * 0.8),
        "limitMemory": _quantity_gi(ram),
        "requestGPU": gpus,
        "pvcStorage": _quantity_gi(max(10.0, s.weight_bytes * 1.25 / 2**30)),
    }


def _model_spec(s: Served) -> dict[str, Any]:
    stack = s.profile.stack
    repository, _, tag = image_name(stack, stack.vllm.image).rpartition(":")
    env = {**s.plan.env, **stack.vllm.env}
    if stack.vllm.hf_endpoint and s.model.source == "huggingface":
        env["HF_ENDPOINT"] = stack.vllm.hf_endpoint
    if s.model.source == "modelscope":
        env["VLLM_USE_MODELSCOPE"] = "True"
    spec: dict[str, Any] = {
        "name": s.name,
        "repository": repository,
        "tag": tag,
        "modelURL": _model_url(s.model),
        "replicaCount": s.replicas,
        **_resources(s),
        "shmSize": _shm(stack.vllm.shm_size),
        "vllmConfig": _vllm_config(s),
    }
    if s.model.revision:
        spec["modelRevision"] = s.model.revision
    if env:
        spec["env"] = [{"name": k, "value": str(v)} for k, v in sorted(env.items())]
    return spec


def vllm_stack_values(served: list[Served]) -> dict[str, Any]:
    gpu = any(s.profile.hardware.gpu.count for s in served)
    engine: dict[str, Any] = {
        "enableEngine": True,
        "vllmApiKey": {"secretName": API_KEY_SECRET, "secretKey": "api-key"},
        "modelSpec": [_model_spec(s) for s in served],
        "serviceMonitor": {"enabled": True},
    }
    if gpu:
        engine["runtimeClassName"] = "nvidia"
    return {
        "servingEngineSpec": engine,
        "routerSpec": {"enableRouter": True, "routingLogic": "roundrobin"},
    }


# -------------------------------------------------------------------------------------------- gpu operator


def gpu_operator_values(profile: TierProfile) -> dict[str, Any]:
    nv = profile.nvidia
    return {
        "driver": {
            "enabled": True,
            # precompiled driver images are tagged by branch; see the README for a full version instead
            "usePrecompiled": True,
            "version": str(nv.driver_branch),
            "kernelModuleType": "open" if nv.open_kernel_module else "proprietary",
        },
        "toolkit": {"enabled": True, "version": f"v{nv.container_toolkit.version}"},
        "devicePlugin": {"enabled": True},
        "dcgmExporter": {"enabled": profile.monitoring.dcgm_exporter, "serviceMonitor": {"enabled": True}},
    }


# ------------------------------------------------------------------------------------------------- export


@dataclass(frozen=True)
class Export:
    """What ``llmrack export k8s`` writes: Helm values (by chart) and manifests (by file)."""

    values: dict[str, dict[str, Any]]  # file name -> values mapping
    manifests: dict[str, list[dict[str, Any]]]  # file name -> Kubernetes objects
    served: list[Served]
    opts: ExportOptions


def build(inventory: Inventory | None = None, *, profile: TierProfile | None = None, source: str,
          project_dir: Path, opts: ExportOptions | None = None) -> Export:
    """The export of an inventory (its inference hosts) or of one tier (one replica per model)."""
    opts = opts or ExportOptions()
    for value, field in ((opts.namespace, "--namespace"), (opts.release, "--release")):
        if not _DNS_LABEL.match(value) or len(value) > 40:
            raise LlmrackError(f"{value!r} is not a Kubernetes name (lowercase letters, digits and '-', starting "
                               "with a letter, at most 40 characters)", source="command line", field=field)
    if inventory is not None:
        served = served_models(inventory.hosts, None, source=source, project_dir=project_dir, opts=opts)
        host = inventory.by_role("inference")[0]
    else:
        assert profile is not None
        served = served_models(None, profile, source=source, project_dir=project_dir, opts=opts)
        host = HostSpec(name="k8s", address="k8s", roles=["inference"], tier=profile.name, profile=profile)
    first = host.profile
    values = {"vllm-stack-values.yaml": vllm_stack_values(served)}
    if any(s.profile.hardware.gpu.count for s in served):
        gpu_profile = next(s.profile for s in served if s.profile.hardware.gpu.count)
        values["gpu-operator-values.yaml"] = gpu_operator_values(gpu_profile)
    manifests = {
        "namespace.yaml": [namespace(opts)],
        "keda-scaledobjects.yaml": scaled_objects(served, opts),
        "prometheus-rules.yaml": [prometheus_rule(first, opts)],
        "grafana-dashboards.yaml": dashboard_configmaps(host, opts),
    }
    store = vector_store(first, opts)
    if store:
        manifests["vector-store.yaml"] = store
    return Export(values=values, manifests=manifests, served=served, opts=opts)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, allow_unicode=True, default_flow_style=False, width=1000)


def render(export: Export) -> dict[str, str]:
    """File name -> text of every file the export writes (YAML with the managed-by header, and the README)."""
    files = {name: HEADER + dump(values) for name, values in export.values.items()}
    for name, docs in export.manifests.items():
        files[name] = HEADER + "---\n".join(dump(d) for d in docs)
    files["README.md"] = readme(export)
    return dict(sorted(files.items()))


# the options and names live in llmrack.export.options; they stay importable from here
__all__ = [
    "API_KEY_SECRET", "HEADER", "K8S_VERSION", "PGVECTOR_SECRET", "QDRANT_SECRET", "Export", "ExportOptions", "Served",
    "build", "dump", "k8s_name", "render", "served_models",
]
