"""The compose project of the serving stack, as a typed model dumped to YAML (sorted keys, never templated).

One vLLM service per served model (arguments from the planner), the vector store (Qdrant or pgvector),
the embeddings service and the Nginx gateway. Backends live only on the internal network
``llmrack_backend`` (``internal: true``) at fixed addresses; the gateway joins it and the published
``llmrack_frontend`` network and is the only service that publishes ports. On an inference host without
the gateway role (a cluster node), the vLLM services also publish their port on the host's address so
the gateway hosts can reach them; vLLM then checks the cluster's backend key (``VLLM_API_KEY``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from llmrack.errors import LlmrackError
from llmrack.settings.stack import StackSettings
from llmrack.stack.compose_file import ComposeFile, Ipam, IpamConfig, Network, Secret, Service, Volume
from llmrack.stack.layout import (
    BACKEND_NETWORK,
    CONTAINER_MODELS_DIR,
    FRONTEND_NETWORK,
    GATEWAY_CONF_DIR,
    GATEWAY_HEALTH_PORT,
    GATEWAY_HTTP_PORT,
    GATEWAY_HTTPS_PORT,
    GATEWAY_STATUS_PORT,
    GATEWAY_TLS_DIR,
    MODEL_LABEL,
    QDRANT_HTTP_PORT,
    StackPaths,
    backend_address,
    image_name,
)
from llmrack.stack.security import secure_services
from llmrack.stack.served import ServedModelPlan
from llmrack.stack.services import embeddings_service, gateway_service, vector_service, vllm_service

# The roles, the gateway config, monitoring and export read the stack's layout through this module.
__all__ = [
    "CONTAINER_MODELS_DIR",
    "GATEWAY_CONF_DIR",
    "GATEWAY_HEALTH_PORT",
    "GATEWAY_HTTPS_PORT",
    "GATEWAY_HTTP_PORT",
    "GATEWAY_STATUS_PORT",
    "GATEWAY_TLS_DIR",
    "MODEL_LABEL",
    "QDRANT_HTTP_PORT",
    "ComposeFile",
    "ServedModelPlan",
    "StackPaths",
    "backend_address",
    "build_compose",
    "image_name",
    "secret_files",
    "summary",
]


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
            name=BACKEND_NETWORK, driver="bridge", internal=True,
            ipam=Ipam(driver="default", config=[IpamConfig(subnet=stack.backend_subnet)]),
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
        networks[FRONTEND_NETWORK] = Network(name=FRONTEND_NETWORK, driver="bridge")
    services = secure_services(services, stack)
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
