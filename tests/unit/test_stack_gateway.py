"""The gateway's behaviour, end to end on this machine: the real nginx with the rendered configuration in
front of small OpenAI-style backends on 127.0.0.1 (stand-ins for vLLM that answer like it: 401 without the
backend key, 404 for a model they do not serve, SSE streams).

Checks: API key required (401), client keys never reach a backend (the backend key does), per-key limit
(429), routing by the request's model across servers (404 fallback), per-model path routing, streamed
chunks pass through unbuffered, the access log has upstream timings and no key, and the smoke checks pass.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llmrack.config import load_tier
from llmrack.secrets import secrets_root
from llmrack.stack import nginx as n
from llmrack.stack import smoke, smoke_http
from llmrack.tls import gateway_certificate

TRUST: dict[str, Path] = {}  # every request below checks the gateway's certificate against the project's CA


def request(*args, **kw):
    return smoke_http.request(*args, ca=TRUST["ca"], **kw)


def requests_on_one_connection(*args, **kw):
    return smoke_http.requests_on_one_connection(*args, ca=TRUST["ca"], **kw)


def run_smoke(*args, **kw):
    return smoke.run_smoke(*args, ca=TRUST["ca"], **kw)


def stream_events(*args, **kw):
    return smoke_http.stream_events(*args, ca=TRUST["ca"], **kw)

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.fixture(autouse=True)
def _tools() -> None:
    assert NGINX is not None and shutil.which("openssl"), "needs nginx and openssl (apt-get install nginx openssl)"

BACKEND_KEY = "f" * 48
KEYS = {"alice": "sk-llmrack-" + "1" * 48, "bob": "sk-llmrack-" + "2" * 48}
CHUNK_DELAY = 0.15


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeVllm(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model: str):
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.model = model
        self.seen_auth: list[str] = []
        self.hits = 0

    def handle_error(self, request, client_address) -> None:  # nginx closing idle keepalives is normal
        pass

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class FakeHandler(BaseHTTPRequestHandler):
    server: FakeVllm
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _auth(self) -> bool:
        got = self.headers.get("Authorization", "")
        self.server.seen_auth.append(got)
        if got != f"Bearer {BACKEND_KEY}":
            self._json(401, {"error": "Unauthorized"})
            return False
        return True

    def do_GET(self) -> None:
        if not self._auth():
            return
        self.server.hits += 1
        self._json(200, {"object": "list", "data": [{"id": self.server.model, "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if not self._auth():
            return
        if body.get("model") not in (None, self.server.model):
            self._json(404, {"error": {"message": f"The model `{body['model']}` does not exist.",
                                       "type": "NotFoundError", "code": 404}})
            return
        self.server.hits += 1
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            tokens = int(body.get("max_tokens") or 5)  # one chunk per token, as vLLM streams
            for i in range(tokens):
                event = {"model": self.server.model, "choices": [{"index": 0, "text": f"t{i}"}]}
                self._chunk(f"data: {json.dumps(event)}\n\n".encode())
                time.sleep(CHUNK_DELAY if tokens <= 5 else 0.004)
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
            return
        self._json(200, {"model": self.server.model, "served_by": self.server.model,
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                      "finish_reason": "length"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gw")
    backends = {"alpha": [FakeVllm("alpha"), FakeVllm("alpha")], "beta": [FakeVllm("beta")]}
    for servers in backends.values():
        for s in servers:
            threading.Thread(target=s.serve_forever, daemon=True).start()
    stack = load_tier("sandbox").stack
    routes = [n.ModelRoute(name=name, upstream=f"vllm_{name}", servers=[s.address for s in servers])
              for name, servers in backends.items()]
    port, health = free_port(), free_port()
    (tmp / "conf").mkdir()
    (tmp / "tls").mkdir()
    crt, key = gateway_certificate(tmp / "project", "gw", common_name="", address="127.0.0.1", days=1)
    (tmp / "tls/server.crt").write_text(crt)
    (tmp / "tls/server.key").write_text(key)
    TRUST["ca"] = secrets_root(tmp / "project") / "cluster" / "gateway-ca.crt"  # the project's CA checks it
    ctx = n.gateway_context(
        stack, routes, https_listen=f"127.0.0.1:{port}", health_listen=f"127.0.0.1:{health}",
        conf_dir=str(tmp / "conf"), tls_dir=str(tmp / "tls"), pid_path=str(tmp / "nginx.pid"),
        access_log=str(tmp / "access.log"), error_log=str(tmp / "error.log"),
    )
    for name, text in n.gateway_files(ctx, KEYS, BACKEND_KEY).items():
        (tmp / "conf" / name).write_text(text)
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "conf/nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"https://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if request("GET", f"{base}/health", timeout=1)[0] == 200:
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"nginx did not start: {(tmp / 'error.log').read_text() if (tmp / 'error.log').exists() else ''}")
    yield {"base": base, "backends": backends, "tmp": tmp, "stack": stack}
    proc.send_signal(signal.SIGQUIT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    for servers in backends.values():
        for s in servers:
            s.shutdown()


def chat(base: str, key: str | None, model: str) -> tuple[int, dict]:
    status, _, body = request("POST", f"{base}/v1/chat/completions", api_key=key,
                              body={"model": model, "messages": [{"role": "user", "content": "x"}]})
    return status, json.loads(body or b"{}")


def test_health_needs_no_key(gateway) -> None:
    assert request("GET", f"{gateway['base']}/health")[0] == 200


def test_no_key_or_a_wrong_key_is_refused(gateway) -> None:
    before = sum(s.hits for ss in gateway["backends"].values() for s in ss)
    status, headers, _ = request("GET", f"{gateway['base']}/v1/models")
    assert status == 401 and "Bearer" in headers.get("WWW-Authenticate", "")
    assert chat(gateway["base"], "sk-llmrack-" + "9" * 48, "alpha")[0] == 401
    assert chat(gateway["base"], BACKEND_KEY, "alpha")[0] == 401, "the backend key is not a client key"
    assert sum(s.hits for ss in gateway["backends"].values() for s in ss) == before


def test_routes_by_the_model_in_the_body(gateway) -> None:
    for model in ("alpha", "beta", "alpha", "beta", "beta"):
        status, body = chat(gateway["base"], KEYS["alice"], model)
        assert status == 200, body
        assert body["served_by"] == model
    status, body = chat(gateway["base"], KEYS["alice"], "gamma")
    assert status == 404 and "does not exist" in body["error"]["message"]


def test_models_list_names_every_model(gateway) -> None:
    status, _, body = request("GET", f"{gateway['base']}/v1/models", api_key=KEYS["bob"])
    assert status == 200
    assert [m["id"] for m in json.loads(body)["data"]] == ["alpha", "beta"]


def test_path_prefix_routes_to_one_model(gateway) -> None:
    status, _, body = request("POST", f"{gateway['base']}/models/beta/v1/chat/completions", api_key=KEYS["bob"],
                              body={"model": "beta", "messages": []})
    assert status == 200 and json.loads(body)["served_by"] == "beta"


def test_backends_see_only_the_backend_key(gateway) -> None:
    seen = {a for ss in gateway["backends"].values() for s in ss for a in s.seen_auth}
    assert seen == {f"Bearer {BACKEND_KEY}"}


def test_stream_chunks_arrive_before_the_end(gateway) -> None:
    t0 = time.monotonic()
    times = [t for t, _ in stream_events(f"{gateway['base']}/v1/completions", {"model": "alpha", "prompt": "x"},
                                         api_key=KEYS["alice"])]
    assert len(times) == 6 and times[0] > t0
    # unbuffered: the first chunk comes long before the last (5 chunks CHUNK_DELAY apart upstream);
    # a buffering proxy would deliver them all at once at the end
    assert times[-1] - times[0] > CHUNK_DELAY * 3


def test_per_key_rate_limit_answers_429(gateway) -> None:
    g = gateway["stack"].gateway  # sandbox tier: 5r/s, burst 10 per key
    rate = int(g.rate_limit_per_key.split("r/")[0])
    total = (g.burst_per_key + 40) // 5

    def one(_: int) -> list[tuple[int, str]]:
        """Five requests on one kept-alive connection (no TLS handshake between them: fast even under load)."""
        return requests_on_one_connection(gateway["base"], "/v1/chat/completions",
                                          {"model": "beta", "messages": []}, 5, api_key=KEYS["bob"])

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = [r for batch in pool.map(one, range(total)) for r in batch]
    elapsed = time.monotonic() - t0
    statuses = [s for s, _ in results]
    assert set(statuses) <= {200, 429}, statuses
    # the counts the limit implies for the time the requests actually took (a slow machine sends fewer per
    # second, and the limit lets more of them through): at most the burst plus the rate over the elapsed time
    # (one extra for rounding), at least the burst; everything beyond is refused with 429
    allowed = g.burst_per_key + rate * elapsed + 1
    passed, refused = statuses.count(200), statuses.count(429)
    assert passed <= allowed, (passed, allowed, elapsed)
    assert refused >= len(statuses) - allowed, (refused, allowed, elapsed)
    assert passed >= min(len(statuses), g.burst_per_key), (passed, elapsed)
    if not refused:
        pytest.fail(f"{len(statuses)} requests in {elapsed:.1f} s never went past the limit: nothing was proved")
    limited = next(body for s, body in results if s == 429)
    assert json.loads(limited)["error"]["type"] == "rate_limit_error"
    # another key has its own budget
    assert chat(gateway["base"], KEYS["alice"], "beta")[0] == 200


def test_access_log_has_timings_and_no_key(gateway) -> None:
    chat(gateway["base"], KEYS["alice"], "beta")
    time.sleep(0.2)
    lines = [json.loads(x) for x in (gateway["tmp"] / "access.log").read_text().splitlines()]
    proxied = [x for x in lines if x["uri"] == "/v1/chat/completions" and x["status"] == 200]
    assert proxied and proxied[-1]["client"] == "alice"
    assert proxied[-1]["upstream_response_time"] not in ("", "-")
    text = (gateway["tmp"] / "access.log").read_text()
    for key in [*KEYS.values(), BACKEND_KEY]:
        assert key not in text


def test_smoke_checks_pass_through_the_gateway(gateway) -> None:
    time.sleep(1.2)  # let the rate limiter recover from the test above
    results = run_smoke(gateway["base"], KEYS["alice"], model="alpha")
    assert [r.name for r in results] == ["gateway health", "list models", "chat completion", "streamed completion"]
    assert all(r.ok for r in results), [r.line() for r in results]
    bad = run_smoke(gateway["base"], "sk-llmrack-" + "0" * 48, model="alpha")
    assert not bad[1].ok and "401" in bad[1].detail


# ---------------------------------------------------------------------------------------------- hardening


def test_every_answer_carries_the_security_headers(gateway) -> None:
    """add_header in a location drops the server's: /v1 answers (proxied, 401, 429) must carry them too."""
    answers = [request("GET", f"{gateway['base']}/v1/models", api_key=KEYS["bob"]),
               request("GET", f"{gateway['base']}/v1/models"),
               request("GET", f"{gateway['base']}/health")]
    for status, headers, _ in answers:
        assert headers.get("X-Content-Type-Options") == "nosniff", (status, headers)
        assert headers.get("Strict-Transport-Security", "").startswith("max-age="), (status, headers)


