"""pyinfra facts about the Docker engine: daemon.json as the host has it, dockerd's version."""

from __future__ import annotations

import json
from typing import Any

from pyinfra.api import FactBase

DAEMON_JSON = "/etc/docker/daemon.json"


class DockerDaemonJson(FactBase):
    """The host's /etc/docker/daemon.json.

    ``{"exists": bool, "config": dict | None, "error": str | None}``: ``error`` holds the JSON parser's
    message when the file is not valid JSON (the role then stops and says so instead of overwriting it).
    """

    def command(self, path: str = DAEMON_JSON) -> str:
        return f"if [ -f {path} ]; then echo present; cat {path}; else echo absent; fi"

    @staticmethod
    def default() -> dict[str, Any]:
        return {"exists": False, "config": None, "error": None}

    def process(self, output: list[str]) -> dict[str, Any]:
        if not output or output[0].strip() != "present":
            return {"exists": False, "config": None, "error": None}
        text = "\n".join(output[1:])
        if not text.strip():
            return {"exists": True, "config": None, "error": None}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return {"exists": True, "config": None, "error": str(exc)}
        if not isinstance(data, dict):
            return {"exists": True, "config": None, "error": "not a JSON object"}
        return {"exists": True, "config": data, "error": None}


class DockerdVersion(FactBase):
    """The installed dockerd's version (``20.10.24+dfsg1``), or None when dockerd is not installed."""

    def command(self) -> str:
        return "dockerd --version 2>/dev/null || true"

    def requires_command(self) -> str:
        return "dockerd"

    def process(self, output: list[str]) -> str | None:
        # "Docker version 20.10.24+dfsg1, build 297e128"
        for line in output:
            parts = line.replace(",", " ").split()
            if len(parts) >= 3 and parts[0] == "Docker" and parts[1] == "version":
                return parts[2]
        return None


def dockerd_supports_validate(version: str | None) -> bool:
    """``dockerd --validate`` exists from Docker 23.0."""
    if not version:
        return False
    try:
        major = int(version.split(".", 1)[0])
    except ValueError:
        return False
    return major >= 23
