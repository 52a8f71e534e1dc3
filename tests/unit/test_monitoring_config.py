"""Prometheus and Alertmanager configuration of every tier, checked with the real promtool and amtool."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from llmrack.config import tier_names
from llmrack.errors import LlmrackError
from llmrack.monitoring.alertmanager import alertmanager_config
from llmrack.monitoring.example import example_inventory
from llmrack.monitoring.prometheus import ScrapePorts, dump_yaml, prometheus_config, prometheus_flags
from llmrack.monitoring.render import compose_model, host_files
from llmrack.monitoring.secrets import MonitoringSecrets, load_or_create_secrets
from llmrack.settings.monitoring import MonitoringSettings

TIERS = tier_names()
QDRANT_KEY = "ab" * 24
SECRETS = MonitoringSecrets(grafana_admin_password="s3cret-grafana-password-xyz", smtp_password="smtp-pw-123",
                            wecom_robots={"ops": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K-123"})


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install prometheus prometheus-alertmanager")
    return path


def write_host(tmp: Path, tier: str, nodes: int) -> Path:
    inv = example_inventory(tier, nodes=nodes)
    for f in host_files(inv, inv.hosts[0], SECRETS, qdrant_api_key=QDRANT_KEY):
        dest = tmp / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f.content)
    return tmp


def jobs(cfg: dict) -> dict[str, list[tuple[str, dict]]]:
    return {j["job_name"]: [(t, sc.get("labels", {})) for sc in j["static_configs"] for t in sc["targets"]]
            for j in cfg["scrape_configs"]}


def test_tiers_exist():
    assert {"sandbox", "entry", "standard", "high-performance"} <= set(TIERS)


@pytest.mark.parametrize("nodes", [1, 3])
@pytest.mark.parametrize("tier", TIERS)
def test_promtool_and_amtool_accept_rendered_files(tmp_path, tier, nodes):
    d = write_host(tmp_path, tier, nodes)
    out = subprocess.run([tool("promtool"), "check", "config", str(d / "prometheus/prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rules found" in out.stdout  # the rule file was found and checked too
    out = subprocess.run([tool("amtool"), "check-config", str(d / "alertmanager/alertmanager.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_rejects_a_broken_rule(tmp_path):
    """The check above can fail: a bad expression in the rules file is reported."""
    d = write_host(tmp_path, "sandbox", 1)
    rules = d / "prometheus/rules/llmrack.rules.yml"
    rules.write_text(rules.read_text().replace("up == 0", "up == == 0"))
    out = subprocess.run([tool("promtool"), "check", "config", str(d / "prometheus/prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode != 0


def test_scrape_jobs_follow_roles_and_tier():
    gpu = prometheus_config(inv := example_inventory("high-performance", nodes=2), this_host=inv.hosts[0],
                            ports=ScrapePorts())
    j = jobs(gpu)
    assert sorted(t for t, _ in j["node"]) == ["10.0.0.11:9100", "10.0.0.12:9100"]
    assert sorted(t for t, _ in j["dcgm"]) == ["10.0.0.11:9400", "10.0.0.12:9400"]
    # every model of every inference host: by service name locally, published port remotely
    vllm = sorted((t, lab["model"]) for t, lab in j["vllm"])
    assert vllm == sorted([
        ("vllm-qwen2-5-72b:8000", "qwen2.5-72b"), ("vllm-llama-3-1-70b:8000", "llama-3.1-70b"),
        ("10.0.0.12:18000", "qwen2.5-72b"), ("10.0.0.12:18001", "llama-3.1-70b"),
    ])
    assert [t for t, _ in j["nginx"]] == ["nginx-exporter:9113"]  # gateway role only on node1
    assert "qdrant" in j and "postgres" not in j
    assert {lab["host"] for _, lab in j["vllm"]} == {"node1", "node2"}
    assert gpu["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]

    cpu = jobs(prometheus_config(inv := example_inventory("sandbox"), this_host=inv.hosts[0]))
    assert "dcgm" not in cpu and "qdrant" not in cpu
    assert [t for t, _ in cpu["postgres"]] == ["postgres-exporter:9187"]
    assert [t for t, _ in cpu["node"]] == ["172.31.251.1:9100"]  # loopback host: the monitoring bridge


def test_retention_flags_and_lifecycle():
    flags = prometheus_flags(MonitoringSettings(retention_time="90d", retention_size="200GB"))
    assert "--storage.tsdb.retention.time=90d" in flags and "--storage.tsdb.retention.size=200GB" in flags
    assert "--web.enable-lifecycle" in flags


def test_compose_never_pulls_and_publishes_only_on_the_bind_address():
    for tier in TIERS:
        inv = example_inventory(tier, nodes=2)
        for host in inv.hosts:
            c = compose_model(inv, host).dump()
            for name, svc in c["services"].items():
                assert svc["pull_policy"] == "never", name
                for port in svc.get("ports", []):
                    addr = port.split(":")[0]
                    assert addr not in ("0.0.0.0", "") and addr in ("127.0.0.1", host.address), (tier, name, port)
                if svc.get("network_mode") == "host":
                    listen = [a for a in svc.get("command", []) + list(svc.get("environment", {}).values())
                              if "0.0.0.0" in a or a.startswith(":")]
                    assert not listen, (name, listen)
    assert "prometheus" not in compose_model(inv, inv.hosts[1]).services  # nodes run exporters only


def test_no_secret_is_written_into_configs():
    inv = example_inventory("standard")
    mon = MonitoringSettings.model_validate({"alertmanager": {
        "email_to": ["ops@example.com"], "wecom_robots": ["ops"],
        "smtp": {"smarthost": "smtp.exmail.qq.com:465", "sender": "a@example.com", "username": "a@example.com"}}})
    host = inv.hosts[0].model_copy(update={"profile": inv.hosts[0].profile.model_copy(update={"monitoring": mon})})
    files = {f.path: f for f in host_files(inv, host, SECRETS, qdrant_api_key=QDRANT_KEY)}
    public = "\n".join(f.content for f in files.values() if not f.secret)
    for secret in ("s3cret-grafana-password-xyz", "smtp-pw-123", "K-123", QDRANT_KEY):
        assert secret not in public
    assert files["prometheus/secrets/qdrant_api_key"].secret
    assert files["secrets/grafana_admin_password"].secret and files["secrets/relay.json"].secret
    am = yaml.safe_load(files["alertmanager/alertmanager.yml"].content)
    assert am["global"]["smtp_auth_password_file"].endswith("smtp_password")
    assert {"url": "http://alert-relay:9095/wecom/ops", "send_resolved": True} in am["receivers"][0]["webhook_configs"]


def test_alertmanager_routes_by_severity_and_inhibits_per_instance(tmp_path):
    mon = MonitoringSettings.model_validate({"alertmanager": {"email_to": ["ops@example.com"],
                                             "smtp": {"smarthost": "mail:25", "sender": "a@example.com"},
                                             "webhook_urls": ["http://10.0.0.9/hook"]}})
    cfg = alertmanager_config(mon)
    (tmp_path / "am.yml").write_text(dump_yaml(cfg))
    amtool = tool("amtool")
    route = [amtool, "config", "routes", "test", f"--config.file={tmp_path / 'am.yml'}"]
    crit = subprocess.run([*route, "severity=critical", "alertname=X"], capture_output=True, text=True)
    warn = subprocess.run([*route, "severity=warning", "alertname=Y"], capture_output=True, text=True)
    assert crit.stdout.strip() == "critical" and warn.stdout.strip() == "warning", crit.stderr + warn.stderr
    receivers = {r["name"]: r for r in cfg["receivers"]}
    assert "email_configs" in receivers["critical"] and "email_configs" not in receivers["warning"]
    assert cfg["inhibit_rules"] == [{"source_matchers": ['severity="critical"'],
                                     "target_matchers": ['severity="warning"'], "equal": ["instance"]}]


def test_secrets_file_is_created_private_and_checked(tmp_path):
    path = tmp_path / "secrets" / "monitoring.yaml"
    first = load_or_create_secrets(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first.grafana_admin_password) >= 16 and first.grafana_admin_password != "admin"
    assert load_or_create_secrets(path) == first  # not regenerated
    os.chmod(path, 0o644)
    with pytest.raises(LlmrackError, match="chmod 600"):
        load_or_create_secrets(path)
