"""Software lines of the checklist: OS, driver, CUDA, Docker, the serving stack, monitoring, time."""

from __future__ import annotations

import json
import re
import shlex
import socket
import ssl
import time
from pathlib import Path
from typing import Any

from llmrack.tls import client_context
from llmrack.verify.context import (
    CheckContext,
    CommandFailed,
    cname,
    container_env,
    container_ip,
    container_ok,
    container_state,
    has_role,
    served_names,
    stack_absent,
    vector_container,
    vector_store_guard,
    version_ge,
)
from llmrack.verify.result import (
    Outcome,
    bad,
    check,
    judge,
    not_applicable,
    ok,
)


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
        return not_applicable("the tier has no GPUs", f">= {want}")
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
        return not_applicable("the tier has no GPUs", f">= {want}")
    if not ctx.profile.nvidia.enabled:
        return not_applicable("the NVIDIA stack is not managed on this tier (nvidia.enabled: false)")
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
        return not_applicable("the tier has no GPUs", "nvidia")
    if not ctx.profile.nvidia.enabled:
        return not_applicable("the NVIDIA stack is not managed on this tier (nvidia.enabled: false)")
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
    if not has_role(ctx, "inference"):
        return not_applicable("the host has no inference role", want)
    if (out := stack_absent(ctx, 'stack', want)) is not None:
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
    if has_role(ctx, "gateway"):
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
    if (out := vector_store_guard(ctx, kind)) is not None:
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


@check("sw.gateway_tls", "Gateway answers HTTPS with TLS 1.2 or newer", "software",
       "网关部署（HTTPS，证书有效，TLS ≥ 1.2）", "Gateway deployed (HTTPS, valid certificate, TLS >= 1.2)", "llmrack")
def sw_gateway_tls(ctx: CheckContext) -> Outcome:
    if not has_role(ctx, "gateway"):
        return not_applicable("the host has no gateway role", "TLSv1.2+")
    if (out := stack_absent(ctx, 'stack', "TLSv1.2+")) is not None:
        return out
    port = ctx.profile.stack.gateway.https_port
    info = tls_probe(ctx.client_address, port)
    if "error" in info:
        return bad(f"no TLS handshake with {ctx.client_address}:{port}: {info['error']}", None, "TLSv1.2+")
    problems = []
    trusted = verified_handshake(ctx.client_address, port, ctx.gateway_ca) if not ctx.gateway_ca_problem \
        else ctx.gateway_ca_problem
    info["checked_against"] = str(ctx.gateway_ca or "the system's trust store")
    if trusted:
        problems.append(f"the certificate does not check out against {info['checked_against']}: {trusted}")
    if info["version"] not in ("TLSv1.2", "TLSv1.3"):
        problems.append(f"negotiated {info['version']}")
    days = info.get("days_left")
    if days is not None and days < 0:
        problems.append(f"certificate expired {-days} day(s) ago")
    if info.get("accepts_tls11"):
        problems.append("the gateway still accepts TLS 1.1")
    msg = (f"{info['version']}, certificate {info.get('subject', '?')} valid {days} more day(s), "
           f"checked against {info['checked_against']}")
    return judge(not problems, "; ".join(problems) or msg, info, "TLSv1.2+")


def verified_handshake(address: str, port: int, ca: Path | None, timeout: float = 8) -> str:
    """'' when ``address:port`` presents a certificate for ``address`` that ``ca`` (None: the system's trust
    store) vouches for, else why not."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw, \
                client_context(ca).wrap_socket(raw, server_hostname=address):
            return ""
    except ssl.SSLCertVerificationError as exc:
        return exc.verify_message or str(exc)
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"


def tls_probe(address: str, port: int, timeout: float = 8) -> dict[str, Any]:
    """What ``address:port`` offers: protocol, cipher, certificate dates (unverified: :func:`verified_handshake`
    checks the certificate; this only reads it, and sends nothing)."""
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
    if not mon.enabled:
        return not_applicable("the tier runs no monitoring (monitoring.enabled: false)", "all up")
    if not has_role(ctx, "monitoring"):
        return not_applicable("the host has no monitoring role", "all up")
    if (out := stack_absent(ctx, 'monitoring', "all up")) is not None:
        return out
    down: dict[str, str] = {}
    targets: list[dict[str, Any]] = []
    attempts = 40  # a second apart: the longest scrape interval and then some
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
        time.sleep(1)
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
    if not (mon.enabled and mon.grafana):
        return not_applicable("the tier runs no Grafana (monitoring.enabled / monitoring.grafana: false)", "ok")
    if not has_role(ctx, "monitoring"):
        return not_applicable("the host has no monitoring role", "ok")
    if (out := stack_absent(ctx, 'monitoring', "ok")) is not None:
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


