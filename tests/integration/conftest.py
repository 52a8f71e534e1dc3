"""Fixtures of the integration tests: sandbox hosts (real systemd containers over SSH) and testinfra hosts.

A scenario module gets its own sandbox (prefix ``llmrack-test-<pid>-<n>-``, state in a temporary
directory) and destroys it at the end. The host count comes from the module's ``SANDBOX_HOSTS`` (default 1)
or from indirect parametrisation of ``sandbox_state``. The served single-host site (served_site.py) is one
sandbox for the whole session, shared by the modules that override ``sandbox_state`` with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from harness import Sandbox, build_lock, testinfra_hosts
from served_site import build_site

from llmrack import sandbox as sbx
from llmrack.sandbox import SandboxState

# The test command runs the integration modules in two lanes side by side (``--lane NAME``: two pytest
# processes), each lane its modules in this order: the data-safety sandboxes and the served site in one, the other
# sandboxes in the other (about as long). The first lane's first module builds the images and the bundle; the
# second starts with modules that need neither. A module not named here joins the second lane at its end.
# Without ``--lane`` every module runs, one lane after the other.
LANES = {
    "hosts": ["test_base_docker", "test_hardening_host", "test_nvidia_driver_debian", "test_security_host",
              "test_cluster", "test_images", "test_monitoring", "test_reboot_airgap"],
    "site": ["test_data_safety", "test_stack", "test_verify", "test_drills", "test_rotate_secrets"],
}
_ORDER = {m: (i, j) for i, mods in enumerate(LANES.values()) for j, m in enumerate(mods)}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lane", choices=sorted(LANES), help="run only this lane's integration modules")


def _rank(item: pytest.Item) -> tuple[int, int]:
    return _ORDER.get(item.module.__name__.rsplit(".", 1)[-1], (0, len(LANES["hosts"])))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration = [i for i in items if "tests/integration/" in str(i.fspath).replace(os.sep, "/")]
    for item in integration:
        item.add_marker(pytest.mark.integration)
    rank = {id(i): (1, *_rank(i)) for i in integration}
    items.sort(key=lambda i: rank.get(id(i), (0, 0, 0)))  # stable: unit tests first, as collected
    lane = config.getoption("--lane")
    if lane:
        wanted = list(LANES).index(lane)
        dropped = [i for i in integration if _rank(i)[0] != wanted]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [i for i in items if id(i) not in {id(d) for d in dropped}]


@pytest.fixture(scope="session")
def docker_engine_ready() -> None:
    if not sbx.engine_answers():
        if os.geteuid() != 0:  # a failure, not a skip: a skipped sandbox suite would pass for nothing
            pytest.fail("no Docker engine answers and this is not root, so none can be started: run the tests as "
                        "root (bash scripts/test.sh starts dockerd) or start dockerd first")
        sbx.ensure_engine(log=lambda msg: None)
    with build_lock():
        sbx.build_host_image(log=lambda msg: None)


@pytest.fixture(scope="module")
def sandbox_state(request: pytest.FixtureRequest, docker_engine_ready: None,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    n = getattr(request, "param", None) or getattr(request.module, "SANDBOX_HOSTS", 1)
    state_dir = tmp_path_factory.mktemp(f"sandbox{n}")
    with Sandbox(n, state_dir, prefix=f"llmrack-test-{os.getpid()}-{request.module.__name__[-8:]}-{n}-") as state:
        yield state


@pytest.fixture(scope="session")
def served_site(docker_engine_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The air-gapped single-host site of served_site.py (test_stack.py, test_verify.py): built once."""
    state_dir = tmp_path_factory.mktemp("site")
    with Sandbox(2, state_dir, prefix=f"llmrack-test-{os.getpid()}-site-2-") as state:
        yield build_site(state, tmp_path_factory.mktemp("site-inventory"))


@pytest.fixture(scope="module")
def infra_hosts(sandbox_state: SandboxState) -> dict[str, Any]:
    """testinfra hosts of the sandbox, by inventory name (host1, host2, ...)."""
    return testinfra_hosts(sandbox_state)


@pytest.fixture(scope="module")
def host1(infra_hosts: dict[str, Any]) -> Any:
    return infra_hosts["host1"]
