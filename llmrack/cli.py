"""llmrack command line: thin commands over the library and the pyinfra deploys.

Bad input of any kind exits 2 with one message naming the file and field; no traceback, no host touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from llmrack import __version__
from llmrack.errors import LlmrackError

app = typer.Typer(
    name="llmrack",
    help="Turn bare Ubuntu GPU servers into a verified, monitored, hardened on-premises LLM service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sandbox_app = typer.Typer(
    help="Local sandbox hosts (systemd containers reached over SSH) for trying llmrack.", no_args_is_help=True
)
bundle_app = typer.Typer(
    help="Offline bundles: everything a host needs, for sites without internet.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(bundle_app, name="bundle")

out = Console()
err = Console(stderr=True)

ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", help="Directory holding tiers/ (default: the one above the inventory, or here)."),
]


def fail(exc: LlmrackError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def _project(project: Path | None, near: Path | None = None) -> Path:
    from llmrack.config import find_project_dir

    if project is not None:
        if not (project / "tiers").is_dir():
            raise LlmrackError("no tiers/ directory here", source=str(project), field="--project")
        return project.resolve()
    return find_project_dir(near or Path.cwd())


def _inventory(path: Path, project: Path | None):
    from llmrack.config import load_inventory

    return load_inventory(path, _project(project, path.parent) if project else None)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"llmrack {__version__}")
        raise typer.Exit(0)


# ---------------------------------------------------------------------------------------------------------- plan


@app.command()
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

    try:
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
                first.update(name=model, path="", served_name="")
                if Path(model).exists():
                    first.update(path=model, source="local")
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
    except LlmrackError as exc:
        raise fail(exc) from None

    if as_json:
        out.print_json(
            json.dumps(
                {
                    "tier": tier,
                    "plans": [{**p.to_dict(), "model": m.name, "served_name": m.served_name} for m, p in results],
                }
            )
        )
    else:
        for m, p in results:
            _print_plan(tier, profile, m, p)
    if not all(p.fits for _, p in results):
        raise typer.Exit(2)  # asked for something that does not fit: bad input, the output says what would


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _print_plan(tier, profile, model, p) -> None:
    gpu = profile.hardware.gpu
    where = f"{len(model.gpus) or gpu.count} x {gpu.model} {gpu.memory_gib:g} GiB" if gpu.count else "CPU"
    t = Table(title=f"{model.name} on {where} (tier {tier})", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    d = p.to_dict()
    rows = [
        ("fits", "[green]yes[/]" if p.fits else "[red]no[/]"),
        ("quantization", str(model.quantization)),
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


# ------------------------------------------------------------------------------------------------------ validate


def validate_inventory(path: Path, project: Path | None = None):
    """Load an inventory and run every rule, including that each served model fits its GPUs."""
    from llmrack.models import plan_for

    inv = _inventory(path, project)
    proj = Path(inv.project_dir)
    for host in inv.hosts:
        if "inference" not in host.roles:
            continue
        for i, model in enumerate(host.profile.stack.models):
            p = plan_for(host.profile, model, project_dir=proj, source=f"{path} ({host.name}, tier {host.tier})")
            try:
                p.require_fit()
            except LlmrackError as exc:
                exc.field = f"{host.name}.stack.models.{i}"
                raise
    return inv


@app.command()
def validate(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file, e.g. inventories/office.py.")],
    project: ProjectOpt = None,
) -> None:
    """Load the inventory and tiers and check every rule. Contacts no host."""
    try:
        inv = validate_inventory(inventory, project)
    except LlmrackError as exc:
        raise fail(exc) from None
    t = Table(title=f"{inventory}: valid", title_justify="left")
    for col in ("host", "address", "tier", "roles", "models"):
        t.add_column(col)
    for h in inv.hosts:
        t.add_row(h.name, h.address, h.tier, ",".join(h.roles), ", ".join(m.name for m in h.profile.stack.models))
    out.print(t)


# -------------------------------------------------------------------------------------------------------- deploy


def _pyinfra() -> str:
    cand = Path(sys.executable).with_name("pyinfra")
    return str(cand) if cand.exists() else "pyinfra"


@app.command()
def deploy(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file.")],
    deploy_name: Annotated[
        str, typer.Argument(metavar="DEPLOY", help="A file under deploys/ (no .py).")
    ] = "full_stack",
    dry: Annotated[bool, typer.Option("--dry", help="Show what would change; change nothing.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Validate, then run `pyinfra INVENTORY deploys/DEPLOY.py` (the same deploy users run by hand)."""
    try:
        inv = validate_inventory(inventory, project)
        proj = Path(inv.project_dir)
        target = proj / "deploys" / f"{deploy_name}.py"
        if not target.is_file():
            known = ", ".join(sorted(p.stem for p in (proj / "deploys").glob("*.py")))
            raise LlmrackError(
                f"no deploy {deploy_name!r} (known: {known})", source=str(proj / "deploys"), field="DEPLOY"
            )
    except LlmrackError as exc:
        raise fail(exc) from None
    cmd = [_pyinfra(), "-y", str(inventory.resolve()), str(target)]
    if dry:
        cmd.append("--dry")
    raise typer.Exit(subprocess.call(cmd, cwd=proj))


