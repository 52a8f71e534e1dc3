"""The one HTTP client of verify, smoke and bench: httpx, with TLS verification always on.

Certificates are checked against a CA file (the gateway's trust anchor on the admin machine, see
``llmrack.tls``) or, without one, the system's trust store; host names are checked too. Proxy variables of the
environment are ignored (the gateway is reached directly, as a client on the LAN would).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from llmrack.tls import client_context

CaFile = str | Path | None


class TransportFailed(OSError):
    """No HTTP answer: connection refused or reset, timeout, or a TLS handshake that failed (wrong certificate)."""


def client(ca: CaFile = None, *, timeout: float = 30, **kw: Any) -> httpx.Client:
    return httpx.Client(verify=client_context(ca), timeout=timeout, trust_env=False, **kw)


def async_client(ca: CaFile = None, *, timeout: float | httpx.Timeout = 30, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=client_context(ca), timeout=timeout, trust_env=False, **kw)


def bearer(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
