"""A rolling change over the inference hosts behind a gateway: one node at a time, no client request lost.

``llmrack rollout INVENTORY`` after the tier or inventory changed (a vLLM argument, an image, the model's weights
under the same served name). For each inference host that does not also run the gateway, in inventory order:

1. **drain**: on every gateway host the node's servers are marked ``down`` in the live ``nginx.conf`` and nginx
   reloads. New requests go to the other nodes; the old workers finish the streams they carry and exit, and the
   drain waits for that (up to the gateway's read timeout).
2. **change**: the node alone is converged (``deploys/full_stack.py --limit NODE``); its compose file from before
   is kept on it as ``compose.yaml.before-rollout``.
3. **gate**, from the gateway host to the node's vLLM (the path the gateway uses): the model is listed, and the
   golden prompts (temperature 0) are answered; with the same model (same served name and weights path) the
   answers are the ones the node gave, drained, just before the change.
4. **undrain**: the gateway's configuration from before the rollout is put back and nginx reloads.

A failed change or gate stops the rollout: the node's previous compose file is put back and its services come up
with it, the gate runs again and the node is undrained when it passes; the nodes not reached yet keep what they
ran. Last, the other hosts (gateway, monitoring) are converged, for what the change alters there (a route's
context length). A rolling change needs two inference hosts and a gateway on a host of its own: anything else is
bad input (a plain deploy is the way there).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmrack.config import HostSpec, Inventory
from llmrack.errors import LlmrackError
from llmrack.migrate import GOLDEN_PROMPTS
from llmrack.rebuild import remote, ssh_command
from llmrack.secrets import AdminSecrets
from llmrack.stack import compose as c

Log = Callable[[str], None]

DRAIN_MARK = "down"
# nginx retitles its old workers; anchored, the pattern cannot match this pipeline's own command lines
WORKERS_SHUTTING_DOWN = ("for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done "
                         "| grep -c '^nginx: worker process is shutting down' || true")


@dataclass
class RolloutPlan:
    nodes: list[HostSpec]
    gateways: list[HostSpec]
    others: list[HostSpec]
    deploy: str = "full_stack"

    def lines(self) -> list[str]:
        out = [f"rolling change over {len(self.nodes)} inference hosts, one at a time "
               f"(gateway: {', '.join(g.name for g in self.gateways)})"]
        for n in self.nodes:
            out.append(f"  {n.name}: drain at the gateway, converge (deploys/{self.deploy}.py --limit {n.name}), "
                       "gate (model listed, golden prompts), back into the gateway")
        if self.others:
            out.append(f"  then converge {', '.join(o.name for o in self.others)} (gateway routes, monitoring)")
        out.append("  expected interruption: none (the other nodes serve while one changes); a failed gate puts "
                   "that node's previous configuration back and stops")
        return out


def plan_rollout(inventory: Inventory) -> RolloutPlan:
    """The nodes to roll and the gateways to drain them at; bad input (a layout with nothing to roll over)
    raises LlmrackError."""
    gateways = [h for h in inventory.hosts if h.has_role("gateway")]
    nodes = [h for h in inventory.hosts if h.has_role("inference") and not h.has_role("gateway")]
    if not gateways:
        raise LlmrackError("a rolling change needs a gateway host in front of the inference hosts",
                           source=inventory.path, field="roles")
    if len(nodes) < 2:
        raise LlmrackError(f"a rolling change needs at least two inference hosts besides the gateway's "
                           f"(found {len(nodes)}): with one, a deploy is the way to change it",
                           source=inventory.path, field="roles")
    others = [h for h in inventory.hosts if h not in nodes]
    return RolloutPlan(nodes=nodes, gateways=gateways, others=others)


# --------------------------------------------------------------------------------------------- the gateway

def node_servers(node: HostSpec) -> list[str]:
    """``address:port`` of each vLLM server of ``node`` as the gateways reach it (its published ports)."""
    vllm = node.profile.stack.vllm
    return [f"{node.address}:{vllm.publish_port_base + i}" for i in range(len(node.profile.stack.models))]


def drain_script(servers: list[str]) -> str:
    """sed expression marking each ``server ADDR:PORT ...;`` line of those servers ``down``."""
    exprs = [f"s/^\\(\\s*server {re.escape(s)}\\) /\\1 {DRAIN_MARK} /" for s in servers]
    return " ".join(f"-e {shlex.quote(e)}" for e in exprs)


def _gateway_exec(gw: HostSpec, command: str) -> str:
    stack = gw.profile.stack
    return (f"cd {shlex.quote(stack.directory)} && docker compose --project-name {shlex.quote(stack.project_name)} "
            f"exec -T gateway sh -c {shlex.quote(command)}")


def _conf(gw: HostSpec) -> str:
    return c.StackPaths.of(gw.profile.stack).gateway_dir + "/nginx.conf"


def _run(spec: HostSpec, command: str, what: str, *, timeout: int = 600) -> str:
    done = remote(spec, command, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{spec.name}: {what} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return done.stdout


def drain(gw: HostSpec, node: HostSpec, *, timeout_s: int, log: Log) -> float:
    """Mark ``node`` down at ``gw``, reload, wait for the old workers; returns the seconds waited."""
    conf = shlex.quote(_conf(gw))
    check = "nginx -t -q -c " + shlex.quote(c.GATEWAY_CONF_DIR + "/nginx.conf")
    _run(gw, f"cp -p {conf} {conf}.before-rollout && sed -i {drain_script(node_servers(node))} {conf} && "
             f"grep -c ' {DRAIN_MARK} ' {conf} >/dev/null && {_gateway_exec(gw, check + ' && nginx -s reload')}",
         f"draining {node.name}")
    t0 = time.monotonic()
    while True:
        left = _run(gw, _gateway_exec(gw, WORKERS_SHUTTING_DOWN), "counting the old nginx workers").strip()
        if left in ("", "0"):
            break
        if time.monotonic() - t0 > timeout_s:
            log(f"{gw.name}: {left} old worker(s) still finishing streams after {timeout_s} s; going on")
            break
        time.sleep(1)
    return time.monotonic() - t0


def undrain(gw: HostSpec) -> None:
    conf = shlex.quote(_conf(gw))
    _run(gw, f"if [ -f {conf}.before-rollout ]; then mv -f {conf}.before-rollout {conf}; fi && "
             f"{_gateway_exec(gw, 'nginx -s reload')}", "putting the node back")


# ------------------------------------------------------------------------------------------------ the gate

def curl_config(url: str, key: str | None, body: dict | None = None) -> str:
    """A ``curl --config -`` file: the key travels on stdin, never on a command line."""
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"url = {q(url)}", "silent", "show-error", "fail", "max-time = 300"]
    if key:
        lines.append(f"header = {q('Authorization: Bearer ' + key)}")
    if body is not None:
        lines += [f"header = {q('Content-Type: application/json')}", f"data = {q(json.dumps(body))}"]
    return "\n".join(lines) + "\n"


def _ask(gw: HostSpec, url: str, key: str | None, body: dict | None = None) -> dict:
    done = subprocess.run(ssh_command(gw.connector, "curl --config -"), input=curl_config(url, key, body),
                          capture_output=True, text=True, timeout=360)
    if done.returncode != 0:
        raise AssertionError(f"{url}: {done.stderr.strip()[-300:] or f'curl exit {done.returncode}'}")
    return json.loads(done.stdout)


@dataclass
class NodeState:
    """What a node's vLLM servers said: their models (id, weights path) and golden answers."""

    models: list[tuple[str, str]] = field(default_factory=list)
    answers: list[list[str]] = field(default_factory=list)


