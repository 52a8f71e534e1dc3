"""``llmrack rollout``: a change of the model or of an image over the inference hosts, one at a time.

Registered with the data commands by ``llmrack.cli_data``; thin over ``llmrack.rollout``. The plan is shown first
and asked for unless ``--yes``; a layout with nothing to roll over is bad input (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmrack.cli_common import ProjectOpt, err, host_failures, out
from llmrack.validate import load_inventory as _inventory


def rollout(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file (already holding the change).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before rolling.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Roll a change over the inference hosts one at a time: drain at the gateway, converge, gate (model
    listed, golden prompts), back in; a failed gate puts the node's previous configuration back and stops."""
    from llmrack import rollout as ro

    inv = _inventory(inventory, project)
    plan = ro.plan_rollout(inv)
    for line in plan.lines():
        out.print(line, highlight=False, markup=False)
    if not yes and not typer.confirm("Roll out?", default=False):
        raise typer.Exit(1)
    with host_failures():
        figures = ro.rollout(inventory, inv, plan, log=lambda m: err.print(m, highlight=False, markup=False))
    for name, values in figures.items():
        out.print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in values.items()), highlight=False)
