"""The acceptance checklist as a registry of checks, run over a testinfra host.

Each check proves one line of seed 000's 验收测试清单 (or a line llmrack adds: gateway, time, security),
reads its thresholds from the tier (``profile.hardware``, ``profile.acceptance``) and returns an
``Outcome``: pass / fail / skip ("not deployed": the tier does not deploy it; "not applicable": the
machine has no such part; "not measured": an input is missing) / error (the check itself broke).

The checks look at the host as a user would: commands on the host (nvidia-smi, docker, smartctl, ss,
chronyc), HTTP to the gateway from this machine. They never import the deploy code.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llmrack.config import HostSpec, Inventory

Category = Literal["software", "hardware", "performance", "security"]
Status = Literal["pass", "fail", "skip", "error"]
CATEGORIES: tuple[Category, ...] = ("software", "hardware", "security", "performance")  # run order

NOT_DEPLOYED = "not deployed"
NOT_APPLICABLE = "not applicable"
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class ChecklistLine:
    zh: str
    en: str
    source: Literal["seed-000", "llmrack"] = "seed-000"


@dataclass
class Outcome:
    status: Status
    message: str
    value: Any = None
    threshold: Any = None
    skip_reason: str | None = None
    details: dict[str, Any] | None = None


def ok(message: str, value: Any = None, threshold: Any = None, **details: Any) -> Outcome:
    return Outcome("pass", message, value, threshold, details=details or None)


def bad(message: str, value: Any = None, threshold: Any = None, **details: Any) -> Outcome:
    return Outcome("fail", message, value, threshold, details=details or None)


def skip(reason: str, message: str, threshold: Any = None) -> Outcome:
    return Outcome("skip", message, None, threshold, skip_reason=reason)


def judge(passed: bool, message: str, value: Any = None, threshold: Any = None, **details: Any) -> Outcome:
    return Outcome("pass" if passed else "fail", message, value, threshold, details=details or None)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    category: Category
    checklist: ChecklistLine
    func: Callable[[CheckContext], Outcome]


REGISTRY: dict[str, Check] = {}


def check(id: str, title: str, category: Category, zh: str, en: str, source: str = "seed-000"):
    def deco(func: Callable[[CheckContext], Outcome]) -> Callable[[CheckContext], Outcome]:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id}")
        REGISTRY[id] = Check(id, title, category, ChecklistLine(zh, en, source), func)  # type: ignore[arg-type]
        return func

    return deco


def select(only: set[str] | None) -> list[Check]:
    """Checks in run order; ``only`` holds categories and/or check ids (or id prefixes such as ``hw.gpu``)."""
    checks = sorted(REGISTRY.values(), key=lambda c: CATEGORIES.index(c.category))
    if not only:
        return checks
    return [c for c in checks if c.category in only or any(c.id == o or c.id.startswith(o + "_")
                                                            or c.id.startswith(o + ".") for o in only)]


# -------------------------------------------------------------------------------------------------- context


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
    secrets_dir: Path | None = None
    log: Callable[[str], Any] = print
    burnin: dict[str, Any] | None = None
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

    def secret(self, name: str) -> str:
        """A file of the host's secrets directory on this machine (``.llmrack/secrets/<host>/<name>``), or ''."""
        if self.secrets_dir is None:
            return ""
        path = self.secrets_dir / name
        try:
            return path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        except OSError:
            return ""

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

    def gateway_get(self, path: str, *, key: bool = True, timeout: float = 15) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if key and self.api_key else {}
        with httpx.Client(verify=False, timeout=timeout, trust_env=False) as client:
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


def _never_deployed(ctx: CheckContext, what: str, threshold: Any = None) -> Outcome | None:
    """'not deployed' when the host never had the stack or monitoring project (its compose file is absent).

    A host where the project exists but a service is stopped or broken is checked and fails as usual.
    """
    directory = ctx.profile.stack.directory if what == "stack" else ctx.profile.monitoring.directory
    key = f"deployed:{directory}"
    if key not in ctx.cache:
        ctx.cache[key] = ctx.run(f"test -f {shlex.quote(directory)}/compose.yaml")[0] == 0
    if ctx.cache[key]:
        return None
    return skip(NOT_DEPLOYED, f"the llmrack {what} is not deployed on this host (no {directory}/compose.yaml)",
                threshold)


def _has_role(ctx: CheckContext, role: str) -> bool:
    return ctx.spec.has_role(role)  # type: ignore[arg-type]


# ================================================================================================== software


@check("sw.os", "Operating system release", "software",
       "操作系统安装（Ubuntu 22.04 LTS / CentOS 8）", "Operating system installed (Ubuntu 22.04 LTS / CentOS 8)")
def sw_os(ctx: CheckContext) -> Outcome:
    text = ctx.out("cat /etc/os-release")
    kv = dict(
        (k, v.strip().strip('"')) for k, _, v in (line.partition("=") for line in text.splitlines()) if k
    )
    release = f"{kv.get('ID', '?')} {kv.get('VERSION_ID', '?')}".lower()
    allowed = [r.lower() for r in ctx.profile.hardware.os_releases]
    return judge(release in allowed, f"{kv.get('PRETTY_NAME', release)}" + ("" if release in allowed else
                 f" is not one of the tier's releases ({', '.join(allowed)})"), release, allowed)


@check("sw.driver", "NVIDIA driver version", "software",
       "GPU驱动安装（NVIDIA Driver 535+）", "GPU driver installed (NVIDIA driver 535+)")
def sw_driver(ctx: CheckContext) -> Outcome:
    want = ctx.profile.acceptance.driver_version_min
    if not ctx.gpu_tier:
        return skip(NOT_APPLICABLE, "the tier has no GPUs", f">= {want}")
    gpus = ctx.gpus()
    if not gpus:
        why = "nvidia-smi is not installed" if not ctx.has("nvidia-smi") else "nvidia-smi fails (driver not loaded?)"
        return bad(f"{why}: the NVIDIA driver is missing", None, f">= {want}")
    have = gpus[0]["driver_version"]
    good = version_ge(have, want)
    return judge(good, f"driver {have}" + ("" if good else f" is older than {want}"), have, f">= {want}")


@check("sw.cuda_container", "CUDA visible inside a container", "software",
       "CUDA环境（CUDA 12.1 / cuDNN 8.9）", "CUDA environment (CUDA 12.1 / cuDNN 8.9)")
