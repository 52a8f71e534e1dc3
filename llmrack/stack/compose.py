"""The compose project of the serving stack, as a typed model dumped to YAML (sorted keys, never templated).

One vLLM service per served model (arguments from the planner), the vector store (Qdrant or pgvector),
the embeddings service and the Nginx gateway. Backends live only on the internal network
``llmrack_backend`` (``internal: true``) at fixed addresses; the gateway joins it and the published
``llmrack_frontend`` network and is the only service that publishes ports. On an inference host without
the gateway role (a cluster node), the vLLM services also publish their port on the host's address so
the gateway hosts can reach them; vLLM then checks the cluster's backend key (``VLLM_API_KEY``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from llmrack.errors import LlmrackError
from llmrack.settings.stack import ModelSettings, StackSettings

BACKEND_NETWORK = "llmrack_backend"
FRONTEND_NETWORK = "llmrack_frontend"
CONTAINER_MODELS_DIR = "/models"
VLLM_CACHE_DIR = "/var/cache/vllm"
GATEWAY_CONF_DIR = "/etc/nginx/llmrack"
GATEWAY_TLS_DIR = "/etc/nginx/tls"
GATEWAY_HEALTH_PORT = 8081
GATEWAY_HTTPS_PORT = 443
GATEWAY_HTTP_PORT = 80
QDRANT_HTTP_PORT = 6333
POSTGRES_PORT = 5432
MODEL_LABEL = "org.llmrack.model-content"

# fixed host numbers inside StackSettings.backend_subnet
_HOST_GATEWAY = 10
_HOST_VECTOR = 20
_HOST_EMBED = 21
_HOST_VLLM_FIRST = 100


# --------------------------------------------------------------------------------------------------
# compose file model (only the keys llmrack uses; unknown keys are errors)
# --------------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Healthcheck(_Model):
    test: list[str]
    interval: str = "10s"
    timeout: str = "5s"
    retries: int = 3
    start_period: str = "30s"


class Ulimit(_Model):
    soft: int
    hard: int


class DeviceRequest(_Model):
    driver: str = "nvidia"
    device_ids: list[str]
    capabilities: list[str] = ["gpu"]


class Reservations(_Model):
    devices: list[DeviceRequest]


class Resources(_Model):
    reservations: Reservations


class Deploy(_Model):
    resources: Resources


class ServiceNetwork(_Model):
    ipv4_address: str | None = None


class ServiceSecret(_Model):
    source: str
    target: str
    mode: int = 0o400


class Service(_Model):
    image: str
    pull_policy: Literal["never", "missing", "always"] = "never"
    restart: Literal["unless-stopped", "always", "no", "on-failure"] = "unless-stopped"
    entrypoint: list[str] | None = None
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    env_file: list[str] | None = None
    volumes: list[str] | None = None
    networks: dict[str, ServiceNetwork] | None = None
    ports: list[str] | None = None
    healthcheck: Healthcheck | None = None
    shm_size: str | None = None
    ulimits: dict[str, Ulimit | int] | None = None
    deploy: Deploy | None = None
    labels: dict[str, str] | None = None
    secrets: list[ServiceSecret] | None = None
    stop_grace_period: str | None = None
    init: bool | None = None
    read_only: bool | None = None
    security_opt: list[str] | None = None


class IpamConfig(_Model):
    subnet: str


class Ipam(_Model):
    driver: str = "default"
    config: list[IpamConfig]


class Network(_Model):
    name: str
    driver: str = "bridge"
    internal: bool | None = None
    ipam: Ipam | None = None


class Volume(_Model):
    name: str


class Secret(_Model):
    file: str


class ComposeFile(_Model):
    name: str
    services: dict[str, Service]
    networks: dict[str, Network]
    volumes: dict[str, Volume] | None = None
    secrets: dict[str, Secret] | None = None

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        body = yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=200)
        return "# managed by llmrack: the serving stack (generated from tiers/*.yaml; do not edit)\n" + body


# --------------------------------------------------------------------------------------------------
# the planner's output, as the builder takes it
# --------------------------------------------------------------------------------------------------


class ServedModelPlan(_Model):
    """One model to serve: its settings plus the vLLM arguments and environment the planner chose."""

    model: ModelSettings
    vllm_args: list[str] = Field(description="Server arguments from the planner (TP, max-model-len, ...).")
    env: dict[str, str] = Field({}, description="Environment from the planner (NCCL_P2P_DISABLE, ...).")
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    content_id: str = Field("", description="Changes when the weights change (recreates the service).")

    @classmethod
    def from_plan(cls, model: ModelSettings, plan: Any, *, content_id: str = "") -> ServedModelPlan:
        """From ``llmrack.planner.Plan`` (anything with vllm_args, env, tensor_parallel_size, max_model_len)."""
        return cls(
            model=model, vllm_args=list(plan.vllm_args), env=dict(plan.env),
            tensor_parallel_size=int(plan.tensor_parallel_size), max_model_len=plan.max_model_len,
            content_id=content_id,
        )


def plan_models(
    stack: StackSettings, *, gpu_count: int, gpu_mem_gib: float, gpu_name: str = "",
    config_paths: Mapping[str, Path] | None = None, content_ids: Mapping[str, str] | None = None,
    require_fit: bool = True,
) -> list[ServedModelPlan]:
    """Size every model of the stack with ``llmrack.planner`` (raises PlanError when one does not fit).

    ``config_paths`` maps a model's ``name`` to a local config.json (or its directory) for models the
    catalogue does not know (local/bundle weights, e.g. the sandbox's tiny model).
    """
    from llmrack.planner import load_model_spec, plan

    out = []
    for i, m in enumerate(stack.models):
        where = (config_paths or {}).get(m.name)
        spec = load_model_spec(str(where) if where else m.name)
        usable = len(m.gpus) or gpu_count
        p = plan(
            spec, gpu_count=usable, gpu_mem_gib=gpu_mem_gib, gpu_name=gpu_name, quantization=m.quantization,
            kv_cache_dtype=m.kv_cache_dtype, gpu_memory_utilization=stack.vllm.gpu_memory_utilization,
            max_model_len=m.max_model_len, tensor_parallel_size=m.tensor_parallel_size,
            max_num_seqs=m.max_num_seqs, cpu_kv_cache_gib=stack.vllm.cpu_kv_cache_gib,
            source=f"stack.models.{i}",
        )
        if require_fit:
            p.require_fit()
        out.append(ServedModelPlan.from_plan(m, p, content_id=(content_ids or {}).get(m.name, "")))
    return out


def content_id_of_files(files: Iterable[tuple[str, str]]) -> str:
    """A short id of a model's files from (relative path, sha256) pairs (e.g. the bundle manifest)."""
    h = hashlib.sha256()
    for rel, digest in sorted(files):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# layout on the host
# --------------------------------------------------------------------------------------------------


class StackPaths(_Model):
    """Paths of the stack on the host, derived from the settings."""

    directory: str
    models_dir: str
    data_dir: str

    @classmethod
    def of(cls, stack: StackSettings) -> StackPaths:
        return cls(directory=stack.directory, models_dir=stack.models_dir, data_dir=stack.data_dir)

    def p(self, *parts: str) -> str:
        return str(PurePosixPath(self.directory, *parts))

    @property
    def compose_file(self) -> str:
        return self.p("compose.yaml")

    @property
    def secrets_dir(self) -> str:
        return self.p("secrets")

    @property
    def gateway_dir(self) -> str:
        return self.p("gateway")

    @property
    def gateway_staging_dir(self) -> str:
        return self.p("gateway.new")

    @property
    def tls_dir(self) -> str:
        return self.p("tls")

    @property
    def qdrant_config(self) -> str:
        return self.p("qdrant", "config.yaml")


def backend_address(stack: StackSettings, what: Literal["gateway", "vector", "embeddings", "vllm"],
                    index: int = 0) -> str:
    """Fixed address of a service on the backend network."""
    net = ipaddress.ip_network(stack.backend_subnet)
    host = {"gateway": _HOST_GATEWAY, "vector": _HOST_VECTOR, "embeddings": _HOST_EMBED}.get(what)
    number = host if host is not None else _HOST_VLLM_FIRST + index
    if number >= net.num_addresses - 1:
        raise LlmrackError(f"{stack.backend_subnet} is too small for {what} {index}", field="stack.backend_subnet")
    return str(net.network_address + number)


def image_name(stack: StackSettings, image: str) -> str:
    """The image reference to run: a registry mirror prefix applies to upstream images only."""
    if stack.image_source == "registry" and stack.registry_mirror and not image.startswith("llmrack/"):
        first = image.split("/", 1)[0]
        if "." not in first and ":" not in first:  # no registry host in the name yet
            return f"{stack.registry_mirror.rstrip('/')}/{image}"
    return image


def _pull_policy(stack: StackSettings) -> Literal["never", "missing"]:
    return "never" if stack.image_source == "bundle" else "missing"


# --------------------------------------------------------------------------------------------------
# services
# --------------------------------------------------------------------------------------------------

_HEALTH_PY = (
    "import sys, urllib.request as u; "
    "sys.exit(0 if u.urlopen('http://127.0.0.1:{port}/health', timeout=4).status == 200 else 1)"
)
_VLLM_ENTRYPOINT = ["python3", "-m", "vllm.entrypoints.openai.api_server"]


def _has_flag(args: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def vllm_command(plan: ServedModelPlan, stack: StackSettings, *, gpu: bool) -> list[str]:
    """Arguments of one vLLM OpenAI server."""
    m = plan.model
    args = [
        "--host", "0.0.0.0", "--port", str(stack.vllm.port),
        "--model", f"{CONTAINER_MODELS_DIR}/{m.dir_name}",  # every source lands in the models directory
        "--served-model-name", m.public_name,
        *plan.vllm_args,
    ]
    wanted = []
    if stack.vllm.enable_prefix_caching:
        wanted.append("--enable-prefix-caching")
    if stack.vllm.enable_chunked_prefill:
        wanted.append("--enable-chunked-prefill")
    if stack.vllm.enforce_eager or not gpu:
        wanted.append("--enforce-eager")
    for flag in wanted:
        if not _has_flag(args, flag) and not _has_flag(args, flag.replace("--enable-", "--no-enable-")):
            args.append(flag)
    if not stack.vllm.enable_prefix_caching:
        args = [a for a in args if a != "--enable-prefix-caching"]
    if not stack.vllm.enable_chunked_prefill:
        args = [a for a in args if a != "--enable-chunked-prefill"]
    args += ["--disable-uvicorn-access-log", "--uvicorn-log-level", "warning"]
    return args + list(m.extra_args)


def vllm_environment(plan: ServedModelPlan, stack: StackSettings, *, gpu: bool) -> dict[str, str]:
    env = {
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "VLLM_CACHE_ROOT": VLLM_CACHE_DIR,
        "HF_HOME": f"{VLLM_CACHE_DIR}/hf",
    }
    # every source lands in the models directory before the server starts: the server never downloads
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.update(stack.vllm.env)
    env.update(plan.env)  # the planner's (NCCL_P2P_DISABLE, VLLM_CPU_KVCACHE_SPACE) win
    return env


def vllm_service(plan: ServedModelPlan, index: int, stack: StackSettings, *, gpu_count: int,
                 publish_on: str | None) -> Service:
    gpu = gpu_count > 0
    m = plan.model
    deploy = None
    if gpu:
        ids = [str(g) for g in (m.gpus or range(gpu_count))]
        deploy = Deploy(resources=Resources(reservations=Reservations(devices=[DeviceRequest(device_ids=ids)])))
    networks = {BACKEND_NETWORK: ServiceNetwork(ipv4_address=backend_address(stack, "vllm", index))}
    ports = None
    if publish_on:
        networks[FRONTEND_NETWORK] = ServiceNetwork()
        ports = [f"{publish_on}:{stack.vllm.publish_port_base + index}:{stack.vllm.port}"]
    labels = {"org.llmrack.role": "inference", "org.llmrack.served-name": m.public_name}
    if plan.content_id:
        labels[MODEL_LABEL] = plan.content_id
    return Service(
        image=image_name(stack, stack.vllm.image),
        pull_policy=_pull_policy(stack),
        entrypoint=_VLLM_ENTRYPOINT,
        command=vllm_command(plan, stack, gpu=gpu),
        environment=vllm_environment(plan, stack, gpu=gpu),
        env_file=["secrets/vllm.env"],
        volumes=[f"{stack.models_dir}:{CONTAINER_MODELS_DIR}:ro", f"vllm-cache:{VLLM_CACHE_DIR}"],
        networks=networks,
        ports=ports,
        healthcheck=Healthcheck(
            test=["CMD", "python3", "-c", _HEALTH_PY.format(port=stack.vllm.port)],
            interval="15s", timeout="5s", retries=3, start_period=f"{stack.vllm.start_period_s}s",
        ),
        shm_size=stack.vllm.shm_size,
        ulimits={"memlock": Ulimit(soft=-1, hard=-1), "stack": 67108864,
                 "nofile": Ulimit(soft=1048576, hard=1048576)} if stack.container_ulimits else None,
        deploy=deploy,
        labels=labels,
        stop_grace_period="60s",
        init=True,
        security_opt=["no-new-privileges:true"],
    )


def qdrant_config(stack: StackSettings) -> dict[str, Any]:
    """Qdrant's configuration (dumped to qdrant/config.yaml); the API key comes from the environment."""
    return {
        "log_level": "INFO",
        "service": {"host": "0.0.0.0", "http_port": QDRANT_HTTP_PORT, "grpc_port": 6334, "enable_tls": False},
        "storage": {"storage_path": "/qdrant/storage", "snapshots_path": "/qdrant/snapshots"},
        "telemetry_disabled": True,
    }


def dump_yaml(data: Mapping[str, Any], what: str) -> str:
    return f"# managed by llmrack: {what}\n" + yaml.safe_dump(dict(data), sort_keys=True, default_flow_style=False)


def vector_service(stack: StackSettings) -> tuple[str, Service, dict[str, Secret]] | None:
    vs = stack.vector_store
    addr = {BACKEND_NETWORK: ServiceNetwork(ipv4_address=backend_address(stack, "vector"))}
    if vs.kind == "qdrant":
        return "qdrant", Service(
            image=image_name(stack, vs.qdrant.image),
            pull_policy=_pull_policy(stack),
            env_file=["secrets/qdrant.env"],
            environment={"QDRANT__TELEMETRY_DISABLED": "true"},
            volumes=[f"{stack.data_dir}/qdrant/storage:/qdrant/storage",
                     f"{stack.data_dir}/qdrant/snapshots:/qdrant/snapshots",
                     "./qdrant/config.yaml:/qdrant/config/production.yaml:ro"],
            networks=addr,
            healthcheck=Healthcheck(
                test=["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{QDRANT_HTTP_PORT}"],
                interval="10s", timeout="5s", retries=5, start_period="30s",
            ),
            ulimits={"nofile": Ulimit(soft=65535, hard=65535)} if stack.container_ulimits else None,
            labels={"org.llmrack.role": "vector-store"},
            stop_grace_period="30s",
        ), {}
    if vs.kind == "pgvector":
        pg = vs.pgvector
        return "postgres", Service(
            image=image_name(stack, pg.image),
            pull_policy=_pull_policy(stack),
            environment={
                "POSTGRES_USER": pg.user,
                "POSTGRES_DB": pg.database,
                "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password",
            },
            secrets=[ServiceSecret(source="postgres_password", target="postgres_password")],
            volumes=[f"{stack.data_dir}/postgres:/var/lib/postgresql/data"],
            networks=addr,
            healthcheck=Healthcheck(
                test=["CMD-SHELL", 'pg_isready -q -h 127.0.0.1 -p 5432 -U "$$POSTGRES_USER" -d "$$POSTGRES_DB"'],
                interval="5s", timeout="3s", retries=10, start_period="30s",
            ),
            shm_size="256m",
            labels={"org.llmrack.role": "vector-store"},
            stop_grace_period="60s",
        ), {"postgres_password": Secret(file="./secrets/postgres_password")}
    return None


def embeddings_service(stack: StackSettings) -> Service:
    e = stack.embeddings
    return Service(
        image=image_name(stack, e.image),
        pull_policy=_pull_policy(stack),
        environment={"EMBED_PORT": str(e.port), "EMBED_MODEL_NAME": e.model, "HF_HUB_OFFLINE": "1",
                     "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1"},
        networks={BACKEND_NETWORK: ServiceNetwork(ipv4_address=backend_address(stack, "embeddings"))},
        healthcheck=Healthcheck(
            test=["CMD", "python3.11", "-c", _HEALTH_PY.format(port=e.port)],
            interval="10s", timeout="5s", retries=5, start_period="120s",
        ),
        labels={"org.llmrack.role": "embeddings"},
        init=True,
        security_opt=["no-new-privileges:true"],
    )


_GATEWAY_HEALTH = (
    f"exec 3<>/dev/tcp/127.0.0.1/{GATEWAY_HEALTH_PORT} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 "
    "&& head -n1 <&3 | grep -q ' 200 '"
)


def gateway_service(stack: StackSettings) -> Service:
    g = stack.gateway
    ports = [f"{g.bind_address}:{g.https_port}:{GATEWAY_HTTPS_PORT}"]
    if g.http_port:
        ports.append(f"{g.bind_address}:{g.http_port}:{GATEWAY_HTTP_PORT}")
    return Service(
        image=image_name(stack, g.image),
        pull_policy=_pull_policy(stack),
        entrypoint=["nginx"],
        command=["-c", f"{GATEWAY_CONF_DIR}/nginx.conf"],
        volumes=[f"./gateway:{GATEWAY_CONF_DIR}:ro", f"./tls:{GATEWAY_TLS_DIR}:ro"],
        networks={
            BACKEND_NETWORK: ServiceNetwork(ipv4_address=backend_address(stack, "gateway")),
            FRONTEND_NETWORK: ServiceNetwork(),
        },
        ports=ports,
        healthcheck=Healthcheck(test=["CMD", "bash", "-c", _GATEWAY_HEALTH],
                                interval="10s", timeout="3s", retries=3, start_period="10s"),
        ulimits={"nofile": Ulimit(soft=65535, hard=65535)} if stack.container_ulimits else None,
        labels={"org.llmrack.role": "gateway"},
        stop_grace_period="30s",
    )


# --------------------------------------------------------------------------------------------------
# the project
# --------------------------------------------------------------------------------------------------


def build_compose(
    stack: StackSettings, *, plans: Sequence[ServedModelPlan], gpu_count: int,
    inference: bool = True, gateway: bool = True, publish_address: str = "",
) -> ComposeFile:
    """The compose project of one host.

    ``inference``: run the vLLM services (one per plan); ``gateway``: run the gateway, the vector store and
    the embeddings service. An inference host without the gateway publishes each model on
    ``publish_address:vllm.publish_port_base+i`` for the gateway hosts of the cluster.
    """
    if not inference and not gateway:
        raise LlmrackError("a stack host runs inference, the gateway or both", field="roles")
    if inference and [p.model.public_name for p in plans] != [m.public_name for m in stack.models]:
        raise LlmrackError("one plan per stack model, in order", field="stack.models")
    if inference and not gateway and not publish_address:
        raise LlmrackError("an inference-only host needs the address the gateway reaches it on", field="address")
    services: dict[str, Service] = {}
    secrets: dict[str, Secret] = {}
    volumes: dict[str, Volume] = {}
    networks = {
        BACKEND_NETWORK: Network(
            name=BACKEND_NETWORK, internal=True,
            ipam=Ipam(config=[IpamConfig(subnet=stack.backend_subnet)]),
        ),
    }
    publish = publish_address if inference and not gateway else None
    if inference:
        for i, plan in enumerate(plans):
            services[plan.model.service] = vllm_service(plan, i, stack, gpu_count=gpu_count, publish_on=publish)
        volumes["vllm-cache"] = Volume(name=f"{stack.project_name}_vllm-cache")
    if gateway:
        vec = vector_service(stack)
        if vec:
            name, svc, sec = vec
            services[name] = svc
            secrets.update(sec)
        if stack.embeddings.enabled:
            services["embeddings"] = embeddings_service(stack)
        services["gateway"] = gateway_service(stack)
    if gateway or publish:
        networks[FRONTEND_NETWORK] = Network(name=FRONTEND_NETWORK)
    return ComposeFile(
        name=stack.project_name, services=services, networks=networks,
        volumes=volumes or None, secrets=secrets or None,
    )


def secret_files(stack: StackSettings, *, inference: bool, gateway: bool) -> list[str]:
    """Secret files (relative to secrets/) the compose project reads."""
    out = ["vllm.env"] if inference else []
    if gateway and stack.vector_store.kind == "qdrant":
        out.append("qdrant.env")
    if gateway and stack.vector_store.kind == "pgvector":
        out.append("postgres_password")
    return out


def summary(compose: ComposeFile) -> str:
    return json.dumps({k: v.image for k, v in sorted(compose.services.items())})
