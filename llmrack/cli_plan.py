"""CLI commands that size and place the service: ``llmrack plan``, ``advise`` and ``export k8s``.

Registered on the main app by ``llmrack.cli``; thin over ``llmrack.planner``, ``llmrack.advisor`` and
``llmrack.export``. Bad input exits 2 with one message.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmrack.cli_common import ProjectOpt, export_app, out
from llmrack.errors import LlmrackError
from llmrack.validate import project_dir as _project
from llmrack.validate import validate_inventory

plan_app = typer.Typer()

# ---------------------------------------------------------------------------------------------------------- plan


@plan_app.command()
def plan(
    tier: Annotated[str, typer.Option("--tier", help="Tier name (tiers/<tier>.yaml).")] = "standard",
    model: Annotated[str | None, typer.Option("--model", help="Catalogue name, HF id or dir with config.json.")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", min=0, help="GPU count (default: the tier's).")] = None,
    gpu_mem_gib: Annotated[float | None, typer.Option("--gpu-mem-gib", min=1, help="Memory per GPU, GiB.")] = None,
    quantization: Annotated[
        str | None, typer.Option("--quantization", help="fp16, bf16, fp8, int8, awq, gptq.")
    ] = None,
    max_model_len: Annotated[int | None, typer.Option("--max-model-len", min=128)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Size vLLM for a tier's GPUs: weights, KV cache, context, concurrency, and the arguments to run it."""
    from llmrack.config import load_tier
    from llmrack.models import plan_for

    proj = _project(project)
    profile = load_tier(tier, proj)
    over: dict = {}
    if gpus is not None or gpu_mem_gib is not None:
        gpu = {"count": gpus if gpus is not None else profile.hardware.gpu.count}
        if gpu_mem_gib is not None:
            gpu["memory_gib"] = gpu_mem_gib
        over["hardware"] = {"gpu": gpu}
        if gpu["count"] > 0:
            over["nvidia"] = {"enabled": True}
    models = list(profile.stack.models)
    if model is not None or quantization is not None or max_model_len is not None or over:
        first = models[0].model_dump()
        if model is not None:
            first.update(name=model, path="", served_name=_served_name_of(model))
            if Path(model).exists():
                first.update(path=model, source="local")
            if quantization is None:
                first["quantization"] = _checkpoint_format(model, proj)
        if quantization is not None:
            first["quantization"] = quantization
        first["max_model_len"] = max_model_len
        if over:
            first["tensor_parallel_size"] = None
            first["gpus"] = []
        over["stack"] = {"models": [first]}
        profile = load_tier(tier, proj, over, override_source="command line")
        models = list(profile.stack.models)
    src = "command line" if model is not None else f"tiers/{tier}.yaml"
    try:
        results = [(m, plan_for(profile, m, project_dir=proj, source=src)) for m in models]
    except LlmrackError as exc:
        if model is not None and exc.field == "stack.models.name":
            exc.field = "--model"
        raise

    roofs = [_roofline(m, p, proj, src) for m, p in results]
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "tier": tier,
                    "plans": [{**p.to_dict(), "model": m.name, "served_name": m.served_name, "decode_roofline": r}
                              for (m, p), r in zip(results, roofs, strict=True)],
                }
            )
        )
    else:
        for (m, p), r in zip(results, roofs, strict=True):
            _print_plan(tier, profile, m, p, r)
    if not all(p.fits for _, p in results):
        raise typer.Exit(2)  # asked for something that does not fit: bad input, the output says what would


def _served_name_of(model: str) -> str:
    """A plain served name for a model given on the command line (HF id or path): its last part."""
    import re

    base = Path(model.rstrip("/")).name or "model"
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "model")[:63].lower()


