"""Smoke checks of a deployed stack, through its gateway (stdlib ``urllib`` for HTTP, ``pg8000`` for SQL).

``run_smoke`` lists the models, runs one chat completion and one streamed completion (the first chunk must
arrive before the stream ends), and one RAG round trip: embed texts with the embeddings service, upsert
them into pgvector, search the nearest one. Each check is a :class:`CheckResult`; nothing raises.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name:<18} {self.seconds * 1000:8.0f} ms  {self.detail}"


class HttpError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


def _context(verify_tls: bool) -> ssl.SSLContext:
    if verify_tls:
        return ssl.create_default_context()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request(
    method: str, url: str, *, api_key: str | None = None, body: Any = None, verify_tls: bool = False,
    timeout: float = 120, headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; returns (status, headers, body) for every status (no exception on 4xx/5xx)."""
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    if api_key:
        hdrs["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    ctx = _context(verify_tls) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def _json(method: str, url: str, **kw: Any) -> Any:
    status, _, raw = request(method, url, **kw)
    if status != 200:
        raise HttpError(status, raw.decode(errors="replace"))
    return json.loads(raw)


def requests_on_one_connection(
    base_url: str, path: str, body: Any, n: int, *, api_key: str, verify_tls: bool = False, timeout: float = 30,
) -> list[tuple[int, str]]:
    """``n`` POSTs of ``body`` on one kept-alive connection (no TLS handshake between them, so a burst stays
    fast under load); (status, body text) of each."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(base_url)
    if u.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            u.hostname, u.port, context=_context(verify_tls), timeout=timeout)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    out = []
    try:
        for _ in range(n):
            conn.request("POST", path, body=json.dumps(body),
                         headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            out.append((resp.status, resp.read().decode(errors="replace")))
    finally:
        conn.close()
    return out


def stream_events(url: str, body: dict[str, Any], *, api_key: str | None, verify_tls: bool = False,
                  timeout: float = 300) -> Iterator[tuple[float, dict[str, Any] | None]]:
    """POST with ``stream: true``; yields (monotonic time, event) per SSE data line, None for [DONE]."""
    data = json.dumps({**body, "stream": True}).encode()
    hdrs = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        hdrs["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(url, data=data, method="POST", headers=hdrs)
    ctx = _context(verify_tls) if url.startswith("https:") else None
    try:
        resp = urllib.request.urlopen(req, timeout=timeout, context=ctx)
    except urllib.error.HTTPError as exc:
        raise HttpError(exc.code, exc.read().decode(errors="replace")) from None
    with resp:
        for raw in resp:  # http.client reads chunked bodies incrementally, line by line
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            now = time.monotonic()
            if payload == "[DONE]":
                yield now, None
                return
            yield now, json.loads(payload)


def _check(name: str, fn: Callable[[], str]) -> CheckResult:
    t0 = time.monotonic()
    try:
        detail = fn()
        return CheckResult(name, True, detail, time.monotonic() - t0)
    except Exception as exc:  # a smoke check reports every failure as a FAIL line
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}"[:500], time.monotonic() - t0)


def run_smoke(
    base_url: str, api_key: str, *, model: str, verify_tls: bool = False, embed_url: str | None = None,
    pg_dsn: str | None = None, timeout: float = 120,
) -> list[CheckResult]:
    """Smoke-test a stack through its gateway at ``base_url`` (e.g. ``https://10.0.0.5:443``).

    ``embed_url``: base URL of the embeddings API (default: the gateway's ``/v1/embeddings``);
    ``pg_dsn``: ``postgresql://user:password@host:port/db`` of the pgvector store (RAG check skipped
    when None).
    """
    base = base_url.rstrip("/")
    results: list[CheckResult] = []
    kw = {"api_key": api_key, "verify_tls": verify_tls, "timeout": timeout}

    results.append(_check("gateway health", lambda: _health(base, verify_tls)))

    def models() -> str:
        data = _json("GET", f"{base}/v1/models", **kw)
        ids = [m["id"] for m in data.get("data", [])]
        if model not in ids:
            raise AssertionError(f"{model!r} not in {ids}")
        return f"models: {', '.join(ids)}"

    results.append(_check("list models", models))

    def chat() -> str:
        data = _json("POST", f"{base}/v1/chat/completions", body={
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
        t0 = time.monotonic()
        times: list[float] = []
        done = None
        for t, event in stream_events(f"{base}/v1/completions", {
            "model": model, "prompt": "def main():", "max_tokens": 32, "temperature": 0, "ignore_eos": True,
        }, api_key=api_key, verify_tls=verify_tls, timeout=timeout):
            if event is None:
                done = t
            elif event.get("choices"):
                times.append(t)
        if len(times) < 2 or done is None:
            raise AssertionError(f"{len(times)} chunks, end marker {'seen' if done else 'missing'}")
        if not times[0] < done:
            raise AssertionError("the first chunk did not arrive before the end of the stream")
        return (f"{len(times)} chunks, first after {(times[0] - t0) * 1000:.0f} ms, "
                f"end after {(done - t0) * 1000:.0f} ms")

    results.append(_check("streamed completion", streamed))

    if pg_dsn:
        results.append(_check("rag round trip", lambda: rag_round_trip(
            embed_url or base, pg_dsn, api_key=api_key, verify_tls=verify_tls)))
    return results


def _health(base: str, verify_tls: bool) -> str:
    status, _, body = request("GET", f"{base}/health", verify_tls=verify_tls, timeout=10)
    if status != 200:
        raise HttpError(status, body.decode(errors="replace"))
    return "200"


def embed(base: str, texts: list[str], *, api_key: str | None, verify_tls: bool = False) -> list[list[float]]:
    data = _json("POST", f"{base.rstrip('/')}/v1/embeddings", body={"input": texts}, api_key=api_key,
                 verify_tls=verify_tls, timeout=60)
    return [d["embedding"] for d in sorted(data["data"], key=lambda d: d["index"])]


_DOCS = [
    "The gateway checks the API key and rate limits every request.",
    "Prometheus scrapes the vLLM metrics endpoint every fifteen seconds.",
    "Backups of the vector store run every night at three o'clock.",
]


def rag_round_trip(embed_base: str, pg_dsn: str, *, api_key: str | None, verify_tls: bool = False) -> str:
    """Embed three documents, upsert them into pgvector, and find the nearest one to a question."""
    import pg8000.native

    vectors = embed(embed_base, [*_DOCS, "When do the backups run?"], api_key=api_key, verify_tls=verify_tls)
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
    import socket

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
    host = str(connector.get("ssh_hostname") or "")
    cmd.append(f"{user}@{host}" if user else host)
    return cmd


def smoke_inventory(inventory: Any, *, log: Callable[[str], Any] = print) -> list[CheckResult]:
    """Smoke-test every gateway host of an inventory; each result's name is prefixed with the host."""
    import subprocess
    import time
    from pathlib import Path

    from llmrack.stack.compose import backend_address
    from llmrack.stack.secrets import stack_secrets

    results: list[CheckResult] = []
    for spec in inventory.by_role("gateway"):
        stack = spec.profile.stack
        secrets = stack_secrets(Path(inventory.project_dir), spec.name, list(stack.gateway.api_clients))
        base = f"https://{spec.address}:{stack.gateway.https_port}"
        model = stack.models[0].served_name or stack.models[0].name
        tunnel = None
        pg_dsn = None
        try:
            if stack.vector_store.kind == "pgvector" and spec.connector.get("ssh_hostname"):
                port = _free_port()
                tunnel = subprocess.Popen(
                    ssh_tunnel_command(spec.connector, port, backend_address(stack, "vector"), 5432),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                time.sleep(1.5)
                pg = stack.vector_store.pgvector
                pg_dsn = f"postgresql://{pg.user}:{secrets.postgres_password}@127.0.0.1:{port}/{pg.database}"
            log(f"smoke {spec.name}: {base}")
            for r in run_smoke(base, secrets.api_keys[stack.gateway.api_clients[0]], model=model, pg_dsn=pg_dsn):
                results.append(CheckResult(f"{spec.name} {r.name}", r.ok, r.detail, r.seconds))
        finally:
            if tunnel is not None:
                tunnel.terminate()
                tunnel.wait(timeout=10)
    return results
