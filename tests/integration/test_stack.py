"""The serving stack on a sandbox host, through the offline bundle path: the served site of served_site.py
(converged twice from the bundle, shared with test_verify.py) -> deploys/stack.py on it changes nothing -> smoke
through the gateway -> 401 / 429 / streaming -> backend ports closed from this machine and from the neighbour
host -> vLLM killed, back by itself.

Verification talks HTTP to the host's published gateway port and SQL through an SSH tunnel; it never calls the
deploy code.
"""

from __future__ import annotations

import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from harness import PROJECT, SANDBOX_INVENTORY, assert_converged, assert_no_changes, run_pyinfra, sandbox_env

from llmrack.config import load_tier
from llmrack.secrets import AdminSecrets
from llmrack.stack.smoke import smoke_inventory
from llmrack.stack.smoke_http import TransportFailed, request, requests_on_one_connection
from llmrack.stack.smoke_stream import timed_stream
from llmrack.tls import gateway_certificate, trust_anchor

STACK = PROJECT / "deploys" / "stack.py"


@pytest.fixture(scope="module")
def sandbox_state(served_site):
    return served_site.state


@pytest.fixture(scope="module")
def deployed(served_site):
    """The served site, and deploys/stack.py run on it twice (the smaller deploy file, cut from the same stages)."""
    assert_converged(served_site.first)
    first = run_pyinfra(served_site.inventory, STACK, env=served_site.env, timeout=900)
    assert_converged(first)
    second = run_pyinfra(served_site.inventory, STACK, env=served_site.env, timeout=900)
    return {"state": served_site.state, "first": first, "second": second}


def keys() -> dict[str, str]:
    return AdminSecrets(PROJECT).api_keys("host1")


def ca() -> Path:
    """The project's CA that every request below checks the gateway's certificate against."""
    return trust_anchor(PROJECT, "host1", load_tier("sandbox", PROJECT).stack.gateway.tls)


def base_url(state) -> str:
    return f"https://{state.host('host1').address}:8443"


def test_the_stack_deploy_converges_on_the_served_site_and_again_with_no_change(deployed) -> None:
    assert_no_changes(deployed["second"])
    assert deployed["second"].wall_s < 60


def test_smoke_passes_with_the_rag_round_trip(deployed, monkeypatch) -> None:
    """`llmrack smoke`'s code path for host1: models, chat, stream, and RAG end to end (texts embedded through
    the gateway, upserted into pgvector through an SSH tunnel, the nearest to a question is the right one)."""
    from llmrack.config import load_inventory

    for k, v in sandbox_env(deployed["state"]).items():
        monkeypatch.setenv(k, v)
    results = smoke_inventory(load_inventory(SANDBOX_INVENTORY, PROJECT), hosts={"host1"}, log=lambda m: None)
    assert [r.name for r in results] == [f"host1 {n}" for n in ("gateway health", "list models", "chat completion",
                                                                 "streamed completion", "rag round trip")]
    assert all(r.ok for r in results), [r.line() for r in results]
    rag = results[-1].detail
    assert rag.startswith("384-dim embeddings, nearest doc 2 at cosine distance"), rag


def test_no_key_is_401_and_over_the_limit_is_429(deployed) -> None:
    base = base_url(deployed["state"])
    assert request("GET", f"{base}/v1/models", ca=ca())[0] == 401
    key = keys()["tests"]
    gw = load_tier("sandbox", PROJECT).stack.gateway
    rate, burst = int(gw.rate_limit_per_key.split("r/")[0]), gw.burst_per_key

    def burst_of_requests(_: int) -> list[int]:
        """Cheap requests (unknown model: vLLM answers at once) on one kept-alive TLS connection."""
        return [status for status, _ in requests_on_one_connection(
            base, "/v1/chat/completions", {"model": "nope", "messages": []}, 25, api_key=key, ca=trusted)]

    trusted = ca()

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(burst_of_requests, range(8)) for s in batch]
    elapsed = time.monotonic() - t0
    passed = sum(1 for s in statuses if s != 429)
    assert all(s in (429, 404, 400) for s in statuses), statuses
    # the limit implies, for the time the burst actually took: at most the burst plus the rate over the elapsed
    # time get through (one extra for rounding), at least the burst does; everything beyond is refused with 429
    allowed = burst + rate * elapsed + 1
    assert passed <= allowed, (passed, elapsed)
    assert passed >= min(len(statuses), burst), (passed, elapsed)
    assert statuses.count(429) >= len(statuses) - allowed, (statuses.count(429), elapsed)