def _checkpoint_format(model: str, proj: Path) -> str:
    """The format the checkpoint is published in (AWQ, GPTQ, FP8 ...), else bf16/fp16 from its config."""
    from llmrack.models import model_spec_for
    from llmrack.settings.stack import ModelSettings

    local = Path(model).exists()
    settings = ModelSettings(name=model, path=model if local else "", source="local" if local else "huggingface",
                             served_name=_served_name_of(model))
    try:
        spec = model_spec_for(settings, project_dir=proj, source="command line")
    except LlmrackError as exc:
        exc.field = "--model"
        raise
    return spec.checkpoint_quantization or ("fp16" if spec.dtype == "fp16" else "bf16")


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _roofline(model, p, proj: Path, src: str):
    from llmrack.models import model_spec_for
    from llmrack.planner.roofline import decode_roofline

    try:
        return decode_roofline(p, model_spec_for(model, project_dir=proj, source=src))
    except LlmrackError:
        return None


def _print_plan(tier, profile, model, p, roof=None) -> None:
    gpu = profile.hardware.gpu
    where = f"{len(model.gpus) or gpu.count} x {gpu.model} {gpu.memory_gib:g} GiB" if gpu.count else "CPU"
    t = Table(title=f"{model.name} on {where} (tier {tier})", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    d = p.to_dict()
    rows = [
        ("fits", "[green]yes[/]" if p.fits else "[red]no[/]"),
        ("quantization", p.weight_format + ("" if p.weight_format == p.quantization else f" (asked {p.quantization})")),
        ("tensor parallel", str(d.get("tensor_parallel_size"))),
    ]
    for key, label in [
        ("weight_bytes_per_gpu", "weights per GPU"),
        ("kv_bytes_per_token", "KV cache per token"),
        ("kv_cache_bytes_per_gpu", "KV cache per GPU"),
    ]:
        if isinstance(d.get(key), int | float):
            rows.append((label, _gib(d[key]) if d[key] > 2**20 else f"{d[key] / 1024:.1f} KiB"))
    for key, label in [
        ("max_kv_tokens", "tokens in KV cache"),
        ("max_model_len", "max model len"),
        ("concurrency_full_context", "concurrency at full context"),
        ("concurrency_4k", "concurrency at 4k context"),
    ]:
        if d.get(key) is not None:
            rows.append((label, f"{d[key]:,}" if isinstance(d[key], int) else str(d[key])))
    if roof:
        rows.append(("decode roofline, 1 stream", f"{roof['tokens_per_s']:,.0f} tokens/s "
                     f"({roof['bandwidth_gbs']:g} GB/s / {_gib(roof['bytes_per_token_per_gpu'])} read/token/GPU)"))
    for r in rows:
        t.add_row(*r)
    out.print(t)
    if p.reasons:
        out.print("[red]does not fit:[/] " + "; ".join(p.reasons))
    if p.suggestions:
        out.print("[yellow]would fit:[/] " + "; ".join(p.suggestions))
    if p.env:
        out.print("env: " + " ".join(f"{k}={v}" for k, v in sorted(p.env.items())), highlight=False)
    out.print("vllm serve <model> " + " ".join(p.vllm_args), highlight=False, soft_wrap=True)


# -------------------------------------------------------------------------------------------------------- advise


class UsageLevel(StrEnum):
    light = "light"
    normal = "normal"
    heavy = "heavy"


@plan_app.command()
def advise(
    team: Annotated[int, typer.Option("--team", help="People who will use the service.")],
    usage: Annotated[UsageLevel, typer.Option("--usage", help="How much each uses it.")] = UsageLevel.normal,
    budget: Annotated[str | None, typer.Option("--budget", help="One-off budget, CNY (200000, 20万, 200k).")] = None,
    assume: Annotated[
        list[str] | None, typer.Option("--assume", help="Override an assumption: key=value (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the advice as JSON.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Pick the tier and model for a team (seed 000's selection guide) with power, UPS, electricity and 3-year cost."""
    from llmrack import advisor

    if team < 1:
        raise LlmrackError(f"must be >= 1, got {team}", field="--team")
    res = advisor.advise(team, usage.value, budget_cny=advisor.parse_budget(budget),
                         assumptions=advisor.parse_assumptions(assume or []), project_dir=_project(project))
    if as_json:
        out.print_json(json.dumps(res))
        return
    pw, c = res["power_per_server"], res["cost"]
    g = res["gpus"]
    servers = f"{res['servers']} x " if res["servers"] > 1 else ""
    out.print(f"[bold]{servers}{res['tier']}[/]: {res['description']}", highlight=False)
    for line in res["why"]:
        out.print(f"  - {line}", highlight=False, soft_wrap=True)
    t = Table(show_header=False, title="per server" if res["servers"] > 1 else None, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("power (sum / peak +{:.0%})".format(res["assumptions"]["redundancy"]),
              f"{pw['sum_kw']:.2f} kW / {pw['peak_kw']:.2f} kW ({g['count']} x {g['board_power_w']:g} W GPUs)")
    t.add_row("UPS", f"{pw['ups_kva']:g} kVA (needs {pw['ups_kva_needed']:.1f} kVA)")
    t.add_row("electricity", f"{pw['month_kwh']:,.0f} kWh/month, {pw['month_cny']:,.0f} CNY/month, "
              f"{pw['year_cny']:,.0f} CNY/year")
    out.print(t)
    years = res["assumptions"]["years"]
    out.print(f"{years}-year cost: {c['total_cny']:,.0f} CNY = {c['one_off_cny']:,.0f} one-off + "
              f"{c['monthly_cny']:,.0f}/month x {c['months']} ({res['per_person_year_cny']:,.0f} CNY per person-year)",
              highlight=False)
    out.print("assumptions (--assume key=value): " + ", ".join(f"{k}={v}" for k, v in res["assumptions"].items()),
              highlight=False, soft_wrap=True)



@export_app.command("k8s")
def export_k8s(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the values and manifests into.")],
    inventory: Annotated[Path | None, typer.Argument(help="Inventory whose inference hosts become replicas.")] = None,
    tier: Annotated[str | None, typer.Option("--tier", help="Export one tier instead (one replica per model).")] = None,
    namespace: Annotated[str, typer.Option("--namespace", help="Kubernetes namespace.")] = "llmrack",
    release: Annotated[str, typer.Option("--release", help="Helm release name of the vllm-stack chart.")] = "llmrack",
    prometheus_url: Annotated[
        str, typer.Option("--prometheus-url", help="Prometheus KEDA queries.")
    ] = "http://prometheus-operated.monitoring.svc:9090",
    max_replicas: Annotated[int, typer.Option("--max-replicas", min=0, help="KEDA maximum (0: twice).")] = 0,
    project: ProjectOpt = None,
) -> None:
    """vLLM production-stack and GPU Operator values, KEDA, vector store, rules and dashboards; validated offline."""
    from llmrack.config import load_tier
    from llmrack.export import files, k8s, validate

    if (inventory is None) == (tier is None):
        raise LlmrackError("give an INVENTORY or --tier, not both", field="INVENTORY")
    files.check_out_dir(out_dir)
    opts = k8s.ExportOptions(namespace=namespace, release=release, prometheus_url=prometheus_url,
                             max_replicas=max_replicas)
    if inventory is not None:
        inv = validate_inventory(inventory, project)
        export = k8s.build(inv, source=str(inventory), project_dir=Path(inv.project_dir), opts=opts)
    else:
        proj = _project(project)
        export = k8s.build(profile=load_tier(tier, proj), source=f"tiers/{tier}.yaml", project_dir=proj,
                           opts=opts)
    checked = validate.validate_export(export, k8s.K8S_VERSION)
    written = files.write_files(out_dir, k8s.render(export))
    t = Table(title=f"{out_dir}: Kubernetes export (validated offline)", title_justify="left")
    for col in ("file / object", "validated against"):
        t.add_column(col)
    for what, against in checked:
        t.add_row(what, against)
    out.print(t)
    changed = [n for n, c in written if c]
    out.print(f"{len(changed)} file(s) written, {len(written) - len(changed)} unchanged; install: {out_dir}/README.md")


