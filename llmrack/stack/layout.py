"""Where the serving stack lives on a host: its paths, networks, ports and the fixed backend addresses.

Backends sit at fixed host numbers inside ``StackSettings.backend_subnet``, so the gateway, monitoring and backups
reach them by address without asking Docker.
"""

from __future__ import annotations

import ipaddress
from pathlib import PurePosixPath
from typing import Literal

from llmrack.errors import LlmrackError
from llmrack.settings.stack import StackSettings
from llmrack.stack.compose_file import ComposeModel

BACKEND_NETWORK = "llmrack_backend"
FRONTEND_NETWORK = "llmrack_frontend"
CONTAINER_MODELS_DIR = "/models"
VLLM_CACHE_DIR = "/var/cache/vllm"
GATEWAY_CONF_DIR = "/etc/nginx/llmrack"
GATEWAY_TLS_DIR = "/etc/nginx/tls"
GATEWAY_HEALTH_PORT = 8081
# nginx's stub_status for the nginx exporter, on the backend network only (never published)
GATEWAY_STATUS_PORT = 8082
GATEWAY_HTTPS_PORT = 443
GATEWAY_HTTP_PORT = 80
# the gateway's access log goes to the journal under this tag (the host's fail2ban jail reads it there)
GATEWAY_LOG_TAG = "llmrack-gateway"
QDRANT_HTTP_PORT = 6333
POSTGRES_PORT = 5432
MODEL_LABEL = "org.llmrack.model-content"

# fixed host numbers inside StackSettings.backend_subnet
_HOST_GATEWAY = 10
_HOST_VECTOR = 20
_HOST_EMBED = 21
_HOST_VLLM_FIRST = 100


class StackPaths(ComposeModel):
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


def pull_policy(stack: StackSettings) -> Literal["never", "missing"]:
    return "never" if stack.image_source == "bundle" else "missing"
