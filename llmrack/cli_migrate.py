"""``llmrack migrate``: a host to a bigger tier in place, or its service and data to another server.

Registered with the data commands by ``llmrack.cli_data``; thin over ``llmrack.migrate`` (the plan, bad input)
and ``llmrack.migrate_run`` (doing it). The plan is shown first and asked for unless ``--yes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmrack.cli_common import ProjectOpt, err, host_failures, out
from llmrack.errors import LlmrackError
from llmrack.validate import load_inventory as _inventory


def plan_migration(inventory: Path, inv, host: str | None, to: str | None, from_host: str | None,
                   to_host: str | None):  # noqa: ANN001, ANN201
    """The MigrationPlan for the command line's arguments; bad input raises LlmrackError."""
    from llmrack import migrate as m
    from llmrack import rebuild

    if host and to and not (from_host or to_host):
        old = m.spec_in(inv, host)
        _wrapper, new = m.retiered(inventory, inv, host, to)
        gpus: list = []
        if new.profile.hardware.gpu.count:
            asked = rebuild.remote(old, m.GPU_QUERY, timeout=120)
            if asked.returncode == 255:
                raise RuntimeError(f"cannot reach {old.name} to read its GPUs: {asked.stderr.strip()[-300:]}")
            gpus = m.parse_gpus(asked.stdout)
        m.check_fits(new, gpus, Path(inv.project_dir))
        return m.in_place_plan(old, new)
    if from_host and to_host and not (host or to):
        src, dst = m.spec_in(inv, from_host), m.spec_in(inv, to_host)
        if src.name == dst.name:
            raise LlmrackError("--from-host and --to-host name the same host", field="--to-host")
        missing = [role for role in src.roles if not dst.has_role(role)]
        if missing:
            raise LlmrackError(f"{dst.name} lacks the role(s) {', '.join(missing)} that {src.name} runs",
                               source=inv.path, field="--to-host")
        if src.profile.backup.repository.startswith(src.profile.backup.directory):
            raise LlmrackError(f"{src.name}'s backup repository {src.profile.backup.repository} is on {src.name} "
                               f"itself, where {dst.name} cannot read it: set backup.repository to a NAS or SFTP "
                               "target", field="backup.repository")
        return m.host_to_host_plan(src, dst)
    raise LlmrackError("give --host H --to TIER (in place), or --from-host A --to-host B (to another server)",
                       field="--host")


def migrate(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file.")],
    host: Annotated[str | None, typer.Option("--host", help="In place: the host to move to --to.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="In place: the tier to move it to.")] = None,
    from_host: Annotated[str | None, typer.Option("--from-host", help="The server handing over.")] = None,
    to_host: Annotated[str | None, typer.Option("--to-host", help="The server taking over with the data.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before migrating.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Move a host to another tier in place, or its service and data to another server (plan, confirm,
    rows counted before/after, golden prompts, rollback on a failed check)."""
    from llmrack import migrate_run

    inv = _inventory(inventory, project)
    with host_failures():
        plan = plan_migration(inventory, inv, host, to, from_host, to_host)
    for line in plan.lines():
        out.print(line, highlight=False, markup=False)
    if not yes and not typer.confirm("Migrate?", default=False):
        raise typer.Exit(1)
    with host_failures():
        if plan.kind == "in place":
            figures = migrate_run.in_place(inventory, inv, plan.source, plan.target, log=err.print)
            out.print(f"{plan.source} runs tier {plan.target}: set `tier: {plan.target}` for {plan.source} in "
                      f"{inventory} now (a deploy from the unchanged file puts the previous tier back)",
                      highlight=False, markup=False)
        else:
            figures = migrate_run.host_to_host(inventory, inv, plan.source, plan.target, log=err.print)
            out.print(f"{plan.target} serves {plan.source}'s data and keys; point clients at {plan.target}, then "
                      f"take {plan.source} out of {inventory} (its writers stay stopped)", highlight=False,
                      markup=False)
    for key, value in figures.items():
        out.print(f"  {key}: {value}", highlight=False)
