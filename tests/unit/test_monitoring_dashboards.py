"""Grafana dashboards and provisioning: datasource by variable, valid PromQL, current vLLM metric names."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from llmrack.monitoring import grafana
from llmrack.monitoring.dashboards import DS_VAR, dashboards, panel_queries
from llmrack.monitoring.example import example_inventory
from llmrack.monitoring.prometheus import dump_yaml


def test_every_panel_uses_the_datasource_variable():
    for uid, d in dashboards().items():
        assert d["uid"] == uid
        assert [v["name"] for v in d["templating"]["list"] if v["type"] == "datasource"] == [DS_VAR]
        for panel in d["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
            assert panel["targets"], panel["title"]
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        text = json.dumps(d)
        assert text.count('"uid"') == text.count("${DS_PROMETHEUS}") + 1  # only the dashboard's own uid


def test_serving_dashboard_covers_the_seed_metrics():
    exprs = " ".join(q.expr for q in panel_queries() if q.dashboard == "llmrack-serving")
    for metric in ("request_success_total", "time_to_first_token_seconds", "inter_token_latency_seconds",
                   "e2e_request_latency_seconds", "generation_tokens_total", "num_requests_running",
                   "num_requests_waiting", "kv_cache_usage_perc", "prefix_cache_hits_total", 'status=~"4xx|5xx"'):
        assert metric in exprs
    every = " ".join(q.expr for q in panel_queries())
    for dead in ("gpu_cache_usage_perc", "vllm:time_per_output_token", "num_requests_swapped", "gpu_prefix_cache",
                 "DCGM_FI_PROF_"):
        assert dead not in every


def test_every_panel_query_is_valid_promql(tmp_path):
    """promtool parses each expression (as a recording rule): a typo fails here, not on a dashboard."""
    promtool = shutil.which("promtool") or pytest.fail("promtool is not installed: apt-get install prometheus")
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"panel:{i}", "expr": q.expr} for i, q in enumerate(panel_queries())]}]}
    (tmp_path / "panels.yml").write_text(dump_yaml(rules))
    out = subprocess.run([promtool, "check", "rules", str(tmp_path / "panels.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboards_follow_the_tier():
    gpu = grafana.dashboards_for(example_inventory("standard").hosts[0])
    cpu = grafana.dashboards_for(example_inventory("sandbox").hosts[0])
    assert "llmrack-gpu" in gpu and "llmrack-gpu" not in cpu
    assert {"llmrack-serving", "llmrack-host", "llmrack-gateway", "llmrack-vector-store"} <= set(cpu)


def test_grafana_is_locked_down_and_quiet():
    env = grafana.environment()
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false" and env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    for key in ("GF_ANALYTICS_REPORTING_ENABLED", "GF_ANALYTICS_CHECK_FOR_UPDATES",
                "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES", "GF_NEWS_NEWS_FEED_ENABLED"):
        assert env[key] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env and env["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    ds = grafana.datasources()["datasources"]
    assert len(ds) == 1 and ds[0]["isDefault"] and ds[0]["uid"] == grafana.DATASOURCE_UID
