"""Bad input caught at load: every value that becomes a path, a shell word, a config line or a DNS name.

Each case runs `llmrack validate` (CliRunner, no host) on a small project in a temporary directory and wants
exit code 2, one line naming the file and the field, no traceback, and nothing written next to the input.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrack.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "tiers", tmp_path / "tiers")
    return tmp_path


def validate(inv: Path) -> tuple[int, str]:
    r = runner.invoke(app, ["validate", str(inv)], catch_exceptions=False)
    return r.exit_code, r.output


def assert_refused(code: int, output: str, *parts: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output
    text = " ".join(output.split())
    assert text.startswith("error: "), output
    for part in parts:
        assert part in text, (part, output)


def host_inventory(tmp_path: Path, data: str, name: str = "llm-01") -> Path:
    root = project(tmp_path)
    inv = root / "site.py"
    inv.write_text(f'servers = [("{name}", {{"tier": "sandbox", "ssh_hostname": "192.0.2.10", {data}}})]\n')
    return inv


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        # a model named '..' would make the weights' sync target the parent of models_dir
        ('"overrides": {"stack": {"models": [{"name": "..", "served_name": "x", "source": "bundle"}]}}',
         "overrides.stack.models.0.name", "cannot name a model directory"),
        ('"overrides": {"stack": {"project_name": "llmrack; rm -rf /"}}',
         "overrides.stack.project_name", "not a compose project name"),
        ('"overrides": {"stack": {"models_dir": "/opt/../etc"}}', "overrides.stack.models_dir", "'..'"),
        ('"overrides": {"stack": {"data_dir": "relative/data"}}', "overrides.stack.data_dir", "absolute path"),
        ('"overrides": {"monitoring": {"directory": "/opt/llm rack"}}', "overrides.monitoring.directory",
         "not allowed"),
        ('"data_disk": {"device": "/dev/sdb", "mount": "/"}', "llm-01.data_disk.mount", "system directory"),
        ('"data_disk": {"device": "/dev/sdb", "mount": "/etc/x"}', "llm-01.data_disk.mount", "system directory"),
        ('"data_disk": {"device": "/dev/sdb defaults 0 0\\n/dev/sdc", "mount": "/data"}',
         "llm-01.data_disk.device", "not one word"),
        ('"overrides": {"base": {"time": {"ntp_servers": ["ntp.example\\nallow all"]}}}',
         "overrides.base.time.ntp_servers.0", "neither an IP address nor a host name"),
        ('"overrides": {"base": {"time": {"timezone": "../../etc/shadow"}}}', "overrides.base.time.timezone",
         "time zone"),
        ('"tier": "../tiers/sandbox"', "llm-01.tier", "not a plain name"),
        ('"address": "10.0.0.1 ; reboot"', "llm-01.address", "neither an IP address nor a host name"),
        ('"overrides": {"stack": {"gateway": {"https_port": 8443, "http_port": 8443}}}',
         "overrides.stack.gateway.http_port", "also the https_port"),
        ('"overrides": {"stack": {"gateway": {"bind_address": "0.0.0.0 -p 22"}}}',
         "overrides.stack.gateway.bind_address", "neither an IP"),
        ('"overrides": {"monitoring": {"thresholds": {"gpu_temp_celsius": float("inf")}}}',
         "overrides.monitoring.thresholds.gpu_temp_celsius", "finite"),
    ],
)
def test_bad_value_is_refused_at_load(tmp_path: Path, data: str, field: str, says: str) -> None:
    inv = host_inventory(tmp_path, data)
    before = listing(tmp_path)
    code, output = validate(inv)
    assert_refused(code, output, field, says)
    assert str(inv) in " ".join(output.split())
    assert listing(tmp_path) == before  # nothing written: no secrets, no temp files


@pytest.mark.parametrize("name", ["llm-01;id", "$(reboot)", "../up", "host name", "-rf"])
def test_bad_host_name_is_refused(tmp_path: Path, name: str) -> None:
    inv = host_inventory(tmp_path, '"roles": ["gateway"]', name=name)
    assert_refused(*validate(inv), "bad host name", str(inv))


def test_inventory_calling_sys_exit_is_a_broken_inventory(tmp_path: Path) -> None:
    root = project(tmp_path)
    inv = root / "site.py"
    inv.write_text("import sys\nsys.exit(3)\n")
    assert_refused(*validate(inv), str(inv), "called sys.exit(3)")


def test_inventory_not_utf8(tmp_path: Path) -> None:
    root = project(tmp_path)
    inv = root / "site.py"
    inv.write_bytes('# 服务器\nservers = [("llm-01", {"tier": "sandbox"})]\n'.encode("gb18030"))
    assert_refused(*validate(inv), str(inv), "not UTF-8")


def test_tier_not_utf8(tmp_path: Path) -> None:
    root = project(tmp_path)
    tier = root / "tiers" / "office.yaml"
    tier.write_bytes((ROOT / "tiers" / "sandbox.yaml").read_text().replace("Sandbox", "沙盒").encode("gb18030"))
    inv = root / "site.py"
    inv.write_text('servers = [("llm-01", {"tier": "office", "ssh_hostname": "192.0.2.10"})]\n')
    assert_refused(*validate(inv), str(tier), "not UTF-8")


def test_duplicate_key_in_a_tier_is_an_error(tmp_path: Path) -> None:
    root = project(tmp_path)
    tier = root / "tiers" / "office.yaml"
    tier.write_text((ROOT / "tiers" / "sandbox.yaml").read_text() + "hardening:\n  firewall: false\n")
    inv = root / "site.py"
    inv.write_text('servers = [("llm-01", {"tier": "office", "ssh_hostname": "192.0.2.10"})]\n')
    assert_refused(*validate(inv), str(tier), "duplicate key 'hardening'")


def test_duplicate_key_in_the_monitoring_secrets(tmp_path: Path) -> None:
    from llmrack.errors import LlmrackError
    from llmrack.monitoring.secrets import load_or_create_secrets

    p = tmp_path / "monitoring.yaml"
    p.write_text("smtp_password: a\nsmtp_password: b\n")
    p.chmod(0o600)
    with pytest.raises(LlmrackError, match="duplicate key 'smtp_password'"):
        load_or_create_secrets(p)


@pytest.mark.parametrize("tier", ["../tiers/sandbox", "/etc/passwd", "sandbox/../entry"])
def test_plan_tier_name_outside_tiers(tier: str, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    r = runner.invoke(app, ["plan", "--tier", tier], catch_exceptions=False)
    assert_refused(r.exit_code, r.output, "tier", "bad tier name")


# ------------------------------------------------------------------------------------------------ --out paths


def test_bench_out_in_a_missing_directory_is_refused_before_any_request(tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "bench.json"
    # port 9 on loopback: if the check came after the work, the run would try to connect first
    r = runner.invoke(app, ["bench", "--url", "http://127.0.0.1:9/v1", "--model", "m", "--out", str(out)],
                      catch_exceptions=False)
    assert_refused(r.exit_code, r.output, "--out", "does not exist")


def test_bench_out_that_is_a_directory(tmp_path: Path) -> None:
    r = runner.invoke(app, ["bench", "--url", "http://127.0.0.1:9/v1", "--model", "m", "--out", str(tmp_path)],
                      catch_exceptions=False)
    assert_refused(r.exit_code, r.output, "--out", "is a directory")


def test_bundle_out_that_is_a_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    f = tmp_path / "bundle"
    f.write_text("not a directory")
    r = runner.invoke(app, ["bundle", "build", "--tier", "sandbox", "--out", str(f)], catch_exceptions=False)
    assert_refused(r.exit_code, r.output, "--out", "not a directory")
    assert f.read_text() == "not a directory"


def test_verify_report_that_is_a_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    f = tmp_path / "report"
    f.write_text("x")
    r = runner.invoke(app, ["verify", "--report", str(f), "inventories/office.py"], catch_exceptions=False)
    assert_refused(r.exit_code, r.output, "--report", "not a directory")
