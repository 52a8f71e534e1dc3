"""Grafana provisioning: one Prometheus datasource, dashboards from files, settings as environment.

Grafana is not packaged by Debian: its image (``monitoring.images.grafana``) comes from the offline bundle.
The admin password is read from a file of the secrets directory (``GF_SECURITY_ADMIN_PASSWORD__FILE``), so it
is in neither the compose file nor the image; sign-up, anonymous access, analytics, update checks, news and
Gravatar are off: the service makes no outbound connection.
"""

from __future__ import annotations

from typing import Any

from llmrack.config import HostSpec
from llmrack.monitoring.dashboards import DASHBOARDS, dashboard

DATASOURCE_UID = "llmrack-prometheus"
PROVISIONING = "/etc/grafana/provisioning"  # inside the container
DASHBOARDS_DIR = "/var/lib/grafana/dashboards"
ADMIN_PASSWORD_FILE = "/run/secrets/grafana_admin_password"


def datasources(prometheus_url: str = "http://prometheus:9090") -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [{
            "name": "Prometheus", "type": "prometheus", "uid": DATASOURCE_UID, "access": "proxy",
            "url": prometheus_url, "isDefault": True, "editable": False,
            "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
        }],
    }


def dashboard_provider() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [{
            "name": "llmrack", "folder": "llmrack", "type": "file", "disableDeletion": True,
            "allowUiUpdates": False, "updateIntervalSeconds": 60,
            "options": {"path": DASHBOARDS_DIR, "foldersFromFilesStructure": False},
        }],
    }


def dashboards_for(host: HostSpec) -> dict[str, dict[str, Any]]:
    """The dashboards that make sense for a host's tier: GPU only with DCGM, the vector store it runs."""
    mon, stack = host.profile.monitoring, host.profile.stack
    wanted = ["llmrack-serving", "llmrack-host", "llmrack-gateway"]
    if host.profile.hardware.gpu.count > 0 and mon.dcgm_exporter:
        wanted.append("llmrack-gpu")
    if stack.vector_store.kind != "none":
        wanted.append("llmrack-vector-store")
    return {uid: dashboard(uid) for uid in wanted if uid in DASHBOARDS}


def environment(listen_port: int = 3000) -> dict[str, str]:
    """GF_* settings of the container (no secret values: the password is a file)."""
    return {
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_ANALYTICS_FEEDBACK_LINKS_ENABLED": "false",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_AUTH_ANONYMOUS_ENABLED": "false",
        "GF_NEWS_NEWS_FEED_ENABLED": "false",
        "GF_PLUGINS_PLUGIN_ADMIN_ENABLED": "false",
        "GF_SECURITY_ADMIN_PASSWORD__FILE": ADMIN_PASSWORD_FILE,
        "GF_SECURITY_ADMIN_USER": "admin",
        "GF_SECURITY_DISABLE_GRAVATAR": "true",
        "GF_SERVER_HTTP_PORT": str(listen_port),
        "GF_USERS_ALLOW_ORG_CREATE": "false",
        "GF_USERS_ALLOW_SIGN_UP": "false",
    }
