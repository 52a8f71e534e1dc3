"""The monitoring stack's secrets (Grafana admin password, SMTP password, robot URLs): kept by
:mod:`llmrack.secrets` in ``<project>/.llmrack/secrets/monitoring.yaml``; the names are re-exported here."""

from __future__ import annotations

from llmrack.secrets import DingTalkRobot, MonitoringSecrets  # noqa: F401 (re-exported)
from llmrack.secrets import load_or_create_monitoring_secrets as load_or_create_secrets  # noqa: F401
from llmrack.secrets import monitoring_secrets_path as default_secrets_path  # noqa: F401
