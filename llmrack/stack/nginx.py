"""The gateway's Nginx configuration: a typed render context and the Jinja rendering of its line formats.

Routing by model. Nginx cannot read the JSON body without njs/Lua (not in Debian's nginx), so:

* ``/v1/...`` goes to ``vllm_all``, every vLLM server of every model. A server that does not serve the
  requested model answers 404 "model does not exist" before doing any work; ``proxy_next_upstream http_404
  non_idempotent`` then passes the (buffered) request to the next server, until one serves the model.
  A 404 never counts as a failure of the server. Cost: one extra local round trip per wrong pick (the
  model check happens before any inference); an unknown model gets vLLM's own 404 after all servers.
  With one model the fallback is off and ``vllm_all`` is that model's upstream.
* ``/models/<served name>/v1/...`` goes straight to that model's upstream (no retries), for clients that
  can set a base URL per model.
* ``GET /v1/models`` with several models is answered by the gateway (the list it routes to), since each
  vLLM server lists only its own model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmrack.errors import LlmrackError
from llmrack.ops import render
from llmrack.settings.stack import StackSettings
from llmrack.stack import compose as c

GATEWAY_TEMPLATE_DIR = "gateway/opt/llmrack/stack/gateway"
MOZILLA_INTERMEDIATE_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRoute(_Model):
    name: str
    upstream: str
    servers: list[str]
    max_model_len: int | None = None


class GatewayContext(_Model):
    routes: list[ModelRoute]
    all_servers: list[str]
    multi_model: bool
    models_json: str
    embeddings: str | None
    server_name: str
    redirect_http: bool
    public_https_port: int
    https_listen: str = str(c.GATEWAY_HTTPS_PORT)
    http_listen: str = str(c.GATEWAY_HTTP_PORT)
    health_listen: str = f"127.0.0.1:{c.GATEWAY_HEALTH_PORT}"
    status_listen: str = str(c.GATEWAY_STATUS_PORT)
    conf_dir: str = c.GATEWAY_CONF_DIR
    tls_dir: str = c.GATEWAY_TLS_DIR
    rate_per_key: str
    rate_per_ip: str
    burst_per_key: int
    burst_per_ip: int
    read_timeout_s: int
    max_body_size: str
    max_fails: int
    fail_timeout_s: int
    worker_user: str = "www-data"
    backend_subnet: str = "172.31.250.0/24"
    backend_address: str = "172.31.250.10"
    pid_path: str = "/run/nginx.pid"
    access_log: str = "/dev/stdout"
    error_log: str = "stderr"
    redirect_host: str = Field("", description="Name or address the port-80 redirect sends clients to.")
    unauthenticated_rate: str = "2r/s"
    unauthenticated_burst: int = 10
    hsts_max_age: int = 31536000
    ssl_ciphers: str = MOZILLA_INTERMEDIATE_CIPHERS
    retired_api_keys: list[tuple[str, str, str]] = Field(
        [], repr=False, exclude=True,
        description="(client, key, expires) of keys a rotation retired that the gateway still accepts "
                    "(llmrack.retired_keys); in the key map only, never in nginx.conf.")


def model_routes(
    stack: StackSettings, backends: Sequence[tuple[str, StackSettings, bool]],
    max_model_lens: dict[str, int] | None = None,
) -> list[ModelRoute]:
    """Routes of the models the gateway fronts.

    ``backends``: one (address, stack settings, is_this_host) per inference host of the inventory. A model
    on this host is reached on the internal network at its fixed address, one on another host at
    ``address:vllm.publish_port_base + i``.
    """
    servers: dict[str, list[str]] = {}
    order: list[str] = []
    for address, other, local in backends:
        for i, m in enumerate(other.models):
            if local:
                server = f"{c.backend_address(other, 'vllm', i)}:{other.vllm.port}"
            else:
                server = f"{address}:{other.vllm.publish_port_base + i}"
            if m.public_name not in servers:
                servers[m.public_name] = []
                order.append(m.public_name)
            if server not in servers[m.public_name]:
                servers[m.public_name].append(server)
    if not order:
        raise LlmrackError("the gateway has no inference host to route to (give a host the inference role)",
                           field="roles")
    by_name = {m.public_name: m for m in stack.models}
    routes = []
    for name in order:
        svc = by_name[name].service if name in by_name else "vllm-" + name.lower()
        routes.append(ModelRoute(
            name=name, upstream=svc.replace("-", "_").replace(".", "_"), servers=servers[name],
            max_model_len=(max_model_lens or {}).get(name),
        ))
    return routes


def redirect_target(server_name: str, address: str = "") -> str:
    """Host part of the HTTP -> HTTPS redirect: the certificate's name, else the host's address."""
    host = server_name if server_name not in ("", "_") else address
    return f"[{host}]" if ":" in host else host


def gateway_context(stack: StackSettings, routes: Sequence[ModelRoute], *, server_name: str = "_",
                    address: str = "", **overrides: Any) -> GatewayContext:
    g = stack.gateway
    all_servers: list[str] = []
    for r in routes:
        all_servers += [s for s in r.servers if s not in all_servers]
    models = {
        "object": "list",
        "data": [
            {"id": r.name, "object": "model", "owned_by": "llmrack", "root": r.name,
             **({"max_model_len": r.max_model_len} if r.max_model_len else {})}
            for r in routes
        ],
    }
    embeddings = None
    if stack.embeddings.enabled:
        embeddings = f"{c.backend_address(stack, 'embeddings')}:{stack.embeddings.port}"
    values: dict[str, Any] = dict(
        routes=list(routes), all_servers=all_servers, multi_model=len(routes) > 1,
        models_json=json.dumps(models, separators=(",", ":")), embeddings=embeddings,
        server_name=server_name, redirect_http=bool(g.http_port), public_https_port=g.https_port,
        rate_per_key=g.rate_limit_per_key, rate_per_ip=g.rate_limit_per_ip, burst_per_key=g.burst_per_key,
        burst_per_ip=g.burst_per_ip, read_timeout_s=g.read_timeout_s, max_body_size=g.max_body_size,
        max_fails=g.max_fails, fail_timeout_s=g.fail_timeout_s, backend_subnet=stack.backend_subnet,
        backend_address=c.backend_address(stack, "gateway"),
        redirect_host=redirect_target(server_name, address),
    )
    values.update(overrides)
    return GatewayContext(**values)


def render_nginx_conf(ctx: GatewayContext) -> str:
    return render(f"{GATEWAY_TEMPLATE_DIR}/nginx.conf.j2", **ctx.model_dump())


def render_api_keys_map(keys: dict[str, str], retired: Sequence[tuple[str, str, str]] = ()) -> str:
    """The key map: every current key, then the retired keys still in their grace period (``retired``:
    (client, key, expires), each mapped to its client; one that is a current key again is left out)."""
    current = set(keys.values())
    late = sorted((c, k, e) for c, k, e in retired if k not in current and c in keys)
    return render(f"{GATEWAY_TEMPLATE_DIR}/api_keys.map.j2", keys=sorted(keys.items()), retired=late)


def render_backend_auth(backend_key: str) -> str:
    return render(f"{GATEWAY_TEMPLATE_DIR}/backend_auth.conf.j2", backend_key=backend_key)


def gateway_files(ctx: GatewayContext, api_keys: dict[str, str], backend_key: str) -> dict[str, str]:
    """Every file of the gateway's configuration directory, by name."""
    return {
        "nginx.conf": render_nginx_conf(ctx),
        "api_keys.map": render_api_keys_map(api_keys, ctx.retired_api_keys),
        "backend_auth.conf": render_backend_auth(backend_key),
    }
