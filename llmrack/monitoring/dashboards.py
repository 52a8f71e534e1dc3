"""Grafana dashboards as code (grafana-foundation-sdk, Grafana Labs' own generated builders).

Panels are data first (:data:`DASHBOARDS`): title, unit and PromQL per panel. The same data gives the
dashboard JSON (through the SDK's typed builders) and :func:`panel_queries`, which the integration test runs
against a live Prometheus so a renamed metric cannot leave a panel silently empty.

Every panel names its datasource as ``${DS_PROMETHEUS}``, a datasource variable of each dashboard; Grafana's
provisioning (see :mod:`llmrack.monitoring.grafana`) has one Prometheus datasource, the default, with uid
``llmrack-prometheus``. No foreign uid is hard-coded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus as gp
from grafana_foundation_sdk.builders import stat as gs
from grafana_foundation_sdk.builders import timeseries as gt
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DS_VAR = "DS_PROMETHEUS"
W = "5m"  # rate window of the panels


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    source: str  # scrape job whose metrics the panel reads
    kind: str = "timeseries"  # or "stat"
    needs_traffic: bool = False  # empty until requests were served (histogram quantiles, ratios of rates)


@dataclass(frozen=True)
class PanelQuery:
    """One PromQL expression of one panel; ``expects_series``: a live scrape of ``source`` must return data."""

    dashboard: str
    panel: str
    expr: str
    expects_series: bool
    source: str


def _q(expr: str, legend: str) -> Query:
    return Query(expr, legend)


def _quantiles(metric: str) -> tuple[Query, ...]:
    return tuple(
        _q(f"histogram_quantile({q}, sum by (le, model_name) (rate({metric}_bucket[{W}])))",
           f"p{int(q * 100)} {{{{model_name}}}}")
        for q in (0.5, 0.95, 0.99)
    )


DASHBOARDS: dict[str, tuple[str, tuple[Panel, ...]]] = {
    "llmrack-serving": ("LLM serving (vLLM)", (
        Panel("Requests per second", "reqps", (
            _q(f"sum by (model_name) (rate(vllm:request_success_total[{W}]))", "{{model_name}}"),), "vllm"),
        Panel("Time to first token", "s", _quantiles("vllm:time_to_first_token_seconds"), "vllm", needs_traffic=True),
        Panel("Time per output token", "s", _quantiles("vllm:inter_token_latency_seconds"), "vllm",
              needs_traffic=True),
        Panel("End-to-end latency", "s", _quantiles("vllm:e2e_request_latency_seconds"), "vllm", needs_traffic=True),
        Panel("Tokens per second", "short", (
            _q(f"sum by (model_name) (rate(vllm:generation_tokens_total[{W}]))", "generated {{model_name}}"),
            _q(f"sum by (model_name) (rate(vllm:prompt_tokens_total[{W}]))", "prompt {{model_name}}"),
        ), "vllm"),
        Panel("Running and waiting requests", "short", (
            _q("sum by (model_name) (vllm:num_requests_running)", "running {{model_name}}"),
            _q("sum by (model_name) (vllm:num_requests_waiting)", "waiting {{model_name}}"),
        ), "vllm"),
        Panel("KV cache usage", "percentunit", (
            _q("max by (instance, model_name) (vllm:kv_cache_usage_perc)", "{{model_name}} {{instance}}"),), "vllm"),
        Panel("Prefix cache hit rate", "percentunit", (
            _q(f"sum by (model_name) (rate(vllm:prefix_cache_hits_total[{W}])) / "
               f"sum by (model_name) (rate(vllm:prefix_cache_queries_total[{W}]))", "{{model_name}}"),),
           "vllm", needs_traffic=True),
        Panel("Queue time p95", "s", (
            _q(f"histogram_quantile(0.95, sum by (le, model_name) (rate(vllm:request_queue_time_seconds_bucket[{W}])))",
               "{{model_name}}"),), "vllm", needs_traffic=True),
        Panel("Errors and preemptions", "reqps", (
            _q(f'sum by (instance, status) (rate(http_requests_total{{job="vllm", status=~"4xx|5xx"}}[{W}]))',
               "{{status}} {{instance}}"),
            _q(f"sum by (model_name) (rate(vllm:num_preemptions_total[{W}]))", "preemptions {{model_name}}"),
        ), "vllm", needs_traffic=True),
    )),
    "llmrack-gpu": ("GPUs (DCGM)", (
        Panel("GPU utilisation", "percent", (_q("DCGM_FI_DEV_GPU_UTIL", "{{host}} GPU {{gpu}}"),), "dcgm"),
        Panel("GPU memory used", "percentunit", (
            _q("DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)", "{{host}} GPU {{gpu}}"),), "dcgm"),
        Panel("GPU temperature", "celsius", (_q("DCGM_FI_DEV_GPU_TEMP", "{{host}} GPU {{gpu}}"),), "dcgm"),
        Panel("GPU power", "watt", (_q("DCGM_FI_DEV_POWER_USAGE", "{{host}} GPU {{gpu}}"),), "dcgm"),
        Panel("ECC double-bit errors", "short", (
            _q("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "{{host}} GPU {{gpu}}"),), "dcgm", kind="stat"),
        Panel("Last XID error", "none", (_q("DCGM_FI_DEV_XID_ERRORS", "{{host}} GPU {{gpu}}"),), "dcgm", kind="stat"),
    )),
    "llmrack-host": ("Hosts", (
        Panel("CPU busy", "percentunit", (
            _q(f'1 - avg by (host) (rate(node_cpu_seconds_total{{mode="idle"}}[{W}]))', "{{host}}"),), "node"),
        Panel("Memory used", "percentunit", (
            _q("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{host}}"),), "node"),
        Panel("Load (1m)", "short", (_q("node_load1", "{{host}}"),), "node"),
        Panel("Filesystem used", "percentunit", (
            _q('1 - node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.*"} / '
               'node_filesystem_size_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.*"}',
               "{{host}} {{mountpoint}}"),), "node"),
        Panel("Network traffic", "Bps", (
            _q(f'sum by (host) (rate(node_network_receive_bytes_total{{device!="lo"}}[{W}]))', "in {{host}}"),
            _q(f'sum by (host) (rate(node_network_transmit_bytes_total{{device!="lo"}}[{W}]))', "out {{host}}"),
        ), "node"),
        Panel("Scrape targets up", "short", (_q("sum by (job) (up)", "{{job}}"),), "prometheus", kind="stat"),
    )),
    "llmrack-gateway": ("Gateway (nginx)", (
        Panel("nginx up", "none", (_q("nginx_up", "{{host}}"),), "nginx", kind="stat"),
        Panel("Requests per second", "reqps", (
            _q(f"sum by (host) (rate(nginx_http_requests_total[{W}]))", "{{host}}"),), "nginx"),
        Panel("Connections", "short", (
            _q("sum by (host) (nginx_connections_active)", "active {{host}}"),
            _q("sum by (host) (nginx_connections_waiting)", "idle keep-alive {{host}}"),
        ), "nginx"),
        Panel("Connections accepted vs handled", "short", (
            _q(f"sum by (host) (rate(nginx_connections_accepted[{W}])) - "
               f"sum by (host) (rate(nginx_connections_handled[{W}]))", "dropped/s {{host}}"),), "nginx"),
        Panel("API 5xx share (vLLM)", "percentunit", (
            _q(f'sum by (host) (rate(http_requests_total{{job="vllm", status="5xx"}}[{W}])) / '
               f'sum by (host) (rate(http_requests_total{{job="vllm"}}[{W}]))', "{{host}}"),),
              "vllm", needs_traffic=True),
    )),
    "llmrack-vector-store": ("Vector store", (
        Panel("Qdrant collections", "short", (_q("collections_total", "{{host}}"),), "qdrant", kind="stat"),
        Panel("Qdrant vectors", "short", (_q("collections_vector_total", "{{host}}"),), "qdrant"),
        Panel("Qdrant REST responses", "reqps", (
            _q(f"sum by (host) (rate(rest_responses_total[{W}]))", "{{host}}"),), "qdrant"),
        Panel("PostgreSQL up", "none", (_q("pg_up", "{{host}}"),), "postgres", kind="stat"),
        Panel("PostgreSQL connections", "short", (
            _q("sum by (host, datname) (pg_stat_database_numbackends)", "{{host}} {{datname}}"),), "postgres"),
        Panel("PostgreSQL database size", "bytes", (
            _q("pg_database_size_bytes", "{{host}} {{datname}}"),), "postgres"),
    )),
}


def _panel(panel: Panel) -> Any:
    ds = DataSourceRef(type_val="prometheus", uid=f"${{{DS_VAR}}}")
    builder = (gs.Panel() if panel.kind == "stat" else gt.Panel()).title(panel.title).unit(panel.unit).datasource(ds)
    builder = builder.span(12 if panel.kind == "timeseries" else 6).height(8)
    for i, q in enumerate(panel.queries):
        builder = builder.with_target(
            gp.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(chr(ord("A") + i)).datasource(ds)
        )
    return builder


def dashboard(uid: str) -> dict[str, Any]:
    title, panels = DASHBOARDS[uid]
    builder = (
        gd.Dashboard(title).uid(uid).tags(["llmrack"]).refresh("30s").time("now-3h", "now").timezone("browser")
        .editable()
        .with_variable(gd.DatasourceVariable(DS_VAR).label("Prometheus").type("prometheus"))
    )
    for panel in panels:
        builder = builder.with_panel(_panel(panel))
    data = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for i, p in enumerate(data.get("panels", []), start=1):  # stable, unique panel ids
        p["id"] = i
    return data


def dashboards() -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON model."""
    return {uid: dashboard(uid) for uid in DASHBOARDS}


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(dashboard=uid, panel=p.title, expr=q.expr, expects_series=not p.needs_traffic, source=p.source)
        for uid, (_title, panels) in DASHBOARDS.items() for p in panels for q in p.queries
    ]


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
