"""llmrack command line: thin commands over the library and the pyinfra deploys.

Bad input of any kind exits 2 with one message naming the file and field; no traceback, no host touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmrack import __version__
from llmrack.checkresult import CATEGORIES
from llmrack.cli_common import ProjectErrors, ProjectOpt, check_out_path, err, export_app, fail, out
from llmrack.cli_progress import Steps
from llmrack.errors import LlmrackError
from llmrack.validate import load_inventory as _inventory
from llmrack.validate import project_dir as _project
from llmrack.validate import validate_inventory

app = typer.Typer(
    name="llmrack",
    help="Turn bare Ubuntu GPU servers into a verified, monitored, hardened on-premises LLM service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=ProjectErrors,
)
sandbox_app = typer.Typer(
    help="Local sandbox hosts (systemd containers reached over SSH) for trying llmrack.", no_args_is_help=True
)
bundle_app = typer.Typer(
    help="Offline bundles: everything a host needs, for sites without internet.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(bundle_app, name="bundle")
app.add_typer(export_app, name="export")

@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"llmrack {__version__}")
        raise typer.Exit(0)


# ------------------------------------------------------------------------------------------------------ validate


@app.command()
def validate(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file, e.g. inventories/office.py.")],
    project: ProjectOpt = None,
) -> None:
    """Load the inventory and tiers and check every rule. Contacts no host."""
    inv = validate_inventory(inventory, project)
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
    inv = validate_inventory(inventory, project)
    proj = Path(inv.project_dir)
    target = proj / "deploys" / f"{deploy_name}.py"
    if not target.is_file():
        known = ", ".join(sorted(p.stem for p in (proj / "deploys").glob("*.py")))
        raise LlmrackError(
            f"no deploy {deploy_name!r} (known: {known})", source=str(proj / "deploys"), field="DEPLOY"
        )
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
    roles: Annotated[str, typer.Option(
        "--roles", help="Roles for inventories/sandbox.py: all (default), cluster (first host gateway, last "
                        "monitoring, the others inference) or HOST[,HOST]=ROLE[,ROLE];...")] = "",
) -> None:
    """Build the host image (once) and start N bare Debian hosts reachable by SSH on 127.0.0.1."""
    from llmrack import sandbox
    from llmrack.cluster import sandbox_roles

    sandbox_roles(roles, [sandbox.host_name(i) for i in range(1, hosts + 1)], source="--roles")
    sandbox.ensure_engine(log=err.print)
    sandbox.build_host_image(log=err.print)
    state = sandbox.up(hosts, state_dir=state_dir or _default_state_dir(), log=err.print, roles=roles)
    _print_sandbox(state)


@sandbox_app.command("down")
def sandbox_down(state_dir: SandboxDir = None) -> None:
    """Remove the sandbox hosts, their volumes and state."""
    from llmrack import sandbox

    sandbox.down(state_dir=state_dir or _default_state_dir(), log=err.print)


@sandbox_app.command("status")
def sandbox_status(state_dir: SandboxDir = None) -> None:
    """List the sandbox hosts and whether SSH answers."""
    from llmrack import sandbox

    state = sandbox.status(state_dir=state_dir or _default_state_dir())
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


@app.command()
def verify(
    inventory: Annotated[Path | None, typer.Argument(help="pyinfra inventory file.")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write report.json, junit.xml, .md, .html here.")
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", help=f"Comma list: {','.join(CATEGORIES)}.")
    ] = None,
    local: Annotated[bool, typer.Option("--local", help="Check this machine itself instead of SSH hosts.")] = False,
    tier: Annotated[
        str | None, typer.Option("--tier", help="With --local and no inventory: the tier to check.")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="The checklist's full durations (CPU 4 h, bad-block scan ...).")
    ] = False,
    sign_off: Annotated[
        Path | None, typer.Option("--sign-off", help="YAML of manual lines measured by hand (who, when, value).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Run the acceptance checklist on every host and write a report. Exit 0 pass, 1 fail, 2 cannot run."""
    from llmrack.verify import suite

    check_out_path(report, "--report", directory=True)
    cats = None
    if only:
        cats = {c.strip() for c in only.split(",") if c.strip()}
        bad = sorted(cats - set(CATEGORIES))
        if bad:
            raise LlmrackError(
                f"unknown category {bad[0]!r} ({', '.join(CATEGORIES)})", field="--only"
            )
    if inventory is None and not (local and tier):
        raise LlmrackError("give an INVENTORY, or --local with --tier", field="INVENTORY")
    inv = (_inventory(inventory, project) if inventory is not None
           else suite.local_inventory(tier, _project(project)))
    signed = None
    if sign_off is not None:
        from llmrack.verify.checklist import load_sign_off

        signed = load_sign_off(sign_off)
    with Steps(err, "verify") as steps:
        result = suite.verify(inv, only=cats, local=local, report_dir=report, log=steps.log, full=full,
                              sign_off=signed, step=steps.step)
    suite.print_summary(result, out)
    raise typer.Exit(result.exit_code)


