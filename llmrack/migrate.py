"""Moving a host to another tier in place, or its service and data to another server.

In place (``llmrack migrate INVENTORY --host H --to TIER``): the host is re-planned with the new tier (its
model, tensor parallelism, context and limits, with the inventory's per-host overrides kept) and converged
with it through a generated inventory (the original one with only that host's ``tier`` changed); a failed
check afterwards converges the previous tier's deployment again. The inventory file itself is the user's:
the command says which line to change once the new tier passes.

Host to host (``--from-host A --to-host B``): B is converged, A's writers are stopped (the interruption
starts), A is backed up, and the snapshot is restored on B with A's host-side secrets (clients keep their
keys, the database its password), through the backup role's scripts and A's repository password. B is then
reconciled and checked; a failure starts A's writers again, so A serves as before.

Both count the vector store's rows/points before (the backup manifest) and after, and send a golden set of
prompts through the gateway (temperature 0): every prompt answered, and, when the model does not change,
the same answers as before. Bad input (unknown host or tier, a model that does not fit the host's GPUs) is
an ``LlmrackError`` raised before anything changes.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrack.config import HostSpec, Inventory, load_inventory, raw_tier
from llmrack.errors import LlmrackError
from llmrack.models import plan_for
from llmrack.rebuild import host_of
from llmrack.stack.smoke_http import json_request

GOLDEN_PROMPTS = ["Say hello.", "What is 2 + 2?", "Name a colour.", "Write one word about the sea."]
GPU_QUERY = "nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits 2>/dev/null || true"
WRITERS = ("gateway", "embeddings")


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float


def parse_gpus(text: str) -> list[Gpu]:
    """``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`` -> GPUs (MiB -> GiB)."""
    gpus = []
    for line in text.splitlines():
        name, _, mib = line.rpartition(",")
        if name.strip() and mib.strip().replace(".", "", 1).isdigit():
            gpus.append(Gpu(name.strip(), round(float(mib) / 1024, 1)))
    return gpus


def retiered(inventory_path: Path, inventory: Inventory, host: str, tier: str) -> tuple[Path, HostSpec]:
    """(A generated inventory with ``host`` on ``tier``, the host's spec read from it): the same loader the
    deploy uses, so the plan is what the deploy will do. An unknown tier is bad input (``--to``)."""
    spec_in(inventory, host)
    try:
        raw_tier(tier, Path(inventory.project_dir))
    except LlmrackError as exc:
        raise LlmrackError(exc.message, source=exc.source, field="--to") from None
    directory = Path(inventory.project_dir) / ".llmrack" / "migrate" / host
    wrapper = wrapper_inventory(Path(inventory_path), host, tier, directory)
    try:
        new = load_inventory(wrapper, Path(inventory.project_dir))
    except LlmrackError as exc:
        if exc.field == f"{host}.tier":
            raise LlmrackError(exc.message.split(" in ")[0], source=exc.source, field="--to") from None
        raise
    return wrapper, spec_in(new, host)


def check_fits(spec: HostSpec, gpus: list[Gpu], project_dir: Path) -> list[Any]:
    """The planner's plans of the host's models on the host's real GPUs; a model that does not fit is bad
    input (the planner's own reasons and suggestions, field ``--to``)."""
    profile = spec.profile
    want = profile.hardware.gpu.count
    if want and not gpus:
        raise LlmrackError(f"tier {spec.tier} runs its models on {want} GPU(s) and {spec.name} has none",
                           field="--to")
    if not want:
        return [plan_for(profile, m, project_dir=project_dir, source=f"tiers/{spec.tier}.yaml")
                for m in profile.stack.models]
    smallest = min(g.memory_gib for g in gpus)
    hardware = profile.hardware.model_copy(update={"gpu": profile.hardware.gpu.model_copy(
        update={"count": len(gpus), "memory_gib": smallest, "model": gpus[0].name})})
    real = profile.model_copy(update={"hardware": hardware})
    plans = []
    for m in profile.stack.models:
        where = f"tier {spec.tier}: {m.name} does not fit {spec.name}'s {len(gpus)} x {smallest:g} GiB GPUs"
        try:
            p = plan_for(real, m, project_dir=project_dir, source=f"tiers/{spec.tier}.yaml")
        except LlmrackError as exc:  # the planner refuses the tier's TP on these GPUs
            raise LlmrackError(f"{where}: {exc.message}", source=exc.source, field="--to") from None
        if not p.fits:
            raise LlmrackError(f"{where}: {'; '.join(p.reasons) or 'too large'}", field="--to")
        plans.append(p)
    return plans


def _model_line(spec: HostSpec) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in spec.profile.stack.models:
        out[m.public_name] = (f"{m.name} TP {m.tensor_parallel_size or 'auto'}, max_model_len "
                              f"{m.max_model_len or 'auto'}, max_num_seqs {m.max_num_seqs}, {m.quantization}")
    return out


@dataclass
class MigrationPlan:
    kind: str  # "in place" | "host to host"
    source: str
    target: str
    changes: list[str] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    interruption: str = ""
    same_model: bool = True

    def lines(self) -> list[str]:
        head = (f"migrate {self.source} in place to tier {self.target}" if self.kind == "in place"
                else f"migrate {self.source} to {self.target}")
        out = [head, "  changes:"] + [f"    {c}" for c in self.changes or ["(none)"]]
        out += ["  restarts:"] + [f"    {r}" for r in self.restarts or ["(nothing)"]]
        out.append(f"  expected interruption: {self.interruption}")
        return out


def in_place_plan(old: HostSpec, new: HostSpec) -> MigrationPlan:
    plan = MigrationPlan("in place", old.name, new.tier)
    if old.tier != new.tier:
        plan.changes.append(f"tier: {old.tier} -> {new.tier}")
    before, after = _model_line(old), _model_line(new)
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            plan.changes.append(f"model {name}: {before.get(name, '(none)')} -> {after.get(name, '(removed)')}")
            plan.restarts.append(f"vLLM server of {name} (weights loaded again)")
    plan.same_model = [m.name for m in old.profile.stack.models] == [m.name for m in new.profile.stack.models]
    og, ng = old.profile.stack.gateway, new.profile.stack.gateway
    for key in ("rate_limit_per_key", "burst_per_key", "rate_limit_per_ip", "max_body_size", "api_clients"):
        a, b = getattr(og, key), getattr(ng, key)
        if a != b:
            plan.changes.append(f"gateway {key}: {a} -> {b}")
            if "gateway (configuration reload)" not in plan.restarts:
                plan.restarts.append("gateway (configuration reload)")
    ol, nl = old.profile.stack.limits.model_dump(), new.profile.stack.limits.model_dump()
    for service in sorted(set(ol) | set(nl)):
        if ol.get(service) != nl.get(service):
            plan.changes.append(f"limits of {service}: {ol.get(service)} -> {nl.get(service)}")
            plan.restarts.append(f"{service} (container recreated with the new limits)")
    if old.profile.stack.vector_store.kind != new.profile.stack.vector_store.kind:
        raise LlmrackError(f"tier {new.tier} keeps its vectors in {new.profile.stack.vector_store.kind} and "
                           f"{old.name} in {old.profile.stack.vector_store.kind}: moving between stores is not "
                           "an in-place migration", field="--to")
    plan.interruption = ("the model's load time (requests to it fail meanwhile); the vector store keeps serving"
                         if any(r.startswith("vLLM") for r in plan.restarts) else "none expected")
    return plan


def host_to_host_plan(src: HostSpec, dst: HostSpec) -> MigrationPlan:
    plan = MigrationPlan("host to host", src.name, dst.name, same_model=_model_line(src) == _model_line(dst))
    plan.changes = [
        f"{dst.name}: converged with tier {dst.tier}, then its vector store replaced by {src.name}'s last backup",
        f"{dst.name}: takes {src.name}'s API keys and database password (clients keep their keys)",
        f"{src.name}: gateway and embeddings stopped (its data stays on it untouched)",
    ]
    plan.restarts = [f"{src.name}: gateway, embeddings (stopped for good once {dst.name} passes)",
                     f"{dst.name}: gateway, embeddings (stopped while its store is replaced)"]
    plan.interruption = (f"writes stop on {src.name} from its final backup until clients use {dst.name}: "
                         "backup + restore + checks (rows written meanwhile are refused, none lost)")
    return plan


def count_command(spec: HostSpec, tables: list[str]) -> str:
    """Counts each ``table public.x`` / ``collection c`` of a manifest on the host, one ``kind\\tname\\tn``
    line each (the same queries the restore script checks with)."""
    stack = spec.profile.stack
    compose = (f"docker compose --project-name {shlex.quote(stack.project_name)} "
               f"--file {shlex.quote(stack.directory + '/compose.yaml')}")
    pg = stack.vector_store.pgvector
    parts = []
    for what in tables:
        kind, _, name = what.partition(" ")
        if kind != "table" or not all(c.isalnum() or c in "._\"" for c in name):
            continue
        q = shlex.quote(f"SELECT count(*) FROM {name}")
        parts.append(f"printf 'table\\t%s\\t%s\\n' {shlex.quote(name)} \"$({compose} exec -T postgres psql "
                     f"-U {shlex.quote(pg.user)} -d {shlex.quote(pg.database)} -Atc {q})\"")
    return " && ".join(parts) or "true"


def parse_counts(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip().isdigit():
            out[f"{parts[0]} {parts[1]}"] = int(parts[2])
    return out


def lost_rows(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Tables/collections with fewer rows after than before: {what: (before, after)}."""
    return {k: (n, after.get(k, 0)) for k, n in before.items() if after.get(k, 0) < n}


def golden_answers(base: str, api_key: str, model: str, *, prompts: list[str] = GOLDEN_PROMPTS,
                   ca: Any = None) -> list[str]:
    """The model's answers (temperature 0) to the golden prompts through the gateway (its certificate checked
    against ``ca``); raises when one fails."""
    out = []
    for prompt in prompts:
        data = json_request("POST", f"{base}/v1/chat/completions", api_key=api_key, ca=ca, timeout=300, body={
            "model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 12,
            "temperature": 0, "seed": 0})
        text = data["choices"][0]["message"].get("content") or ""
        if not text.strip():
            raise AssertionError(f"no answer to the golden prompt {prompt!r}")
        out.append(text)
    return out


def wrapper_inventory(original: Path, host: str, tier: str, directory: Path) -> Path:
    """A pyinfra inventory that is ``original`` with only ``host``'s tier changed (written 0600 next to the
    admin machine's state, never over the user's file)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    original = Path(original).resolve()
    path = directory / original.name  # the same file group as the original
    group_data = directory / "group_data"
    if (original.parent / "group_data").is_dir() and not group_data.exists():
        group_data.symlink_to(original.parent / "group_data")
    path.write_text(
        "# generated by llmrack migrate: the inventory below with one host's tier changed\n"
        "import runpy as _runpy\n"
        f"_original = {json.dumps(str(original))}\n"
        f"_host, _tier = {json.dumps(host)}, {json.dumps(tier)}\n"
        "for _name, _value in _runpy.run_path(_original).items():\n"
        "    if _name.startswith('_'):\n"
        "        continue\n"
        "    if isinstance(_value, tuple) and len(_value) == 2 and isinstance(_value[0], list):\n"
        "        _hosts, _data = _value\n"
        "    else:\n"
        "        _hosts, _data = _value, None\n"
        "    if isinstance(_hosts, list):\n"
        "        _hosts = [(h[0], {**h[1], 'tier': _tier}) if isinstance(h, tuple) and h[0] == _host else h\n"
        "                  for h in _hosts]\n"
        "    globals()[_name] = (_hosts, _data) if _data is not None else _hosts\n",
        encoding="utf-8")
    path.chmod(0o600)
    return path


def spec_in(inventory: Inventory, name: str) -> HostSpec:
    return host_of(inventory, name)