def test_weak_tls12_ciphers_are_refused(gateway) -> None:
    import ssl
    from urllib.parse import urlsplit

    u = urlsplit(gateway["base"])

    def handshake(ciphers: str) -> bool:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
        try:
            with socket.create_connection((u.hostname, u.port), timeout=5) as raw, \
                    ctx.wrap_socket(raw, server_hostname="localhost"):
                return True
        except ssl.SSLError:
            return False

    assert handshake("ECDHE-RSA-AES128-GCM-SHA256")
    assert not handshake("AES128-SHA:AES256-SHA:AES128-GCM-SHA256")  # no forward secrecy / CBC


def test_requests_without_a_key_are_rate_limited(gateway) -> None:
    """Key guessing costs time: past the unauthenticated burst, answers turn from 401 to 429."""
    burst = n.GatewayContext.model_fields["unauthenticated_burst"].default
    results = requests_on_one_connection(gateway["base"], "/v1/chat/completions", {"model": "beta"},
                                         burst + 15, api_key="")
    statuses = [s for s, _ in results]
    assert set(statuses) == {401, 429}, statuses
    assert statuses.count(401) <= burst + 3, statuses  # the burst plus what 2r/s refills meanwhile
    assert chat(gateway["base"], KEYS["alice"], "beta")[0] == 200  # a valid key is not held back


def test_http_redirect_goes_to_the_configured_name_not_the_host_header() -> None:
    stack = load_tier("standard").stack
    route = [n.ModelRoute(name="m", upstream="vllm_m", servers=["127.0.0.1:1"])]
    text = n.render_nginx_conf(n.gateway_context(stack, route, server_name="_", address="192.0.2.10"))
    assert "return 301 https://192.0.2.10$request_uri;" in text and "$host" not in text.split("proxy_pass")[0]
    text = n.render_nginx_conf(n.gateway_context(stack, route, server_name="llm.example.com", address="10.0.0.1"))
    assert "return 301 https://llm.example.com$request_uri;" in text
    text = n.render_nginx_conf(n.gateway_context(stack, route, server_name="_", address="fd00::5"))
    assert "return 301 https://[fd00::5]$request_uri;" in text