# ------------------------------------------------------------------------------------------------------- sandbox


SandboxDir = Annotated[Path | None, typer.Option("--state-dir", help="Where the sandbox keeps its SSH key and state.")]


def _default_state_dir() -> Path:
    return Path(os.environ.get("LLMRACK_SANDBOX_DIR", ".llmrack/sandbox"))


@sandbox_app.command("up")
def sandbox_up(
    hosts: Annotated[int, typer.Option("--hosts", min=1, max=8, help="How many hosts.")] = 1,
    state_dir: SandboxDir = None,
) -> None:
    """Build the host image (once) and start N bare Debian hosts reachable by SSH on 127.0.0.1."""
    from llmrack import sandbox

    try:
        sandbox.ensure_engine(log=err.print)
        sandbox.build_host_image(log=err.print)
        state = sandbox.up(hosts, state_dir=state_dir or _default_state_dir(), log=err.print)
    except LlmrackError as exc:
        raise fail(exc) from None
    _print_sandbox(state)


@sandbox_app.command("down")
def sandbox_down(state_dir: SandboxDir = None) -> None:
    """Remove the sandbox hosts, their volumes and state."""
    from llmrack import sandbox

    try:
        sandbox.down(state_dir=state_dir or _default_state_dir(), log=err.print)
    except LlmrackError as exc:
        raise fail(exc) from None


@sandbox_app.command("status")
def sandbox_status(state_dir: SandboxDir = None) -> None:
    """List the sandbox hosts and whether SSH answers."""
    from llmrack import sandbox

    try:
        state = sandbox.status(state_dir=state_dir or _default_state_dir())
    except LlmrackError as exc:
        raise fail(exc) from None
    _print_sandbox(state)


def _print_sandbox(state) -> None:
    hosts = getattr(state, "hosts", state)
    t = Table(title="sandbox hosts", title_justify="left")
    for col in ("host", "ssh", "address", "state"):
        t.add_column(col)
    for h in hosts:
        ok = getattr(h, "ssh_ok", None)
        t.add_row(h.name, f"ssh -p {h.ssh_port} root@127.0.0.1", h.address or "",
                  "" if ok is None else ("ssh answers" if ok else "[red]no ssh[/]"))
    out.print(t)


# -------------------------------------------------------------------------------------------------- verify etc.


class Category(StrEnum):
    software = "software"
    hardware = "hardware"
    performance = "performance"
    security = "security"


