"""alertmanager.yml from the settings: route by severity, e-mail / webhook / WeCom / DingTalk, inhibition.

No secret is written into the file: the SMTP password is read by Alertmanager from ``smtp_auth_password_file``
(a file of the secrets directory mounted into the container), and robot URLs live in the relay's secrets
(see :mod:`llmrack.monitoring.relay`); Alertmanager only knows ``http://alert-relay:9095/<kind>/<name>``.
"""

from __future__ import annotations

from typing import Any

from llmrack.settings.monitoring import AlertmanagerSettings, MonitoringSettings

SECRETS_DIR = "/etc/alertmanager/secrets"  # inside the container
SMTP_PASSWORD_FILE = f"{SECRETS_DIR}/smtp_password"
RELAY_URL = "http://alert-relay:9095"


def _channels(am: AlertmanagerSettings, *, email: bool, relay_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if email and am.email_to:
        out["email_configs"] = [{"to": addr, "send_resolved": True} for addr in am.email_to]
    hooks = [{"url": url, "send_resolved": True} for url in am.webhook_urls]
    hooks += [{"url": f"{relay_url}/wecom/{name}", "send_resolved": True} for name in am.wecom_robots]
    hooks += [{"url": f"{relay_url}/dingtalk/{name}", "send_resolved": True} for name in am.dingtalk_robots]
    if hooks:
        out["webhook_configs"] = hooks
    return out


def alertmanager_config(settings: MonitoringSettings, *, relay_url: str = RELAY_URL) -> dict[str, Any]:
    """alertmanager.yml as a plain dict (checked by ``amtool check-config``)."""
    am = settings.alertmanager
    cfg: dict[str, Any] = {
        "route": {
            "receiver": "warning",
            "group_by": ["alertname", "host"],
            "group_wait": am.group_wait,
            "group_interval": am.group_interval,
            "repeat_interval": am.repeat_interval,
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "critical",
                 "repeat_interval": am.critical_repeat_interval},
                {"matchers": ['severity="warning"'], "receiver": "warning"},
            ],
        },
        "receivers": [
            {"name": "critical", **_channels(am, email=True, relay_url=relay_url)},
            {"name": "warning", **_channels(am, email=am.warning_email, relay_url=relay_url)},
        ],
        # a critical alert silences the warnings of the same scrape target (down target -> no latency noise)
        "inhibit_rules": [
            {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
             "equal": ["instance"]},
        ],
    }
    if am.email_to:
        smtp = am.smtp
        cfg["global"] = {
            "smtp_smarthost": smtp.smarthost,
            "smtp_from": smtp.sender,
            "smtp_require_tls": smtp.require_tls,
            "smtp_hello": "llmrack",
        }
        if smtp.username:
            cfg["global"]["smtp_auth_username"] = smtp.username
            cfg["global"]["smtp_auth_password_file"] = SMTP_PASSWORD_FILE
    return cfg


def needs_relay(settings: MonitoringSettings) -> bool:
    am = settings.alertmanager
    return bool(am.wecom_robots or am.dingtalk_robots)
