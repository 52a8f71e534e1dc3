"""Rendering of the serving stack per tier: golden files, checked by the real tools.

Goldens live in tests/unit/golden/stack/<tier>/; regenerate them with `python scripts/regen_goldens.py` after an
intended change and review the diff (the tests only compare, never write). The rendered nginx.conf is checked by the
real ``nginx -t`` (Debian's nginx on this machine, apt package ``nginx``) and compose.yaml by ``docker compose
config -q`` (compose v2: the docker CLI plugin, or $LLMRACK_COMPOSE_BIN, or .llmrack/tools/docker-compose).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from llmrack.config import HostSpec, load_tier
from llmrack.stack import compose as c
from llmrack.stack import nginx as n
from llmrack.stack import served
from llmrack.stack.secrets import StackSecrets
from roles.llm_stack import render_unit

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "stack"
TIERS = ["sandbox", "entry", "standard", "high-performance"]
FAKE = StackSecrets(
    api_keys={"default": "sk-llmrack-" + "a" * 48, "tests": "sk-llmrack-" + "b" * 48},
    backend_api_key="c" * 48, postgres_password="d" * 48, qdrant_api_key="e" * 48,
)


def plans_for(tier: str) -> tuple[HostSpec, list[c.ServedModelPlan]]:
    profile = load_tier(tier)
    spec = HostSpec(name="node1", address="10.0.0.5", roles=["inference", "gateway", "monitoring"], tier=tier,
                    profile=profile)
    gpu = profile.hardware.gpu
    paths = {"llmrack-tiny": GOLDEN / "sandbox" / "model"} if tier == "sandbox" else None
    plans = served.plan_models(profile.stack, gpu_count=gpu.count, gpu_mem_gib=gpu.memory_gib, gpu_name=gpu.model,
                          config_paths=paths)
    return spec, plans


def rendered(tier: str) -> dict[str, str]:
    spec, plans = plans_for(tier)
    stack = spec.profile.stack
    compose = c.build_compose(stack, plans=plans, gpu_count=spec.profile.hardware.gpu.count)
    routes = n.model_routes(stack, [(spec.address, stack, True)],
                            {p.model.public_name: p.max_model_len for p in plans})
    ctx = n.gateway_context(stack, routes)
    out = {"compose.yaml": compose.to_yaml(), "llmrack-stack.service": render_unit(stack)}
    out.update(n.gateway_files(ctx, FAKE.api_keys, FAKE.backend_api_key))
    return out


def cluster_nginx_conf() -> str:
    spec, _plans = plans_for("high-performance")
    stack = spec.profile.stack
    routes = n.model_routes(stack, [("10.0.0.5", stack, True), ("10.0.0.6", stack, False)])
    return n.render_nginx_conf(n.gateway_context(stack, routes))


def golden_files() -> dict[Path, str]:
    """What the goldens should hold now (scripts/regen_goldens.py writes it; the tests compare with it)."""
    out = {GOLDEN / tier / name: text for tier in TIERS for name, text in rendered(tier).items()}
    out[GOLDEN / "high-performance-cluster" / "nginx.conf"] = cluster_nginx_conf()
    return out


@pytest.mark.parametrize("tier", TIERS)
def test_golden(tier: str) -> None:
    files = rendered(tier)
    d = GOLDEN / tier
    for name, text in files.items():
        path = d / name
        assert path.is_file(), f"missing golden {path}; run python scripts/regen_goldens.py"
        assert text == path.read_text(), f"{tier}/{name} differs from its golden file"


def test_cluster_gateway_routes_to_every_inference_host() -> None:
    """A gateway host fronting itself and a node: local backends by fixed address, the node by its port."""
    spec, plans = plans_for("high-performance")
    stack = spec.profile.stack
    conf = cluster_nginx_conf()
    assert conf == (GOLDEN / "high-performance-cluster" / "nginx.conf").read_text()
    assert "server 10.0.0.6:18000 " in conf and "server 10.0.0.6:18001 " in conf
    assert "server 172.31.250.100:8000 " in conf and "server 172.31.250.101:8000 " in conf
    # the node itself publishes its models on its address for the gateway, nothing else
    node = c.build_compose(stack, plans=plans, gpu_count=8, gateway=False, publish_address="10.0.0.6")
    assert set(node.services) == {"vllm-qwen2-5-72b", "vllm-llama-3-1-70b"}
    assert node.services["vllm-qwen2-5-72b"].ports == ["10.0.0.6:18000:8000"]
    assert node.services["vllm-llama-3-1-70b"].ports == ["10.0.0.6:18001:8000"]


# ------------------------------------------------------------------------------------------ nginx -t


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def make_cert(tls: Path) -> None:
    tls.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(tls / "server.key"), "-out", str(tls / "server.crt")],
        check=True, capture_output=True,
    )


def nginx_prefix(tmp: Path, files: dict[str, str]) -> Path:
    """A temp prefix holding the configuration with its paths pointed inside it."""
    conf_dir = tmp / "conf"
    conf_dir.mkdir(parents=True)
    make_cert(tmp / "tls")
    for name, text in files.items():
        if name in ("nginx.conf", "api_keys.map", "backend_auth.conf"):
            text = text.replace(c.GATEWAY_CONF_DIR, str(conf_dir)).replace(c.GATEWAY_TLS_DIR, str(tmp / "tls"))
            text = text.replace("pid /run/nginx.pid;", f"pid {tmp}/nginx.pid;")
            (conf_dir / name).write_text(text)
    (tmp / "logs").mkdir()
    return conf_dir / "nginx.conf"


@pytest.mark.parametrize("tier", TIERS)
def test_nginx_accepts_the_rendered_configuration(tier: str, tmp_path: Path) -> None:
    conf = nginx_prefix(tmp_path, rendered(tier))
    proc = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "syntax is ok" in proc.stderr


def test_nginx_rejects_a_broken_configuration(tmp_path: Path) -> None:
    """The check is real: a configuration nginx cannot load fails it."""
    files = rendered("sandbox")
    files["nginx.conf"] = files["nginx.conf"].replace("limit_req_status 429;", "limit_req_status 429")
    conf = nginx_prefix(tmp_path, files)
    proc = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert proc.returncode != 0


# ------------------------------------------------------------------------------------------ compose config


def compose_cmd() -> list[str] | None:
    env = os.environ.get("LLMRACK_COMPOSE_BIN")
    if env:
        return [env]
    if shutil.which("docker"):
        proc = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if proc.returncode == 0 and "version v2" in proc.stdout.lower() or "version 2" in proc.stdout.lower():
            return ["docker", "compose"]
    local = ROOT / ".llmrack" / "tools" / "docker-compose"
    return [str(local)] if local.is_file() else None


COMPOSE = compose_cmd()


@pytest.fixture(autouse=True)
def _tools() -> None:
    """The real tools must be here (scripts/bootstrap.sh installs them): a check that cannot run fails."""
    assert NGINX is not None, "nginx is not installed (apt-get install nginx-light)"
    assert COMPOSE is not None, "no docker compose v2 binary (scripts/bootstrap.sh puts one in .llmrack/tools)"


@pytest.mark.parametrize("tier", TIERS)
def test_compose_accepts_the_rendered_project(tier: str, tmp_path: Path) -> None:
    files = rendered(tier)
    (tmp_path / "compose.yaml").write_text(files["compose.yaml"])
    (tmp_path / "secrets").mkdir()
    for name in ("vllm.env", "qdrant.env", "postgres_password"):
        (tmp_path / "secrets" / name).write_text("X=1\n")
    proc = subprocess.run([*COMPOSE, "-f", str(tmp_path / "compose.yaml"), "config", "-q"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([*COMPOSE, "-f", str(tmp_path / "compose.yaml"), "config", "--format", "json"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    model = yaml.safe_load(proc.stdout)
    published = {name for name, svc in model["services"].items() if svc.get("ports")}
    assert published == {"gateway"}, "only the gateway publishes ports"
    assert model["networks"]["llmrack_backend"]["internal"] is True
    for name, svc in model["services"].items():
        assert "llmrack_backend" in svc["networks"], name
        assert svc["pull_policy"] == "never", name
        assert svc["restart"] == "unless-stopped", name
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        if name != "gateway":
            assert "llmrack_frontend" not in svc["networks"], f"{name} must stay on the internal network"
    # the secrets env file's value reached the service, never the compose file
    vllm = next(s for n_, s in model["services"].items() if n_.startswith("vllm-"))
    assert vllm["environment"]["X"] == "1"
    assert "VLLM_API_KEY" not in files["compose.yaml"]


def test_compose_rejects_a_broken_project(tmp_path: Path) -> None:
    text = rendered("sandbox")["compose.yaml"].replace("restart: unless-stopped", "restrat: unless-stopped", 1)
    (tmp_path / "compose.yaml").write_text(text)
    (tmp_path / "secrets").mkdir()
    for name in ("vllm.env", "postgres_password"):
        (tmp_path / "secrets" / name).write_text("X=1\n")
    proc = subprocess.run([*COMPOSE, "-f", str(tmp_path / "compose.yaml"), "config", "-q"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode != 0
