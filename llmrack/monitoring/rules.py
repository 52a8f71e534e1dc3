"""Alert rules as data (seed 001 §4.1.3 inference thresholds, §4.2.3.1 full-stack layers).

Metric names are the ones current vLLM (V1 engine), dcgm-exporter (``DCGM_FI_DEV_*`` only: consumer GPUs such
as the RTX 4090 have no DCGM profiling metrics), node-exporter 1.5 and nginx-prometheus-exporter expose.

Gateway errors: nginx-prometheus-exporter reads stub_status, which has connection and request totals but no
status codes; the 5xx alert therefore uses vLLM's own ``http_requests_total{status="5xx"}`` (the OpenAI API
server's instrumentation). Errors nginx makes itself when a backend is gone (502/504) show up as the vLLM
target being down (``LlmrackTargetDown``) and nginx being down as ``NginxDown``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from llmrack.settings._model import Settings
from llmrack.settings.monitoring import MonitoringSettings

Severity = Literal["critical", "warning"]


class AlertRule(Settings):
    alert: str
    expr: str
    for_: str = Field("0s", alias="for")
    severity: Severity
    summary: str
    description: str
    model_config = Settings.model_config | {"populate_by_name": True}

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "alert": self.alert,
            "expr": self.expr,
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary, "description": self.description},
        }
        if self.for_ != "0s":
            out["for"] = self.for_
        return out


class RuleGroup(Settings):
    name: str
    rules: list[AlertRule]


def _pct(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def rule_groups(settings: MonitoringSettings, *, gpu: bool = True) -> list[RuleGroup]:
    """The alert rules llmrack installs; ``gpu`` adds the DCGM group (GPU tiers with the DCGM exporter)."""
    t, d = settings.thresholds, settings.alert_for
    w = d.rate_window
    by = "instance, host, model_name"
    groups = [
        RuleGroup(name="llmrack-targets", rules=[
            AlertRule(
                alert="LlmrackTargetDown", expr="up == 0", for_=d.target_down, severity="critical",
                summary="Scrape target {{ $labels.job }} on {{ $labels.host }} is down",
                description="Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }}) for "
                f"{d.target_down}: the service or its exporter is not running or not reachable.",
            ),
            AlertRule(
                alert="NginxDown", expr="nginx_up == 0", for_=d.target_down, severity="critical",
                summary="nginx on {{ $labels.host }} does not answer its exporter",
                description="nginx-prometheus-exporter cannot read nginx's stub_status: the gateway is down.",
            ),
            AlertRule(
                alert="PrometheusConfigReloadFailed", expr="prometheus_config_last_reload_successful == 0",
                for_=d.target_down, severity="warning",
                summary="Prometheus on {{ $labels.host }} failed to reload its configuration",
                description="The running configuration is the previous one; check the logs of the container.",
            ),
        ]),
        RuleGroup(name="llmrack-vllm", rules=[
            AlertRule(
                alert="VllmTtftP99High",
                expr=f"histogram_quantile(0.99, sum by (le, {by}) "
                f"(rate(vllm:time_to_first_token_seconds_bucket[{w}]))) > {t.ttft_p99_seconds:g}",
                for_=d.latency, severity="warning",
                summary="TTFT p99 of {{ $labels.model_name }} is {{ $value | humanizeDuration }}",
                description=f"Time to first token p99 above {t.ttft_p99_seconds * 1000:g} ms for {d.latency} "
                "(seed 001 §4.1.3): requests queue or prefill is too slow.",
            ),
            AlertRule(
                alert="VllmTpotP99High",
                expr=f"histogram_quantile(0.99, sum by (le, {by}) "
                f"(rate(vllm:inter_token_latency_seconds_bucket[{w}]))) > {t.tpot_p99_seconds:g}",
                for_=d.latency, severity="warning",
                summary="Time per output token p99 of {{ $labels.model_name }} is {{ $value | humanizeDuration }}",
                description=f"Inter-token latency p99 above {t.tpot_p99_seconds * 1000:g} ms/token for "
                f"{d.latency} (seed 001 §4.1.3): output streams slowly.",
            ),
            AlertRule(
                alert="VllmKvCacheNearlyFull",
                expr=f"max by ({by}) (vllm:kv_cache_usage_perc) > {t.kv_cache_usage_ratio:g}",
                for_=d.latency, severity="warning",
                summary="KV cache of {{ $labels.model_name }} is {{ $value | humanizePercentage }} full",
                description=f"KV cache usage above {_pct(t.kv_cache_usage_ratio)} for {d.latency} (seed 001 "
                "§4.1.3): requests get preempted; lower max-num-seqs or add GPUs.",
            ),
            AlertRule(
                alert="VllmRequestsPilingUp",
                expr=f"sum by ({by}) (vllm:num_requests_waiting) > {t.requests_waiting}",
                for_=d.latency, severity="warning",
                summary="{{ $value }} requests wait for {{ $labels.model_name }}",
                description=f"More than {t.requests_waiting} requests queued for {d.latency}: demand exceeds "
                "the capacity of the model server.",
            ),
            AlertRule(
                alert="VllmThroughputDrop",
                expr=(
                    f"sum by ({by}) (rate(vllm:generation_tokens_total[{d.throughput_window}]))"
                    f" < {1 - t.throughput_drop_ratio:g}"
                    f" * sum by ({by}) (rate(vllm:generation_tokens_total[{d.throughput_window}]"
                    f" offset {d.throughput_offset}))"
                    f" and sum by ({by}) (rate(vllm:generation_tokens_total[{d.throughput_window}]"
                    f" offset {d.throughput_offset})) > {t.throughput_min_tokens_per_s:g}"
                    f" and sum by ({by}) (avg_over_time(vllm:num_requests_running[{d.throughput_window}]))"
                    f" >= sum by ({by}) (avg_over_time(vllm:num_requests_running[{d.throughput_window}]"
                    f" offset {d.throughput_offset}))"
                ),
                for_=d.sustained, severity="warning",
                summary="Generation throughput of {{ $labels.model_name }} fell more than "
                f"{_pct(t.throughput_drop_ratio)}",
                description=f"Tokens/s over {d.throughput_window} is below {_pct(1 - t.throughput_drop_ratio)} of "
                f"the same window {d.throughput_offset} earlier while at least as many requests run (seed 001 "
                "§4.1.3: 环比下降 > 15%): a hardware or configuration problem, not less traffic.",
            ),
            AlertRule(
                alert="VllmHttp5xxRate",
                expr=f'sum by (instance, host) (rate(http_requests_total{{job="vllm",status="5xx"}}[{w}]))'
                f' / sum by (instance, host) (rate(http_requests_total{{job="vllm"}}[{w}])) > {t.http_5xx_ratio:g}',
                for_=d.latency, severity="critical",
                summary="{{ $value | humanizePercentage }} of API requests to {{ $labels.instance }} fail with 5xx",
                description=f"More than {_pct(t.http_5xx_ratio)} of the OpenAI API's answers are server errors "
                f"for {d.latency}.",
            ),
        ]),
        RuleGroup(name="llmrack-host", rules=[
            AlertRule(
                alert="HostDiskFull",
                expr='1 - node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.*"}'
                f' / node_filesystem_size_bytes{{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.*"}}'
                f" > {t.disk_used_ratio:g}",
                for_=d.hardware, severity="warning",
                summary="{{ $labels.mountpoint }} on {{ $labels.host }} is {{ $value | humanizePercentage }} full",
                description=f"Filesystem use above {_pct(t.disk_used_ratio)} for {d.hardware}: model weights, "
                "logs or the TSDB will fail to write.",
            ),
        ]),
        RuleGroup(name="llmrack-backup", rules=[
            AlertRule(
                alert="BackupTooOld",
                expr="time() - llmrack_backup_last_success_timestamp_seconds"
                " > 2 * llmrack_backup_schedule_interval_seconds and llmrack_backup_schedule_interval_seconds > 0",
                for_=d.sustained, severity="critical",
                summary="The last good backup of {{ $labels.host }} is {{ $value | humanizeDuration }} old",
                description="No backup has passed `restic check` for more than two schedules: the vector store, "
                "the configs and the secrets of this host are not safe. See `journalctl -u llmrack-backup`.",
            ),
            AlertRule(
                alert="BackupFailed", expr="llmrack_backup_last_run_success == 0", severity="warning",
                summary="The last backup run on {{ $labels.host }} failed",
                description="llmrack-backup.service failed (dump, repository unreachable, or `restic check`); "
                "see `journalctl -u llmrack-backup` and run `llmrack backup` once it is fixed.",
            ),
        ]),
        RuleGroup(name="llmrack-gateway", rules=[
            AlertRule(
                alert="GatewayRejectedKeysBurst",
                expr=f"time() - llmrack_gateway_last_ban_timestamp_seconds < {t.gateway_ban_alert_s}"
                " and llmrack_gateway_last_ban_timestamp_seconds > 0",
                severity="warning",
                summary="The gateway of {{ $labels.host }} banned an address for requests without a valid key",
                description="fail2ban's llmrack-gateway jail saw a burst of requests without a valid API key (401, "
                "or 429 of the unauthenticated limit) from one address and banned it from the host's published "
                "ports (seed 001: 异常调用). `fail2ban-client status llmrack-gateway` lists the banned addresses; "
                "a client with a revoked or mistyped key shows up here too.",
            ),
        ]),
    ]
    if gpu:
        gpu_by = "host, gpu, UUID, modelName"
        groups.append(RuleGroup(name="llmrack-gpu", rules=[
            AlertRule(
                alert="GpuUnderused",
                expr=f"avg by ({gpu_by}) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[{w}])) < {t.gpu_util_low_percent:g}"
                " and on (host) sum by (host) (vllm:num_requests_running) > 0",
                for_=d.sustained, severity="warning",
                summary="GPU {{ $labels.gpu }} on {{ $labels.host }} is {{ $value }}% busy while requests run",
                description=f"GPU utilisation below {t.gpu_util_low_percent:g}% for {d.sustained} while vLLM has "
                "running requests (seed 001 §4.1.3: 持续 < 20%): the GPU waits on the CPU, the network or a "
                "misplaced model.",
            ),
            AlertRule(
                alert="GpuBusySustained",
                expr=f"avg by ({gpu_by}) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[{w}])) > {t.gpu_util_high_percent:g}",
                for_=d.sustained, severity="warning",
                summary="GPU {{ $labels.gpu }} on {{ $labels.host }} is {{ $value }}% busy",
                description=f"GPU utilisation above {t.gpu_util_high_percent:g}% for {d.sustained} (seed 001 "
                "§4.2.3.1: > 85%): the service runs at its capacity; queueing and latency follow. Add GPUs or a "
                "replica, or lower max-num-seqs.",
            ),
            AlertRule(
                alert="GpuEccSingleBitErrors",
                expr=f"increase(DCGM_FI_DEV_ECC_SBE_VOL_TOTAL[{w}]) > 0", severity="warning",
                summary="GPU {{ $labels.gpu }} on {{ $labels.host }}: {{ $value }} corrected ECC errors in "
                f"{w}",
                description="Single-bit (corrected) ECC errors are being counted (seed 001 §4.2.3.1: 任何 ECC 错误): "
                "memory cells are wearing out; a rising rate comes before double-bit errors and retired pages. "
                "Plan to replace the GPU.",
            ),
            AlertRule(
                alert="GpuEccError", expr="DCGM_FI_DEV_ECC_DBE_VOL_TOTAL > 0", severity="critical",
                summary="GPU {{ $labels.gpu }} on {{ $labels.host }} reports {{ $value }} double-bit ECC errors",
                description="Uncorrectable ECC errors since the driver loaded (seed 001 §4.2.3.1: 任何 ECC 错误); "
                "drain the GPU and check it.",
            ),
            AlertRule(
                alert="GpuXidError", expr="DCGM_FI_DEV_XID_ERRORS > 0", severity="critical",
                summary="GPU {{ $labels.gpu }} on {{ $labels.host }} raised XID {{ $value }}",
                description="The driver reported an XID error (the value is the last XID code); see "
                "`dmesg | grep -i xid` and NVIDIA's XID table. It stays until the GPU is reset.",
            ),
            AlertRule(
                alert="GpuTemperatureHigh", expr=f"DCGM_FI_DEV_GPU_TEMP > {t.gpu_temp_celsius:g}",
                for_=d.hardware, severity="warning",
                summary="GPU {{ $labels.gpu }} on {{ $labels.host }} is at {{ $value }} °C",
                description=f"GPU temperature above {t.gpu_temp_celsius:g} °C for {d.hardware}: check fans, "
                "airflow and the room temperature.",
            ),
        ]))
    return groups


def alert_rules(settings: MonitoringSettings, *, gpu: bool = True) -> dict[str, Any]:
    """The rules file (``promtool check rules`` format) as a plain dict."""
    return {"groups": [{"name": g.name, "rules": [r.dump() for r in g.rules]} for g in rule_groups(settings, gpu=gpu)]}


def alert_names(settings: MonitoringSettings | None = None, *, gpu: bool = True) -> list[str]:
    return [r.alert for g in rule_groups(settings or MonitoringSettings(), gpu=gpu) for r in g.rules]