def node_state(gw: HostSpec, node: HostSpec, key: str | None) -> NodeState:
    state = NodeState()
    for server, model in zip(node_servers(node), node.profile.stack.models, strict=True):
        listed = [(m["id"], m.get("root", "")) for m in _ask(gw, f"http://{server}/v1/models", key)["data"]]
        mine = [m for m in listed if m[0] == model.public_name]
        if not mine:
            raise AssertionError(f"{server} does not list {model.public_name} (lists {[m[0] for m in listed]})")
        state.models.append(mine[0])
        answers = []
        for prompt in GOLDEN_PROMPTS:
            data = _ask(gw, f"http://{server}/v1/chat/completions", key, {
                "model": model.public_name, "messages": [{"role": "user", "content": prompt}], "max_tokens": 12,
                "temperature": 0, "seed": 0})
            text = data["choices"][0]["message"].get("content") or ""
            if not text.strip():
                raise AssertionError(f"{server}: no answer to the golden prompt {prompt!r}")
            answers.append(text)
        state.answers.append(answers)
    return state


def gate(gw: HostSpec, node: HostSpec, key: str | None, before: NodeState | None) -> NodeState:
    """The node's state after a change; raises AssertionError when it does not pass."""
    after = node_state(gw, node, key)
    if before is not None:
        for i, (was, now) in enumerate(zip(before.models, after.models, strict=False)):
            if was == now and before.answers[i] != after.answers[i]:
                raise AssertionError(f"{node.name}: the same model {now[0]} answers the golden prompts "
                                     f"differently: {after.answers[i]} (before: {before.answers[i]})")
    return after


# ---------------------------------------------------------------------------------------------- the change

