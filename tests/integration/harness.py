"""Integration harness: sandbox hosts, pyinfra runs parsed from ``--json``, testinfra hosts over SSH.

Used by tests/integration and bench/. Nothing here calls deploy code: pyinfra runs as a subprocess, exactly
as a user runs it, and verification goes through testinfra over real SSH. The test command runs the integration
modules in two lanes side by side (conftest.py); what the lanes share on this machine (the sandbox host image,
the service images, the offline bundle, the download caches) is built under :func:`build_lock`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrack import sandbox
from llmrack.sandbox import SandboxState

PROJECT = Path(__file__).resolve().parents[2]
PYINFRA = Path(sys.executable).parent / "pyinfra"
SANDBOX_INVENTORY = PROJECT / "inventories" / "sandbox.py"
BUNDLE = PROJECT / ".llmrack" / "bundle"  # the default bundle path; the builder is incremental


def build_lock():  # noqa: ANN201 - a context manager
    """One builder at a time on this machine: the test lanes wait for each other (the project's cache lock)."""
    from llmrack.images import cache_lock

    return cache_lock("test-lanes")


def sandbox_bundle() -> Path:
    """The sandbox tier's offline bundle (stack and monitoring images, tiny model, APT repository, compose .deb),
    brought up to date under :func:`build_lock`."""
    from llmrack.bundle import build_bundle_for_tier
    from llmrack.config import load_tier

    with build_lock():
        build_bundle_for_tier(load_tier("sandbox", PROJECT), BUNDLE, project_dir=PROJECT, log=lambda msg: None)
    return BUNDLE


@dataclass
class OperationResult:
    name: str
    changed: list[str]  # hosts where it ran and changed something (pyinfra: "success")
    no_change: list[str]
    error: list[str]


@dataclass
class PyinfraResult:
    """One ``pyinfra --json`` run: the plan and, unless dry, per-operation results per host."""

    returncode: int
    dry: bool
    wall_s: float
    plan: list[dict[str, Any]]
    operations: list[OperationResult]
    failed_hosts: list[str]
    stderr: str
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def changes(self, host: str | None = None) -> int:
        """Operations that changed something (on ``host``, or summed over all hosts)."""
        return sum(len(op.changed) if host is None else int(host in op.changed) for op in self.operations)

    def planned_changes(self, host: str | None = None) -> int:
        """Operations the plan says will (or may) change something."""
        n = 0
        for op in self.plan:
            hosts = op["hosts_with_change"] + op["hosts_with_conditional_change"]
            n += len(hosts) if host is None else int(host in hosts)
        return n

    def errors(self) -> dict[str, list[str]]:
        return {op.name: op.error for op in self.operations if op.error}

    def changed_ops(self, host: str | None = None) -> list[str]:
        return [op.name for op in self.operations if (op.changed if host is None else host in op.changed)]

    def op(self, name_part: str) -> OperationResult:
        hits = [op for op in self.operations if name_part in op.name]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} operations match {name_part!r}: {[op.name for op in hits]}")
        return hits[0]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failed_hosts and not self.errors()


def parse_pyinfra_json(stdout: str) -> dict[str, Any]:
    """The JSON document pyinfra 3.10 prints with ``--json`` (``{"plan": [...], "results": {...}|null}``)."""
    start = stdout.find("{")
    if start < 0:
        raise ValueError(f"pyinfra printed no JSON: {stdout[-500:]!r}")
    return json.JSONDecoder().raw_decode(stdout[start:])[0]


