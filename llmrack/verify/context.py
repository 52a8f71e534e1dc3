"""The host under test as the checks see it: a testinfra host, its spec from the inventory, cached probes.

The checks look at the host as a user would: commands on the host (nvidia-smi, docker, smartctl, ss,
chronyc), HTTP to the gateway from this machine. They never import the deploy code.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrack import httpclient
from llmrack.config import HostSpec, Inventory
from llmrack.secrets import AdminSecrets
from llmrack.verify.outcome import Outcome, expected_absent, not_applicable


class CommandFailed(Exception):
    pass


@dataclass
class CheckContext:
    """One host under test: its testinfra host, its spec and what the checks share (cached probes)."""

    host: Any  # testinfra.host.Host
    spec: HostSpec
    inventory: Inventory | None = None
    local: bool = False
    api_key: str | None = None
    secrets: AdminSecrets | None = None  # the admin machine's secrets, read only
    gateway_ca: Path | None = None  # what the gateway's certificate is checked against (None: system store)
    gateway_ca_problem: str = ""  # why there is no CA to check it against (then no request is sent)
    peer: Callable[[str], Any] | None = None  # another inventory host by name (a testinfra host), e.g. a probe
    log: Callable[[str], Any] = print
    burnin: dict[str, Any] | None = None
    full: bool = False  # the seed's full durations (verify --full) instead of the short default runs
    sign_off: dict[str, dict[str, Any]] | None = None  # check id -> {who, when, value, result} (verify --sign-off)
    cache: dict[str, Any] = field(default_factory=dict)

    # ---- commands on the host
    def run(self, cmd: str) -> tuple[int, str, str]:
        r = self.host.run(cmd)
        return r.rc, r.stdout, r.stderr

    def has(self, command: str) -> bool:
        key = f"has:{command}"
        if key not in self.cache:
            rc, _, _ = self.run(f"command -v {shlex.quote(command)} >/dev/null 2>&1")
            self.cache[key] = rc == 0
        return self.cache[key]

    def run_with_input(self, cmd: str, text: str, chunk: int = 60_000) -> tuple[int, str, str]:
        """Run ``cmd`` with ``text`` on its standard input. The text travels in pieces into a private temporary
        file on the host (a command line holds at most 128 KiB), which is removed afterwards."""
        rc, path, err = self.run("mktemp /tmp/llmrack-verify.XXXXXXXX")
        if rc != 0:
            raise CommandFailed(f"mktemp on the host failed: {err.strip()[:200]}")
        path = shlex.quote(path.strip())
        try:
            for i in range(0, len(text), chunk):
                rc, _, err = self.run(f"printf %s {shlex.quote(text[i:i + chunk])} >> {path}")
                if rc != 0:
                    raise CommandFailed(f"writing {path} on the host failed: {err.strip()[:200]}")
            return self.run(f"{cmd} < {path}")
        finally:
            self.run(f"rm -f {path}")

    def out(self, cmd: str) -> str:
        rc, out, err = self.run(cmd)
        if rc != 0:
            raise CommandFailed(f"`{cmd}` exited {rc}: {(err or out).strip()[:300]}")
        return out

    @property
    def profile(self):
        return self.spec.profile

    @property
    def gpu_tier(self) -> bool:
        return self.profile.hardware.gpu.count > 0

    @property
    def nvidia_deployed(self) -> bool:
        return self.gpu_tier and self.profile.nvidia.enabled


    # ---- docker
    def containers(self) -> list[dict[str, Any]] | None:
        """``docker inspect`` of every container on the host (None: no docker or the daemon is down)."""
        if "containers" not in self.cache:
            result: list[dict[str, Any]] | None = None
            if self.has("docker"):
                rc, ids, _ = self.run("docker ps -aq --no-trunc")
                if rc == 0:
                    ids_list = ids.split()
                    result = []
                    if ids_list:
                        rc, out, _ = self.run("docker inspect " + " ".join(ids_list))
                        if rc == 0:
                            result = json.loads(out)
            self.cache["containers"] = result
        return self.cache["containers"]

    def find_containers(self, *words: str) -> list[dict[str, Any]]:
        """Containers whose compose service, name or image contains one of ``words`` (lower case)."""
        found = []
        for c in self.containers() or []:
            labels = (c.get("Config") or {}).get("Labels") or {}
            hay = " ".join([labels.get("com.docker.compose.service", ""), c.get("Name", ""),
                            (c.get("Config") or {}).get("Image", "")]).lower()
            if any(w in hay for w in words):
                found.append(c)
        return found

    # ---- HTTP on the host (for services bound to the host's loopback or a docker network)
    def http_on_host(self, url: str, *, method: str = "GET", data: str | None = None,
                     timeout: int = 10) -> tuple[int, str]:
        body = f" -H 'Content-Type: application/json' --data-binary {shlex.quote(data)}" if data else ""
        if self.has("curl"):
            rc, out, err = self.run(f"curl -sS -m {timeout} -X {method}{body} -w '\\n%{{http_code}}' "
                                    f"{shlex.quote(url)}")
            if rc != 0:
                raise CommandFailed(f"{url}: {err.strip()[:200] or f'curl exited {rc}'}")
            text, _, code = out.rpartition("\n")
            return int(code or 0), text
        script = (
            "import sys,urllib.request as u\n"
            "r=u.Request(sys.argv[1],data=(sys.argv[3].encode() if len(sys.argv)>3 else None),method=sys.argv[2],"
            "headers={'Content-Type':'application/json'})\n"
            f"try:\n  x=u.urlopen(r,timeout={timeout});print(x.status);sys.stdout.write(x.read().decode())\n"
            "except u.HTTPError as e:\n  print(e.code);sys.stdout.write(e.read().decode())\n"
        )
        args = [url, method] + ([data] if data else [])
        rc, out, err = self.run("python3 -c " + shlex.quote(script) + " " + " ".join(map(shlex.quote, args)))
        if rc != 0:
            raise CommandFailed(f"{url}: {err.strip().splitlines()[-1] if err.strip() else rc}")
        code, _, text = out.partition("\n")
        return int(code), text

    # ---- the gateway, seen from this machine
    @property
    def client_address(self) -> str:
        return "127.0.0.1" if self.local else self.spec.address

    def gateway_url(self) -> str:
        addr = self.client_address
        if ":" in addr:
            addr = f"[{addr}]"
        return f"https://{addr}:{self.profile.stack.gateway.https_port}"

    def gateway_client(self, *, timeout: float = 15) -> Any:
        """An httpx client that checks the gateway's certificate (``llmrack.httpclient``)."""

        if self.gateway_ca_problem:
            raise CommandFailed(self.gateway_ca_problem)
        return httpclient.client(self.gateway_ca, timeout=timeout)

    def gateway_get(self, path: str, *, key: bool = True, timeout: float = 15) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}"} if key and self.api_key else {}
        with self.gateway_client(timeout=timeout) as client:
            return client.get(self.gateway_url() + path, headers=headers)

    # ---- GPUs
    def gpus(self) -> list[dict[str, str]] | None:
        """One dict per GPU from ``nvidia-smi --query-gpu`` (None: nvidia-smi missing or failing)."""
        if "gpus" not in self.cache:
            self.cache["gpus"] = None
            if self.has("nvidia-smi"):
                rc, out, _ = self.run(f"nvidia-smi --query-gpu={','.join(GPU_FIELDS)} --format=csv,noheader,nounits")
                if rc == 0:
                    self.cache["gpus"] = parse_gpu_csv(out)
        return self.cache["gpus"]


