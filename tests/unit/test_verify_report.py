"""The report contract (JSON Schema), JUnit, Markdown, and the HTML report rendered by headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from verify_fakes import FakeOpenAI

from llmrack import bench
from llmrack.checkresult import CATEGORIES, STATUSES
from llmrack.config import HostSpec, Inventory, load_tier
from llmrack.verify import report, suite
from llmrack.verify.suite import CheckResult, HostResult, VerifyResult

PROJECT = Path(__file__).resolve().parents[2]


def _check(id_: str, status: str, category: str = "software", **kw) -> CheckResult:
    return CheckResult(id=id_, title=id_, category=category, checklist_zh="磁盘健康检测（SMART状态正常，坏块检测）",
                       checklist_en="Disk health", checklist_source="seed-000", status=status,
                       message=kw.pop("message", f"{id_} {status}"), how=kw.pop("how", None), **kw)


@pytest.fixture(scope="module")
def bench_result(tmp_path_factory) -> dict:
    with FakeOpenAI(model="tiny", tokens_delay_s=0.002, tls_dir=tmp_path_factory.mktemp("tls")) as srv:
        return bench.run_bench(srv.url, "sk-test", ca=srv.ca_file, model="tiny", concurrency_levels=[1, 4, 8],
                               requests_per_level=8,
                               max_tokens=8, timeout_s=30)


def sample_result(bench_result: dict) -> VerifyResult:
    burnin = {"minutes": 1, "verdict": "pass", "samples": {
        "0": [{"t": i * 5.0, "temp_c": 40 + i} for i in range(12)],
        "1": [{"t": i * 5.0, "temp_c": 45 + i} for i in range(12)]}}
    ok = HostResult(name="llm-01", address="10.0.0.5", tier="standard", roles=["inference", "gateway"],
                    reachable=True, connection="ssh://llm-01", bench=bench_result, burnin=burnin, checks=[
                        _check("sw.os", "pass", value="ubuntu 22.04", threshold=["ubuntu 22.04"]),
                        _check("hw.smart", "fail", "hardware", value={"sda": "FAILED"}, threshold="PASSED",
                               message="/dev/sda: FAILED (FAILED!)"),
                        _check("hw.burnin", "pass", "hardware", value=56.0, threshold="<= 87 C"),
                        _check("perf.multi_gpu", "not_applicable", "performance", message="the tier has 1 GPU(s)"),
                        _check("sec.exposure", "manual", "security", message="verify runs on the host itself",
                               how="from another machine run `llmrack verify INV --only sec.exposure`"),
                        _check("sec.ssh_password", "error", "security", message="`sshd -T` failed"),
                    ])
    down = HostResult(name="llm-02", address="10.0.0.6", tier="standard", roles=["inference"], reachable=False,
                      connection="ssh://llm-02", error="cannot reach llm-02: Connection refused")
    return VerifyResult(inventory="inventories/office.py", hosts=[ok, down], started_at=1.8e9, duration_s=12.5)


def test_exit_codes():
    passing = HostResult(name="a", address="x", tier="t", roles=[], reachable=True, connection="local://",
                         checks=[_check("sw.os", "pass"), _check("hw.pcie", "not_applicable"),
                                 _check("hw.smart", "manual", how="read the controller's own log")])
    assert VerifyResult("i", [passing], 0, 1).exit_code == 0  # manual lines are open sign-offs, not failures
    summary = VerifyResult("i", [passing], 0, 1).summary()
    assert (summary["pass"], summary["not_applicable"], summary["manual"], summary["verdict"]) == (1, 1, 1, "pass")
    absent = HostResult(name="e", address="x", tier="t", roles=[], reachable=True, connection="local://",
                        checks=[_check("sw.vllm", "fail", message="expected by the inventory, not deployed: ...")])
    assert VerifyResult("i", [passing, absent], 0, 1).exit_code == 1
    failing = HostResult(name="b", address="x", tier="t", roles=[], reachable=True, connection="local://",
                         checks=[_check("sw.os", "fail")])
    assert VerifyResult("i", [passing, failing], 0, 1).exit_code == 1
    broken = HostResult(name="c", address="x", tier="t", roles=[], reachable=True, connection="local://",
                        checks=[_check("sw.os", "error")])
    assert VerifyResult("i", [broken], 0, 1).exit_code == 1
    gone = HostResult(name="d", address="x", tier="t", roles=[], reachable=False, connection="ssh://d")
    assert VerifyResult("i", [failing, gone], 0, 1).exit_code == 2


def test_report_json_matches_schema_and_schema_rejects_breaks(tmp_path, bench_result):
    result = sample_result(bench_result)
    paths = report.write_reports(result, tmp_path)
    assert sorted(p.name for p in paths) == ["junit.xml", "report.html", "report.json", "report.md"]
    doc = json.loads((tmp_path / "report.json").read_text())
    schema = report.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema)
    assert doc["summary"]["exit_code"] == 2 and doc["summary"]["verdict"] == "incomplete"
    smart = next(c for c in doc["hosts"][0]["checks"] if c["id"] == "hw.smart")
    assert smart["checklist"]["zh"].startswith("磁盘健康检测") and smart["message"] == "/dev/sda: FAILED (FAILED!)"
    broken = json.loads(json.dumps(doc))
    broken["hosts"][0]["checks"][0]["status"] = "ok"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(doc))
    broken["hosts"][0]["checks"][4]["how"] = None  # a manual line must say how a person checks it
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(doc))
    broken["hosts"][0]["checks"][3]["message"] = ""  # not applicable must say why
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(doc))
    broken["hosts"][0]["checks"][3]["status"] = "skip"  # there is no such status
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_schema_lists_the_categories_and_statuses_of_the_code():
    """report.schema.json is the published contract, so it spells the lists out; they are those of the code."""
    check = report.load_schema()["$defs"]["check"]["properties"]
    assert set(check["category"]["enum"]) == set(CATEGORIES)
    assert check["status"]["enum"] == list(STATUSES)


def test_junit_has_one_case_per_host_and_check(tmp_path, bench_result):
    report.write_reports(sample_result(bench_result), tmp_path)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.tag == "testsuites" and root.get("failures") == "1"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    cases = suites["llm-01"].findall("testcase")
    assert [c.get("name") for c in cases] == ["sw.os", "hw.smart", "hw.burnin", "perf.multi_gpu", "sec.exposure",
                                              "sec.ssh_password"]
    assert cases[1].find("failure").get("message") == "/dev/sda: FAILED (FAILED!)"
    assert cases[3].find("skipped").get("message") == "not applicable: the tier has 1 GPU(s)"
    assert cases[4].find("skipped").get("message").endswith("how: from another machine run `llmrack verify INV "
                                                            "--only sec.exposure`")
    assert cases[5].find("error") is not None and root.get("skipped") == "2"
    assert suites["llm-02"].find("testcase/error").get("type") == "unreachable"
    md = (tmp_path / "report.md").read_text()
    assert "**Verdict: INCOMPLETE**" in md and "| FAIL | `hw.smart`" in md and "| N/A | `perf.multi_gpu`" in md
    assert "### open sign-offs (manual)" in md and "How: from another machine run `llmrack verify" in md


def test_html_is_self_contained_and_renders_in_chromium(tmp_path, bench_result):
    report.write_reports(sample_result(bench_result), tmp_path)
    page = (tmp_path / "report.html").read_text()
    import re

    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # nothing loaded from outside
    assert "url(" not in page and "<script" not in page and "<link" not in page
    assert page.count("<svg") == 5  # throughput, TTFT bars, TTFT histogram, e2e histogram, burn-in
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (apt-get install chromium)"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}"]
    url = (tmp_path / "report.html").as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    for section in ('id="summary"', 'id="checklist"', 'id="host-llm-01"', 'id="host-llm-02"', 'id="perf-llm-01"',
                    'id="burnin-llm-01"', 'id="llm-01-hw-smart"'):
        assert section in dom, section
    assert "GPU temperature during burn-in" in dom and "Aggregate throughput vs concurrency" in dom
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", url], capture_output=True,
                   timeout=120)
    assert shot.is_file() and shot.stat().st_size > 20_000


def test_verify_local_runs_end_to_end_and_unreachable_host_exits_2(tmp_path):
    inv = suite.local_inventory("sandbox", PROJECT, name="here")
    res = suite.verify(inv, only={"hw.ram", "hw.cpu", "sw.os"}, local=True, report_dir=tmp_path, log=lambda m: None)
    assert [c.id for c in res.hosts[0].checks] == ["sw.os", "hw.ram", "hw.cpu"]
    jsonschema.validate(json.loads((tmp_path / "report.json").read_text()), report.load_schema())
    profile = load_tier("sandbox", PROJECT)
    ghost = HostSpec(name="ghost", address="127.0.0.1", roles=["inference"], tier="sandbox", profile=profile)
    missing = tmp_path / "missing_inventory.py"
    inv2 = Inventory(path=str(missing), project_dir=str(PROJECT), hosts=[ghost])
    cfg = tmp_path / "ssh_config"
    cfg.write_text(suite.render_ssh_config({"ghost": {"ssh_hostname": "127.0.0.1", "ssh_port": 1}},
                                           str(tmp_path)))
    res2 = suite.verify(inv2, ssh_config=cfg, log=lambda m: None)
    assert res2.exit_code == 2 and not res2.hosts[0].reachable and "cannot reach ghost" in res2.hosts[0].error


GPU_REPORT = PROJECT / "tests/fixtures/gpu/h200-acceptance/checklist/report.json"
GPU_MEASURED = ("hw.gpu_count", "hw.gpu_model", "hw.gpu_memory", "hw.pcie", "hw.gpu_errors", "hw.gpu_idle",
                "hw.stress_cpu", "hw.memtest", "hw.disk_io", "hw.thermal_load", "hw.power")


def test_the_report_recorded_on_a_real_gpu_host_keeps_the_contract() -> None:
    """`tests/gpu/device_verify.sh` on an H200 host (no network, no stack): the report it wrote still validates
    against today's schema, every line has a status, and the hardware lines a machine can measure were measured
    there (values, not placeholders); the stack's lines fail as not deployed, as they must on that host."""
    doc = json.loads(GPU_REPORT.read_text())
    schema = json.loads((PROJECT / "llmrack/verify/report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    checks = {c["id"]: c for c in doc["hosts"][0]["checks"]}
    for cid in GPU_MEASURED:
        assert checks[cid]["status"] == "pass", (cid, checks[cid]["message"])
    assert checks["hw.power"]["value"] and checks["hw.thermal_load"]["value"]
    assert {c["status"] for c in checks.values()} <= {"pass", "fail", "not_applicable", "manual"}
    assert checks["perf.single_stream"]["status"] == "fail"
    assert "not deployed" in checks["perf.single_stream"]["message"]
