"""``llmrack validate``: load an inventory and its tiers and run every rule, contacting no host."""

from __future__ import annotations

from pathlib import Path

from llmrack.cluster import check_roles
from llmrack.config import find_project_dir
from llmrack.config import load_inventory as _load
from llmrack.errors import LlmrackError
from llmrack.models import plan_for


def project_dir(project: Path | None, near: Path | None = None) -> Path:
    """``--project`` checked, or the project found above ``near`` (or here)."""
    if project is not None:
        if not (project / "tiers").is_dir():
            raise LlmrackError("no tiers/ directory here", source=str(project), field="--project")
        return project.resolve()
    return find_project_dir(near or Path.cwd())


def load_inventory(path: Path, project: Path | None):
    """The inventory at ``path``, its tiers from ``--project`` when given."""
    return _load(path, project_dir(project, path.parent) if project else None)


def validate_inventory(path: Path, project: Path | None = None):
    """Load an inventory and run every rule, including that each served model fits its GPUs."""
    inv = load_inventory(path, project)
    check_roles(inv.hosts, source=str(path))
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


