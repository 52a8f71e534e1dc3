"""A small OpenAI-compatible HTTPS server for the bench and report tests (the true boundary: HTTP).

Streams chat completions as vLLM does (SSE chunks, a final usage chunk with ``stream_options.include_usage``),
answers /v1/models, refuses requests without the key (401) and can fail every n-th request (HTTP 503).
``serial``: one generation at a time (no batching: throughput does not grow with concurrency); ``buffered``: the
whole stream is written at once at its end, as a buffering proxy delivers it.
"""

from __future__ import annotations

import datetime
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def self_signed(dir_: Path, days: int = 30) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost valid from yesterday for ``days`` days (negative:
    expired); clients check it against itself (the certificate file is the CA file)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llmrack-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=max(1, 1 - days)))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = dir_ / "gw.crt", dir_ / "gw.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


class FakeOpenAI:
    def __init__(self, *, key: str = "sk-test", model: str = "tiny", tokens_delay_s: float = 0.002,
                 ttft_s: float = 0.01, fail_every: int = 0, tls_dir: Path | None = None, serial: bool = False,
                 buffered: bool = False, require_key: bool = True, cert_days: int = 30):
        self.key, self.model, self.delay, self.ttft, self.fail_every = key, model, tokens_delay_s, ttft_s, fail_every
        self.serial, self.buffered, self.require_key = serial, buffered, require_key
        self.count = 0
        self.requests = 0  # every request that got through TLS
        self.lock = threading.Lock()
        self.generating = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _json(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authed(self) -> bool:
                outer.requests += 1
                if outer.require_key and self.headers.get("Authorization") != f"Bearer {outer.key}":
                    self._json(401, {"error": {"message": "missing or bad key"}})
                    return False
                return True

            def do_GET(self):
                if not self._authed():
                    return
                if self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": outer.model, "object": "model"}]})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self._authed():
                    return
                with outer.lock:
                    outer.count += 1
                    n = outer.count
                if outer.fail_every and n % outer.fail_every == 0:
                    self._json(503, {"error": {"message": "overloaded"}})
                    return
                if body.get("model") != outer.model:
                    self._json(404, {"error": {"message": f"model {body.get('model')} does not exist"}})
                    return
                tokens = int(body.get("max_tokens", 16))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.held: list[bytes] = []
                if outer.serial:
                    outer.generating.acquire()
                try:
                    time.sleep(outer.ttft)
                    self._event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
                    for i in range(tokens):
                        if i:
                            time.sleep(outer.delay)
                        self._event({"choices": [{"index": 0, "delta": {"content": f" w{i}"}}]})
                finally:
                    if outer.serial:
                        outer.generating.release()
                self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    self._event({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": tokens}})
                self.wfile.write(b"".join(self.held) + b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _event(self, obj: dict) -> None:
                data = b"data: " + json.dumps(obj).encode() + b"\n\n"
                if outer.buffered:
                    self.held.append(data)
                    return
                self.wfile.write(data)
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        self.ca_file: Path | None = None  # what a client checks the certificate against
        if tls_dir is not None:
            crt, pem = self_signed(tls_dir, cert_days)
            self.ca_file = crt
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(crt, pem)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
