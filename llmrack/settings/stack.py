"""Settings of the serving stack: models served by vLLM, the vector store, embeddings and the gateway.

Everything runs as one docker compose project under ``StackSettings.directory`` (default
``/opt/llmrack/stack``), owned by the systemd unit ``llmrack-stack.service``. Images are pinned by version
and never pulled implicitly (``pull_policy: never``): they come from the offline bundle or are loaded
beforehand (``registry_mirror`` is only used to name images on a reachable mirror).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmrack.settings._model import Settings
from llmrack.settings.containers import ContainerLimits
from llmrack.settings.types import AbsolutePath, Address, ComposeProject, OptionalAddress

# served names and client names end up in nginx configuration and compose service names: keep them plain
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
RATE_RE = re.compile(r"^\d+r/[sm]$")
SIZE_RE = re.compile(r"^\d+[kKmMgG]?[bB]?$")


def model_slug(name: str) -> str:
    """Directory / service-safe form of a model name: ``Qwen/Qwen2.5-7B`` -> ``Qwen--Qwen2.5-7B``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.replace("/", "--")).strip("-")


class ModelSettings(Settings):
    name: str = Field(..., description="Catalogue name, Hugging Face id or local model directory.")
    served_name: str = Field("", description="Name clients put in the request's model field; default: name.")
    source: Literal["huggingface", "modelscope", "local", "bundle"] = Field(
        "huggingface", description="Where weights come from."
    )
    path: str = Field("", description="Local directory of the weights on the admin machine (source local/bundle).")
    revision: str = Field("", description="Hugging Face / ModelScope revision (branch, tag or commit) to fetch.")
    quantization: Literal["fp16", "bf16", "fp8", "int8", "awq", "gptq"] = Field("bf16")
    kv_cache_dtype: Literal["auto", "fp8"] = Field("auto")
    max_model_len: int | None = Field(None, ge=128, description="Context length; None: the planner's largest fit.")
    tensor_parallel_size: int | None = Field(None, ge=1, description="None: chosen by the planner.")
    gpus: list[int] = Field([], description="GPU indices this model uses; empty: all GPUs of the host.")
    max_num_seqs: int = Field(64, ge=1)
    extra_args: list[str] = Field([], description="Extra vLLM server arguments, appended after the planner's.")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        # the name becomes a directory under models_dir (and the bundle's models/): never '.', '..' or hidden
        if model_slug(value) in ("", ".", "..") or model_slug(value).startswith(".") or not value.isprintable():
            raise ValueError(f"{value!r} cannot name a model directory: use letters, digits, '/', '.', '_', '-'")
        return value

    @field_validator("served_name")
    @classmethod
    def _plain_served_name(cls, value: str) -> str:
        if value and not NAME_RE.match(value):
            raise ValueError(f"{value!r}: use letters, digits, '.', '_' and '-' only (at most 63 characters)")
        return value

    @property
    def public_name(self) -> str:
        """The name clients use (``served_name``, else ``name``)."""
        return self.served_name or self.name

    @property
    def dir_name(self) -> str:
        """Directory of the weights under the models directory (and the bundle's ``models/``)."""
        return model_slug(self.name)

    @property
    def service(self) -> str:
        """Compose service name of this model's vLLM server."""
        return "vllm-" + model_slug(self.public_name).lower().replace(".", "-").replace("_", "-")


