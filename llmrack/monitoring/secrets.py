"""Secrets of the monitoring stack: one YAML file on the admin machine, mode 0600, never in the repository.

Default place: ``<project>/secrets/monitoring.yaml`` (``secrets/`` is git-ignored). The Grafana admin password
is generated on first use; SMTP password and robot URLs are filled in by the operator.
"""

from __future__ import annotations

import os
import secrets as pysecrets
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from llmrack.config import validation_error
from llmrack.errors import LlmrackError
from llmrack.settings._model import Settings


class DingTalkRobot(Settings):
    url: str = Field(..., description="https://oapi.dingtalk.com/robot/send?access_token=...")
    secret: str = Field("", description="The robot's 加签 secret (SEC...), empty when unsigned.")


class MonitoringSecrets(Settings):
    grafana_admin_password: str = Field(..., min_length=16)
    smtp_password: str = ""
    wecom_robots: dict[str, str] = Field({}, description="name -> https://qyapi.weixin.qq.com/...?key=...")
    dingtalk_robots: dict[str, DingTalkRobot] = {}

    def relay_config(self) -> dict:
        """The relay's JSON config (see llmrack.monitoring.relay)."""
        return {
            "dingtalk": {k: v.model_dump() for k, v in sorted(self.dingtalk_robots.items())},
            "wecom": dict(sorted(self.wecom_robots.items())),
        }


def default_secrets_path(project_dir: str | Path) -> Path:
    return Path(project_dir) / ".llmrack" / "secrets" / "monitoring.yaml"


def load_or_create_secrets(path: str | Path) -> MonitoringSecrets:
    """Read the secrets file; create it (0600, with a generated Grafana password) when it does not exist."""
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"grafana_admin_password": pysecrets.token_urlsafe(24), "smtp_password": "",
                "wecom_robots": {}, "dingtalk_robots": {}}
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("# llmrack monitoring secrets: keep this file private (mode 0600), never commit it\n")
            yaml.safe_dump(data, fh, sort_keys=True)
    mode = p.stat().st_mode & 0o777
    if mode & 0o077:
        raise LlmrackError(f"secrets file is readable by others (mode {mode:o}); run chmod 600", source=str(p))
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        return MonitoringSecrets.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, str(p)) from None
    except yaml.YAMLError as exc:
        raise LlmrackError(f"not valid YAML: {exc}", source=str(p)) from None
