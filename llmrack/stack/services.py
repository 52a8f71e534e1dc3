"""The services of the serving stack: vLLM (one per served model), the vector store, embeddings and the gateway.

Each builder returns a compose ``Service`` for one host; ``llmrack.stack.compose`` puts them into one project.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from llmrack.settings.stack import StackSettings
from llmrack.stack.compose_file import (
    Deploy,
    DeviceRequest,
    Healthcheck,
    Logging,
    Reservations,
    Resources,
    Secret,
    Service,
    ServiceNetwork,
    ServiceSecret,
    Ulimit,
)
from llmrack.stack.layout import (
    BACKEND_NETWORK,
    CONTAINER_MODELS_DIR,
    FRONTEND_NETWORK,
    GATEWAY_CONF_DIR,
    GATEWAY_HEALTH_PORT,
    GATEWAY_HTTP_PORT,
    GATEWAY_HTTPS_PORT,
    GATEWAY_LOG_TAG,
    GATEWAY_TLS_DIR,
    MODEL_LABEL,
    QDRANT_HTTP_PORT,
    VLLM_CACHE_DIR,
    backend_address,
    image_name,
    pull_policy,
)
from llmrack.stack.served import ServedModelPlan

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
    # vLLM turns both on by itself when neither flag is given (EngineArgs defaults None -> on for
    # generative models in 0.32): off has to be said (argparse BooleanOptionalAction: --no-enable-...).
    for on, flag in ((stack.vllm.enable_prefix_caching, "--enable-prefix-caching"),
                     (stack.vllm.enable_chunked_prefill, "--enable-chunked-prefill")):
        if not on:
            args = [a for a in args if a != flag]
            if not _has_flag(args, flag.replace("--enable-", "--no-enable-")):
                args.append(flag.replace("--enable-", "--no-enable-"))
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
        pull_policy=pull_policy(stack),
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
            pull_policy=pull_policy(stack),
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
            pull_policy=pull_policy(stack),
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
        pull_policy=pull_policy(stack),
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
        pull_policy=pull_policy(stack),
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
        logging=Logging(driver="journald", options={"tag": GATEWAY_LOG_TAG}),
    )
