"""The neighbour's view: connect from the admin machine, or from the probe host the tier names
(``acceptance.probe_host``: another host of the inventory, on the hosts' own network), to every TCP port of a
host (1-65535) and fail on any port that answers besides SSH and the gateway (README "Ports each role exposes").

What the admin machine may reach is written here from the README's table, not read from the firewall the
deploy wrote. The service behind an exposed port is named from the host's own ``ss -Htlnp`` (the listening
process) or, for ports Docker publishes, from ``docker ps``.
"""

from __future__ import annotations

import errno
import inspect
import json
import re
import selectors
import shlex
import socket
import time
from collections.abc import Iterable
from typing import Any

from llmrack.verify.checks import CheckContext, CommandFailed, Outcome, check, judge, manual
from llmrack.verify.checks_security import _is_loopback

CONNECT_TIMEOUT_S = 1.5


def allowed_from_the_lan(ctx: CheckContext) -> set[int]:
    """SSH and, on gateway hosts, the gateway's ports; plus what the tier says is allowed."""
    allowed = {22, *ctx.profile.acceptance.exposed_ports_allowed}
    port = ctx.spec.connector.get("ssh_port")
    if port and not _is_loopback(str(ctx.spec.connector.get("ssh_hostname", ""))):
        allowed.add(int(port))
    if "gateway" in ctx.spec.roles:
        gw = ctx.profile.stack.gateway
        allowed |= {p for p in (gw.https_port, gw.http_port) if p}
    return allowed


def scan(address: str, ports: Iterable[int] = range(1, 65536), *, batch: int = 16384,
         timeout_s: float = CONNECT_TIMEOUT_S) -> list[int]:
    """TCP ports of ``address`` that accept a connection from here: non-blocking connects in batches (open:
    the handshake completes; closed: reset; filtered: silent until the batch's deadline, so a firewalled host
    costs ``timeout_s`` a batch: 4 batches for every port). No name lookups."""
    import resource

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < batch + 100 and (hard == resource.RLIM_INFINITY or hard > soft):
        soft = batch + 100 if hard == resource.RLIM_INFINITY else min(hard, batch + 100)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # the process's own limit, up to its hard one
    batch = max(50, min(batch, soft - 100))  # stay under the fd limit
    todo, found = list(ports), []
    for i in range(0, len(todo), batch):
        sel, pending = selectors.DefaultSelector(), {}
        try:
            for port in todo[i:i + batch]:
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setblocking(False)
                if s.connect_ex((address, port)) in (0, errno.EINPROGRESS):
                    sel.register(s, selectors.EVENT_WRITE, port)
                    pending[s] = port
                else:
                    s.close()
            deadline = time.monotonic() + timeout_s
            while pending and (left := deadline - time.monotonic()) > 0:
                for key, _ in sel.select(left):
                    s = key.fileobj
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        found.append(key.data)
                    sel.unregister(s)
                    s.close()
                    del pending[s]
        finally:
            for s in pending:
                s.close()
            sel.close()
    return sorted(found)


def services_behind(ctx: CheckContext, ports: list[int]) -> dict[int, str]:
    """Port -> the process (ss) or container (docker ps) behind it, as the host tells."""
    names: dict[int, str] = {}
    rc, out, _ = ctx.run("ss -Htlnp 2>/dev/null")
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and (port := parts[3].rpartition(":")[2]).isdigit():
            proc = re.search(r'users:\(\("([^"]+)"', line)
            names.setdefault(int(port), proc.group(1) if proc else "unknown process")
    rc, out, _ = ctx.run("docker ps --format '{{.Names}}\t{{.Ports}}' 2>/dev/null")
    for line in out.splitlines():
        name, _, published = line.partition("\t")
        for port in re.findall(r":(\d+)->", published):
            names[int(port)] = f"container {name}"
    return {p: names.get(p, "unknown service") for p in ports}


def scan_script(address: str) -> str:
    """A shell command that runs :func:`scan` with the probe host's python3 and prints the open ports (JSON)."""
    code = (f"from __future__ import annotations\nimport errno, json, selectors, socket, time\n"
            f"CONNECT_TIMEOUT_S = {CONNECT_TIMEOUT_S!r}\n{inspect.getsource(scan)}\n"
            f"print(json.dumps(scan({address!r})))\n")
    return "python3 -c " + shlex.quote(code)


def scan_from(probe: Any, address: str) -> list[int]:
    """The ports of ``address`` open from the probe host (a testinfra host)."""
    r = probe.run(scan_script(address))
    if r.rc != 0:
        raise CommandFailed(f"the scan on the probe host failed: {(r.stderr or r.stdout).strip()[-300:]}")
    return sorted(int(p) for p in json.loads(r.stdout.strip().splitlines()[-1]))


@check("sec.exposure", "A port scan from the LAN finds only SSH and the gateway", "security",
       "局域网端口扫描仅见 SSH 与网关", "A LAN port scan finds only SSH and the gateway", "llmrack")
def sec_exposure(ctx: CheckContext) -> Outcome:
    allowed = allowed_from_the_lan(ctx)
    threshold = sorted(allowed)
    probe = ctx.profile.acceptance.probe_host
    if probe and probe != ctx.spec.name and getattr(ctx, "peer", None) is not None and not ctx.local:
        if ctx.inventory is not None and probe not in {h.name for h in ctx.inventory.hosts}:
            return Outcome("error", f"acceptance.probe_host: no host {probe!r} in the inventory", None, threshold)
        where = f"the probe host {probe}"
        reachable = scan_from(ctx.peer(probe), ctx.spec.address)
    else:
        if ctx.local:
            return manual("a neighbour's view needs another machine", "run `llmrack verify INVENTORY` from the "
                          "admin machine (over SSH) or scan the host's TCP ports from another host on its network",
                          threshold)
        if _is_loopback(ctx.spec.address):
            return manual(f"the host address {ctx.spec.address} is a loopback address: no neighbour's view from here",
                          "scan the host's TCP ports from another host on its network", threshold)
        where = "the admin machine"
        reachable = scan(ctx.spec.address)
    exposed = [p for p in reachable if p not in allowed]
    value = {"from": where, "reachable": reachable, "exposed": exposed}
    if not exposed:
        return judge(True, f"open from {where}: {', '.join(map(str, reachable)) or 'none'} (all allowed)", value,
                     threshold)
    behind = services_behind(ctx, exposed)
    names = ", ".join(f"{p} ({behind[p]})" for p in exposed)
    return judge(False, f"open from {where} besides SSH and the gateway: {names}", value, threshold)
