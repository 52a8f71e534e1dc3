"""Roles across the hosts of an inventory: the rules a cluster must keep, and the sandbox's role layouts.

A cluster (seed 001 §4.1: one to eight nodes) is one inventory whose hosts split the roles: a gateway (nginx,
the vector store, the embeddings service) that balances ``/v1/*`` across every inference host with least
connections, inference nodes (vLLM, published for the gateway and Prometheus), and one monitoring host.

Rules, checked on the admin machine before any host is contacted (bad input, exit 2):

* inference hosts need a gateway host (clients reach models only through a gateway);
* a gateway needs at least one inference host somewhere in the inventory;
* two or more gateways need ``stack.gateway.virtual_address`` set to the one address clients use, the same on
  each of them (llmrack does not run a virtual-address daemon; with none, clients would have to pick a host);
* at most one monitoring host (one Prometheus scrapes everything; two would double every alert).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from llmrack.config import ALL_ROLES, HostRole, HostSpec
from llmrack.errors import LlmrackError

ENV_ROLES = "LLMRACK_SANDBOX_ROLES"
PRESETS = ("all", "cluster")
_ENTRY = re.compile(r"^(?P<hosts>[a-z0-9][a-z0-9,-]*)=(?P<roles>[a-z,]+)$")


def _names(hosts: Sequence[HostSpec]) -> str:
    return ", ".join(h.name for h in hosts)


def check_roles(hosts: Sequence[HostSpec], *, source: str = "inventory") -> None:
    """Raise ``LlmrackError`` (naming the file and the roles) when the inventory's roles cannot work together."""
    by_role = {r: [h for h in hosts if h.has_role(r)] for r in ALL_ROLES}
    gateways, inference, monitors = by_role["gateway"], by_role["inference"], by_role["monitoring"]
    # a host with every role is a whole service of its own (several such servers in one inventory are several
    # services): the one-gateway and one-Prometheus rules are about the hosts that split the roles
    whole = {h.name for h in hosts if all(h.has_role(r) for r in ALL_ROLES)}
    split_gateways = [h for h in gateways if h.name not in whole]
    split_monitors = [h for h in monitors if h.name not in whole]
    if inference and not gateways:
        raise LlmrackError(f"inference host(s) {_names(inference)} but no host has the gateway role: give one host "
                           "roles: ['gateway']", source=source, field="roles")
    if gateways and not inference:
        raise LlmrackError(f"gateway host(s) {_names(gateways)} but no host has the inference role: the gateway "
                           "would have no model to send requests to", source=source, field="roles")
    if len(split_gateways) > 1:
        vips = {h.profile.stack.gateway.virtual_address for h in split_gateways}
        if "" in vips or len(vips) != 1:
            raise LlmrackError(f"{len(split_gateways)} gateway hosts ({_names(split_gateways)}) without one virtual "
                               "address: set stack.gateway.virtual_address (the same on each) to the address clients "
                               "use, or give the gateway role to one host",
                               source=source, field="stack.gateway.virtual_address")
    if len(split_monitors) > 1:
        raise LlmrackError(f"{len(split_monitors)} monitoring hosts ({_names(split_monitors)}): one Prometheus "
                           "scrapes every host; give the monitoring role to one host", source=source, field="roles")


def sandbox_roles(layout: str, names: Sequence[str], *, source: str = ENV_ROLES) -> dict[str, list[HostRole]]:
    """Roles of the sandbox hosts ``names`` (in order) from a layout.

    ``all`` (or empty): every host runs every role. ``cluster``: the first host is the gateway, the last the
    monitoring host, the ones between run inference (at least three hosts). Otherwise explicit entries
    separated by ``;``: ``host1=gateway;host2,host3=inference;host4=monitoring``; hosts not named get no role
    and are left out of the inventory.
    """
    layout = layout.strip()
    if layout in ("", "all"):
        return {n: list(ALL_ROLES) for n in names}
    if layout == "cluster":
        if len(names) < 3:
            raise LlmrackError(f"the cluster layout needs at least 3 sandbox hosts (gateway, inference, "
                               f"monitoring), the sandbox has {len(names)}: `llmrack sandbox up --hosts 4`",
                               source=source)
        return {names[0]: ["gateway"], **{n: ["inference"] for n in names[1:-1]}, names[-1]: ["monitoring"]}
    out: dict[str, list[HostRole]] = {}
    for entry in (e.strip() for e in layout.split(";") if e.strip()):
        m = _ENTRY.match(entry)
        if not m:
            raise LlmrackError(f"bad entry {entry!r}: write HOST[,HOST]=ROLE[,ROLE], entries separated by ';', or "
                               f"one of {', '.join(PRESETS)}", source=source)
        roles = m["roles"].split(",")
        if bad := [r for r in roles if r not in ALL_ROLES]:
            raise LlmrackError(f"unknown role {bad[0]!r} in {entry!r} (roles: {', '.join(ALL_ROLES)})", source=source)
        for name in m["hosts"].split(","):
            if name not in names:
                raise LlmrackError(f"no sandbox host {name!r} (hosts: {', '.join(names)})", source=source)
            out.setdefault(name, [])
            out[name] += [r for r in roles if r not in out[name]]
    return {n: out[n] for n in names if n in out}
