"""Run the acceptance checklist on every host of an inventory (over SSH, or on this machine with ``local``).

``verify()`` returns a ``VerifyResult``; its ``exit_code`` is 0 when no check failed or broke (every line
passed, is not applicable with its reason, or is left to a person with ``manual`` and its procedure), 1 when a
check failed (measured outside its threshold, or expected by the inventory and not deployed) or broke, 2 when a
host could not be reached at all. The statuses are defined in ``llmrack.verify.outcome``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llmrack.checkresult import CheckResult
from llmrack.config import HostSpec, Inventory, load_tier
from llmrack.errors import LlmrackError
from llmrack.progress import Step
from llmrack.secrets import AdminSecrets
from llmrack.tls import trust_anchor
from llmrack.verify.checklist import collect_burnin
from llmrack.verify.checks import CheckContext, CommandFailed, Outcome, select
from llmrack.verify.report import write_reports
from llmrack.verify.verdict import HostResult, VerifyResult

Log = Callable[[str], Any]


# -------------------------------------------------------------------------------------------------- hosts


def local_inventory(tier: str, project_dir: Path | None = None, *, name: str | None = None) -> Inventory:
    """A one-host inventory for ``--local --tier T`` (this machine, every role)."""
    import socket

    project = Path(project_dir) if project_dir else None
    profile = load_tier(tier, project)
    spec = HostSpec(name=name or socket.gethostname(), address="127.0.0.1",
                    roles=["inference", "gateway", "monitoring"], tier=tier, profile=profile)
    return Inventory(path=f"(local, tier {tier})", project_dir=str(project or Path.cwd()), hosts=[spec])


def connector_data(inventory: Inventory) -> dict[str, dict[str, Any]]:
    """Host name -> pyinfra connector data (ssh_hostname, ssh_port, ssh_user, ssh_key, _sudo ...).

    ``load_inventory`` keeps each host's connector keys on its ``HostSpec.connector``.
    """
    return {h.name: dict(getattr(h, "connector", None) or {}) for h in inventory.hosts}


def render_ssh_config(hosts: Mapping[str, Mapping[str, Any]], control_dir: str) -> str:
    """An ssh_config with one ``Host`` block per inventory host, sharing connections (ControlMaster)."""
    lines = ["# written by llmrack verify for this run"]
    for name, data in hosts.items():
        lines += [f"Host {name}", f"    HostName {data.get('ssh_hostname') or name}"]
        if data.get("ssh_port"):
            lines.append(f"    Port {int(data['ssh_port'])}")
        lines.append(f"    User {data.get('ssh_user') or 'root'}")
        if data.get("ssh_key"):
            lines += [f"    IdentityFile {os.path.expanduser(str(data['ssh_key']))}", "    IdentitiesOnly yes"]
        if str(data.get("ssh_strict_host_key_checking", "")).lower() in ("no", "off", "false"):
            lines.append("    StrictHostKeyChecking no")
        if data.get("ssh_known_hosts_file"):
            lines.append(f"    UserKnownHostsFile {data['ssh_known_hosts_file']}")
        lines += ["    BatchMode yes", "    ConnectTimeout 15", "    LogLevel ERROR", "    ControlMaster auto",
                  f"    ControlPath {control_dir}/%C", "    ControlPersist 120s", ""]
    return "\n".join(lines)


def _config_has_host(ssh_config: Path, name: str) -> bool:
    try:
        for line in ssh_config.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].lower() == "host" and name in parts[1:]:
                return True
    except OSError:
        pass
    return False


def testinfra_host(spec: HostSpec, data: Mapping[str, Any], *, local: bool, ssh_config: Path | None) -> tuple[Any, str]:
    """(testinfra host, connection URL) of one host."""
    import testinfra

    if local:
        return testinfra.get_host("local://"), "local://"
    sudo = "?sudo=true" if data.get("_sudo") and (data.get("ssh_user") or "root") != "root" else ""
    if ssh_config is None:
        raise LlmrackError("an ssh_config is needed for SSH hosts", field="ssh_config")
    if _config_has_host(ssh_config, spec.name):
        url = f"ssh://{spec.name}{sudo}"
    else:
        user = data.get("ssh_user") or "root"
        port = f":{int(data['ssh_port'])}" if data.get("ssh_port") else ""
        url = f"ssh://{user}@{data.get('ssh_hostname') or spec.name}{port}{sudo}"
    return testinfra.get_host(url, ssh_config=str(ssh_config)), url


def connect(spec: HostSpec, data: Mapping[str, Any], *, local: bool,
            ssh_config: Path | None) -> tuple[Any, str, str]:
    """(testinfra host, connection URL, problem): ``problem`` is empty when the host answers a command, else
    it says why the host cannot be reached."""
    host, url = testinfra_host(spec, data, local=local, ssh_config=ssh_config)
    try:
        r = host.run("true")
        if r.rc != 0:
            raise RuntimeError((r.stderr or r.stdout).strip() or f"exit {r.rc}")
    except Exception as exc:  # whatever the connection raised is the reason the host is unreachable
        return host, url, f"cannot reach {spec.name} ({url}): {str(exc)[:300]}"
    return host, url, ""


class Connections:
    """The connections of one run, shared by its hosts: the given ssh_config, or one generated from the
    inventory's ssh_* data with ControlMaster in a temporary directory (covering the checked hosts and the
    probe hosts they are scanned from); ``peer`` opens another inventory host by name. Leaving the ``with``
    block closes the shared connections and removes the directory."""

    def __init__(self, inventory: Inventory, specs: Sequence[HostSpec], *, local: bool,
                 ssh_config: Path | None = None):
        self.local = local
        self.data = {} if local else connector_data(inventory)
        self.ssh_config = ssh_config
        self._by_name = {h.name: h for h in inventory.hosts}
        probes = {s.profile.acceptance.probe_host for s in specs} & set(self._by_name)  # hosts verify scans from
        self._connected = [*specs, *(self._by_name[n] for n in sorted(probes) if n not in {s.name for s in specs})]
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._peers: dict[str, Any] = {}

    def __enter__(self) -> Connections:
        if not self.local and self.ssh_config is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="llmrack-verify-")
            cm = Path(self._tmp.name) / "cm"
            cm.mkdir(mode=0o700)
            self.ssh_config = Path(self._tmp.name) / "ssh_config"
            self.ssh_config.write_text(render_ssh_config({s.name: self.data.get(s.name, {}) for s in self._connected},
                                                         str(cm)))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is None:
            return
        for spec in self._connected:  # close the shared connections before their sockets' directory goes
            subprocess.run(["ssh", "-F", str(self.ssh_config), "-O", "exit", "--", spec.name], capture_output=True,
                           timeout=30, check=False)
        self._tmp.cleanup()

    @property
    def peer(self) -> Callable[[str], Any] | None:
        """Another inventory host by name (a testinfra host), opened on first use; None for a local run."""
        return None if self.local else self._peer

    def _peer(self, name: str) -> Any:
        if name not in self._peers:
            self._peers[name] = testinfra_host(self._by_name[name], self.data.get(name, {}), local=False,
                                               ssh_config=self.ssh_config)[0]
        return self._peers[name]


def find_api_key(project_dir: str | Path, host: str, clients: Sequence[str]) -> str | None:
    """The gateway key to test with (``llmrack.secrets.AdminSecrets.client_key``: ``$LLMRACK_API_KEY``, else
    the key of the first of the host's ``stack.gateway.api_clients``); read only."""
    return AdminSecrets(project_dir).client_key(host, clients)


def check_context(host: Any, spec: HostSpec, inventory: Inventory, *, local: bool, **kw: Any) -> CheckContext:
    """The context the checks of ``spec`` run in: its testinfra ``host``, the client key and the gateway's CA
    from this machine's secrets (read only)."""
    ca, ca_problem = gateway_trust(inventory.project_dir, spec)
    return CheckContext(host=host, spec=spec, inventory=inventory, local=local,
                        api_key=find_api_key(inventory.project_dir, spec.name, spec.profile.stack.gateway.api_clients),
                        secrets=AdminSecrets(inventory.project_dir), gateway_ca=ca, gateway_ca_problem=ca_problem,
                        **kw)


def host_context(host: Any, spec: HostSpec, inventory: Inventory, *, local: bool, log: Log,
                 burnin: dict[str, Any] | None = None, **kw: Any) -> CheckContext:
    """:func:`check_context` of a reachable host with its burn-in result: the one given, else the one
    ``llmrack burnin`` saved on the host (``hw.burnin`` judges it)."""
    if burnin is None:
        burnin = collect_burnin(host)
    return check_context(host, spec, inventory, local=local, log=log, burnin=burnin, **kw)


def gateway_trust(project_dir: str | Path, spec: HostSpec) -> tuple[Path | None, str]:
    """(CA file, problem): what the host's gateway certificate is checked against, or why it cannot be."""
    if not spec.has_role("gateway"):
        return None, ""
    try:
        return trust_anchor(project_dir, spec.name, spec.profile.stack.gateway.tls), ""
    except LlmrackError as exc:
        return None, str(exc)


# -------------------------------------------------------------------------------------------------- runner


def run_checks(ctx: CheckContext, only: set[str] | None, log: Log, step: Step | None = None) -> list[CheckResult]:
    """The selected checks on one host, in order; a line each (``k/n`` counted), ``step`` before each."""
    results = []
    chosen = select(only)
    for i, chk in enumerate(chosen):
        if step:
            step(f"{ctx.spec.name} {chk.id}", i, len(chosen))
        t0 = time.monotonic()
        try:
            outcome = chk.func(ctx)
        except CommandFailed as exc:
            outcome = Outcome("error", str(exc))
        except Exception as exc:  # a check that breaks is reported, the others still run
            outcome = Outcome("error", f"{type(exc).__name__}: {exc}"[:500])
        res = CheckResult(
            id=chk.id, title=chk.title, category=chk.category, checklist_zh=chk.checklist.zh,
            checklist_en=chk.checklist.en, checklist_source=chk.checklist.source, status=outcome.status,
            message=outcome.message, value=outcome.value, threshold=outcome.threshold,
            how=outcome.how, duration_s=time.monotonic() - t0, details=outcome.details,
        )
        how = f" (how: {res.how})" if res.how else ""
        log(f"{ctx.spec.name} {i + 1}/{len(chosen)}: {res.status.upper():14} {res.id}: {res.message}{how}")
        results.append(res)
    if step:
        step(ctx.spec.name, len(chosen), len(chosen))
    return results


def verify(
    inventory: Inventory, *, only: set[str] | None = None, local: bool = False, report_dir: Path | None = None,
    ssh_config: Path | None = None, log: Log = print, burnin: Mapping[str, dict[str, Any]] | None = None,
    hosts: set[str] | None = None, full: bool = False, sign_off: Mapping[str, dict[str, Any]] | None = None,
    step: Step | None = None,
) -> VerifyResult:
    """Run the checklist on every host (or those named in ``hosts``) and write the reports to ``report_dir``.

    ``only``: categories (``llmrack.checkresult.CATEGORIES``) and/or check ids.
    ``ssh_config``: an existing ssh_config (its ``Host <name>`` blocks are used when present); by default one
    is generated from the inventory's ssh_* data with ControlMaster in a temporary directory.
    ``burnin``: host name -> ``llmrack burnin`` JSON, judged by ``hw.burnin`` and plotted in the report; a host
    without one given here is asked for the result ``llmrack burnin`` saved on it (``BURNIN_RESULT_PATH``).
    ``full``: the seed's full test durations. ``sign_off``: check id -> the engineer's sign-off of a manual line.
    ``step``: progress, ``(host and check, checks done, checks of the host)`` before each check.
    """
    started = time.time()
    t0 = time.monotonic()
    specs = [h for h in inventory.hosts if not hosts or h.name in hosts]
    for s in specs:  # a broken secret file on this machine stops here, before any host is contacted
        find_api_key(inventory.project_dir, s.name, s.profile.stack.gateway.api_clients)
    results: list[HostResult] = []
    with Connections(inventory, specs, local=local, ssh_config=ssh_config) as conns:
        for spec in specs:
            results.append(verify_host(spec, inventory, conns.data.get(spec.name, {}), only=only, local=local,
                                       ssh_config=conns.ssh_config, log=log, burnin=(burnin or {}).get(spec.name),
                                       full=full, sign_off=dict(sign_off or {}), peer=conns.peer, step=step))
    result = VerifyResult(inventory=inventory.path, hosts=results, started_at=started,
                          duration_s=time.monotonic() - t0, only=sorted(only) if only else None, local=local)
    if report_dir is not None:
        result.report_files = [str(p) for p in write_reports(result, Path(report_dir))]
    return result


def verify_host(
    spec: HostSpec, inventory: Inventory, data: Mapping[str, Any], *, only: set[str] | None, local: bool,
    ssh_config: Path | None, log: Log, burnin: dict[str, Any] | None = None, full: bool = False,
    sign_off: dict[str, dict[str, Any]] | None = None, peer: Callable[[str], Any] | None = None,
    step: Step | None = None,
) -> HostResult:
    t0 = time.monotonic()
    host, url, problem = connect(spec, data, local=local, ssh_config=ssh_config)
    hr = HostResult(name=spec.name, address="127.0.0.1" if local else spec.address, tier=spec.tier,
                    roles=list(spec.roles), reachable=True, connection=url, burnin=burnin)
    if problem:
        hr.reachable = False
        hr.error = problem
        log(f"{spec.name}: UNREACHABLE: {hr.error}")
        hr.duration_s = time.monotonic() - t0
        return hr
    ctx = host_context(host, spec, inventory, local=local, log=log, burnin=burnin, full=full, sign_off=sign_off,
                       peer=peer)
    hr.burnin = ctx.burnin
    hr.checks = run_checks(ctx, only, log, step)
    bench = ctx.cache.get("bench")
    hr.bench = bench if isinstance(bench, dict) else None
    hr.duration_s = time.monotonic() - t0
    return hr


def print_summary(result: VerifyResult, console: Any) -> None:
    """A table per host on a rich console."""
    from rich.table import Table

    colour = {"pass": "green", "fail": "red", "error": "red", "not_applicable": "dim", "manual": "yellow"}
    for h in result.hosts:
        t = Table(title=f"{h.name} ({h.tier}, {h.connection}): {h.status}", title_justify="left")
        for col in ("check", "status", "value", "threshold", "message"):
            t.add_column(col, overflow="fold")
        if not h.reachable:
            t.add_row("(host)", "[red]unreachable[/]", "", "", h.error)
        for c in h.checks:
            msg = c.message + (f" — how: {c.how}" if c.how else "")
            t.add_row(c.id, f"[{colour[c.status]}]{c.status}[/]", _short(c.value), _short(c.threshold), msg)
        console.print(t)
    s = result.summary()
    console.print(f"verdict: {s['verdict']} ({s['pass']} passed, {s['fail']} failed, {s['error']} errors, "
                  f"{s['not_applicable']} not applicable, {s['manual']} left to a person on {s['hosts']} host(s))")
    for f in result.report_files:
        console.print(f"report: {f}")


def _short(value: Any, n: int = 60) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= n else text[: n - 1] + "…"
