"""HTTP to a deployed stack's gateway for the smoke checks, verify and the tests (``llmrack.httpclient`` clients).

Every request checks the gateway's certificate against ``ca`` (a CA file; None: the system's trust store). No
answer at all raises :class:`TransportFailed`; an answer with an error status is returned (``request``) or raised
as :class:`HttpError` (``json_request``, ``stream_events``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from llmrack import httpclient as hc
from llmrack.httpclient import CaFile, TransportFailed

__all__ = ["HttpError", "TransportFailed", "json_request", "request", "requests_on_one_connection", "stream_events"]


class HttpError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


def _headers(api_key: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Accept": "application/json", **hc.bearer(api_key), **(extra or {})}


def request(
    method: str, url: str, *, api_key: str | None = None, body: Any = None, ca: CaFile = None,
    timeout: float = 120, headers: dict[str, str] | None = None,
) -> tuple[int, httpx.Headers, bytes]:
    """One HTTP request; returns (status, headers, body) for every status (no exception on 4xx/5xx).

    No answer at all (refused, timed out, a certificate that does not check out) raises :class:`TransportFailed`."""
    try:
        with hc.client(ca, timeout=timeout) as c:
            resp = c.request(method, url, json=body, headers=_headers(api_key, headers))
            return resp.status_code, resp.headers, resp.content
    except httpx.TransportError as exc:
        raise TransportFailed(f"{url}: {exc}") from exc


def json_request(method: str, url: str, **kw: Any) -> Any:
    status, _, raw = request(method, url, **kw)
    if status != 200:
        raise HttpError(status, raw.decode(errors="replace"))
    return json.loads(raw)


def requests_on_one_connection(
    base_url: str, path: str, body: Any, n: int, *, api_key: str, ca: CaFile = None, timeout: float = 30,
) -> list[tuple[int, str]]:
    """``n`` POSTs of ``body`` on one kept-alive connection (no TLS handshake between them, so a burst stays
    fast under load); (status, body text) of each."""
    out = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    try:
        with hc.client(ca, timeout=timeout, limits=limits, base_url=base_url) as c:
            for _ in range(n):
                resp = c.post(path, json=body, headers=_headers(api_key))
                out.append((resp.status_code, resp.text))
    except httpx.TransportError as exc:
        raise TransportFailed(f"{base_url}{path}: {exc}") from exc
    return out


def stream_events(url: str, body: dict[str, Any], *, api_key: str | None, ca: CaFile = None,
                  timeout: float = 300) -> Iterator[tuple[float, dict[str, Any] | None]]:
    """POST with ``stream: true``; yields (monotonic time of arrival, event) per SSE data line, None for [DONE].

    Asks for gzip as the OpenAI SDKs and browsers do (a gateway that compresses may buffer for them) and
    decodes it as it arrives; each event's time is when the bytes that completed it were read."""
    hdrs = {"Content-Type": "application/json", "Accept": "text/event-stream", "Accept-Encoding": "gzip",
            **hc.bearer(api_key)}
    try:
        with hc.client(ca, timeout=timeout) as c, c.stream("POST", url, json={**body, "stream": True},
                                                            headers=hdrs) as resp:
            if resp.status_code != 200:
                raise HttpError(resp.status_code, resp.read().decode(errors="replace"))
            pending = b""
            for raw in resp.iter_bytes():  # what has arrived (decoded), without waiting for more
                now = time.monotonic()
                pending += raw
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    text = line.decode().strip()
                    if not text.startswith("data:"):
                        continue
                    payload = text[5:].strip()
                    if payload == "[DONE]":
                        yield now, None
                        return
                    yield now, json.loads(payload)
    except httpx.TransportError as exc:
        raise TransportFailed(f"{url}: {exc}") from exc
