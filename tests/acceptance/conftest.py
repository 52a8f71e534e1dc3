"""The acceptance suite users run: one pytest test per host x check of the llmrack checklist.

    pytest tests/acceptance --inventory inventories/office.py [--only software,hardware] [--ssh-config FILE]
    pytest tests/acceptance --local --tier standard

It wraps the same check registry as ``llmrack verify`` (which also writes the reports).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmrack.config import load_inventory
from llmrack.verify import checks, suite


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("llmrack acceptance")
    g.addoption("--inventory", help="pyinfra inventory file of the hosts to check")
    g.addoption("--local", action="store_true", help="check this machine (testinfra local://)")
    g.addoption("--tier", help="with --local and no inventory: the tier to check against")
    g.addoption("--only", help="comma list of categories or check ids")


USAGE = ("the acceptance suite needs hosts to check: pytest tests/acceptance --inventory FILE "
         "(or --local --tier TIER)")


def pytest_configure(config: pytest.Config) -> None:
    """No hosts given: stop at once with exit code 2 and the usage line (a run that checked nothing is not green)."""
    if config.getoption("--help", default=False) or config.getoption("--collectonly", default=False):
        return
    if not config.getoption("--inventory") and not (config.getoption("--local") and config.getoption("--tier")):
        pytest.exit(USAGE, returncode=2)


def _inventory(config: pytest.Config):
    inv = config.getoption("--inventory")
    if inv:
        return load_inventory(inv)
    if config.getoption("--local") and config.getoption("--tier"):
        return suite.local_inventory(config.getoption("--tier"), Path.cwd())
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "host_check" not in metafunc.fixturenames:
        return
    inv = _inventory(metafunc.config)
    if inv is None:  # --collect-only without hosts: nothing to list
        metafunc.parametrize("host_check", [])
        return
    only_opt = metafunc.config.getoption("--only")
    only = {o.strip() for o in only_opt.split(",") if o.strip()} if only_opt else None
    params = [(h.name, c.id) for h in inv.hosts for c in checks.select(only)]
    metafunc.parametrize("host_check", params, ids=[f"{h}-{c}" for h, c in params])


class _Hosts:
    """Check contexts per host, built on first use as ``llmrack verify`` builds them (``suite.connect`` and
    ``suite.host_context``: the same reachability test, burn-in result and probe hosts), over the connections of
    the session (``suite.Connections``: one ssh_config with ControlMaster, closed at the end)."""

    def __init__(self, inventory: Any, conns: suite.Connections):
        self.inv = inventory
        self.conns = conns
        self.contexts: dict[str, checks.CheckContext | Exception] = {}

    def context(self, name: str) -> checks.CheckContext:
        if name not in self.contexts:
            spec = next(h for h in self.inv.hosts if h.name == name)
            host, _url, problem = suite.connect(spec, self.conns.data.get(name, {}), local=self.conns.local,
                                                ssh_config=self.conns.ssh_config)
            self.contexts[name] = RuntimeError(problem) if problem else suite.host_context(
                host, spec, self.inv, local=self.conns.local, log=lambda m: None, peer=self.conns.peer)
        ctx = self.contexts[name]
        if isinstance(ctx, Exception):
            raise ctx
        return ctx


@pytest.fixture(scope="session")
def acceptance_hosts(request: pytest.FixtureRequest) -> Iterator[_Hosts]:
    inv = _inventory(request.config)
    given = request.config.getoption("ssh_config", default=None)  # pytest-testinfra's --ssh-config
    with suite.Connections(inv, inv.hosts, local=bool(request.config.getoption("--local")),
                           ssh_config=Path(given) if given else None) as conns:
        yield _Hosts(inv, conns)