class VllmSettings(Settings):
    image: str = Field("vllm/vllm-openai:v0.11.0", description="vLLM server image, pinned by version.")
    gpu_memory_utilization: float = Field(0.90, gt=0.1, le=0.98)
    cpu_kv_cache_gib: int = Field(1, ge=1, description="KV cache in GiB on CPU-only hosts.")
    hf_endpoint: str = Field(
        "", description="Hugging Face mirror for weight downloads, e.g. https://hf-mirror.com (servers run offline)."
    )
    modelscope_pip_index: str = Field(
        "https://mirrors.aliyun.com/pypi/simple/", description="PyPI index the modelscope one-shot download uses."
    )
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    enforce_eager: bool = Field(False, description="Skip graph capture / compilation (faster start, CPU sandbox).")
    port: int = Field(8000, ge=1, le=65535, description="Port vLLM listens on inside its container.")
    publish_port_base: int = Field(
        18000, ge=1024, le=65000,
        description="On inference hosts without the gateway role, model i is published on address:base+i "
        "for the gateway hosts (firewalled to them by the hardening role).",
    )
    shm_size: str = Field("16gb", description="Shared memory of the vLLM containers (NCCL, workers).")
    start_period_s: int = Field(900, ge=10, description="Healthcheck grace period while weights load.")
    env: dict[str, str] = Field({}, description="Extra environment of every vLLM container.")

    @field_validator("shm_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not SIZE_RE.match(value):
            raise ValueError(f"{value!r} is not a size like 16gb or 512m")
        return value


class QdrantSettings(Settings):
    image: str = Field("qdrant/qdrant:v1.13.6", description="Qdrant image, pinned by version.")


class PgvectorSettings(Settings):
    image: str = Field("pgvector/pgvector:0.8.0-pg16", description="PostgreSQL + pgvector image, pinned.")
    database: str = Field("rag", description="Database created on first start.")
    user: str = Field("rag", description="Database owner.")


class VectorStoreSettings(Settings):
    kind: Literal["qdrant", "pgvector", "none"] = Field("qdrant")
    qdrant: QdrantSettings = QdrantSettings()
    pgvector: PgvectorSettings = PgvectorSettings()


class EmbeddingsSettings(Settings):
    enabled: bool = Field(False, description="Run an OpenAI-style /v1/embeddings service behind the gateway.")
    image: str = Field("llmrack/embed:minilm-l6-v2-1", description="Embeddings image, pinned by version.")
    port: int = Field(8080, ge=1, le=65535)
    model: str = Field("all-MiniLM-L6-v2", description="Model name the service answers with.")


class TlsSettings(Settings):
    mode: Literal["self-signed", "provided"] = Field(
        "self-signed", description="Issue the gateway a certificate from the project's own CA once, or upload yours."
    )
    cert_file: str = Field("", description="PEM certificate (chain) on the admin machine (mode provided).")
    key_file: str = Field("", description="PEM private key on the admin machine (mode provided).")
    ca_file: str = Field("", description="PEM CA on the admin machine that verify, smoke and bench check the gateway "
                         "against (mode provided); default: the system's trust store.")
    common_name: str = Field("", description="CN / subjectAltName of the issued certificate; default: address.")
    days: int = Field(3650, ge=1, description="Validity of the self-signed certificate.")

    @model_validator(mode="after")
    def _provided_needs_files(self) -> TlsSettings:
        if self.mode == "provided" and not (self.cert_file and self.key_file):
            raise ValueError("stack.gateway.tls: mode provided needs cert_file and key_file")
        return self


class GatewaySettings(Settings):
    image: str = Field("nginx:1.26.3", description="Nginx image, pinned by version.")
    https_port: int = Field(443, ge=1, le=65535)
    http_port: int = Field(80, ge=0, le=65535, description="0 disables the plain HTTP redirect listener.")
    bind_address: Address = Field("0.0.0.0", description="Host address the published ports bind to.")
    rate_limit_per_key: str = Field("20r/s", description="nginx limit_req rate per API key.")
    rate_limit_per_ip: str = Field("50r/s", description="nginx limit_req rate per client address.")
    burst_per_key: int = Field(40, ge=0, description="Requests a key may send above its rate at once.")
    burst_per_ip: int = Field(100, ge=0, description="Requests an address may send above its rate at once.")
    api_clients: list[str] = Field(
        ["default"], min_length=1, description="One API key is generated per client name (per-key limits, logs)."
    )
    read_timeout_s: int = Field(600, ge=10, description="Upstream read timeout (long generations, streams).")
    max_body_size: str = Field("16m", description="nginx client_max_body_size.")
    max_fails: int = Field(3, ge=0, description="Upstream max_fails before a backend is taken out.")
    fail_timeout_s: int = Field(30, ge=1, description="Upstream fail_timeout.")
    virtual_address: OptionalAddress = Field(
        "", description="The one address clients use when several hosts have the gateway role (kept up by "
                        "keepalived or the network, not by llmrack); required then, the same on each.")
    tls: TlsSettings = TlsSettings()

    @field_validator("rate_limit_per_key", "rate_limit_per_ip")
    @classmethod
    def _rate(cls, value: str) -> str:
        if not RATE_RE.match(value):
            raise ValueError(f"{value!r} is not an nginx rate like 20r/s or 600r/m")
        return value

    @field_validator("api_clients")
    @classmethod
    def _clients(cls, value: list[str]) -> list[str]:
        for name in value:
            if not NAME_RE.match(name):
                raise ValueError(f"{name!r}: client names use letters, digits, '.', '_' and '-' only")
        if len(set(value)) != len(value):
            raise ValueError("client names must be unique")
        return value

    @model_validator(mode="after")
    def _ports_differ(self) -> GatewaySettings:
        if self.http_port and self.http_port == self.https_port:
            raise ValueError(f"stack.gateway.http_port: {self.http_port} is also the https_port")
        return self

    @field_validator("max_body_size")
    @classmethod
    def _body(cls, value: str) -> str:
        if not SIZE_RE.match(value):
            raise ValueError(f"{value!r} is not a size like 16m")
        return value


class BundleSettings(Settings):
    path: str = Field(
        ".llmrack/bundle",
        description="Offline bundle directory on the admin machine (relative paths: from the project).",
    )
    remote_dir: AbsolutePath = Field("/opt/llmrack/bundle", description="Where the bundle is uploaded on the host.")


class StackSettings(Settings):
    models: list[ModelSettings] = Field(..., min_length=1, description="Models served, one vLLM service each.")
    vllm: VllmSettings = VllmSettings()
    vector_store: VectorStoreSettings = VectorStoreSettings()
    embeddings: EmbeddingsSettings = EmbeddingsSettings()
    gateway: GatewaySettings = GatewaySettings()
    bundle: BundleSettings = BundleSettings()
    image_source: Literal["bundle", "registry"] = Field(
        "bundle", description="Images come from the offline bundle (docker load) or are pulled beforehand."
    )
    registry_mirror: str = Field(
        "", description="Registry prefix for image names, e.g. docker.m.daocloud.io (image_source registry)."
    )
    directory: AbsolutePath = Field("/opt/llmrack/stack", description="Compose project directory on the host.")
    models_dir: AbsolutePath = Field("/opt/llmrack/models",
                                     description="Model weights on the host, mounted at /models.")
    data_dir: AbsolutePath = Field("/opt/llmrack/data", description="Vector store data on the host.")
    project_name: ComposeProject = Field("llmrack", description="docker compose project name.")
    backend_subnet: str = Field(
        "172.31.250.0/24",
        description="Subnet of the internal backend network; services get fixed addresses in it so the "
        "gateway's upstreams never go stale when a backend is recreated.",
    )
    container_ulimits: bool = Field(
        True,
        description="Raise memlock/stack/nofile limits of the containers (vLLM pins memory); off where the "
        "engine may not raise them (nested engines in the sandbox).",
    )
    start_timeout_s: int = Field(1800, ge=60, description="How long `up --wait` may take (weights loading).")
    limits: ContainerLimits = Field(ContainerLimits(), description="pids and memory limits per service.")

    @field_validator("backend_subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        net = ipaddress.ip_network(value, strict=True)
        if net.version != 4 or net.num_addresses < 64:
            raise ValueError(f"{value}: an IPv4 network of at least /26")
        return value

    @model_validator(mode="after")
    def _unique_models(self) -> StackSettings:
        names = [m.public_name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stack.models: served name {dupes[0]!r} is used twice")
        services = [m.service for m in self.models]
        if len(set(services)) != len(services):
            raise ValueError("stack.models: two served names map to the same service name; rename one")
        for i, m in enumerate(self.models):
            if m.source == "local" and not m.path:
                raise ValueError(f"stack.models.{i}.path: source local needs the weights' directory")
            if not m.served_name and not NAME_RE.match(m.name):
                raise ValueError(f"stack.models.{i}.served_name: {m.name!r} is not a plain name; set served_name")
        return self
