"""What every command module of the CLI shares: the consoles, the --project option, the error handling.

Bad input of any kind exits 2 with one message naming the file and field; no traceback, no host touched
(:class:`ProjectErrors`, for every command). Work on a host that failed exits 1 with one line
(:func:`host_failures`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer.core import TyperGroup

from llmrack.errors import LlmrackError

export_app = typer.Typer(help="The same service for other platforms: Kubernetes (Helm values, manifests).",
                         no_args_is_help=True)

out = Console()
err = Console(stderr=True)

ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", help="Directory holding tiers/ (default: the one above the inventory, or here)."),
]


def fail(exc: LlmrackError) -> typer.Exit:
    """Print ``exc`` as one message; the exit to raise (2 for bad input)."""
    err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


class ProjectErrors(TyperGroup):
    """The one error handler: a project error raised by any command (sub-commands included) becomes one clean
    message and its exit code instead of a traceback."""

    def invoke(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except LlmrackError as exc:
            raise fail(exc) from None


@contextmanager
def host_failures() -> Iterator[None]:
    """Work on the hosts that failed (a runner's RuntimeError: a converge, a restic run, a gate) becomes one red
    line and exit 1; bad input (LlmrackError) goes on to :class:`ProjectErrors` (exit 2)."""
    try:
        yield
    except LlmrackError:
        raise
    except RuntimeError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def check_out_path(path: Path | None, option: str, *, directory: bool = False) -> None:
    """Refuse an output path that cannot be written, before any work (nothing is written on a refusal)."""
    if path is None:
        return
    if directory:
        if path.exists() and not path.is_dir():
            raise LlmrackError("exists and is not a directory", source=str(path), field=option)
    elif path.is_dir():
        raise LlmrackError("is a directory; give a file name", source=str(path), field=option)
    parent = path if directory and path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent and directory:
        parent = parent.parent  # a bundle directory is created with its parents
    if not parent.is_dir():
        raise LlmrackError(f"the directory {parent} does not exist", source=str(path), field=option)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LlmrackError(f"the directory {parent} is not writable", source=str(path), field=option)


