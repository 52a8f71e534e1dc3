"""Alert rules: `promtool test rules` makes every rule fire and stay quiet (tests/fixtures/promtool/)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llmrack.config import load_tier, tier_names
from llmrack.monitoring.prometheus import dump_yaml
from llmrack.monitoring.rules import alert_names, alert_rules
from llmrack.settings.monitoring import MonitoringSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "promtool"
TEST_FILES = sorted(FIXTURES.glob("*.test.yml"))


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: apt-get install prometheus")
    return path


def render_for_unit_tests(tmp: Path, settings: MonitoringSettings) -> Path:
    """Rules next to copies of the fixtures. promtool compares annotations too; they are prose, checked by
    `promtool check rules`, so this copy drops them and the tests assert names, labels and timing."""
    rules = alert_rules(settings, gpu=True)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp / "llmrack.rules.yml").write_text(dump_yaml(rules))
    for f in TEST_FILES:
        shutil.copy(f, tmp / f.name)
    return tmp


def run_tests(tmp: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), "test", "rules", name], cwd=tmp, capture_output=True, text=True)


@pytest.mark.parametrize("tier", tier_names())
def test_rules_of_every_tier_pass_promtool_check(tmp_path, tier):
    mon = load_tier(tier).monitoring
    path = tmp_path / "rules.yml"
    path.write_text(dump_yaml(alert_rules(mon, gpu=load_tier(tier).hardware.gpu.count > 0)))
    out = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_firing_case():
    text = "\n".join(f.read_text() for f in TEST_FILES)
    firing = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", text))
    assert set(alert_names()) == firing


@pytest.mark.parametrize("test_file", [f.name for f in TEST_FILES])
def test_promtool_unit_tests_pass(tmp_path, test_file):
    out = run_tests(render_for_unit_tests(tmp_path, MonitoringSettings()), test_file)
    assert out.returncode == 0, out.stdout + out.stderr


LOOSE = MonitoringSettings.model_validate({"thresholds": {
    "ttft_p99_seconds": 5, "tpot_p99_seconds": 1, "kv_cache_usage_ratio": 0.99, "throughput_drop_ratio": 0.9,
    "gpu_util_low_percent": 1, "gpu_util_high_percent": 99, "gpu_temp_celsius": 95,
    "disk_used_ratio": 0.99, "http_5xx_ratio": 0.5,
    "requests_waiting": 100, "gateway_ban_alert_s": 3600,
}, "alert_for": {"target_down": "30m", "latency": "30m", "hardware": "30m", "sustained": "2h"}})


@pytest.mark.parametrize("test_file", [f.name for f in TEST_FILES])
def test_fixtures_detect_changed_thresholds(tmp_path, test_file):
    """The same fixtures fail against rules with other thresholds / durations: they test the values."""
    out = run_tests(render_for_unit_tests(tmp_path, LOOSE), test_file)
    assert out.returncode != 0
    assert "FAILED" in out.stdout + out.stderr


def test_thresholds_come_from_settings():
    mon = MonitoringSettings.model_validate({"thresholds": {"ttft_p99_seconds": 2, "gpu_temp_celsius": 80},
                                             "alert_for": {"target_down": "10s"}})
    rules = {r["alert"]: r for g in alert_rules(mon)["groups"] for r in g["rules"]}
    assert rules["VllmTtftP99High"]["expr"].endswith("> 2")
    assert rules["GpuTemperatureHigh"]["expr"] == "DCGM_FI_DEV_GPU_TEMP > 80"
    assert rules["LlmrackTargetDown"]["for"] == "10s"
    assert "GpuXidError" not in alert_names(mon, gpu=False)


def test_rules_use_current_metric_names_only():
    text = dump_yaml(alert_rules(MonitoringSettings()))
    for dead in ("gpu_cache_usage_perc", "time_per_output_token_seconds", "num_requests_swapped",
                 "gpu_prefix_cache", "DCGM_FI_PROF_"):
        assert dead not in text
