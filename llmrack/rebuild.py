"""Operations on one host of an inventory that go beyond a converge: a backup now, a restore, a rebuild.

Thin over the same pieces users run by hand: ``pyinfra INVENTORY deploys/backup.py --limit HOST`` to converge
the backup role, then the host-side scripts (``llmrack-backup``, ``llmrack-restore``) over SSH with the
inventory's connection data. Bad input (unknown host, no backup yet, an unknown snapshot id) is an
``LlmrackError`` raised before anything changes.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmrack import backup as b
from llmrack.config import HostSpec, Inventory
from llmrack.errors import LlmrackError
from llmrack.stack.smoke import smoke_inventory

Log = Callable[[str], Any]


def host_of(inventory: Inventory, name: str) -> HostSpec:
    for spec in inventory.hosts:
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in inventory.hosts)
    raise LlmrackError(f"no host {name!r} in the inventory (known: {known})", source=inventory.path, field="--host")


def ssh_command(connector: dict[str, Any], remote: str) -> list[str]:
    """``ssh`` argv running ``remote`` on a host, from its pyinfra connection data."""
    cmd = ["ssh", "-o", "BatchMode=yes"]
    if connector.get("ssh_port"):
        cmd += ["-p", str(connector["ssh_port"])]
    if connector.get("ssh_key"):
        cmd += ["-i", str(connector["ssh_key"])]
    if str(connector.get("ssh_strict_host_key_checking", "")).lower() == "no":
        cmd += ["-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR"]
    if connector.get("ssh_known_hosts_file"):
        cmd += ["-o", f"UserKnownHostsFile={connector['ssh_known_hosts_file']}"]
    user = connector.get("ssh_user")
    address = str(connector.get("ssh_hostname") or "")
    cmd.append(f"{user}@{address}" if user else address)
    cmd.append(remote)
    return cmd


def remote(spec: HostSpec, command: str, *, timeout: int = 3600) -> subprocess.CompletedProcess:
    return subprocess.run(ssh_command(spec.connector, command), capture_output=True, text=True, timeout=timeout)


def converge(inventory_path: Path, project_dir: Path, deploy: str, host: str, *, log: Log = print) -> float:
    """``pyinfra -y INVENTORY deploys/DEPLOY.py --limit HOST``; returns its wall time, raises when it fails."""
    pyinfra = Path(sys.executable).with_name("pyinfra")
    cmd = [str(pyinfra) if pyinfra.exists() else "pyinfra", "-y", str(Path(inventory_path).resolve()),
           str(project_dir / "deploys" / f"{deploy}.py"), "--limit", host]
    t0 = time.monotonic()
    done = subprocess.run(cmd, cwd=project_dir, capture_output=True, text=True)
    if done.returncode != 0:
        log(done.stdout[-3000:] + done.stderr[-3000:])
        raise RuntimeError(f"deploys/{deploy}.py failed on {host} (exit {done.returncode})")
    return time.monotonic() - t0


def snapshots(spec: HostSpec) -> list[dict[str, Any]]:
    """The host's snapshots in its repository (oldest first); an empty or missing repository is none."""
    done = remote(spec, f"test -f {b.ENV_FILE} || exit 3; {b.snapshots_command()}", timeout=600)
    if done.returncode == 3:
        raise LlmrackError(f"{spec.name} has no backup configured yet: run `llmrack backup` first", field="--host")
    if done.returncode != 0:
        if "does not exist" in done.stderr or "unable to open config" in done.stderr:
            return []
        raise RuntimeError(f"restic snapshots failed on {spec.name}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout or "[]") or []


def pick_snapshot(found: list[dict[str, Any]], wanted: str | None, host: str) -> str:
    if not found:
        raise LlmrackError(f"{host} has no backup yet: run `llmrack backup` first", field="--host")
    if not wanted or wanted == "latest":
        return found[-1]["short_id"]
    b.check_snapshot_id(wanted)
    for s in found:
        if s["id"].startswith(wanted) or s.get("short_id") == wanted:
            return s["short_id"]
    raise LlmrackError(f"{host} has no snapshot {wanted!r} (have: {', '.join(s['short_id'] for s in found)})",
                       field="--snapshot")


def run_backup(spec: HostSpec) -> tuple[b.BackupRun | None, str, int]:
    """Start the backup service now and wait; (what it saved, its log, exit status)."""
    log = shlex.quote(f"{spec.profile.backup.directory}/last-run.log")
    done = remote(spec, f"systemctl start {b.SERVICE}; rc=$?; cat {log} 2>/dev/null; exit $rc")
    text = done.stdout + done.stderr
    try:
        return b.parse_backup_output(done.stdout), text, done.returncode
    except LlmrackError:
        return None, text, done.returncode or 1


def run_restore(spec: HostSpec, snapshot: str, *, with_secrets: bool = False) -> tuple[dict, str, int]:
    done = remote(spec, b.restore_command(snapshot, with_secrets=with_secrets))
    return b.parse_restore_output(done.stdout), done.stdout + done.stderr, done.returncode


def rebuild(inventory_path: Path, inventory: Inventory, name: str, *, snapshot: str | None = None,
            log: Log = print) -> dict[str, float]:
    """A server replaced or reinstalled under the same inventory name, back with its data. Returns the
    seconds of each phase:

    converge   ``deploys/full_stack.py`` from bare (keys and passwords from the admin machine, never new ones
               when it has them), which installs restic and the backup settings pointing at the repository;
    restore    the latest (or given) snapshot with the host-side secrets: the vector store is replaced and its
               row/point counts checked against the snapshot's manifest while the writers are stopped;
    reconcile  ``deploys/stack.py`` again: secrets restored on the host are read back to the admin machine
               and every file agrees with them;
    verify     the smoke test through the gateway (a chat completion, a RAG round trip with a client key).
    """
    spec = host_of(inventory, name)
    if not spec.profile.backup.enabled:
        raise LlmrackError(f"backups are disabled for {name}: there is nothing to restore", field="backup.enabled")
    if spec.profile.backup.repository.startswith(spec.profile.backup.directory):
        log(f"warning: the repository {spec.profile.backup.repository} is on {name} itself; after a disk loss "
            "there is nothing to restore from")
    project = Path(inventory.project_dir)
    phases: dict[str, float] = {}
    log(f"{name}: converge from bare (deploys/full_stack.py)")
    phases["converge"] = converge(inventory_path, project, "full_stack", name, log=log)
    t0 = time.monotonic()
    chosen = pick_snapshot(snapshots(spec), snapshot, name)
    log(f"{name}: restore snapshot {chosen}")
    counts, text, rc = run_restore(spec, chosen, with_secrets=True)
    if rc != 0:
        log(text[-4000:])
        raise RuntimeError(b.restore_failure(name, counts, rc, directory=spec.profile.backup.directory)
                           + "; not sending it traffic")
    for what, (want, have) in sorted(counts.items()):
        log(f"  {what}: {have} of {want}")
    phases["restore"] = time.monotonic() - t0
    log(f"{name}: reconcile (deploys/stack.py)")
    phases["reconcile"] = converge(inventory_path, project, "stack", name, log=log)
    t0 = time.monotonic()
    one = inventory.model_copy(update={"hosts": [spec]})
    results = smoke_inventory(one, log=log) if spec.has_role("gateway") else []
    deadline = time.monotonic() + 300  # model servers the reconcile restarted may still be loading (503)
    while any(not r.ok and "HTTP 503" in r.line() for r in results) and time.monotonic() < deadline:
        time.sleep(10)
        results = smoke_inventory(one, log=log)
    phases["verify"] = time.monotonic() - t0
    bad = [r.line() for r in results if not r.ok]
    if bad:
        raise RuntimeError(f"{name} is back but does not pass the smoke test: {'; '.join(bad)}")
    return phases