def sw_cuda_container(ctx: CheckContext) -> Outcome:
    want = ctx.profile.acceptance.cuda_version_min
    if not ctx.gpu_tier:
        return skip(NOT_APPLICABLE, "the tier has no GPUs", f">= {want}")
    if not ctx.profile.nvidia.enabled:
        return skip(NOT_DEPLOYED, "the NVIDIA stack is not managed on this tier (nvidia.enabled: false)")
    if not ctx.has("docker"):
        return bad("docker is not installed: cannot start a GPU container", None, f">= {want}")
    image = ctx.profile.acceptance.cuda_probe_image
    if not image:
        vllm = ctx.find_containers("vllm")
        image = (vllm[0].get("Config") or {}).get("Image", "") if vllm else ""
    if not image:
        rc, out, _ = ctx.run("docker images --format '{{.Repository}}:{{.Tag}}'")
        image = next((i for i in out.split() if "<none>" not in i), "")
    if not image:
        return bad("no local image to start a GPU container with (none is pulled: set acceptance.cuda_probe_image)")
    rc, out, err = ctx.run(f"docker run --rm --pull=never --gpus all --entrypoint nvidia-smi {shlex.quote(image)}")
    if rc != 0:
        return bad(f"`docker run --gpus all {image} nvidia-smi` failed: {(err or out).strip()[:300]}", None,
                   f">= {want}")
    m = re.search(r"CUDA Version:\s*([\d.]+)", out)
    have = m.group(1) if m else ""
    if not have:
        return bad("nvidia-smi in the container printed no CUDA version", None, f">= {want}")
    good = version_ge(have, want)
    return judge(good, f"CUDA {have} in a container of {image}" + ("" if good else f": older than {want}"),
                 have, f">= {want}")


@check("sw.docker", "Docker engine version", "software",
       "Docker环境（Docker 24.x + Docker Compose）", "Docker environment (Docker 24.x + Docker Compose)")
def sw_docker(ctx: CheckContext) -> Outcome:
    want = ctx.profile.docker.min_version
    if not ctx.has("docker"):
        return bad("docker is not installed", None, f">= {want}")
    rc, out, err = ctx.run("docker version --format '{{.Server.Version}}'")
    if rc != 0 or not out.strip():
        return bad(f"the Docker daemon does not answer: {(err or out).strip()[:200]}", None, f">= {want}")
    have = out.strip()
    good = version_ge(have, want)
    return judge(good, f"Docker engine {have}" + ("" if good else f" is older than {want}"), have, f">= {want}")


@check("sw.compose", "Docker Compose v2", "software",
       "Docker环境（Docker 24.x + Docker Compose）", "Docker environment (Docker 24.x + Docker Compose)")
def sw_compose(ctx: CheckContext) -> Outcome:
    if not ctx.has("docker"):
        return bad("docker is not installed", None, ">= 2")
    rc, out, err = ctx.run("docker compose version --short")
    if rc != 0:
        return bad("`docker compose` (the v2 plugin) is missing" +
                   ("; only docker-compose v1 is installed" if ctx.has("docker-compose") else ""), None, ">= 2")
    have = out.strip().lstrip("v")
    return judge(version_ge(have, "2"), f"Docker Compose {have}", have, ">= 2")


@check("sw.nvidia_runtime", "NVIDIA runtime registered in Docker", "software",
       "CUDA环境（CUDA 12.1 / cuDNN 8.9）", "CUDA environment (CUDA 12.1 / cuDNN 8.9)")
def sw_nvidia_runtime(ctx: CheckContext) -> Outcome:
    if not ctx.gpu_tier:
        return skip(NOT_APPLICABLE, "the tier has no GPUs", "nvidia")
    if not ctx.profile.nvidia.enabled:
        return skip(NOT_DEPLOYED, "the NVIDIA stack is not managed on this tier (nvidia.enabled: false)")
    if not ctx.has("docker"):
        return bad("docker is not installed", None, "nvidia")
    rc, out, err = ctx.run("docker info --format '{{json .Runtimes}}'")
    if rc != 0:
        return bad(f"`docker info` failed: {(err or out).strip()[:200]}", None, "nvidia")
    runtimes = sorted(json.loads(out or "{}"))
    return judge("nvidia" in runtimes, "runtimes: " + ", ".join(runtimes) +
                 ("" if "nvidia" in runtimes else " (the NVIDIA container toolkit is not configured)"),
                 runtimes, "nvidia")


@check("sw.vllm", "vLLM serves the tier's models through the gateway", "software",
       "推理框架部署（vLLM测试模型加载）", "Inference framework deployed (vLLM loads the model)")
def sw_vllm(ctx: CheckContext) -> Outcome:
    want = served_names(ctx.spec)
    if not _has_role(ctx, "inference"):
        return skip(NOT_DEPLOYED, "the host has no inference role", want)
    if (out := _never_deployed(ctx, 'stack', want)) is not None:
        return out
    problems = []
    containers = ctx.find_containers("vllm")
    if ctx.containers() is None:
        problems.append("docker does not answer")
    elif not containers:
        problems.append("no vLLM container on the host")
    for c in containers:
        if not container_ok(c):
            problems.append(f"container {cname(c)} is {container_state(c)}")
    served: list[str] = []
    if _has_role(ctx, "gateway"):
        if not ctx.api_key:
            problems.append("no API key found for the gateway (.llmrack/secrets/<host>/)")
        else:
            try:
                resp = ctx.gateway_get("/v1/models")
                if resp.status_code == 200:
                    served = sorted(m.get("id", "") for m in resp.json().get("data", []))
                else:
                    problems.append(f"GET /v1/models through the gateway: HTTP {resp.status_code}")
            except Exception as exc:  # connection refused, TLS error, bad JSON
                problems.append(f"GET /v1/models through the gateway failed: {type(exc).__name__}: {exc}")
        missing = [m for m in want if m not in served]
        if served and missing:
            problems.append(f"model(s) not served: {', '.join(missing)} (served: {', '.join(served) or 'none'})")
    value = {"served": served, "containers": {cname(c): container_state(c) for c in containers}}
    if problems:
        return bad("; ".join(problems), value, want)
    return ok(f"serving {', '.join(served or want)}", value, want)


@check("sw.vector_store", "Vector store healthy", "software",
       "向量数据库部署（Qdrant健康检查）", "Vector database deployed (Qdrant health check)")
def sw_vector_store(ctx: CheckContext) -> Outcome:
    kind = ctx.profile.stack.vector_store.kind
    if kind == "none" or not _has_role(ctx, "inference"):
        return skip(NOT_DEPLOYED, f"no vector store on this host (kind: {kind})", kind)
    if (out := _never_deployed(ctx, 'stack', kind)) is not None:
        return out
    found = vector_container(ctx)
    if found is None:
        return bad(f"no {kind} container on the host", None, "healthy")
    if not container_ok(found):
        return bad(f"{kind} container {cname(found)} is {container_state(found)}", container_state(found), "healthy")
    if kind == "qdrant":
        ip = container_ip(found)
        code, body = ctx.http_on_host(f"http://{ip}:6333/readyz") if ip else (0, "no container address")
        if code != 200:
            return bad(f"Qdrant /readyz answered {code}: {body.strip()[:200]}", code, 200)
        return ok(f"Qdrant {cname(found)} ready", "ready", "healthy")
    env = container_env(found)
    user, db = env.get("POSTGRES_USER", "postgres"), env.get("POSTGRES_DB", "postgres")
    rc, out, err = ctx.run(
        f"docker exec {shlex.quote(cname(found))} psql -h /run/postgresql -U {shlex.quote(user)} "
        f"-d {shlex.quote(db)} -tAc \"SELECT extversion FROM pg_extension WHERE extname = 'vector'\""
    )
    if rc != 0:
        return bad(f"psql in {cname(found)} failed: {(err or out).strip()[:200]}", None, "vector extension")
    version = out.strip()
    return judge(bool(version), f"pgvector {version} in database {db}" if version
                 else f"the vector extension is not installed in database {db}", version or None, "vector extension")


