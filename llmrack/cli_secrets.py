"""CLI command that changes a host's secrets on purpose: ``llmrack rotate-secrets``.

Registered on the main app by ``llmrack.cli``; thin over ``llmrack.rotate``. Bad input exits 2 with one message
before anything changes; the plan is shown and confirmed unless ``--yes``; keys are never printed, only the
file that holds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmrack.cli_common import ProjectOpt, err, host_failures, out
from llmrack.validate import load_inventory as _inventory

secrets_app = typer.Typer()


@secrets_app.command(name="rotate-secrets")
def rotate_secrets(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file.")],
    host: Annotated[str, typer.Option("--host", help="Inventory name of the gateway host.")],
    api_keys: Annotated[bool, typer.Option("--api-keys", help="Rotate the clients' API keys.")] = False,
    postgres: Annotated[bool, typer.Option("--postgres", help="Rotate the pgvector database password.")] = False,
    client: Annotated[list[str] | None, typer.Option(
        "--client", help="Only this client's key (repeatable; default: every client).")] = None,
    grace_hours: Annotated[int, typer.Option(
        "--grace-hours", help="Hours the old API keys stay valid (0: they stop now).")] = 24,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before rotating.")] = False,
    project: ProjectOpt = None,
) -> None:
    """New API keys (old ones valid for a grace period) and/or a new postgres password, then converge and check.

    Neither --api-keys nor --postgres: both."""
    from llmrack import rotate

    inv = _inventory(inventory, project)
    plan = rotate.plan_rotation(inv, host, api_keys=api_keys, postgres=postgres, clients=client or [],
                                grace_hours=grace_hours)
    for line in plan.lines():
        out.print(line, highlight=False, markup=False)
    if not yes and not typer.confirm("Rotate?", default=False):
        out.print("nothing changed", highlight=False)
        raise typer.Exit(1)
    with host_failures():
        result = rotate.rotate(plan, inventory, log=lambda m: err.print(m, highlight=False, markup=False))
    for line in result.checks:
        out.print(f"  {line}", highlight=False, markup=False)
    if result.clients:
        out.print(f"{plan.spec.name}: new API keys of {', '.join(result.clients)} are in {result.keys_path}; give "
                  "each client its key", highlight=False, markup=False)
    if result.postgres:
        restarted = f"; restarted {', '.join(result.restarted)}" if result.restarted else ""
        out.print(f"{plan.spec.name}: postgres password rotated (admin copy: {plan.postgres_path}){restarted}",
                  highlight=False, markup=False)
