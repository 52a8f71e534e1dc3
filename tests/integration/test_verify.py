"""``llmrack verify`` against a sandbox host running the stack, then against the same host broken on purpose.

Broken: a tier override naming a model the host does not serve, a 4 MiB tmpfs as the 'data volume', and
the vLLM container stopped. The matching checks fail with their messages; the others still pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from harness import PROJECT, SANDBOX_INVENTORY, assert_converged, run_pyinfra, sandbox_env

from llmrack.config import load_inventory
from llmrack.verify import report, suite

pytestmark = pytest.mark.integration
SANDBOX_HOSTS = 1


@pytest.fixture(scope="module")
def deployed(sandbox_state):
    from llmrack.bundle import build_bundle_for_tier
    from llmrack.config import load_tier

    bundle = PROJECT / ".llmrack" / "bundle"  # the default bundle path; the builder is incremental
    build_bundle_for_tier(load_tier("sandbox", PROJECT), bundle, project_dir=PROJECT)
    env = {**sandbox_env(sandbox_state), "LLMRACK_BUNDLE": str(bundle)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    result = run_pyinfra(SANDBOX_INVENTORY, PROJECT / "deploys" / "full_stack.py", env=env, timeout=1500)
    assert_converged(result)
    yield sandbox_state
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _by_id(result: suite.VerifyResult) -> dict[str, suite.CheckResult]:
    return {c.id: c for c in result.hosts[0].checks}


def test_verify_passes_on_a_deployed_sandbox_host(deployed, tmp_path):
    inv = load_inventory(SANDBOX_INVENTORY, PROJECT)
    res = suite.verify(inv, report_dir=tmp_path, log=lambda m: None)
    checks = _by_id(res)
    bad = {k: c.message for k, c in checks.items() if c.status in ("fail", "error")}
    assert not bad, bad
    assert res.exit_code == 0
    for cid in ("sw.vllm", "sw.vector_store", "sw.gateway_tls", "sw.prometheus", "sw.docker", "sw.compose",
                "perf.single_stream", "perf.concurrency", "perf.rag", "sec.gateway_auth", "sec.ports"):
        assert checks[cid].status == "pass", (cid, checks[cid].message)
    for cid in ("hw.gpu_count", "sw.driver", "perf.multi_gpu"):
        assert checks[cid].status == "skip" and checks[cid].skip_reason == "not applicable"
    doc = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(doc, report.load_schema())
    assert doc["hosts"][0]["bench"]["levels"][-1]["concurrency"] == 20


def _broken_inventory(tmp_path: Path, data_path: str) -> Path:
    over = {
        "stack": {"models": [{"name": "llmrack-tiny", "served_name": "no-such-model", "source": "bundle",
                              "max_model_len": 512}]},
        "acceptance": {"data_path": data_path},
    }
    inv = tmp_path / "broken.py"
    inv.write_text(
        "import runpy\n"
        f"_base = runpy.run_path({str(SANDBOX_INVENTORY)!r})\n"
        f"sandbox = [(n, {{**d, 'overrides': {over!r}}}) for n, d in _base['sandbox']]\n"
    )
    return inv


def test_verify_reports_a_broken_host(deployed, infra_hosts, tmp_path):
    host = next(iter(infra_hosts.values()))
    mnt = "/mnt/llmrack-acc-tiny"
    assert host.run(f"mkdir -p {mnt} && mount -t tmpfs -o size=4m llmrack-acc-tiny {mnt}").rc == 0
    try:
        inv = load_inventory(_broken_inventory(tmp_path, mnt), PROJECT)
        res = suite.verify(inv, only={"software", "hardware"}, log=lambda m: None)
        checks = _by_id(res)
        assert res.exit_code == 1
        assert checks["sw.vllm"].status == "fail"
        assert "model(s) not served: no-such-model (served: llmrack-tiny)" in checks["sw.vllm"].message
        assert checks["hw.data_free"].status == "fail" and "below 1 GiB" in checks["hw.data_free"].message
        for cid in ("sw.os", "sw.docker", "sw.vector_store", "sw.prometheus", "hw.ram", "hw.cpu"):
            assert checks[cid].status == "pass", (cid, checks[cid].message)

        vllm = [n for n in host.run("docker ps --format '{{.Names}}'").stdout.split() if "vllm" in n]
        assert vllm, "no vLLM container to stop"
        assert host.run(f"docker stop {vllm[0]}").rc == 0
        ok_inv = load_inventory(SANDBOX_INVENTORY, PROJECT)
        res2 = suite.verify(ok_inv, only={"sw.vllm", "sw.vector_store", "perf.single_stream"}, log=lambda m: None)
        checks2 = _by_id(res2)
        assert checks2["sw.vllm"].status == "fail" and f"container {vllm[0]} is exited" in checks2["sw.vllm"].message
        assert checks2["sw.vector_store"].status == "pass"
        assert checks2["perf.single_stream"].status == "fail"
        assert res2.exit_code == 1
    finally:
        host.run(f"umount {mnt}")
        host.run("docker ps -aq --filter name=vllm | xargs -r docker start")
