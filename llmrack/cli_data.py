"""CLI commands that protect a host's data: ``llmrack backup``, ``restore``, ``rebuild``.

Registered on the main app by ``llmrack.cli``; thin over ``llmrack.rebuild``. Bad input exits 2 with one
message; the destructive ones (restore, rebuild) show their plan and ask unless ``--yes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmrack.cli_common import ProjectOpt, err, host_failures, out
from llmrack.cli_migrate import migrate
from llmrack.cli_rollout import rollout
from llmrack.errors import LlmrackError
from llmrack.validate import load_inventory as _inventory

data_app = typer.Typer()


HostOpt = Annotated[str, typer.Option("--host", help="Inventory name of the host.")]


@data_app.command()
def backup(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file.")],
    host: Annotated[str | None, typer.Option("--host", help="Only this host (default: every stack host).")] = None,
    project: ProjectOpt = None,
) -> None:
    """Back the stack up now (vector store dump, configs, TLS, secrets) and print what was saved."""
    from llmrack import rebuild

    inv = _inventory(inventory, project)
    targets = [rebuild.host_of(inv, host)] if host else [
        s for s in inv.hosts if s.has_role("gateway") or s.has_role("inference")]
    if not targets:
        raise LlmrackError("no host with the gateway or inference role", source=str(inventory), field="roles")
    for spec in targets:
        if not spec.profile.backup.enabled:
            raise LlmrackError(f"backups are disabled for {spec.name}", field="backup.enabled")
    status = 0
    for spec in targets:
        with host_failures():
            rebuild.converge(inventory, Path(inv.project_dir), "backup", spec.name, log=err.print)
        run, text, rc = rebuild.run_backup(spec)
        if rc != 0 or run is None:
            err.print(text[-4000:], highlight=False, markup=False)
            err.print(f"[bold red]backup of {spec.name} FAILED[/] (exit {rc})")
            status = 1
            continue
        out.print(f"{spec.name}: snapshot {run.snapshot} in {spec.profile.backup.repository}", highlight=False)
        for what, n in sorted(run.counts.items()):
            out.print(f"  {what}: {n} {'rows' if what.startswith('table') else 'points'}", highlight=False)
    raise typer.Exit(status)


def _host_spec(inventory: Path, host: str, snapshot: str | None, project: Path | None):  # noqa: ANN202
    """(Inventory, the HostSpec named ``host``), after checking the snapshot id's form (bad input: LlmrackError)."""
    from llmrack import rebuild
    from llmrack.backup import check_snapshot_id

    inv = _inventory(inventory, project)
    spec = rebuild.host_of(inv, host)
    if snapshot:
        check_snapshot_id(snapshot)
    return inv, spec


@data_app.command()
def restore(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file.")],
    host: HostOpt,
    snapshot: Annotated[str | None, typer.Option("--snapshot", help="Snapshot id (default: the latest).")] = None,
    with_secrets: Annotated[bool, typer.Option("--with-secrets",
                                               help="Also put the host-side secrets back (a rebuilt host).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before replacing the vector store.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Put a snapshot back: stop the writers, restore, check row/point counts against its manifest, restart."""
    from llmrack import rebuild

    _inv, spec = _host_spec(inventory, host, snapshot, project)
    with host_failures():
        chosen = rebuild.pick_snapshot(rebuild.snapshots(spec), snapshot, spec.name)
    stack = spec.profile.stack
    out.print(f"plan for {spec.name}: stop the gateway and embeddings, replace the {stack.vector_store.kind} data "
              f"with snapshot {chosen}{' and the host-side secrets' if with_secrets else ''}, check counts, "
              "start them again. Rows written since that snapshot are lost.", highlight=False)
    if not yes and not typer.confirm("Restore?", default=False):
        raise typer.Exit(1)
    from llmrack.backup import restore_failure

    counts, text, rc = rebuild.run_restore(spec, chosen, with_secrets=with_secrets)
    for what, (want, have) in sorted(counts.items()):
        out.print(f"  {what}: {have} of {want} {'ok' if want == have else 'DIFFERENT'}", highlight=False)
    if rc != 0:
        err.print(text[-4000:], highlight=False, markup=False)
        err.print(restore_failure(spec.name, counts, rc, directory=spec.profile.backup.directory),
                  highlight=False, markup=False)
        raise typer.Exit(1)
    out.print(f"{spec.name}: restored snapshot {chosen}", highlight=False)


@data_app.command(name="rebuild")
def rebuild_cmd(
    inventory: Annotated[Path, typer.Argument(help="pyinfra inventory file.")],
    host: HostOpt,
    snapshot: Annotated[str | None, typer.Option("--snapshot", help="Snapshot id (default: the latest).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before replacing the host's vector store.")] = False,
    project: ProjectOpt = None,
) -> None:
    """A replaced or reinstalled server: converge from bare, restore the latest snapshot, verify (phases timed)."""
    from llmrack import rebuild

    inv, spec = _host_spec(inventory, host, snapshot, project)
    out.print(f"plan for {spec.name}: converge from bare, replace its vector store and host-side secrets with "
              f"snapshot {snapshot or 'latest'} from {spec.profile.backup.repository}, verify.", highlight=False)
    if not yes and not typer.confirm("Rebuild?", default=False):
        raise typer.Exit(1)
    with host_failures():
        phases = rebuild.rebuild(inventory, inv, host, snapshot=snapshot, log=err.print)
    for phase, seconds in phases.items():
        out.print(f"  {phase}: {seconds:.1f} s", highlight=False)
    out.print(f"{spec.name}: rebuilt and verified in {sum(phases.values()):.1f} s", highlight=False)


data_app.command()(migrate)
data_app.command()(rollout)
