"""Smoke checks of a deployed stack, through its gateway (``llmrack.httpclient`` for HTTP, ``pg8000`` for SQL).

``run_smoke`` lists the models, runs one chat completion and one streamed completion (the first chunk must
arrive before the stream ends), and one RAG round trip: embed texts with the embeddings service, upsert
them into pgvector, search the nearest one. Each check is a :class:`CheckResult`; nothing raises. Every
request checks the gateway's certificate against ``ca`` (a CA file; None: the system's trust store).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from llmrack.checkresult import CheckResult
from llmrack.config import Inventory
from llmrack.errors import LlmrackError
from llmrack.httpclient import CaFile
from llmrack.secrets import API_KEYS, AdminSecrets
from llmrack.stack.layout import backend_address
from llmrack.stack.smoke_http import HttpError, json_request, request
from llmrack.stack.smoke_stream import streamed_verdict
from llmrack.tls import trust_anchor


def _check(name: str, fn: Callable[[], str]) -> CheckResult:
    t0 = time.monotonic()
    try:
        detail = fn()
        return CheckResult.measured(name, True, detail, time.monotonic() - t0)
    except Exception as exc:  # a smoke check reports every failure as a FAIL line
        return CheckResult.measured(name, False, f"{type(exc).__name__}: {exc}"[:500], time.monotonic() - t0)


def run_smoke(
    base_url: str, api_key: str, *, model: str, ca: CaFile = None, embed_url: str | None = None,
    pg_dsn: str | None = None, timeout: float = 120,
) -> list[CheckResult]:
    """Smoke-test a stack through its gateway at ``base_url`` (e.g. ``https://10.0.0.5:443``).

    ``embed_url``: base URL of the embeddings API (default: the gateway's ``/v1/embeddings``);
    ``pg_dsn``: ``postgresql://user:password@host:port/db`` of the pgvector store (RAG check skipped
    when None).
    """
    base = base_url.rstrip("/")
    results: list[CheckResult] = []
    kw = {"api_key": api_key, "ca": ca, "timeout": timeout}

    results.append(_check("gateway health", lambda: _health(base, ca)))

    def models() -> str:
        data = json_request("GET", f"{base}/v1/models", **kw)
        ids = [m["id"] for m in data.get("data", [])]
        if model not in ids:
            raise AssertionError(f"{model!r} not in {ids}")
        return f"models: {', '.join(ids)}"

    results.append(_check("list models", models))

    def chat() -> str:
        data = json_request("POST", f"{base}/v1/chat/completions", body={
            "model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16,
            "temperature": 0,
        }, **kw)
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        if not usage.get("completion_tokens"):
            raise AssertionError(f"no tokens generated: {data}")
        return f"{usage['completion_tokens']} tokens, finish {choice.get('finish_reason')}"

    results.append(_check("chat completion", chat))

    def streamed() -> str:
        passed, detail, _ = streamed_verdict(f"{base}/v1/completions", model, api_key=api_key, ca=ca,
                                             timeout=timeout)
        if not passed:
            raise AssertionError(detail)
        return detail

    results.append(_check("streamed completion", streamed))

    if pg_dsn:
        results.append(_check("rag round trip", lambda: rag_round_trip(
            embed_url or base, pg_dsn, api_key=api_key, ca=ca)))
    return results


def _health(base: str, ca: CaFile) -> str:
    status, _, body = request("GET", f"{base}/health", ca=ca, timeout=10)
    if status != 200:
        raise HttpError(status, body.decode(errors="replace"))
    return "200"


def embed(base: str, texts: list[str], *, api_key: str | None, ca: CaFile = None) -> list[list[float]]:
    data = json_request("POST", f"{base.rstrip('/')}/v1/embeddings", body={"input": texts}, api_key=api_key,
                 ca=ca, timeout=60)
    return [d["embedding"] for d in sorted(data["data"], key=lambda d: d["index"])]


_DOCS = [
    "The gateway checks the API key and rate limits every request.",
    "Prometheus scrapes the vLLM metrics endpoint every fifteen seconds.",
    "Backups of the vector store run every night at three o'clock.",
]


def rag_round_trip(embed_base: str, pg_dsn: str, *, api_key: str | None, ca: CaFile = None) -> str:
    """Embed three documents, upsert them into pgvector, and find the nearest one to a question."""
    import pg8000.native

    vectors = embed(embed_base, [*_DOCS, "When do the backups run?"], api_key=api_key, ca=ca)
    dims = len(vectors[0])
    u = urlparse(pg_dsn)
    conn = pg8000.native.Connection(
        user=u.username or "postgres", password=u.password, host=u.hostname or "127.0.0.1",
        port=u.port or 5432, database=(u.path or "/postgres").lstrip("/") or "postgres", timeout=30,
    )
    try:
        conn.run("CREATE EXTENSION IF NOT EXISTS vector")
        conn.run(f"CREATE TABLE IF NOT EXISTS llmrack_smoke (id int PRIMARY KEY, body text, "
                 f"embedding vector({dims}))")
        for i, (text, vec) in enumerate(zip(_DOCS, vectors, strict=False)):
            conn.run("INSERT INTO llmrack_smoke (id, body, embedding) VALUES (:i, :b, CAST(:v AS vector)) "
                     "ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, embedding = EXCLUDED.embedding",
                     i=i, b=text, v=json.dumps(vec))
        rows = conn.run("SELECT id, embedding <=> CAST(:v AS vector) AS d FROM llmrack_smoke ORDER BY d LIMIT 1",
                        v=json.dumps(vectors[-1]))
    finally:
        conn.close()
    best, distance = rows[0]
    if best != 2:
        raise AssertionError(f"nearest document is {best} ({_DOCS[best]!r}), expected 2")
    return f"{dims}-dim embeddings, nearest doc 2 at cosine distance {float(distance):.3f}"


# --------------------------------------------------------------------------------------------- per inventory


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh_tunnel_command(connector: dict[str, Any], local_port: int, target: str, target_port: int) -> list[str]:
    """An ``ssh -N -L`` command to reach a backend on a host's internal network, from its connector data."""
    cmd = ["ssh", "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
           "-L", f"127.0.0.1:{local_port}:{target}:{target_port}"]
    if connector.get("ssh_port"):
        cmd += ["-p", str(connector["ssh_port"])]
    if connector.get("ssh_key"):
        cmd += ["-i", str(connector["ssh_key"])]
    if str(connector.get("ssh_strict_host_key_checking", "")).lower() == "no":
        cmd += ["-o", "StrictHostKeyChecking=no"]
    if connector.get("ssh_known_hosts_file"):
        cmd += ["-o", f"UserKnownHostsFile={connector['ssh_known_hosts_file']}"]
    user = connector.get("ssh_user")
    host = str(connector.get("ssh_hostname") or connector.get("address") or "")
    cmd.append(f"{user}@{host}" if user else host)
    return cmd


def _wait_for_port(port: int, proc: Any, timeout: float = 20) -> None:
    """Until the tunnel's local end accepts connections (or its ssh exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the SSH tunnel to the vector store did not open (ssh exit {proc.poll()})")


def smoke_inventory(inventory: Inventory, *, log: Callable[[str], Any] = print,
                    hosts: set[str] | None = None) -> list[CheckResult]:
    """Smoke-test every gateway host of an inventory (or those named in ``hosts``); each result's name is
    prefixed with the host. With pgvector, the RAG round trip reaches the store through an SSH tunnel to the
    host (the store listens on the internal backend network only)."""
    results: list[CheckResult] = []
    secrets = AdminSecrets(inventory.project_dir)  # read only: smoke never creates a key
    targets = []
    for spec in inventory.by_role("gateway"):  # every secret is read (and checked) before any request
        if hosts and spec.name not in hosts:
            continue
        key = secrets.client_key(spec.name, spec.profile.stack.gateway.api_clients)
        if key is None:
            raise LlmrackError(f"no API key of {spec.name}'s clients on this machine (deploy the stack from here "
                               f"first, or set $LLMRACK_API_KEY)", source=str(secrets.path(spec.name, API_KEYS)))
        targets.append((spec, key, trust_anchor(inventory.project_dir, spec.name, spec.profile.stack.gateway.tls)))
    for spec, key, ca in targets:
        stack = spec.profile.stack
        base = f"https://{spec.address}:{stack.gateway.https_port}"
        model = stack.models[0].served_name or stack.models[0].name
        tunnel = None
        pg_dsn = None
        try:
            if stack.vector_store.kind == "pgvector":
                port = _free_port()
                tunnel = subprocess.Popen(
                    ssh_tunnel_command({"address": spec.address, **spec.connector}, port,
                                       backend_address(stack, "vector"), 5432),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                pg = stack.vector_store.pgvector
                try:
                    _wait_for_port(port, tunnel)
                    password = secrets.postgres_password(spec.name) or ""
                    pg_dsn = f"postgresql://{pg.user}:{password}@127.0.0.1:{port}/{pg.database}"
                except AssertionError as exc:
                    results.append(CheckResult.measured(f"{spec.name} rag round trip", False, str(exc), 0.0))
            log(f"smoke {spec.name}: {base}")
            for r in run_smoke(base, key, model=model, ca=ca, pg_dsn=pg_dsn):
                results.append(CheckResult.measured(f"{spec.name} {r.name}", r.ok, r.detail, r.seconds))
        finally:
            if tunnel is not None:
                tunnel.terminate()
                tunnel.wait(timeout=10)
    return results
