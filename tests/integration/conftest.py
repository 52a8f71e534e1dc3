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
from harness import Sandbox, testinfra_hosts
from served_site import build_site

from llmrack import sandbox as sbx
from llmrack.sandbox import SandboxState


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def docker_engine_ready() -> None:
    if not sbx.engine_answers():
        if os.geteuid() != 0:  # a failure, not a skip: a skipped sandbox suite would pass for nothing
            pytest.fail("no Docker engine answers and this is not root, so none can be started: run the tests as "
                        "root (bash scripts/test.sh starts dockerd) or start dockerd first")
        sbx.ensure_engine(log=lambda msg: None)
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