def converge(inventory_path: Path, project_dir: Path, deploy: str, hosts: list[str]) -> subprocess.CompletedProcess:
    pyinfra = Path(sys.executable).with_name("pyinfra")
    cmd = [str(pyinfra) if pyinfra.exists() else "pyinfra", "-y", str(Path(inventory_path).resolve()),
           str(project_dir / "deploys" / f"{deploy}.py")]
    for h in hosts:
        cmd += ["--limit", h]
    return subprocess.run(cmd, cwd=project_dir, capture_output=True, text=True)


def _compose_file(node: HostSpec) -> str:
    return shlex.quote(c.StackPaths.of(node.profile.stack).compose_file)


ROLLBACK_WAIT_S = 1800  # the previous configuration loaded its model before: bounded, not the new tier's timeout


def roll_back(node: HostSpec) -> None:
    """The node's compose file from before the rollout, and its services brought up with it."""
    stack = node.profile.stack
    f = _compose_file(node)
    up = (f"cd {shlex.quote(stack.directory)} && docker compose --project-name {shlex.quote(stack.project_name)} "
          f"--file {f} up --detach --wait --wait-timeout {ROLLBACK_WAIT_S} --remove-orphans")
    _run(node, f"test -f {f}.before-rollout && cp -p {f}.before-rollout {f} && {up}", "rolling back",
         timeout=ROLLBACK_WAIT_S + 120)


def rollout(inventory_path: Path, inventory: Inventory, plan: RolloutPlan, *, log: Log = print) -> dict:
    """Carry ``plan`` out; returns figures per node. Raises RuntimeError after rolling a failed node back."""
    project = Path(inventory.project_dir)
    key = AdminSecrets(project).backend_api_key()
    gw = plan.gateways[0]
    timeout = gw.profile.stack.gateway.read_timeout_s
    figures: dict[str, dict[str, float]] = {}
    t_all = time.monotonic()
    for node in plan.nodes:
        log(f"{node.name}: drain at {', '.join(g.name for g in plan.gateways)}")
        drained = max(drain(g, node, timeout_s=timeout, log=log) for g in plan.gateways)
        # asked once the node is idle, like the gate after the change: a batch shared with other requests can
        # tip a greedy answer on CPU kernels
        log(f"{node.name}: golden answers before the change")
        try:
            before = node_state(gw, node, key)
        except (AssertionError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
            for g in plan.gateways:
                undrain(g)
            raise RuntimeError(f"{node.name} does not answer its golden prompts before any change ({exc}); "
                               "nothing was changed") from None
        f = _compose_file(node)
        _run(node, f"cp -p {f} {f}.before-rollout", "keeping the compose file")
        log(f"{node.name}: converge (deploys/{plan.deploy}.py --limit {node.name})")
        t0 = time.monotonic()
        done = converge(inventory_path, project, plan.deploy, [node.name])
        took = time.monotonic() - t0
        problem = "" if done.returncode == 0 else f"deploys/{plan.deploy}.py failed (exit {done.returncode})"
        if not problem:
            log(f"{node.name}: gate")
            try:
                gate(gw, node, key, before)
            except (AssertionError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
                problem = f"gate: {exc}"
        if problem:
            if done.returncode != 0:
                log((done.stdout[-3000:] + done.stderr[-2000:]).strip())
            log(f"{node.name}: {problem}; back to its previous configuration")
            roll_back(node)
            try:
                gate(gw, node, key, before)
            except (AssertionError, OSError, ValueError, KeyError) as exc:
                raise RuntimeError(f"{node.name} failed ({problem}) and still fails after the rollback ({exc}); "
                                   "it stays out of the gateway") from None
            for g in plan.gateways:
                undrain(g)
            rest = [n.name for n in plan.nodes[plan.nodes.index(node) + 1:]]
            raise RuntimeError(f"{node.name} failed ({problem}); it runs its previous configuration again and is "
                               f"back in the gateway; not changed: {', '.join(rest) or 'no other node'}")
        for g in plan.gateways:
            undrain(g)
        _run(node, f"rm -f {f}.before-rollout", "removing the kept compose file")
        figures[node.name] = {"drain_s": round(drained, 1), "converge_s": round(took, 1)}
        log(f"{node.name}: done (drained in {drained:.1f} s, converged and gated in {took:.0f} s)")
    if plan.others:
        log(f"converge {', '.join(o.name for o in plan.others)}")
        done = converge(inventory_path, project, plan.deploy, [o.name for o in plan.others])
        if done.returncode != 0:
            log((done.stdout[-3000:] + done.stderr[-2000:]).strip())
            raise RuntimeError(f"every inference host changed; deploys/{plan.deploy}.py then failed on "
                               f"{', '.join(o.name for o in plan.others)} (exit {done.returncode})")
    figures["total"] = {"s": round(time.monotonic() - t_all, 1)}
    return figures
