"""llmrack.bench against a small streaming HTTPS server (self-signed certificate, API key)."""

from __future__ import annotations

import pytest
from verify_fakes import FakeOpenAI

from llmrack import bench


def test_percentiles_interpolate():
    assert bench.percentile([], 50) is None
    assert bench.percentile([5], 99) == 5
    assert bench.percentile([1, 2, 3, 4], 50) == 2.5
    assert bench.percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert bench.chat_url("https://h:8443/v1/") == "https://h:8443/v1/chat/completions"
    assert bench.chat_url("https://h:8443") == "https://h:8443/v1/chat/completions"


def test_bench_measures_ttft_tpot_and_tokens_over_tls(tmp_path):
    with FakeOpenAI(key="sk-x", model="tiny", ttft_s=0.05, tokens_delay_s=0.01, tls_dir=tmp_path) as srv:
        res = bench.run_bench(srv.url + "/v1", "sk-x", ca=srv.ca_file, model="tiny", concurrency_levels=[1, 4],
                              requests_per_level=4, max_tokens=6, timeout_s=30)
    assert [lv["concurrency"] for lv in res["levels"]] == [1, 4]
    one = bench.level(res, 1)
    assert one["ok"] == 4 and one["success_rate"] == 1.0
    assert one["output_tokens"] == 24  # from the usage chunk
    assert 45 <= one["ttft_ms"]["p50"] < 1000
    # 5 gaps of 10 ms after the first token: TPOT = (e2e - ttft) / (tokens - 1) ~ 10 ms
    assert 8 <= one["tpot_ms"]["p50"] < 100
    assert res["single_stream_tokens_per_s"] > 0
    assert all(s["ok"] for s in one["samples"])


def test_bench_counts_failures_and_wrong_key(tmp_path):
    with FakeOpenAI(key="sk-x", model="tiny", fail_every=2, tokens_delay_s=0.001) as srv:
        res = bench.run_bench(srv.url, "sk-x", model="tiny", concurrency_levels=[2], requests_per_level=6,
                              max_tokens=3, timeout_s=30)
        lv = res["levels"][0]
        assert lv["ok"] == 3 and lv["failed"] == 3 and lv["success_rate"] == 0.5
        assert any("HTTP 503" in k for k in lv["errors"])
        bad = bench.run_bench(srv.url, "wrong", model="tiny", concurrency_levels=[1], requests_per_level=2,
                              max_tokens=3, timeout_s=30)
        assert bad["levels"][0]["ok"] == 0
        assert any("HTTP 401" in k for k in bad["levels"][0]["errors"])


def test_bench_level_is_bounded_in_time():
    with FakeOpenAI(model="tiny", ttft_s=0.0, tokens_delay_s=0.2) as srv:
        res = bench.run_bench(srv.url, "sk-test", model="tiny", concurrency_levels=[1], requests_per_level=50,
                              max_tokens=5, timeout_s=1.5)
    lv = res["levels"][0]
    assert lv["duration_s"] < 4
    assert lv["requests"] == 50 and lv["ok"] < 5
    assert lv["failed"] == 50 - lv["ok"]