def vector_container(ctx: CheckContext) -> dict[str, Any] | None:
    kind = ctx.profile.stack.vector_store.kind
    words = ("qdrant",) if kind == "qdrant" else ("pgvector", "postgres")
    cands = [c for c in ctx.find_containers(*words) if "exporter" not in cname(c).lower()]
    return cands[0] if cands else None


@check("sw.gateway_tls", "Gateway answers HTTPS with TLS 1.2 or newer", "software",
       "网关部署（HTTPS，证书有效，TLS ≥ 1.2）", "Gateway deployed (HTTPS, valid certificate, TLS >= 1.2)", "llmrack")
def sw_gateway_tls(ctx: CheckContext) -> Outcome:
    if not _has_role(ctx, "gateway"):
        return skip(NOT_DEPLOYED, "the host has no gateway role", "TLSv1.2+")
    if (out := _never_deployed(ctx, 'stack', "TLSv1.2+")) is not None:
        return out
    port = ctx.profile.stack.gateway.https_port
    info = tls_probe(ctx.client_address, port)
    if "error" in info:
        return bad(f"no TLS handshake with {ctx.client_address}:{port}: {info['error']}", None, "TLSv1.2+")
    problems = []
    if info["version"] not in ("TLSv1.2", "TLSv1.3"):
        problems.append(f"negotiated {info['version']}")
    days = info.get("days_left")
    if days is not None and days < 0:
        problems.append(f"certificate expired {-days} day(s) ago")
    if info.get("accepts_tls11"):
        problems.append("the gateway still accepts TLS 1.1")
    msg = f"{info['version']}, certificate {info.get('subject', '?')} valid {days} more day(s)"
    return judge(not problems, "; ".join(problems) or msg, info, "TLSv1.2+")


