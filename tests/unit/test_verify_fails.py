"""The suite's rule (README, Testing): every check of ``llmrack verify`` has a test that makes it fail.

One case per check, each the smallest state of a host that the check must refuse: recorded command output at
the one boundary a unit test cannot cross (a command run on a server), a fake OpenAI server at the HTTP
boundary (tests/unit/verify_fakes.py), a real TCP listener for the outside view. The checks and their
thresholds are the real ones. ``test_every_check_has_a_failing_case`` fails when a check is added without one.
Failing on real parts is proved in tests/integration (test_verify.py: a stopped vLLM, a model not served, a full
data volume, a buffering gateway; test_base_docker.py: a host without its stack).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from test_verify_checks import FIX, GPU, RecordedHost, ctx_for, spec
from verify_fakes import FakeOpenAI

from llmrack.verify import checks as C
from llmrack.verify.checks import REGISTRY, CheckContext, Outcome

DEPLOYED = {r"test -f /opt/llmrack/\w+/compose.yaml": (0, "")}
DOCKER = {r"command -v docker": (0, "")}
CURL = {r"command -v curl": (0, "")}


def _inspect(*containers: dict) -> dict[str, tuple[int, str]]:
    return {r"docker ps -aq": (0, " ".join(f"id{i}" for i in range(len(containers))) + "\n"),
            r"docker inspect": (0, json.dumps(list(containers)))}


def _fake_ctx(srv: FakeOpenAI, **overrides) -> CheckContext:
    """A host whose gateway is the fake server (this machine, its port), with a small benchmark."""
    over = {"stack": {"gateway": {"https_port": srv.port}},
            "acceptance": {"concurrency": 4, "bench_single_requests": 2, "bench_requests_per_slot": 1,
                           "bench_max_tokens": 8, "bench_level_timeout_s": 60, **overrides.pop("acceptance", {})},
            **overrides}
    s = spec("standard", over)
    s = s.model_copy(update={"profile": s.profile.model_copy(update={"stack": s.profile.stack.model_copy(
        update={"models": [s.profile.stack.models[0].model_copy(update={"served_name": "tiny"})]})})})
    return CheckContext(host=RecordedHost(DEPLOYED), spec=s, local=True, api_key="sk-test", log=lambda m: None,
                        gateway_ca=srv.ca_file)


def _served(tmp: Path, check: Callable[[CheckContext], Outcome], acceptance: dict | None = None,
            **fake) -> Outcome:
    with FakeOpenAI(model="tiny", tls_dir=tmp, **fake) as srv:
        return check(_fake_ctx(srv, acceptance=acceptance or {}))


def _non_loopback_address() -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        return line.split()[3].split("/")[0]
    raise AssertionError("this machine has no non-loopback IPv4 address to test the outside view with")


PG = {"Name": "/stack-vector-1", "Config": {"Image": "llmrack/pgvector:pg15-1", "Env": ["POSTGRES_USER=rag"],
                                            "Labels": {"com.docker.compose.service": "vector"}},
      "State": {"Status": "running"}}
TARGET_DOWN = json.dumps({"data": {"activeTargets": [{"labels": {"job": "vllm"}, "health": "down",
                                                      "scrapeUrl": "http://vllm:8000/metrics",
                                                      "lastError": "connection refused"}]}})
SMART_BAD = {r"lsblk": (0, "sda disk\n"), r"test -b /dev/sda": (0, ""), r"command -v smartctl": (0, ""),
             r"smartctl -H -A /dev/sda": (0, (FIX / "smartctl-realloc.txt").read_text())}

# check id -> (how to make it fail, a words its message must hold)
CASES: dict[str, tuple[Callable[[Path], Outcome], str]] = {
    "sw.os": (lambda t: C.sw_os(ctx_for({r"cat /etc/os-release": (0, 'ID=ubuntu\nVERSION_ID="20.04"\n')})),
              "is not one of the tier's releases"),
    "sw.driver": (lambda t: C.sw_driver(ctx_for(GPU, overrides={"acceptance": {"driver_version_min": "560"}})),
                  "is older than 560"),
    "sw.cuda_container": (lambda t: C.sw_cuda_container(ctx_for(
        {**DOCKER, r"docker run --rm --pull=never --gpus all": (125, "could not select device driver")},
        overrides={"acceptance": {"cuda_probe_image": "llmrack/vllm:1"}})), "could not select device driver"),
    "sw.docker": (lambda t: C.sw_docker(ctx_for({**DOCKER, r"docker version": (0, "20.10.24\n")})),
                  "older than 24.0"),
    "sw.compose": (lambda t: C.sw_compose(ctx_for({**DOCKER, r"docker compose version": (1, "")})),
                   "the v2 plugin) is missing"),
    "sw.nvidia_runtime": (lambda t: C.sw_nvidia_runtime(ctx_for({**DOCKER, r"docker info": (0, '{"runc":{}}')})),
                          "not configured"),
    "sw.vllm": (lambda t: C.sw_vllm(ctx_for({**DOCKER, **DEPLOYED, **_inspect(
        {"Name": "/stack-vllm-1", "Config": {"Image": "llmrack/vllm-cpu:1", "Labels": {}},
         "State": {"Status": "exited"}})}, roles=["inference"])), "container stack-vllm-1 is exited"),
    "sw.vector_store": (lambda t: C.sw_vector_store(ctx_for(
        {**DOCKER, **DEPLOYED, **_inspect(PG), r"docker exec stack-vector-1 psql": (0, "\n")},
        overrides={"stack": {"vector_store": {"kind": "pgvector"}}})), "the vector extension is not installed"),
    "sw.gateway_tls": (lambda t: _served(t, C.sw_gateway_tls, cert_days=-2), "certificate expired"),
    "sw.prometheus": (lambda t: C.sw_prometheus(ctx_for({**DEPLOYED, **CURL, r"9090/api/v1/targets": (
        0, TARGET_DOWN + "\n200")})), "targets not up: vllm/http://vllm:8000/metrics (down: connection refused)"),
    "sw.grafana": (lambda t: C.sw_grafana(ctx_for({**DEPLOYED, **CURL, r"3000/api/health": (
        0, '{"database": "failing"}\n503')}, overrides={"monitoring": {"grafana": True}})), "database failing"),
    "sw.time": (lambda t: C.sw_time(ctx_for({r"command -v chronyc": (0, ""), r"chronyc tracking": (
        0, (FIX / "chronyc-tracking.txt").read_text().replace("Normal", "Not synchronised"))})),
        "leap status Not synchronised"),
    "hw.gpu_count": (lambda t: C.hw_gpu_count(ctx_for(GPU)), "3 GPU(s) found, the tier has 4"),
    "hw.gpu_model": (lambda t: C.hw_gpu_model(ctx_for(GPU, overrides={"hardware": {"gpu": {"model": "H100"}}})),
                     "(the tier wants H100)"),
    "hw.gpu_memory": (lambda t: C.hw_gpu_memory(ctx_for(GPU, overrides={"hardware": {"gpu": {"memory_gib": 48}}})),
                      "GPU(s) with less memory: 0: 24.0 GiB"),
    "hw.pcie": (lambda t: C.hw_pcie(ctx_for(GPU)), "GPU 1 runs x8 of x16"),
    "hw.gpu_errors": (lambda t: C.hw_gpu_errors(ctx_for({**GPU, r"journalctl -k": (0, "2\n")})),
                      "2 XID event(s)"),
    "hw.gpu_idle": (lambda t: C.hw_gpu_idle(ctx_for(GPU)), "GPU 2 at 71 C (limit 60 C at idle)"),
    "hw.burnin": (lambda t: C.hw_burnin(ctx_for({}, burnin={"minutes": 120, "verdict": "pass", "samples": {
        "0": [{"temp_c": 70}, {"temp_c": 95}]}})), "peak 95 C over 87 C"),
    "hw.ram": (lambda t: C.hw_ram(ctx_for({r"cat /proc/meminfo": (0, "MemTotal:       263000000 kB\n")})),
               "250.8 GiB visible to the kernel (tier: 512 GiB"),
    "hw.cpu": (lambda t: C.hw_cpu(ctx_for({r"nproc": (0, "16\n")})), "16 logical CPU(s)"),
    "hw.smart": (lambda t: C.hw_smart(ctx_for(SMART_BAD)), "/dev/sda: 24 Reallocated_Sector_Ct"),
    "hw.data_free": (lambda t: C.hw_data_free(ctx_for({r"df -PB1 /": (
        0, "Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/sda2 100 50 1073741824 50% /\n")})),
        "1.00 GiB free on / (/dev/sda2): below 1000 GiB"),
    "sec.ssh_password": (lambda t: C.sec_ssh_password(ctx_for({r"command -v sshd": (0, ""), r"sshd -T": (
        0, "passwordauthentication yes\nkbdinteractiveauthentication no\n")})), "PasswordAuthentication yes"),
    "sec.gateway_auth": (lambda t: _served(t, C.sec_gateway_auth, require_key=False),
                         "GET /v1/models without a key: HTTP 200"),
    "perf.single_stream": (lambda t: _served(t, C.perf_single_stream, tokens_delay_s=0.1),
                           "tokens/s per stream"),
    "perf.concurrency": (lambda t: _served(t, C.perf_concurrency, fail_every=2), "(errors: HTTP 503"),
    "perf.ttft": (lambda t: _served(t, C.perf_ttft, {"ttft_p99_ms_max": 20}, ttft_s=0.05), "TTFT at concurrency 4"),
    "perf.tpot": (lambda t: _served(t, C.perf_tpot, {"tpot_p99_ms_max": 2}, tokens_delay_s=0.01),
                  "TPOT at concurrency 4"),
    "perf.throughput": (lambda t: _served(t, C.perf_throughput, serial=True, tokens_delay_s=0.01),
                        "no gain from batching"),
    "perf.multi_gpu": (lambda t: _served(t, C.perf_multi_gpu, {"single_gpu_tokens_per_s": 100000}),
                       "x 4 x 100000"),
    "perf.streaming": (lambda t: _served(t, C.perf_streaming, buffered=True, tokens_delay_s=0.002),
                       "buffered on the way"),
    "perf.rag": (lambda t: C.perf_rag(ctx_for({**DOCKER, **DEPLOYED, **_inspect(PG)}, api_key="sk-x",
                                              overrides={"stack": {"vector_store": {"kind": "pgvector"},
                                                                   "embeddings": {"enabled": True}}})),
                 "/v1/embeddings through the gateway failed (the tier runs the embeddings service)"),
}


# Checks whose failing case lives beside their other tests (tests/unit/test_verify_checklist.py unless said), by
# the test that makes each fail.
FAILING_ELSEWHERE = {
    "hw.disk_io": "test_stress_memtest_and_fio_run_for_real_here (IOPS below a strict threshold)",
    "hw.stress_cpu": "test_a_missing_tool_fails_and_names_the_package",
    "hw.thermal_load": "test_thermal_and_power_from_the_h200_burn_in (hot)",
    "hw.power": "test_thermal_and_power_from_the_h200_burn_in (not fully loaded)",
    "hw.gpu_scaling": "test_gpu_scaling_judges_the_burn_ins_solo_and_all_gpu_phases (0.70 x 4 x solo)",
    "hw.noise": "test_manual_lines_carry_the_sign_off (78 dB)",
    "hw.psu_failover": "test_manual_lines_carry_the_sign_off (result fail)",
    "perf.seed_7b": "test_seed_7b_line_is_not_applicable_without_gpus_and_fails_without_a_7b_model",
    # tests/unit/test_injection_exposure_check.py
    "sec.exposure": "test_the_check_is_registered_and_names_what_is_exposed (9100 and 18000 open)",
}
# Lines with no failing case yet: listed so that the gap is seen, and so that a new check cannot join it silently.
NO_FAILING_CASE_YET = {"hw.memtest", "hw.network", "hw.badblocks"}


def test_every_check_has_a_failing_case() -> None:
    # security controls (sec.<family>.<name>) are judged per probe kind: each kind is made to fail in
    # tests/unit/test_security_controls.py and, on a host, by tests/integration/test_security_host.py
    checklist = {k for k in REGISTRY if not re.fullmatch(r"sec\.[a-z0-9_]+\.[a-z0-9_]+", k)}
    covered = set(CASES) | set(FAILING_ELSEWHERE) | NO_FAILING_CASE_YET
    assert sorted(covered) == sorted(checklist), "a check without a case that makes it fail"


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_check_fails(check_id: str, tmp_path: Path) -> None:
    make, words = CASES[check_id]
    out = make(tmp_path)
    assert out.status == "fail", (check_id, out)
    assert words in out.message, (check_id, out.message)


def test_the_fakes_pass_when_nothing_is_wrong(tmp_path: Path) -> None:
    """The same fake server, unbroken, passes the same checks: the failures above come from what was broken."""
    assert _served(tmp_path, C.sw_gateway_tls).status == "pass"
    assert _served(tmp_path, C.sec_gateway_auth).status == "pass"
    assert _served(tmp_path, C.perf_streaming, tokens_delay_s=0.002).status == "pass"
    assert _served(tmp_path, C.perf_concurrency).status == "pass"


def test_gateway_checks_fail_on_a_certificate_the_ca_does_not_vouch_for(tmp_path: Path) -> None:
    """A gateway that answers with another certificate (a man in the middle, another project's) fails TLS and
    gets no request: the checks trust only the CA this machine holds."""
    from verify_fakes import self_signed

    (tmp_path / "other").mkdir()
    other, _ = self_signed(tmp_path / "other")
    with FakeOpenAI(model="tiny", tls_dir=tmp_path) as srv:
        ctx = _fake_ctx(srv)
        ctx.gateway_ca = other
        tls_out = C.sw_gateway_tls(ctx)
        auth_out = C.sec_gateway_auth(ctx)
        served = C.sw_vllm(ctx)
        count = srv.requests
    assert tls_out.status == "fail" and "does not check out" in tls_out.message, tls_out
    assert tls_out.message.endswith("self-signed certificate")  # OpenSSL: not one the CA vouches for
    assert auth_out.status != "pass" and served.status == "fail", (auth_out, served)
    assert count == 0, "a request reached the gateway through an unverified connection"
