"""The settings of the host a pyinfra deploy is running for, read from pyinfra's inventory (deploys/*.py).

Every host's data is validated before any operation is planned; bad input is one message and exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmrack.config import HostSpec, find_project_dir, host_spec
from llmrack.errors import LlmrackError


def inventory_path_from_argv() -> str:
    """The inventory file pyinfra was started with (its first .py argument), for messages."""
    import sys

    for arg in sys.argv[1:]:
        if arg.endswith(".py") and "inventor" in arg:
            return arg
    return "inventory"


def spec_for_pyinfra_host(host: Any) -> HostSpec:
    """The HostSpec of the host pyinfra is running a deploy for (deploys/*.py call this).

    Bad input raises ``LlmrackError``; use ``deploy_spec`` in deploy files for a clean exit.
    """
    source = inventory_path_from_argv()
    project = find_project_dir(Path(source).parent if source != "inventory" else Path.cwd())
    return host_spec(
        host.name,
        host.data.dict(),
        source=source,
        project_dir=project,
        groups=[str(g) for g in getattr(host, "groups", [])],
    )


@contextmanager
def exit_on_bad_input() -> Iterator[None]:
    """In deploy files: an ``LlmrackError`` becomes one clear message and exit code 2, no traceback."""
    import sys

    try:
        yield
    except LlmrackError as exc:
        sys.stderr.write(f"llmrack: {exc}\n")
        raise SystemExit(exc.exit_code) from None


def deploy_specs() -> tuple[HostSpec, list[HostSpec]]:
    """For deploy files: this host's spec and every host's, all validated before any operation is planned.

    Bad input prints one clear message and exits with code 2, so nothing is changed on any host.
    """
    from pyinfra import host

    with exit_on_bad_input():
        specs = [spec_for_pyinfra_host(other) for other in host.inventory]
        return next(s for s in specs if s.name == host.name), specs


def deploy_spec() -> HostSpec:
    """For deploy files: this host's validated spec (see ``deploy_specs``)."""
    return deploy_specs()[0]