def tls_probe(address: str, port: int, timeout: float = 8) -> dict[str, Any]:
    """Handshake with ``address:port`` (no verification: certificates are self-signed or private)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=address) as tls:
            info: dict[str, Any] = {"version": tls.version(), "cipher": (tls.cipher() or ("?",))[0]}
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if der:
        try:
            from cryptography import x509

            cert = x509.load_der_x509_certificate(der)
            not_after = cert.not_valid_after_utc
            info["subject"] = cert.subject.rfc4514_string()
            info["not_after"] = not_after.isoformat()
            info["days_left"] = int((not_after.timestamp() - time.time()) // 86400)
        except Exception as exc:  # an unparsable certificate is reported, not fatal
            info["subject"] = f"unparsable ({exc})"
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with socket.create_connection((address, port), timeout=timeout) as raw, \
                old.wrap_socket(raw, server_hostname=address):
            info["accepts_tls11"] = True
    except (OSError, ssl.SSLError, ValueError):
        info["accepts_tls11"] = False
    return info


@check("sw.prometheus", "Prometheus scrapes every target", "software",
       "监控部署（Prometheus + Grafana）", "Monitoring deployed (Prometheus + Grafana)")
def sw_prometheus(ctx: CheckContext) -> Outcome:
    mon = ctx.profile.monitoring
    if not mon.enabled or not _has_role(ctx, "monitoring"):
        return skip(NOT_DEPLOYED, "Prometheus is not deployed on this host", "all up")
    if (out := _never_deployed(ctx, 'monitoring', "all up")) is not None:
        return out
    down: dict[str, str] = {}
    targets: list[dict[str, Any]] = []
    attempts = 8
    for attempt in range(attempts):  # right after a start: no targets yet, then 'unknown' until the first scrape
        try:
            code, body = ctx.http_on_host("http://127.0.0.1:9090/api/v1/targets?state=active")
        except CommandFailed as exc:
            return bad(f"Prometheus does not answer on 127.0.0.1:9090: {exc}", None, "all up")
        if code != 200:
            return bad(f"Prometheus /api/v1/targets answered HTTP {code}", None, "all up")
        targets = json.loads(body).get("data", {}).get("activeTargets", [])
        down = {f"{t.get('labels', {}).get('job', '?')}/{t.get('scrapeUrl', '?')}":
                f"{t.get('health')}: {t.get('lastError', '')}".rstrip(": ") for t in targets if t.get("health") != "up"}
        settled = targets and not any(v.startswith("unknown") for v in down.values())
        if settled or attempt == attempts - 1:
            break
        time.sleep(5)
    value = {"up": len(targets) - len(down), "total": len(targets)}
    if not targets:
        return bad("Prometheus has no scrape targets", value, "all up")
    if down:
        return bad("targets not up: " + "; ".join(f"{k} ({v})" for k, v in sorted(down.items())), value, "all up",
                   down=down)
    return ok(f"{len(targets)} target(s) up", value, "all up")


@check("sw.grafana", "Grafana healthy", "software",
       "监控部署（Prometheus + Grafana）", "Monitoring deployed (Prometheus + Grafana)")
def sw_grafana(ctx: CheckContext) -> Outcome:
    mon = ctx.profile.monitoring
    if not (mon.enabled and mon.grafana) or not _has_role(ctx, "monitoring"):
        return skip(NOT_DEPLOYED, "Grafana is not deployed on this host (monitoring.grafana: false)", "ok")
    if (out := _never_deployed(ctx, 'monitoring', "ok")) is not None:
        return out
    try:
        code, body = ctx.http_on_host("http://127.0.0.1:3000/api/health")
    except CommandFailed as exc:
        return bad(f"Grafana does not answer on 127.0.0.1:3000: {exc}", None, "ok")
    try:
        db = json.loads(body).get("database")
    except json.JSONDecodeError:
        db = None
    return judge(code == 200 and db == "ok", f"Grafana /api/health: HTTP {code}, database {db}", db, "ok")


@check("sw.time", "Clock synchronised (chrony)", "software",
       "时间同步（chrony / NTP）", "Time synchronised (chrony / NTP)", "llmrack")
def sw_time(ctx: CheckContext) -> Outcome:
    limit = ctx.profile.acceptance.time_offset_ms_max
    servers = ctx.profile.base.time.ntp_servers
    if not servers:
        rc, _, _ = ctx.run("pgrep -x chronyd >/dev/null")
        return judge(rc == 0, "the tier gives chrony no time sources (clock kept by the machine); chronyd is "
                     + ("running" if rc == 0 else "not running"), "no sources", f"|offset| <= {limit} ms")
    if ctx.has("chronyc"):
        rc, out, err = ctx.run("chronyc tracking")
        if rc != 0:
            return bad(f"chronyc tracking failed (chronyd not running?): {(err or out).strip()[:200]}", None,
                       f"|offset| <= {limit} ms")
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
        leap = fields.get("Leap status", "?")
        m = re.match(r"([\d.]+) seconds (fast|slow)", fields.get("System time", ""))
        offset_ms = float(m.group(1)) * 1000 if m else None
        good = leap == "Normal" and offset_ms is not None and offset_ms <= limit
        return judge(good, f"chrony: leap status {leap}, offset {offset_ms if offset_ms is not None else '?'} ms, "
                     f"source {fields.get('Reference ID', '?')}", offset_ms, f"|offset| <= {limit} ms")
    rc, out, _ = ctx.run("timedatectl show -p NTPSynchronized --value")
    synced = out.strip() == "yes"
    return judge(synced, "timedatectl: NTPSynchronized=" + (out.strip() or "?") + " (chrony not installed)",
                 out.strip() or None, "yes")


# ================================================================================================== hardware


def _gpu_outcome_or_none(ctx: CheckContext, threshold: Any) -> tuple[list[dict[str, str]] | None, Outcome | None]:
    if not ctx.gpu_tier:
        return None, skip(NOT_APPLICABLE, "the tier has no GPUs", threshold)
    gpus = ctx.gpus()
    if gpus is None:
        why = "nvidia-smi is not installed" if not ctx.has("nvidia-smi") else "nvidia-smi fails"
        return None, bad(f"{why}: no GPU can be read", None, threshold)
    return gpus, None


@check("hw.gpu_count", "GPU count", "hardware",
       "GPU 数量与型号（采购清单：NVIDIA RTX 4090 24GB）", "GPU count and model (purchase list: NVIDIA RTX 4090 24GB)")
def hw_gpu_count(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.gpu.count
    gpus, early = _gpu_outcome_or_none(ctx, want)
    if early:
        return early
    assert gpus is not None
    return judge(len(gpus) == want, f"{len(gpus)} GPU(s) found, the tier has {want}", len(gpus), want)


@check("hw.gpu_model", "GPU model", "hardware",
       "GPU 数量与型号（采购清单：NVIDIA RTX 4090 24GB）", "GPU count and model (purchase list: NVIDIA RTX 4090 24GB)")
def hw_gpu_model(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.gpu.model
    gpus, early = _gpu_outcome_or_none(ctx, want)
    if early:
        return early
    assert gpus is not None
    names = [g["name"] for g in gpus]
    wrong = [f"GPU {g['index']}: {g['name']}" for g in gpus if want.lower() not in g["name"].lower()]
    return judge(bool(gpus) and not wrong, "; ".join(wrong) + f" (the tier wants {want})" if wrong
                 else f"{len(gpus)} x {names[0] if names else '?'}", sorted(set(names)), want)


@check("hw.gpu_memory", "GPU memory", "hardware",
       "GPU 数量与型号（采购清单：NVIDIA RTX 4090 24GB）", "GPU count and model (purchase list: NVIDIA RTX 4090 24GB)")
def hw_gpu_memory(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.gpu.memory_gib
    gpus, early = _gpu_outcome_or_none(ctx, f">= {want} GiB")
    if early:
        return early
    assert gpus is not None
    # nvidia-smi reports MiB; cards are sold in GB and keep a few hundred MiB: allow 5 %
    mems = {g["index"]: (num(g["memory.total"]) or 0) / 1024 for g in gpus}
    small = {i: m for i, m in mems.items() if m < want * 0.95}
    value = {i: round(m, 1) for i, m in mems.items()}
    return judge(bool(gpus) and not small,
                 "GPU(s) with less memory: " + ", ".join(f"{i}: {m:.1f} GiB" for i, m in small.items()) if small
                 else f"every GPU has >= {want} GiB (within 5 %)", value, f">= {want} GiB")


@check("hw.pcie", "GPU PCIe links not degraded", "hardware",
       "GPU PCIe 链路未降级（代数/宽度）", "GPU PCIe links not degraded (generation/width)", "llmrack")
def hw_pcie(ctx: CheckContext) -> Outcome:
    exp = ctx.profile.hardware.gpu
    threshold = f"Gen{exp.min_pcie_gen} x{exp.min_pcie_width}"
    gpus, early = _gpu_outcome_or_none(ctx, threshold)
    if early:
        return early
    assert gpus is not None
    problems, notes, value = [], [], {}
    for g in gpus:
        gc, gm = num(g["pcie.link.gen.current"]), num(g["pcie.link.gen.max"])
        wc, wm = num(g["pcie.link.width.current"]), num(g["pcie.link.width.max"])
        value[g["index"]] = f"Gen{gc and int(gc)}/{gm and int(gm)} x{wc and int(wc)}/{wm and int(wm)}"
        if gm is not None and gm < exp.min_pcie_gen:
            problems.append(f"GPU {g['index']} link at most Gen{int(gm)} (slot or riser below Gen{exp.min_pcie_gen})")
        if wm is not None and wm < exp.min_pcie_width:
            problems.append(f"GPU {g['index']} link at most x{int(wm)}")
        if wc is not None and wm is not None and wc < wm:
            problems.append(f"GPU {g['index']} runs x{int(wc)} of x{int(wm)}")
        if gc is not None and gm is not None and gc < gm:
            notes.append(f"GPU {g['index']} at Gen{int(gc)} of Gen{int(gm)} (idle GPUs lower the link speed; "
                         "re-check under load)")
    return judge(not problems, "; ".join(problems + notes) or "every link at its full generation and width",
                 value, threshold)


@check("hw.gpu_errors", "GPU ECC and XID errors", "hardware",
       "GPU 错误计数为零（ECC/XID）", "GPU error counts are zero (ECC/XID)", "llmrack")
def hw_gpu_errors(ctx: CheckContext) -> Outcome:
    gpus, early = _gpu_outcome_or_none(ctx, 0)
    if early:
        return early
    assert gpus is not None
    ecc = {g["index"]: num(g["ecc.errors.uncorrected.volatile.total"]) for g in gpus}
    ecc_bad = {i: int(v) for i, v in ecc.items() if v}
    rc, out, _ = ctx.run("journalctl -k -b --no-pager -q 2>/dev/null | grep -c 'NVRM: Xid' "
                         "|| dmesg 2>/dev/null | grep -c 'NVRM: Xid'")
    xid = int(out.strip().splitlines()[-1]) if out.strip() and out.strip().splitlines()[-1].isdigit() else 0
    value = {"ecc_uncorrected": {i: (int(v) if v is not None else "n/a") for i, v in ecc.items()}, "xid_events": xid}
    problems = [f"GPU {i}: {v} uncorrected ECC error(s)" for i, v in ecc_bad.items()]
    if xid:
        problems.append(f"{xid} XID event(s) in the kernel log since boot")
    return judge(not problems, "; ".join(problems) or "no uncorrected ECC errors, no XID events since boot",
                 value, 0)


@check("hw.gpu_idle", "GPU temperature and power at idle", "hardware",
       "散热测试（满载温度监控）", "Cooling test (temperature under full load)")
def hw_gpu_idle(ctx: CheckContext) -> Outcome:
    limit = ctx.profile.hardware.gpu.max_idle_temp_c
    gpus, early = _gpu_outcome_or_none(ctx, f"<= {limit} C")
    if early:
        return early
    assert gpus is not None
    problems, value = [], {}
    for g in gpus:
        t, p, pl = num(g["temperature.gpu"]), num(g["power.draw"]), num(g["power.limit"])
        value[g["index"]] = {"temperature_c": t, "power_w": p, "power_limit_w": pl,
                             "utilization_pct": num(g["utilization.gpu"])}
        if t is not None and t > limit:
            problems.append(f"GPU {g['index']} at {t:.0f} C (limit {limit} C at idle)")
        if p is not None and pl is not None and p > pl:
            problems.append(f"GPU {g['index']} draws {p:.0f} W over its {pl:.0f} W limit")
    return judge(not problems, "; ".join(problems) or
                 f"hottest GPU {max((v['temperature_c'] or 0) for v in value.values()):.0f} C", value, f"<= {limit} C")


@check("hw.burnin", "GPU temperature under burn-in load", "hardware",
       "GPU压力测试（FurMark/CUDA-Z，满载运行2小时）", "GPU stress test (full load for 2 hours)")
def hw_burnin(ctx: CheckContext) -> Outcome:
    limit = ctx.profile.hardware.gpu.max_load_temp_c
    if not ctx.gpu_tier:
        return skip(NOT_APPLICABLE, "the tier has no GPUs", f"<= {limit} C")
    if not ctx.burnin:
        return skip(NOT_MEASURED, "no burn-in result given (run `llmrack burnin` on the host and pass its JSON)",
                    f"<= {limit} C")
    series = burnin_temperatures(ctx.burnin)
    peak = max((max(v) for v in series.values() if v), default=None)
    minutes = ctx.burnin.get("minutes") or ctx.burnin.get("duration_min")
    want_min = ctx.profile.acceptance.burnin_minutes
    problems = []
    if peak is None:
        problems.append("the burn-in result has no temperature samples")
    elif peak > limit:
        problems.append(f"peak {peak:.0f} C over {limit} C")
    if minutes is not None and float(minutes) < want_min:
        problems.append(f"ran {float(minutes):g} min of the {want_min} min the tier asks")
    if ctx.burnin.get("verdict") not in (None, "pass"):
        problems.append("burn-in verdict fail: " + "; ".join(map(str, ctx.burnin.get("problems") or []))[:300])
    return judge(not problems, "; ".join(problems) or f"peak {peak:.0f} C over {minutes} min", peak, f"<= {limit} C")


def burnin_temperatures(result: dict[str, Any]) -> dict[str, list[float]]:
    """GPU index -> temperatures (C) of a ``llmrack burnin`` result (``samples``: {index: [{temp_c, ...}]})."""
    series: dict[str, list[float]] = {}
    samples = result.get("samples") or {}
    items = samples.items() if isinstance(samples, dict) else (("0", samples),)
    for index, rows in items:
        for row in rows or []:
            t = row.get("temp_c", row.get("temperature_c"))
            if t is not None:
                series.setdefault(str(index), []).append(float(t))
    return series


@check("hw.ram", "Memory size", "hardware",
       "内存（采购清单：DDR5 ECC REGDIMM）；内存检测", "Memory as bought (DDR5 ECC RDIMM); memory check")
def hw_ram(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.ram_gib_min
    tol = ctx.profile.acceptance.memory_tolerance
    text = ctx.out("cat /proc/meminfo")
    m = re.search(r"MemTotal:\s+(\d+) kB", text)
    gib = int(m.group(1)) / 1024 / 1024 if m else 0.0
    return judge(gib >= want * (1 - tol), f"{gib:.1f} GiB visible to the kernel (tier: {want} GiB, "
                 f"{tol:.0%} kept by firmware/kernel allowed)", round(gib, 1), f">= {want} GiB")


@check("hw.cpu", "CPU cores", "hardware",
       "CPU（采购清单：Xeon）", "CPU as bought (Xeon)")
def hw_cpu(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.cpu_cores_min
    n = int(ctx.out("nproc").strip() or 0)
    model = ""
    rc, out, _ = ctx.run("grep -m1 'model name' /proc/cpuinfo")
    if rc == 0:
        model = out.partition(":")[2].strip()
    return judge(n >= want, f"{n} logical CPU(s) {model}".strip(), n, f">= {want}")


@check("hw.smart", "Disk SMART health", "hardware",
       "磁盘健康检测（SMART状态正常，坏块检测）", "Disk health (SMART status normal, bad blocks)")
def hw_smart(ctx: CheckContext) -> Outcome:
    rc, out, _ = ctx.run("lsblk -dn -o NAME,TYPE 2>/dev/null")
    names = [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["disk"]]
    disks = []
    for name in names:
        if re.match(r"^(loop|ram|zram|nbd|md|dm-|sr)", name):
            continue
        if ctx.run(f"test -b /dev/{shlex.quote(name)}")[0] == 0:
            disks.append(name)
    if not disks:
        return skip(NOT_APPLICABLE, "no physical disk device visible (container or VM without disk access)", "PASSED")
    if not ctx.has("smartctl"):
        return bad(f"smartctl is not installed (smartmontools) to read {', '.join(disks)}", None, "PASSED")
    value, problems, unsupported = {}, [], []
    for d in disks:
        rc, out, _ = ctx.run(f"smartctl -H -A /dev/{d}")
        verdict = smart_verdict(out, rc)
        value[d] = verdict
        if verdict == "unsupported":
            unsupported.append(d)
        elif verdict != "PASSED":
            problems.append(f"/dev/{d}: {verdict}")
    if len(unsupported) == len(disks):
        return skip(NOT_APPLICABLE, f"no SMART data on {', '.join(disks)} (virtual disks)", "PASSED")
    return judge(not problems, "; ".join(problems) or f"{len(disks) - len(unsupported)} disk(s) PASSED"
                 + (f"; no SMART on {', '.join(unsupported)}" if unsupported else ""), value, "PASSED")


def smart_verdict(out: str, rc: int) -> str:
    """PASSED / FAILED ... / 'N reallocated sectors' / unsupported, from ``smartctl -H -A`` output and exit code."""
    if re.search(r"SMART support is:\s+Unavailable|Unable to detect device type|SMART Disabled", out):
        return "unsupported"
    m = re.search(r"SMART overall-health self-assessment test result:\s*(\S+)", out) or \
        re.search(r"SMART Health Status:\s*(\S+)", out)
    if not m:
        return "unsupported" if rc & 0b11 else "no SMART verdict"
    verdict = m.group(1).upper()
    if verdict not in ("PASSED", "OK") or rc & 0b1000:
        return f"FAILED ({m.group(1)})"
    for attr in ("Reallocated_Sector_Ct", "Current_Pending_Sector", "Offline_Uncorrectable"):
        a = re.search(rf"^\s*\d+\s+{attr}\s.*\s(\d+)\s*$", out, re.M)
        if a and int(a.group(1)) > 0:
            return f"{a.group(1)} {attr}"
    return "PASSED"


@check("hw.data_free", "Free space on the data volume", "hardware",
       "数据盘可用空间（模型与数据）", "Free space on the data volume (models and data)", "llmrack")
def hw_data_free(ctx: CheckContext) -> Outcome:
    want = ctx.profile.hardware.data_free_gib_min
    path = ctx.profile.acceptance.data_path or (ctx.spec.data_disk.mount if ctx.spec.data_disk else "/")
    rc, out, err = ctx.run(f"df -PB1 {shlex.quote(path)}")
    if rc != 0:
        return bad(f"{path} cannot be read: {(err or out).strip()[:200]}", None, f">= {want} GiB")
    fields = out.strip().splitlines()[-1].split()
    free = int(fields[3]) / 1024**3
    return judge(free >= want, f"{free:.2f} GiB free on {fields[5]} ({fields[0]})" +
                 ("" if free >= want else f": below {want} GiB"), round(free, 3), f">= {want} GiB")


# ================================================================================================== security


@check("sec.ssh_password", "SSH password logins off", "security",
       "SSH 仅允许密钥登录", "SSH allows key logins only", "llmrack")
def sec_ssh_password(ctx: CheckContext) -> Outcome:
    if not ctx.has("sshd") and ctx.run("test -x /usr/sbin/sshd")[0] != 0:
        return skip(NOT_APPLICABLE, "no SSH server installed", "no")
    rc, out, _ = ctx.run("sshd -T 2>/dev/null || /usr/sbin/sshd -T 2>/dev/null")
    if rc != 0 or not out.strip():
        return Outcome("error", "`sshd -T` failed (needs root and sshd)", None, "no")
    conf = dict((line.split(" ", 1) + [""])[:2] for line in out.lower().splitlines() if line)
    pw = conf.get("passwordauthentication", "?")
    kbd = conf.get("kbdinteractiveauthentication", conf.get("challengeresponseauthentication", "no"))
    problems = [f"{k} {v}" for k, v in (("PasswordAuthentication", pw), ("KbdInteractiveAuthentication", kbd))
                if v != "no"]
    return judge(not problems, "; ".join(problems) + " in the effective sshd configuration" if problems
                 else "passwords off (PasswordAuthentication no, KbdInteractiveAuthentication no)",
                 {"passwordauthentication": pw, "kbdinteractiveauthentication": kbd}, "no")


BACKEND_PORTS = {8000: "vLLM", 8001: "vLLM", 6333: "Qdrant", 6334: "Qdrant gRPC", 5432: "PostgreSQL",
                 9090: "Prometheus", 9093: "Alertmanager", 3000: "Grafana", 8080: "embeddings",
                 9095: "alert relay"}
EXPORTER_PORTS = {9100: "node-exporter", 9400: "dcgm-exporter", 9113: "nginx-exporter", 9187: "postgres-exporter"}


@check("sec.ports", "Only the gateway (and SSH) reachable from outside", "security",
       "仅网关端口对外开放（后端端口不可达）", "Only the gateway is reachable from outside (backends are not)",
       "llmrack")
def sec_ports(ctx: CheckContext) -> Outcome:
    gw = ctx.profile.stack.gateway
    allowed = {22, gw.https_port, *( [gw.http_port] if gw.http_port else []),
               *ctx.profile.acceptance.exposed_ports_allowed, *EXPORTER_PORTS}
    threshold = sorted(allowed)
    if ctx.local:
        return skip(NOT_APPLICABLE, "an outside view needs another machine (run verify over SSH)", threshold)
    if _is_loopback(ctx.spec.address):
        return skip(NOT_APPLICABLE, f"the host address {ctx.spec.address} is a loopback address", threshold)
    listening: set[int] = set()
    rc, out, _ = ctx.run("ss -Htln 2>/dev/null")
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            addr, _, port = parts[3].rpartition(":")
            if port.isdigit() and not addr.startswith(("127.", "[::1]", "::1")):
                listening.add(int(port))
    probe = sorted(listening | set(BACKEND_PORTS))
    reachable = [p for p in probe if tcp_open(ctx.spec.address, p)]
    exposed = [p for p in reachable if p not in allowed]
    value = {"reachable": reachable, "exposed": exposed}
    names = ", ".join(f"{p} ({BACKEND_PORTS.get(p, 'unknown service')})" for p in exposed)
    return judge(not exposed, f"reachable from here: {names}" if exposed
                 else f"reachable: {', '.join(map(str, reachable)) or 'none'} (all allowed)", value, threshold)


def tcp_open(address: str, port: int, timeout: float = 1.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _is_loopback(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


@check("sec.gateway_auth", "The API refuses requests without a key", "security",
       "API 需要密钥访问", "The API requires a key", "llmrack")
def sec_gateway_auth(ctx: CheckContext) -> Outcome:
    if not _has_role(ctx, "gateway"):
        return skip(NOT_DEPLOYED, "the host has no gateway role", "401/403")
    if (out := _never_deployed(ctx, 'stack', "401/403")) is not None:
        return out
    try:
        resp = ctx.gateway_get("/v1/models", key=False)
    except Exception as exc:
        return bad(f"the gateway does not answer: {type(exc).__name__}: {exc}", None, "401/403")
    code = resp.status_code
    return judge(code in (401, 403), f"GET /v1/models without a key: HTTP {code}", code, "401/403")


# ================================================================================================== performance


def bench_result(ctx: CheckContext) -> dict[str, Any]:
    """One benchmark per host (levels 1, 4, 16, N), shared by the performance checks."""
    if "bench" in ctx.cache:
        if isinstance(ctx.cache["bench"], Exception):
            raise ctx.cache["bench"]
        return ctx.cache["bench"]
    from llmrack import bench

    acc = ctx.profile.acceptance
    model = served_names(ctx.spec)[0]
    levels = sorted({1, 4, 16, acc.concurrency})
    merged: dict[str, Any] | None = None
    try:
        for c in levels:
            n = acc.bench_single_requests if c == 1 else c * acc.bench_requests_per_slot
            res = bench.run_bench(ctx.gateway_url(), ctx.api_key or "", model=model, concurrency_levels=[c],
                                  requests_per_level=n, max_tokens=acc.bench_max_tokens,
                                  timeout_s=acc.bench_level_timeout_s, log=ctx.log)
            if merged is None:
                merged = res
            else:
                merged["levels"].extend(res["levels"])
            if c == 1:
                merged["single_stream_tokens_per_s"] = res["single_stream_tokens_per_s"]
    except Exception as exc:
        ctx.cache["bench"] = exc
        raise
    assert merged is not None
    merged.pop("requests_per_level", None)
    ctx.cache["bench"] = merged
    return merged


def _perf_guard(ctx: CheckContext, threshold: Any) -> Outcome | None:
    if not (_has_role(ctx, "inference") and _has_role(ctx, "gateway")):
        return skip(NOT_DEPLOYED, "the host does not serve the API (inference + gateway roles)", threshold)
    if (out := _never_deployed(ctx, 'stack', threshold)) is not None:
        return out
    if not ctx.api_key:
        return bad("no API key found for the gateway (.llmrack/secrets/<host>/): cannot benchmark", None, threshold)
    return None


@check("perf.single_stream", "Single-stream generation speed", "performance",
       "单GPU推理吞吐（DeepSeek-7B，tokens/sec>50）", "Single-GPU inference throughput (tokens/s > 50)")
def perf_single_stream(ctx: CheckContext) -> Outcome:
    want = ctx.profile.acceptance.single_stream_tokens_per_s_min
    early = _perf_guard(ctx, f">= {want} tokens/s")
    if early:
        return early
    res = bench_result(ctx)
    from llmrack.bench import level

    lv = level(res, 1)
    tps = res.get("single_stream_tokens_per_s")
    if not lv or not lv["ok"] or tps is None:
        return bad("no successful request at concurrency 1: " + json.dumps((lv or {}).get("errors", {}))[:300],
                   None, f">= {want} tokens/s")
    return judge(tps >= want, f"{tps:.1f} tokens/s per stream (median of {lv['ok']}, {res['max_tokens']} "
                 f"tokens each; TPOT p50 {lv['tpot_ms']['p50'] or 0:.1f} ms)", round(tps, 2), f">= {want} tokens/s")


@check("perf.concurrency", "Success rate under N concurrent requests", "performance",
       "并发测试（50并发，成功率>95%）", "Concurrency test (50 concurrent, success rate > 95%)")
def perf_concurrency(ctx: CheckContext) -> Outcome:
    acc = ctx.profile.acceptance
    threshold = f">= {acc.success_rate_min:.0%} at {acc.concurrency} concurrent"
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    from llmrack.bench import level

    lv = level(bench_result(ctx), acc.concurrency)
    assert lv is not None
    rate = lv["success_rate"]
    errs = "; ".join(f"{k} x{v}" for k, v in lv["errors"].items())
    return judge(rate >= acc.success_rate_min, f"{lv['ok']}/{lv['requests']} succeeded at concurrency "
                 f"{acc.concurrency}" + (f" (errors: {errs})" if errs else ""), round(rate, 4), threshold)


@check("perf.ttft", "Time to first token p99 under load", "performance",
       "首字延迟 TTFT P50/P95/P99（N 并发）", "Time to first token p50/p95/p99 (N concurrent)", "llmrack")
def perf_ttft(ctx: CheckContext) -> Outcome:
    return _latency(ctx, "ttft_ms", ctx.profile.acceptance.ttft_p99_ms_max, "TTFT")


@check("perf.tpot", "Time per output token p99 under load", "performance",
       "每 token 延迟 TPOT P50/P95/P99（N 并发）", "Time per output token p50/p95/p99 (N concurrent)", "llmrack")
def perf_tpot(ctx: CheckContext) -> Outcome:
    return _latency(ctx, "tpot_ms", ctx.profile.acceptance.tpot_p99_ms_max, "TPOT")


def _latency(ctx: CheckContext, key: str, limit: float, label: str) -> Outcome:
    acc = ctx.profile.acceptance
    threshold = f"p99 <= {limit:g} ms at {acc.concurrency} concurrent"
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    from llmrack.bench import level

    res = bench_result(ctx)
    lv = level(res, acc.concurrency)
    assert lv is not None
    stats = lv[key]
    if stats["p99"] is None:
        return bad(f"no successful request at concurrency {acc.concurrency} to measure {label}", None, threshold)
    per_level = {str(x["concurrency"]): {k: (round(v, 1) if v is not None else None)
                                         for k, v in x[key].items() if k in ("p50", "p95", "p99")}
                 for x in res["levels"]}
    return judge(stats["p99"] <= limit, f"{label} at concurrency {acc.concurrency}: p50 {stats['p50']:.0f} ms, "
                 f"p95 {stats['p95']:.0f} ms, p99 {stats['p99']:.0f} ms", per_level, threshold)


@check("perf.throughput", "Aggregate throughput grows with concurrency", "performance",
       "吞吐随并发增长（1/4/16/N 并发）", "Throughput vs concurrency (1/4/16/N)", "llmrack")
def perf_throughput(ctx: CheckContext) -> Outcome:
    threshold = "tokens/s at N > tokens/s at 1"
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    res = bench_result(ctx)
    curve = {str(x["concurrency"]): round(x["throughput_tokens_per_s"], 1) for x in res["levels"]}
    first, last = res["levels"][0], res["levels"][-1]
    good = last["throughput_tokens_per_s"] > first["throughput_tokens_per_s"] > 0
    return judge(good, "aggregate tokens/s by concurrency: " + ", ".join(f"{k}: {v}" for k, v in curve.items())
                 + ("" if good else " (no gain from batching: check vLLM's max_num_seqs and the gateway limits)"),
                 curve, threshold)


@check("perf.multi_gpu", "Multi-GPU scaling", "performance",
       "多GPU扩展效率（4× GPU > 3× 单GPU性能）", "Multi-GPU scaling (4x GPU > 3x single-GPU performance)")
def perf_multi_gpu(ctx: CheckContext) -> Outcome:
    acc = ctx.profile.acceptance
    n = ctx.profile.hardware.gpu.count
    threshold = f">= {acc.multi_gpu_scaling_min:.2f} x {n} x single GPU"
    if n < 2:
        return skip(NOT_APPLICABLE, f"the tier has {n} GPU(s)", threshold)
    if not acc.single_gpu_tokens_per_s:
        return skip(NOT_MEASURED, "no single-GPU reference: set acceptance.single_gpu_tokens_per_s (aggregate tokens/s "
                    "of `llmrack bench` against the model on one GPU)", threshold)
    early = _perf_guard(ctx, threshold)
    if early:
        return early
    from llmrack.bench import level

    lv = level(bench_result(ctx), acc.concurrency)
    assert lv is not None
    ratio = lv["throughput_tokens_per_s"] / (n * acc.single_gpu_tokens_per_s)
    return judge(ratio >= acc.multi_gpu_scaling_min, f"{lv['throughput_tokens_per_s']:.0f} tokens/s on {n} GPUs = "
                 f"{ratio:.2f} x {n} x {acc.single_gpu_tokens_per_s:g}", round(ratio, 3), threshold)


@check("perf.rag", "RAG retrieval latency p99", "performance",
       "RAG检索延迟（P99 < 500ms）", "RAG retrieval latency (p99 < 500 ms)")
def perf_rag(ctx: CheckContext) -> Outcome:
    acc = ctx.profile.acceptance
    threshold = f"p99 <= {acc.rag_p99_ms_max:g} ms"
    kind = ctx.profile.stack.vector_store.kind
    if kind == "none" or not _has_role(ctx, "inference"):
        return skip(NOT_DEPLOYED, f"no vector store on this host (kind: {kind})", threshold)
    found = vector_container(ctx)
    if found is None or not container_ok(found):
        return bad(f"the {kind} container is not running healthy", None, threshold)
    search = rag_search_ms(ctx, found, kind)
    embed, embed_note = rag_embed_ms(ctx, len(search))
    totals = [s + e for s, e in zip(search, embed, strict=False)] if embed else search
    from llmrack.bench import summarize

    stats = {k: (round(v, 2) if v is not None else None) for k, v in summarize(totals).items()}
    search_stats = summarize(search)
    p99 = stats["p99"]
    assert p99 is not None
    what = "embed + search" if embed else f"search only ({embed_note})"
    return judge(p99 <= acc.rag_p99_ms_max, f"{what} over {len(totals)} queries, {acc.rag_corpus_size} x "
                 f"{acc.rag_dimensions}-d vectors in {kind}: p50 {stats['p50']:.1f} ms, p99 {p99:.1f} ms",
                 stats, threshold, search_p99_ms=search_stats["p99"], embedded=bool(embed))


def rag_search_ms(ctx: CheckContext, container: dict[str, Any], kind: str) -> list[float]:
    acc = ctx.profile.acceptance
    n, d, q = acc.rag_corpus_size, acc.rag_dimensions, acc.rag_queries
    if kind == "pgvector":
        env = container_env(container)
        user, db = env.get("POSTGRES_USER", "postgres"), env.get("POSTGRES_DB", "postgres")
        sql = [
            "\\set ON_ERROR_STOP 1",
            f"CREATE TEMP TABLE llmrack_acceptance AS SELECT i AS id, ARRAY(SELECT random() + i * 0 "
            f"FROM generate_series(1, {d}))::vector({d}) AS v FROM generate_series(1, {n}) AS s(i);",
            "CREATE INDEX ON llmrack_acceptance USING hnsw (v vector_cosine_ops);",
            "ANALYZE llmrack_acceptance;",
            "\\timing on",
        ]
        for i in range(q):
            sql.append(f"SELECT id FROM llmrack_acceptance ORDER BY v <=> (SELECT v FROM llmrack_acceptance "
                       f"WHERE id = {1 + (i * 7919) % n}) LIMIT 5;")
        script = "\n".join(sql) + "\n"
        rc, out, err = ctx.run(
            f"printf %s {shlex.quote(script)} | docker exec -i {shlex.quote(cname(container))} psql -q -X -t "
            f"-h /run/postgresql -U {shlex.quote(user)} -d {shlex.quote(db)}"
        )
        if rc != 0:
            raise CommandFailed(f"pgvector search test failed: {(err or out).strip()[-300:]}")
        times = [float(t) for t in re.findall(r"^Time: ([\d.]+) ms", out, re.M)]
        return times[-q:]
    ip = container_ip(container)
    script = QDRANT_SCRIPT
    for k, v in {"@IP@": str(ip), "@KEY@": ctx.secret("qdrant_api_key"), "@N@": str(n), "@D@": str(d),
                 "@Q@": str(q)}.items():
        script = script.replace(k, v)
    rc, out, err = ctx.run("python3 -c " + shlex.quote(script))
    if rc != 0:
        raise CommandFailed(f"Qdrant search test failed: {(err or out).strip()[-300:]}")
    return json.loads(out.strip().splitlines()[-1])


QDRANT_SCRIPT = """
import json, random, time, urllib.request as u
base = "http://@IP@:6333/collections/llmrack_acceptance"
def call(method, url, body=None):
    r = u.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method,
                  headers={"Content-Type": "application/json", "api-key": "@KEY@"})
    with u.urlopen(r, timeout=30) as resp:
        return json.loads(resp.read())