@app.command()
def verify(
    inventory: Annotated[Path | None, typer.Argument(help="pyinfra inventory file.")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write report.json, junit.xml, .md, .html here.")
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Comma list: software,hardware,performance,security.")
    ] = None,
    local: Annotated[bool, typer.Option("--local", help="Check this machine itself instead of SSH hosts.")] = False,
    tier: Annotated[
        str | None, typer.Option("--tier", help="With --local and no inventory: the tier to check.")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Run the acceptance checklist on every host and write a report. Exit 0 pass, 1 fail, 2 cannot run."""
    from llmrack.verify import suite

    try:
        cats = None
        if only:
            cats = {c.strip() for c in only.split(",") if c.strip()}
            bad = sorted(cats - {c.value for c in Category})
            if bad:
                raise LlmrackError(
                    f"unknown category {bad[0]!r} (software, hardware, performance, security)", field="--only"
                )
        if inventory is None and not (local and tier):
            raise LlmrackError("give an INVENTORY, or --local with --tier", field="INVENTORY")
        if inventory is not None:
            inv = _inventory(inventory, project)
        else:
            inv = suite.local_inventory(tier, _project(project))
        result = suite.verify(inv, only=cats, local=local, report_dir=report, log=err.print)
    except LlmrackError as exc:
        raise fail(exc) from None
    suite.print_summary(result, out)
    raise typer.Exit(result.exit_code)


@app.command()
def bench(
    url: Annotated[str, typer.Option("--url", help="OpenAI base URL, e.g. https://127.0.0.1:8443/v1.")],
    model: Annotated[str, typer.Option("--model", help="Served model name.")],
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="File holding the API key.")] = None,
    concurrency: Annotated[str, typer.Option("--concurrency", help="Comma list of levels.")] = "1,4,16",
    requests: Annotated[int, typer.Option("--requests", min=1, max=10000, help="Requests per level.")] = 20,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, max=4096)] = 64,
    timeout_s: Annotated[float, typer.Option("--timeout", min=1, help="Per-level time limit, s.")] = 120,
    output: Annotated[Path | None, typer.Option("--out", help="Write the JSON result here.")] = None,
) -> None:
    """Drive an OpenAI endpoint: TTFT/TPOT percentiles, tokens/s, success rate per concurrency level."""
    from llmrack import bench as bench_mod

    try:
        levels = [int(x) for x in concurrency.split(",") if x.strip()]
        if not levels or min(levels) < 1:
            raise ValueError
    except ValueError:
        raise fail(LlmrackError("a comma list of positive integers", field="--concurrency")) from None
    if api_key_file is not None and not api_key_file.is_file():
        raise fail(LlmrackError("no such file", source=str(api_key_file), field="--api-key-file"))
    key = api_key_file.read_text().strip() if api_key_file else os.environ.get("LLMRACK_API_KEY", "")
    res = bench_mod.run_bench(
        url,
        key,
        model=model,
        concurrency_levels=levels,
        requests_per_level=requests,
        max_tokens=max_tokens,
        timeout_s=timeout_s,
    )
    text = json.dumps(res, indent=2, sort_keys=True)
    if output:
        output.write_text(text)
    out.print_json(text)


@app.command()
def burnin(
    minutes: Annotated[float, typer.Option("--minutes", min=0.1, max=1440, help="How long to load the GPUs.")] = 2,
    output: Annotated[Path | None, typer.Option("--out", help="Write the JSON result here.")] = None,
) -> None:
    """Sustained matmul load on every GPU while sampling temperature, clocks, power and XID/ECC."""
    from llmrack import burnin as burnin_mod

    try:
        res = burnin_mod.run_burnin(minutes, log=err.print)
    except LlmrackError as exc:
        raise fail(exc) from None
    text = json.dumps(res, indent=2, sort_keys=True)
    if output:
        output.write_text(text)
    out.print(f"burn-in verdict: {res.get('verdict')}")
    for problem in res.get("problems", []):
        out.print(f"  - {problem}")
    raise typer.Exit(0 if res.get("verdict") == "pass" else 1)


@app.command()
def smoke(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file.")],
    project: ProjectOpt = None,
) -> None:
    """Through each gateway: list models, a chat completion, a streamed one, a RAG round trip."""
    from llmrack.stack import smoke as smoke_mod

    try:
        inv = _inventory(inventory, project)
        results = smoke_mod.smoke_inventory(inv, log=err.print)
    except LlmrackError as exc:
        raise fail(exc) from None
    for r in results:
        out.print(r.line(), highlight=False, soft_wrap=True)
    if not results:
        raise fail(LlmrackError("no host with the gateway role", source=str(inventory), field="roles"))
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@bundle_app.command("build")
def bundle_build(
    tier: Annotated[str, typer.Option("--tier", help="Tier whose stack the bundle carries.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Bundle directory.")],
    project: ProjectOpt = None,
) -> None:
    """Write an offline bundle: images (docker save), models, packages, and a manifest of sha256 sums."""
    from llmrack import bundle as bundle_mod

    try:
        from llmrack.config import load_tier

        profile = load_tier(tier, _project(project))
        manifest = bundle_mod.build_bundle_for_tier(profile, out_dir, log=err.print)
    except LlmrackError as exc:
        raise fail(exc) from None
    out.print(f"bundle written to {out_dir} ({len(manifest.get('files', {}))} files)")


def main() -> None:
    try:
        app()
    except LlmrackError as exc:  # a library error that escaped a command
        err.print(f"error: {exc}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