@app.command()
def bench(
    url: Annotated[str, typer.Option("--url", help="OpenAI base URL, e.g. https://127.0.0.1:8443/v1.")],
    model: Annotated[str, typer.Option("--model", help="Served model name.")],
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="File holding the API key.")] = None,
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", help="CA to check the gateway's certificate against (.llmrack/secrets/<host>/gateway-ca.crt); "
                          "default: the system's trust store.")] = None,
    concurrency: Annotated[str, typer.Option("--concurrency", help="Comma list of levels.")] = "1,4,16",
    requests: Annotated[int, typer.Option("--requests", min=1, max=10000, help="Requests per level.")] = 20,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, max=4096)] = 64,
    timeout_s: Annotated[float, typer.Option("--timeout", min=1, help="Per-level time limit, s.")] = 120,
    output: Annotated[Path | None, typer.Option("--out", help="Write the JSON result here.")] = None,
) -> None:
    """Drive an OpenAI endpoint: TTFT/TPOT percentiles, tokens/s, success rate per concurrency level."""
    from llmrack import bench as bench_mod

    check_out_path(output, "--out")
    try:
        levels = [int(x) for x in concurrency.split(",") if x.strip()]
        if not levels or min(levels) < 1:
            raise ValueError
    except ValueError:
        raise fail(LlmrackError("a comma list of positive integers", field="--concurrency")) from None
    if api_key_file is not None and not api_key_file.is_file():
        raise fail(LlmrackError("no such file", source=str(api_key_file), field="--api-key-file"))
    if ca_file is not None and not ca_file.is_file():
        raise fail(LlmrackError("no such file", source=str(ca_file), field="--ca-file"))
    key = api_key_file.read_text().strip() if api_key_file else os.environ.get("LLMRACK_API_KEY", "")
    with Steps(err, "bench") as steps:
        res = bench_mod.run_bench(url, key, model=model, concurrency_levels=levels, requests_per_level=requests,
                                  max_tokens=max_tokens, timeout_s=timeout_s, ca=ca_file, log=steps.log,
                                  step=steps.step)
    text = json.dumps(res, indent=2, sort_keys=True)
    if output:
        output.write_text(text)
    out.print_json(text)


@app.command()
def burnin(
    minutes: Annotated[float, typer.Option("--minutes", min=0.1, max=1440, help="How long to load the GPUs.")] = 2,
    output: Annotated[Path | None, typer.Option(
        "--out", help="Write the JSON result here (default: /var/lib/llmrack/acceptance/burnin.json, read by verify).")
    ] = None,
    scaling: Annotated[bool | None, typer.Option(
        "--scaling/--no-scaling", help="GPU 0 alone and an NCCL all-reduce first (default: with 2 GPUs or more).")
    ] = None,
) -> None:
    """Sustained matmul load on every GPU while sampling temperature, clocks, power and XID/ECC."""
    from llmrack import burnin as burnin_mod

    check_out_path(output, "--out")
    res = burnin_mod.run_burnin(minutes, log=err.print, scaling=scaling)
    text = json.dumps(res, indent=2, sort_keys=True)
    if output is None:  # where `llmrack verify` collects it from
        from llmrack.verify.checklist import BURNIN_RESULT_PATH

        output = Path(BURNIN_RESULT_PATH)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            output = Path("burnin.json")
    output.write_text(text)
    out.print(f"burn-in result: {output}")
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

    inv = _inventory(inventory, project)
    results = smoke_mod.smoke_inventory(inv, log=err.print)
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
    debs: Annotated[Path | None, typer.Option(
        "--debs", help="Directory of .deb files fetched on a connected machine (e.g. NVIDIA's container toolkit).",
    )] = None,
    release: Annotated[list[str] | None, typer.Option(
        "--release", help="Target release codename of the hosts' local APT repository (repeatable).",
    )] = None,
    inventory: Annotated[Path | None, typer.Option(
        "--inventory", help="Inventory whose hosts of the tier give the releases (their hardware.os_releases).",
    )] = None,
) -> None:
    """Write an offline bundle: images (docker save), models, a local APT repository per release, and a
    manifest of sha256 sums (it lists the packages still missing and how to add them)."""
    from llmrack import bundle as bundle_mod
    from llmrack.bundle_apt import inventory_releases
    from llmrack.config import load_tier

    check_out_path(out_dir, "--out", directory=True)
    profile = load_tier(tier, _project(project))
    codenames = sorted({*(release or []), *(inventory_releases(_inventory(inventory, project), tier)
                                            if inventory is not None else [])}) or ["bookworm"]
    with Steps(err, "bundle") as steps:
        manifest = bundle_mod.build_bundle_for_tier(profile, out_dir, codenames=codenames, debs_dir=debs,
                                                    tier=tier, log=steps.log, step=steps.step)
    out.print(f"bundle written to {out_dir} ({len(manifest.get('files', {}))} files)")


from llmrack.cli_data import data_app  # noqa: E402  (backup, restore, rebuild: they use the helpers above)
from llmrack.cli_plan import plan_app  # noqa: E402  (plan, advise, export k8s: they use the helpers above)
from llmrack.cli_secrets import secrets_app  # noqa: E402  (rotate-secrets: it uses the helpers above)

app.registered_commands[:0] = plan_app.registered_commands  # plan and advise first in --help
app.registered_commands += data_app.registered_commands
app.registered_commands += secrets_app.registered_commands


def main() -> None:
    try:
        app()
    except LlmrackError as exc:  # raised while parsing arguments, before ProjectErrors sees a command run
        sys.exit(fail(exc).exit_code)


if __name__ == "__main__":
    main()
