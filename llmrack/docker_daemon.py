"""``/etc/docker/daemon.json`` as a model, and its merge with what a host already has.

llmrack owns a fixed set of keys; every other key found in the file is kept as it is, so settings an
operator added by hand (or another tool's) survive a deploy. The file is always written with sorted keys,
so the same inputs give the same bytes and a second run changes nothing.

With ``nvidia_runtime`` the NVIDIA container runtime is registered and the cgroupfs cgroup driver is
chosen: NVIDIA's guidance for Docker, so containers keep their GPUs across ``systemctl daemon-reload``.
Without it the NVIDIA-related keys are left as they are (never removed), so calling the role with and
without the runtime on the same host cannot make the file flip between two states.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmrack.settings.docker import DockerSettings

NVIDIA_RUNTIME = {"args": [], "path": "nvidia-container-runtime"}
CGROUP_DRIVER_OPT = "native.cgroupdriver"
# log-opts that the json-file driver accepts; others found in the file (e.g. a previous syslog driver's)
# would stop dockerd from starting once log-driver is json-file.
JSON_FILE_LOG_OPTS = {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"}


class DaemonConfig(BaseModel):
    """The keys of daemon.json that llmrack manages (dumped with dockerd's key names)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    registry_mirrors: list[str] = Field([], alias="registry-mirrors")
    log_driver: str = Field("json-file", alias="log-driver")
    log_max_size: str = "100m"
    log_max_file: int = 3
    data_root: str = Field("", alias="data-root")
    live_restore: bool = Field(True, alias="live-restore")
    nvidia_runtime: bool = False

    @classmethod
    def from_settings(cls, settings: DockerSettings, *, nvidia_runtime: bool = False) -> DaemonConfig:
        return cls(
            registry_mirrors=list(settings.registry_mirrors), log_max_size=settings.log_max_size,
            log_max_file=settings.log_max_file, data_root=settings.data_root,
            live_restore=settings.live_restore, nvidia_runtime=nvidia_runtime,
        )


def merge_daemon_config(current: dict[str, Any] | None, managed: DaemonConfig) -> dict[str, Any]:
    """``current`` (the host's daemon.json, parsed) with llmrack's keys set; other keys are kept."""
    out: dict[str, Any] = json.loads(json.dumps(current or {}))  # deep copy of plain JSON data
    if managed.registry_mirrors:
        out["registry-mirrors"] = list(managed.registry_mirrors)
    else:
        out.pop("registry-mirrors", None)
    out["log-driver"] = managed.log_driver
    old_opts = out.get("log-opts") if isinstance(out.get("log-opts"), dict) else {}
    opts = {k: v for k, v in old_opts.items() if k in JSON_FILE_LOG_OPTS}
    opts["max-size"] = managed.log_max_size
    opts["max-file"] = str(managed.log_max_file)  # dockerd wants strings in log-opts
    out["log-opts"] = opts
    if managed.data_root:
        out["data-root"] = managed.data_root
    out["live-restore"] = managed.live_restore
    if managed.nvidia_runtime:
        runtimes = out.get("runtimes") if isinstance(out.get("runtimes"), dict) else {}
        out["runtimes"] = {**runtimes, "nvidia": dict(NVIDIA_RUNTIME)}
        exec_opts = [o for o in out.get("exec-opts") or [] if not str(o).startswith(f"{CGROUP_DRIVER_OPT}=")]
        out["exec-opts"] = [*exec_opts, f"{CGROUP_DRIVER_OPT}=cgroupfs"]
    return out


def dump_daemon_config(config: dict[str, Any]) -> str:
    """The file's bytes: sorted keys, two-space indent, trailing newline."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def parse_daemon_config(text: str | None) -> dict[str, Any] | None:
    """A daemon.json's content as a dict; None for a missing or empty file. Raises ValueError if invalid."""
    if text is None or not text.strip():
        return None
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("daemon.json must hold a JSON object")
    return data
