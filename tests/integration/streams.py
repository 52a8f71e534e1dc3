"""Clients streaming chat completions through a gateway while something else runs (a rollout, a migration),
counting what failed and the longest time without an answer. Bounded in time and count."""

from __future__ import annotations

import time

import httpx

MODEL = "llmrack-tiny"
MIN_INTERVAL_S = 0.25  # per client: two clients send at most 8 requests a second


class Streams:
    """Clients streaming chat completions through the gateway while something else runs; each request on a new
    connection, as an SDK's pool does after a server closed its idle ones. Bounded: stops when told, after
    ``limit_s`` or ``max_requests`` per client.

    ``cluster["url"]`` is read at each request: a test moves the clients to another gateway by changing it, as
    a service name moved to a new server at a migration's cutover does."""

    def __init__(self, cluster, clients: int = 2, limit_s: float = 1500, max_requests: int = 4000):
        import threading

        self.cluster, self.stop, self.limit_s, self.max_requests = cluster, threading.Event(), limit_s, max_requests
        self.done: list[tuple[float, float, str]] = []  # (start, end, "ok" or what went wrong)
        self.served: dict[str, int] = {}  # gateway URL -> requests it answered
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _one(self) -> str:
        url = self.cluster["url"]
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Count to five."}], "max_tokens": 24,
                "stream": True}
        try:
            with httpx.Client(verify=False, timeout=120, trust_env=False) as client, client.stream(
                    "POST", f"{url}/v1/chat/completions", json=body,
                    headers={"Authorization": f"Bearer {self.cluster['key']}"}) as resp:
                text = "".join(resp.iter_text())
                if resp.status_code != 200:
                    return f"HTTP {resp.status_code}: {text[:200]}"
                if "data: [DONE]" not in text:
                    return f"no end marker: {text[-200:]}"
                self.served[url] = self.served.get(url, 0) + 1
                return "ok"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        for _ in range(self.max_requests):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            t0 = time.monotonic()
            what = self._one()
            self.done.append((t0, time.monotonic(), what))
            # under the tier's per-key rate (20 r/s): a 429 would measure the limit, not the rollout
            self.stop.wait(max(0.0, MIN_INTERVAL_S - (time.monotonic() - t0)))

    def __enter__(self) -> Streams:
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=180)
        self.t1 = time.monotonic()

    def failed(self) -> list[str]:
        return [w for _, _, w in self.done if w != "ok"]

    def answered_by(self, url: str) -> int:
        return self.served.get(url, 0)

    def longest_gap(self) -> float:
        """The longest time without an answer finishing, from the start to the end of the run."""
        ends = sorted(e for _, e, w in self.done if w == "ok")
        marks = [self.t0, *ends, self.t1]
        return max(b - a for a, b in zip(marks, marks[1:], strict=False))