def test_stream_first_chunk_long_before_the_end(deployed) -> None:
    """64 tokens: the first chunk comes in the first half of the stream and the chunks arrive one by one
    (tests/integration/test_verify.py turns the gateway's buffering on and sees this same judgement fail)."""
    time.sleep(2)
    timing = timed_stream(f"{base_url(deployed['state'])}/v1/completions", "llmrack-tiny", api_key=keys()["default"],
                          ca=ca())
    passed, seen = timing.verdict()
    assert passed and timing.events >= 64, seen


def test_the_gateway_presents_the_certificate_the_projects_ca_issued(deployed, tmp_path) -> None:
    """The deploy installed the certificate this machine's CA issued; a client holding another CA (another
    project's, or a man in the middle's view of it) is refused the connection before any key is sent."""
    state = deployed["state"]
    on_host = subprocess.run(["ssh", "-F", state.ssh_config, "host1", "cat /opt/llmrack/stack/tls/server.crt; "
                              "stat -c %a /opt/llmrack/stack/tls/server.key"], capture_output=True, text=True,
                             timeout=60)
    assert on_host.returncode == 0, on_host.stderr
    cert, _, key_mode = on_host.stdout.rpartition("-----END CERTIFICATE-----\n")
    ours = x509.load_pem_x509_certificate((cert + "-----END CERTIFICATE-----\n").encode())
    ours.verify_directly_issued_by(x509.load_pem_x509_certificate(ca().read_bytes()))  # raises if not
    assert key_mode.strip() == "600"
    assert request("GET", f"{base_url(state)}/health", ca=ca())[0] == 200
    gateway_certificate(tmp_path, "host1", common_name="", address=state.host("host1").address, days=1)
    other = AdminSecrets(tmp_path).root / "cluster" / "gateway-ca.crt"
    with pytest.raises(TransportFailed, match="CERTIFICATE_VERIFY_FAILED"):
        request("GET", f"{base_url(state)}/v1/models", api_key=keys()["default"], ca=other)


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


def test_a_killed_model_server_comes_back_by_itself_and_serves(deployed, monkeypatch) -> None:
    """Drill: vLLM's server process killed (SIGKILL from the host, as the OOM killer does): Docker's restart
    policy brings it back, its healthcheck passes again and smoke passes through the gateway, no deploy run."""
    state = deployed["state"]

    def on_host(command: str) -> str:
        done = subprocess.run(["ssh", "-F", state.ssh_config, "host1", command], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    name = on_host("docker ps --format '{{.Names}}' --filter name=vllm")
    assert name and "\n" not in name, name
    restarts = int(on_host(f"docker inspect --format '{{{{.RestartCount}}}}' {name}"))
    # the kernel's way (as the OOM killer does): `docker kill` would count as a stop by hand and keep it down
    on_host(f"kill -KILL $(docker inspect --format '{{{{.State.Pid}}}}' {name})")
    deadline = time.monotonic() + 600
    while True:
        state_now = on_host(f"docker inspect --format '{{{{.RestartCount}}}} {{{{.State.Health.Status}}}}' {name}")
        count, health = state_now.split()
        if int(count) > restarts and health == "healthy":
            break
        assert time.monotonic() < deadline, f"{name} not back and healthy within 600 s: {state_now}"
        time.sleep(3)
    from llmrack.config import load_inventory

    for k, v in sandbox_env(state).items():
        monkeypatch.setenv(k, v)
    results = smoke_inventory(load_inventory(SANDBOX_INVENTORY, PROJECT), hosts={"host1"}, log=lambda m: None)
    assert all(r.ok for r in results), [r.line() for r in results]
