"""Settings of the monitoring role: Prometheus, exporters, Alertmanager, Grafana.

Alert thresholds follow seed 001 §4.1.3 (inference) and §4.2.3.1 (full stack); every one is a field so a
tier (or one host's overrides) can change it.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from llmrack.settings._model import Settings
from llmrack.settings.types import AbsolutePath, Address

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def _check_duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a Prometheus duration such as 30s, 5m, 1h")
    return value


class AlertThresholds(Settings):
    """Alert thresholds (seed 001 §4.1.3 / §4.2.3.1 suggested values)."""

    ttft_p99_seconds: float = Field(0.5, gt=0, description="TTFT p99 above this alerts (seed: > 500 ms).")
    tpot_p99_seconds: float = Field(0.1, gt=0, description="Time per output token p99 (seed: > 100 ms/token).")
    kv_cache_usage_ratio: float = Field(0.95, gt=0, le=1, description="KV cache usage (seed: > 95 %, OOM risk).")
    throughput_drop_ratio: float = Field(
        0.15, gt=0, lt=1, description="Generation tokens/s below (1 - this) x the same window an offset ago."
    )
    throughput_min_tokens_per_s: float = Field(
        1, ge=0, description="Baseline tokens/s below which a throughput drop is not judged (no traffic)."
    )
    gpu_util_low_percent: float = Field(20, gt=0, le=100, description="Sustained GPU util below this while busy.")
    gpu_util_high_percent: float = Field(
        85, gt=0, le=100, description="Sustained GPU util above this alerts (seed 001 §4.2.3.1: > 85 %, add capacity)."
    )
    gpu_temp_celsius: float = Field(85, gt=0, description="GPU temperature above this alerts.")
    disk_used_ratio: float = Field(0.85, gt=0, le=1, description="Filesystem use above this alerts.")
    gateway_ban_alert_s: int = Field(900, ge=60, description="How long after the gateway jail banned an address "
                                     "GatewayRejectedKeysBurst stays firing.")
    http_5xx_ratio: float = Field(0.05, gt=0, le=1, description="Share of 5xx answers of the OpenAI API.")
    requests_waiting: int = Field(20, ge=1, description="vLLM requests waiting in the queue above this.")


class AlertDurations(Settings):
    """``for:`` durations and windows of the alert rules (short values make tests fast)."""

    target_down: str = Field("1m", description="A scrape target down this long.")
    latency: str = Field("5m", description="TTFT/TPOT/queue/KV cache/5xx above threshold this long.")
    hardware: str = Field("5m", description="GPU temperature / disk above threshold this long.")
    sustained: str = Field("15m", description="GPU under-use and throughput drop this long.")
    rate_window: str = Field("5m", description="Window of rate() and histogram quantiles.")
    throughput_window: str = Field("15m", description="Window of the generation tokens rate compared.")
    throughput_offset: str = Field("1h", description="How far back the throughput baseline is taken.")

    _durations = field_validator("*")(classmethod(lambda cls, v: _check_duration(v)))


class SmtpSettings(Settings):
    smarthost: str = Field("", description="host:port of the mail relay (e.g. smtp.exmail.qq.com:465).")
    sender: str = Field("", description="From address.")
    username: str = Field("", description="SMTP login; the password lives in the secrets file.")
    require_tls: bool = Field(True, description="STARTTLS (port 587); set false for implicit TLS on 465.")


class AlertmanagerSettings(Settings):
    email_to: list[str] = Field([], description="Addresses that receive alert mail (needs smtp).")
    smtp: SmtpSettings = SmtpSettings()
    webhook_urls: list[str] = Field([], description="Generic webhook receivers (Alertmanager's JSON).")
    wecom_robots: list[str] = Field(
        [], description="Names of WeCom (企业微信) group robots; their keys live in the secrets file."
    )
    dingtalk_robots: list[str] = Field(
        [], description="Names of DingTalk (钉钉) group robots; access tokens/secrets live in the secrets file."
    )
    warning_email: bool = Field(False, description="Mail warnings too (critical alerts go to every channel).")
    group_wait: str = Field("30s")
    group_interval: str = Field("5m")
    repeat_interval: str = Field("4h")
    critical_repeat_interval: str = Field("1h")

    _durations = field_validator("group_wait", "group_interval", "repeat_interval", "critical_repeat_interval")(
        classmethod(lambda cls, v: _check_duration(v))
    )


class MonitoringImages(Settings):
    """Images the monitoring compose project runs (loaded onto hosts by the offline bundle, never pulled)."""

    prometheus: str = Field("llmrack/prometheus:2.42-1")
    alertmanager: str = Field("llmrack/alertmanager:0.25-1")
    node_exporter: str = Field("llmrack/node-exporter:1.5-1")
    nginx_exporter: str = Field("llmrack/nginx-exporter:0.11-1")
    postgres_exporter: str = Field("llmrack/postgres-exporter:0.11-1")
    relay: str = Field("llmrack/alert-relay:1", description="WeCom/DingTalk robot relay (Python stdlib).")
    grafana: str = Field("grafana/grafana-oss:11.6.3", description="Not in Debian: comes from the offline bundle.")
    dcgm_exporter: str = Field(
        "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04",
        description="NVIDIA DCGM exporter (GPU tiers); comes from the offline bundle or a registry mirror.",
    )


class MonitoringSettings(Settings):
    enabled: bool = True
    retention_time: str = Field("30d", description="Prometheus --storage.tsdb.retention.time.")
    retention_size: str = Field("50GB", description="Prometheus --storage.tsdb.retention.size.")
    grafana: bool = Field(True, description="Deploy Grafana (not available in the sandbox).")
    dcgm_exporter: bool = Field(True, description="Deploy the NVIDIA DCGM exporter (GPU tiers).")
    scrape_interval: str = Field("15s")
    scrape_timeout: str = Field("10s")
    evaluation_interval: str = Field("15s")
    directory: AbsolutePath = Field("/opt/llmrack/monitoring",
                                    description="Configs, compose file and data on the host.")
    bind_address: Address = Field(
        "127.0.0.1", description="Address the Prometheus/Alertmanager/Grafana ports are published on (never 0.0.0.0 "
        "by default: reach them through an SSH tunnel or set an internal address)."
    )
    network_subnet: str = Field(
        "172.31.251.0/24",
        description="Subnet of the monitoring bridge; its gateway is where node-exporter listens on hosts "
        "whose address is loopback.",
    )
    stack_network: str = Field("llmrack_backend", description="The serving stack's network, joined as external.")
    thresholds: AlertThresholds = AlertThresholds()
    alert_for: AlertDurations = AlertDurations()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    images: MonitoringImages = MonitoringImages()

    _durations = field_validator("scrape_interval", "scrape_timeout", "evaluation_interval", "retention_time")(
        classmethod(lambda cls, v: _check_duration(v))
    )
