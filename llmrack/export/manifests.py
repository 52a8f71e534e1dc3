"""Kubernetes manifests of the export besides the Helm values: KEDA ScaledObjects, the vector store, the
PrometheusRule, the Grafana dashboards' ConfigMaps, the namespace."""

from __future__ import annotations

from typing import Any

from llmrack.config import HostSpec, TierProfile
from llmrack.export.options import PGVECTOR_SECRET, QDRANT_SECRET, ExportOptions, Served
from llmrack.monitoring.dashboards import dashboards, dump_json
from llmrack.monitoring.grafana import dashboards_for
from llmrack.monitoring.rules import alert_rules
from llmrack.stack.compose import image_name


def _meta(name: str, opts: ExportOptions, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": opts.namespace,
            "labels": {"app.kubernetes.io/part-of": "llmrack", **(labels or {})}}


def scaled_objects(served: list[Served], opts: ExportOptions) -> list[dict[str, Any]]:
    out = []
    for s in served:
        waiting = s.profile.monitoring.thresholds.requests_waiting
        out.append({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": _meta(f"llmrack-{s.name}", opts, {"model": s.name}),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                   "name": f"{opts.release}-{s.name}-deployment-vllm"},
                "minReplicaCount": s.replicas,
                "maxReplicaCount": opts.max_replicas or 2 * s.replicas,
                "pollingInterval": 15,
                "cooldownPeriod": 300,
                "triggers": [{
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": opts.prometheus_url,
                        "query": f'sum(vllm:num_requests_waiting{{model_name="{s.model.public_name}"}})',
                        "threshold": str(waiting),  # per replica: the tier's own alert threshold
                    },
                }],
            },
        })
    return out


def vector_store(profile: TierProfile, opts: ExportOptions) -> list[dict[str, Any]]:
    vs, stack = profile.stack.vector_store, profile.stack
    if vs.kind == "none":
        return []
    if vs.kind == "qdrant":
        name, port, mount = "qdrant", 6333, "/qdrant/storage"
        image = image_name(stack, vs.qdrant.image)
        env = [{"name": "QDRANT__TELEMETRY_DISABLED", "value": "true"},
               {"name": "QDRANT__SERVICE__API_KEY",
                "valueFrom": {"secretKeyRef": {"name": QDRANT_SECRET, "key": "api-key"}}}]
        ports = [{"name": "http", "containerPort": 6333}, {"name": "grpc", "containerPort": 6334}]
    else:
        name, port, mount = "pgvector", 5432, "/var/lib/postgresql/data"
        image = image_name(stack, vs.pgvector.image)
        env = [{"name": "POSTGRES_USER", "value": vs.pgvector.user},
               {"name": "POSTGRES_DB", "value": vs.pgvector.database},
               {"name": "PGDATA", "value": f"{mount}/pgdata"},
               {"name": "POSTGRES_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": PGVECTOR_SECRET, "key": "password"}}}]
        ports = [{"name": "postgres", "containerPort": 5432}]
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "llmrack"}
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(name, opts, labels),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": name, "image": image, "ports": ports, "env": env,
                    "volumeMounts": [{"name": "data", "mountPath": mount}],
                    "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 10},
                }]},
            },
            # the volume outlives the StatefulSet: deleting it never deletes the user's vectors
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}}},
            }],
        },
    }
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, opts, labels),
        "spec": {"selector": labels,
                 "ports": [{"name": p["name"], "port": p["containerPort"], "targetPort": p["name"]} for p in ports]},
    }
    return [sts, svc]


def prometheus_rule(profile: TierProfile, opts: ExportOptions) -> dict[str, Any]:
    gpu = profile.hardware.gpu.count > 0 and profile.monitoring.dcgm_exporter
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _meta("llmrack", opts, {"release": opts.prometheus_release}),
        "spec": alert_rules(profile.monitoring, gpu=gpu),
    }


def dashboard_configmaps(host: HostSpec, opts: ExportOptions) -> list[dict[str, Any]]:
    wanted = dashboards_for(host)
    return [{
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(f"grafana-dashboard-{uid}", opts, {"grafana_dashboard": "1"}),
        "data": {f"{uid}.json": dump_json(board)},
    } for uid, board in sorted(wanted.items()) if uid in dashboards()]


def namespace(opts: ExportOptions) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": opts.namespace, "labels": {"app.kubernetes.io/part-of": "llmrack"}}}