GPU_FIELDS = (
    "index", "name", "memory.total", "driver_version", "pcie.link.gen.current", "pcie.link.gen.max",
    "pcie.link.width.current", "pcie.link.width.max", "temperature.gpu", "power.draw", "power.limit",
    "ecc.errors.uncorrected.volatile.total", "utilization.gpu",
)


def parse_gpu_csv(text: str) -> list[dict[str, str]]:
    rows = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == len(GPU_FIELDS):
            rows.append(dict(zip(GPU_FIELDS, parts, strict=True)))
    return rows


def num(value: str | None) -> float | None:
    """``'23.5'`` -> 23.5; ``'[N/A]'`` / ``'N/A'`` / ``''`` -> None."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def version_tuple(text: str) -> tuple[int, ...]:
    m = re.search(r"\d+(?:\.\d+)*", text or "")
    return tuple(int(x) for x in m.group(0).split(".")) if m else ()


def version_ge(have: str, want: str) -> bool:
    h, w = version_tuple(have), version_tuple(want)
    n = max(len(h), len(w))
    return bool(h) and h + (0,) * (n - len(h)) >= w + (0,) * (n - len(w))


def served_names(spec: HostSpec) -> list[str]:
    return [m.served_name or m.name for m in spec.profile.stack.models]


def container_state(c: dict[str, Any]) -> str:
    """'running (healthy)', 'exited', 'running' (no healthcheck) ..."""
    state = c.get("State") or {}
    s = state.get("Status", "?")
    health = (state.get("Health") or {}).get("Status")
    return f"{s} ({health})" if health else s


def container_ok(c: dict[str, Any]) -> bool:
    state = c.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    return state.get("Status") == "running" and health in (None, "healthy")


def container_ip(c: dict[str, Any]) -> str | None:
    nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
    for net in nets.values():
        if net.get("IPAddress"):
            return net["IPAddress"]
    return None


def container_env(c: dict[str, Any]) -> dict[str, str]:
    env = (c.get("Config") or {}).get("Env") or []
    return dict(e.split("=", 1) for e in env if "=" in e)


def cname(c: dict[str, Any]) -> str:
    return c.get("Name", "?").lstrip("/")


def vector_container(ctx: CheckContext) -> dict[str, Any] | None:
    kind = ctx.profile.stack.vector_store.kind
    words = ("qdrant",) if kind == "qdrant" else ("pgvector", "postgres")
    cands = [c for c in ctx.find_containers(*words) if "exporter" not in cname(c).lower()]
    return cands[0] if cands else None


def stack_absent(ctx: CheckContext, what: str, threshold: Any = None) -> Outcome | None:
    """A failure when the inventory deploys the stack or monitoring project on this host (the caller has
    checked the tier and roles) and its compose file is not there; None when it is.

    A host where the project exists but a service is stopped or broken is checked and fails on its own terms.
    """
    directory = ctx.profile.stack.directory if what == "stack" else ctx.profile.monitoring.directory
    key = f"deployed:{directory}"
    if key not in ctx.cache:
        rc, out, err = ctx.run(f"test -f {shlex.quote(directory)}/compose.yaml")
        if rc not in (0, 1):
            raise CommandFailed(f"cannot tell whether {directory}/compose.yaml exists (exit {rc}): "
                                f"{(err or out).strip()[:200]}")
        ctx.cache[key] = rc == 0
    if ctx.cache[key]:
        return None
    return expected_absent(f"the llmrack {what} (no {directory}/compose.yaml)", threshold)


def has_role(ctx: CheckContext, role: str) -> bool:
    return ctx.spec.has_role(role)  # type: ignore[arg-type]


def vector_store_guard(ctx: CheckContext, threshold: Any = None) -> Outcome | None:
    """The outcome of a vector-store check that need not look further: not applicable when the tier runs no
    vector store or the host has no gateway role (the store runs beside the gateway), a failure when the stack
    is expected and not deployed (:func:`stack_absent`); None: check the store."""
    if ctx.profile.stack.vector_store.kind == "none":
        return not_applicable("the tier runs no vector store (stack.vector_store.kind: none)", threshold)
    if not has_role(ctx, "gateway"):
        return not_applicable("the vector store runs on gateway hosts; this host has no gateway role", threshold)
    return stack_absent(ctx, "stack", threshold)