def run_pyinfra(
    inventory: str | Path, deploy: str | Path, *, dry: bool = False, env: dict[str, str] | None = None,
    extra_args: list[str] | None = None, timeout: int = 900, expect_json: bool = True,
    program: list[str] | None = None,
) -> PyinfraResult:
    """Run ``pyinfra -y --json INVENTORY DEPLOY`` (``--json --dry`` when dry) from the project root and
    parse its JSON output. With ``expect_json=False`` a run that stops before printing JSON (an error
    while preparing operations) is returned with empty results instead of failing the test. ``program``
    replaces the pyinfra command (a benchmark's variant of it)."""
    # -y skips change detection: a dry run goes without it, so its plan says what would change
    pyinfra = program or [str(PYINFRA)]
    cmd = [*pyinfra, "--json", "--dry"] if dry else [*pyinfra, "-y", "--json"]
    cmd += [*(extra_args or []), str(inventory), str(deploy)]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYINFRA_PROGRESS": "off", **(env or {})})
    wall = time.monotonic() - start
    try:
        data = parse_pyinfra_json(done.stdout)
    except ValueError as exc:
        if not expect_json:
            return PyinfraResult(returncode=done.returncode, dry=dry, wall_s=wall, plan=[], operations=[],
                                 failed_hosts=[], stderr=done.stderr)
        raise AssertionError(f"pyinfra failed before printing results (rc {done.returncode}):\n"
                             f"{done.stderr[-3000:]}") from exc
    results = data.get("results") or {}
    ops = [
        OperationResult(name=op["name"], changed=op["success"], no_change=op["no_change"], error=op["error"])
        for op in results.get("operations", [])
    ]
    return PyinfraResult(returncode=done.returncode, dry=dry, wall_s=wall, plan=data.get("plan", []),
                         operations=ops, failed_hosts=results.get("failed_hosts", []), stderr=done.stderr,
                         raw=data)


def assert_no_changes(result: PyinfraResult) -> None:
    """A converged host: the run succeeded and not one operation changed anything."""
    assert result.ok, f"run failed: errors={result.errors()} failed_hosts={result.failed_hosts}\n" \
                      f"{result.stderr[-2000:]}"
    changed = {op.name: op.changed for op in result.operations if op.changed}
    assert not changed, f"a converged host changed again: {changed}"


def assert_converged(result: PyinfraResult) -> None:
    assert result.ok, f"run failed: errors={result.errors()} failed_hosts={result.failed_hosts}\n" \
                      f"{result.stderr[-3000:]}"


def sandbox_env(state: SandboxState) -> dict[str, str]:
    """Environment pointing inventories/sandbox.py at this sandbox."""
    return {"LLMRACK_SANDBOX_DIR": state.state_dir}


_DEPLOY_USER_INVENTORY = '''
from llmrack.sandbox import SandboxState

_state = SandboxState.load({state_dir!r})
sandbox = [
    (h.name, {{
        "tier": "sandbox", "address": h.address, "roles": ["inference", "gateway", "monitoring"],
        "ssh_hostname": "127.0.0.1", "ssh_port": h.ssh_port, "ssh_user": "deploy", "_sudo": True,
        "ssh_key": h.key_path, "ssh_strict_host_key_checking": "no", "ssh_known_hosts_file": "/dev/null",
    }})
    for h in _state.hosts
]
'''


def deploy_user_inventory(state: SandboxState) -> str:
    """An inventory of ``state``'s hosts reached as the ``deploy`` user with sudo (root's login refused once the
    security role has run), for the host-security test and its Lynis benchmark."""
    return _DEPLOY_USER_INVENTORY.format(state_dir=state.state_dir)


def testinfra_hosts(state: SandboxState) -> dict[str, Any]:
    """testinfra hosts (name -> Host) reached through the sandbox's ssh_config (with ControlMaster)."""
    import testinfra

    return {h.name: testinfra.get_host(f"ssh://{h.name}", ssh_config=state.ssh_config) for h in state.hosts}


class Sandbox:
    """A sandbox of ``n_hosts`` hosts for one test scenario (``with Sandbox(...) as state``)."""

    def __init__(self, n_hosts: int, state_dir: Path, prefix: str | None = None, log=None):
        self.n_hosts = n_hosts
        self.state_dir = Path(state_dir)
        self.prefix = prefix or f"llmrack-test-{os.getpid()}-{n_hosts}-"
        self.log = log or (lambda msg: None)
        self.state: SandboxState | None = None

    def __enter__(self) -> SandboxState:
        try:
            self.state = sandbox.up(self.n_hosts, prefix=self.prefix, state_dir=self.state_dir, log=self.log)
        except BaseException:
            sandbox.down(prefix=self.prefix, state_dir=self.state_dir, log=self.log)
            raise
        return self.state

    def __exit__(self, *exc: object) -> None:
        sandbox.down(prefix=self.prefix, state_dir=self.state_dir, log=self.log)


def container(state: SandboxState, name: str):
    import docker

    return docker.from_env().containers.get(state.host(name).container)