n, d, q = @N@, @D@, @Q@
try:
    call("DELETE", base)
except Exception:
    pass
call("PUT", base, {"vectors": {"size": d, "distance": "Cosine"}})
try:
    for start in range(0, n, 500):
        pts = [{"id": i, "vector": [random.random() for _ in range(d)]} for i in range(start, min(n, start + 500))]
        call("PUT", base + "/points?wait=true", {"points": pts})
    times = []
    for _ in range(q):
        vec = [random.random() for _ in range(d)]
        t = time.perf_counter()
        call("POST", base + "/points/search", {"vector": vec, "limit": 5})
        times.append((time.perf_counter() - t) * 1000)
finally:
    call("DELETE", base)
print(json.dumps(times))
"""


def rag_embed_ms(ctx: CheckContext, count: int) -> tuple[list[float], str]:
    """Latencies of /v1/embeddings through the gateway (empty with a reason when no embedding model is served)."""
    if not ctx.api_key or not _has_role(ctx, "gateway"):
        return [], "no gateway key"
    import httpx

    model = ctx.profile.acceptance.rag_embedding_model
    headers = {"Authorization": f"Bearer {ctx.api_key}"}
    with httpx.Client(verify=False, timeout=30, trust_env=False) as client:
        if not model:
            try:
                ids = [m.get("id", "") for m in client.get(ctx.gateway_url() + "/v1/models",
                                                           headers=headers).json().get("data", [])]
            except Exception:
                ids = []
            model = next((i for i in ids if re.search(r"embed|minilm|bge|e5", i, re.I)), "")
        if not model:
            return [], "no embedding model served"
        times = []
        for i in range(count):
            t = time.perf_counter()
            r = client.post(ctx.gateway_url() + "/v1/embeddings", headers=headers,
                            json={"model": model, "input": f"acceptance question number {i}"})
            if r.status_code != 200:
                return [], f"/v1/embeddings answered HTTP {r.status_code}"
            times.append((time.perf_counter() - t) * 1000)
    return times, ""


def iter_checks() -> Iterator[Check]:
    yield from select(None)
