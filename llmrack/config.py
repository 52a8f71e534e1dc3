"""Typed configuration: tiers (tiers/*.yaml) + inventories (inventories/*.py, group_data) -> HostSpec.

One loader for the deploys, the CLI and the tests. Every problem becomes an ``LlmrackError`` that names the
file and the field, raised before any host is contacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from llmrack.errors import LlmrackError
from llmrack.settings._model import Settings
from llmrack.settings.acceptance import AcceptanceSettings
from llmrack.settings.backup import BackupSettings
from llmrack.settings.base import BaseSettings
from llmrack.settings.docker import DockerSettings
from llmrack.settings.hardening import HardeningSettings
from llmrack.settings.hardware import HardwareSettings
from llmrack.settings.monitoring import MonitoringSettings
from llmrack.settings.nvidia import NvidiaSettings
from llmrack.settings.stack import StackSettings
from llmrack.settings.types import (
    ConfigWord,
    FileName,
    MountPoint,
    OptionalAddress,
    check_address,
    check_file_name,
    check_inventory_host_name,
)
from llmrack.yamlfile import deep_merge, load_yaml_text, read_text_utf8, validation_error

HostRole = Literal["inference", "gateway", "monitoring"]
ALL_ROLES: tuple[HostRole, ...] = ("inference", "gateway", "monitoring")

# Host data keys that belong to pyinfra and its connectors, not to llmrack.
CONNECTOR_PREFIXES = ("ssh_", "_", "docker_", "local_", "winrm_", "chroot_", "terraform_", "vagrant_")


class TierProfile(Settings):
    """One tier of seed 000's server table (or the CPU sandbox), composed of the roles' settings."""

    name: str
    description: str = ""
    team_size: str = Field("", description="Team the tier is sized for, e.g. '50 people'.")
    hardware: HardwareSettings = HardwareSettings()
    base: BaseSettings = BaseSettings()
    docker: DockerSettings = DockerSettings()
    nvidia: NvidiaSettings = NvidiaSettings()
    stack: StackSettings
    monitoring: MonitoringSettings = MonitoringSettings()
    hardening: HardeningSettings = HardeningSettings()
    backup: BackupSettings = BackupSettings()
    acceptance: AcceptanceSettings = AcceptanceSettings()

    @model_validator(mode="after")
    def _gpu_rules(self) -> TierProfile:
        gpus = self.hardware.gpu.count
        for i, model in enumerate(self.stack.models):
            tp = model.tensor_parallel_size
            usable = len(model.gpus) or gpus
            if gpus == 0 and tp not in (None, 1):
                raise ValueError(f"stack.models.{i}.tensor_parallel_size: {tp} set on a tier without GPUs")
            if gpus and tp is not None and tp > usable:
                raise ValueError(
                    f"stack.models.{i}.tensor_parallel_size: {tp} is larger than the {usable} GPU(s) it may use"
                )
            bad = [g for g in model.gpus if g >= gpus]
            if bad:
                raise ValueError(f"stack.models.{i}.gpus: index {bad[0]} but the tier has {gpus} GPU(s)")
        # The NVIDIA stack is on by default: on a tier without GPUs that is a forgotten hardware.gpu section,
        # unless nvidia.enabled is said explicitly (the driver installed ahead of the cards, or tested without them).
        if gpus == 0 and self.nvidia.enabled and "enabled" not in self.nvidia.model_fields_set:
            raise ValueError("nvidia.enabled: true (the default) on a tier without GPUs (hardware.gpu.count is 0): "
                             "set hardware.gpu, or nvidia.enabled: false for a CPU-only tier")
        return self


class DataDisk(Settings):
    device: ConfigWord = Field(..., description="Block device or UUID=... / LABEL=... of the data volume.")
    mount: MountPoint = Field("/data", description="Mount point (its own directory, never / or a system one).")
    fstype: ConfigWord = Field("ext4")
    options: ConfigWord = Field("defaults,noatime")


class HostFields(Settings):
    """The llmrack keys accepted in an inventory's host or group data."""

    tier: FileName = Field(..., description="Tier name: a file tiers/<tier>.yaml.")
    roles: list[HostRole] = Field(list(ALL_ROLES), description="What this host runs.")
    overrides: dict[str, Any] = Field({}, description="Per-host changes deep-merged onto the tier.")
    data_disk: DataDisk | None = None
    address: OptionalAddress = Field("", description="Address other hosts and clients use; default: the SSH hostname.")


class HostSpec(Settings):
    """Everything llmrack knows about one host: its name, roles and effective tier profile."""

    name: str
    address: str
    roles: list[HostRole]
    tier: str
    profile: TierProfile
    data_disk: DataDisk | None = None
    groups: list[str] = []
    connector: dict[str, Any] = Field({}, description="pyinfra connector data (ssh_hostname, ssh_port, ...).")

    def has_role(self, role: HostRole) -> bool:
        return role in self.roles


class Inventory(Settings):
    path: str
    project_dir: str
    hosts: list[HostSpec]

    def by_role(self, role: HostRole) -> list[HostSpec]:
        return [h for h in self.hosts if h.has_role(role)]


def find_project_dir(start: Path) -> Path:
    """The directory holding tiers/ for an inventory: its parent chain, then this repository."""
    start = start.resolve()
    for candidate in [start, *start.parents]:
        if (candidate / "tiers").is_dir():
            return candidate
    return Path(__file__).resolve().parent.parent


# -------------------------------------------------------------------------------------------------- tiers


def tiers_dir(project_dir: Path | None = None) -> Path:
    return (project_dir or find_project_dir(Path.cwd())) / "tiers"


def tier_names(project_dir: Path | None = None) -> list[str]:
    d = tiers_dir(project_dir)
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


@lru_cache(maxsize=64)
def _read_yaml(path: Path) -> dict[str, Any]:
    text = read_text_utf8(path)
    try:
        data = load_yaml_text(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "syntax"
        raise LlmrackError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=str(path), field=where) from None
    except OSError as exc:
        raise LlmrackError(f"cannot read: {exc.strerror}", source=str(path)) from None
    if not isinstance(data, dict):
        raise LlmrackError("a tier file must be a mapping of settings", source=str(path), field="(top level)")
    return data


def raw_tier(name: str, project_dir: Path | None = None) -> tuple[Path, dict[str, Any]]:
    try:
        check_file_name(name)
    except ValueError as exc:
        raise LlmrackError(f"bad tier name: {exc}", source=str(tiers_dir(project_dir)), field="tier") from None
    path = tiers_dir(project_dir) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(tier_names(project_dir)) or "none"
        raise LlmrackError(f"unknown tier {name!r} (known: {known})", source=str(path.parent), field="tier")
    return path, _read_yaml(path)


def load_tier(
    name: str,
    project_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_source: str = "",
) -> TierProfile:
    path, data = raw_tier(name, project_dir)
    data = {"name": name, **data}
    if data["name"] != name:
        raise LlmrackError(f"name {data['name']!r} differs from the file name", source=str(path), field="name")
    try:
        TierProfile.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, str(path)) from None
    if not overrides:
        return TierProfile.model_validate(data)
    try:
        return TierProfile.model_validate(deep_merge(data, overrides))
    except ValidationError as exc:
        raise validation_error(exc, override_source or str(path), prefix="overrides") from None


# -------------------------------------------------------------------------------------------------- inventories


def split_host_data(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(llmrack keys, connector keys) of a host's merged data."""
    ours, theirs = {}, {}
    for key, value in data.items():
        (theirs if key.startswith(CONNECTOR_PREFIXES) else ours)[key] = value
    return ours, theirs


def host_spec(
    name: str, data: Mapping[str, Any], *, source: str, project_dir: Path, groups: list[str] | None = None
) -> HostSpec:
    """Validate one host's inventory data against the tier it names."""
    try:
        check_inventory_host_name(name)  # it becomes the host's hostname, /etc/hosts entries and secrets/<name>/
    except ValueError as exc:
        raise LlmrackError(f"bad host name: {exc}", source=source, field=name) from None
    ours, theirs = split_host_data(data)
    try:
        fields = HostFields.model_validate(ours)
    except ValidationError as exc:
        err = validation_error(exc, source)
        err.field = f"{name}.{err.field}"
        raise err from None
    try:
        profile = load_tier(fields.tier, project_dir, fields.overrides, override_source=f"{source} ({name})")
    except LlmrackError as exc:
        if exc.field == "tier":
            raise LlmrackError(f"{exc.message} in {exc.source}", source=source, field=f"{name}.tier") from None
        raise
    address = fields.address or str(theirs.get("ssh_hostname") or name)
    try:
        if address != name or not name.startswith("@"):  # @local and friends keep their name
            check_address(address)
    except ValueError as exc:
        raise LlmrackError(str(exc), source=source, field=f"{name}.address") from None
    return HostSpec(
        name=name,
        address=address,
        roles=fields.roles,
        tier=fields.tier,
        profile=profile,
        data_disk=fields.data_disk,
        groups=sorted(groups or []),
        connector=theirs,
    )


def _exec_python(path: Path) -> dict[str, Any]:
    """Run a user's inventory or group-data file and return its module-level names."""
    import runpy

    try:
        compile(read_text_utf8(path), str(path), "exec")
    except SyntaxError as exc:
        raise LlmrackError(f"Python syntax error: {exc.msg}", source=str(path), field=f"line {exc.lineno}") from None
    try:
        return runpy.run_path(str(path))
    except SystemExit as exc:  # sys.exit() in user code is a broken inventory, not the end of llmrack
        raise LlmrackError(f"cannot load the inventory: it called sys.exit({exc.code!r})", source=str(path)) from None
    except Exception as exc:  # user code: any failure is bad input
        raise LlmrackError(f"cannot load the inventory: {type(exc).__name__}: {exc}", source=str(path)) from None


def _groups_of(attrs: dict[str, Any], source: str) -> dict[str, tuple[list[tuple[str, dict]], dict]]:
    """pyinfra's inventory file rules: module-level lists (or (hosts, data) tuples) not starting with '_'."""
    groups: dict[str, tuple[list[tuple[str, dict]], dict]] = {}
    for key, value in attrs.items():
        if key.startswith("_") or not isinstance(value, list | tuple):
            continue
        hosts, data = (
            (value[0], value[1])
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict)
            else (value, {})
        )
        entries = []
        for item in hosts:
            if isinstance(item, str):
                entries.append((item, {}))
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], dict):
                entries.append((item[0], item[1]))
            else:
                raise LlmrackError("a host is a name or a (name, data) tuple", source=source, field=f"{key}: {item!r}")
        groups[key] = (entries, dict(data))
    return groups


def _group_data(dirs: list[Path]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.py")):
            attrs = _exec_python(f)
            data = {
                k: v
                for k, v in attrs.items()
                if not k.startswith("_") and not callable(v) and type(v).__name__ != "module"
            }
            out.setdefault(f.stem, {}).update(data)
    return out


def load_inventory(path: str | Path, project_dir: Path | None = None) -> Inventory:
    """Load a pyinfra inventory file (and its group_data) without contacting any host.

    Follows pyinfra's rules for inventory files: groups are module-level lists or (hosts, data) tuples,
    every host is also in the group named after the file and in ``all``; data precedence is host data,
    then group data (group_data/<group>.py and inline), then ``all``.
    """
    p = Path(path)
    if not p.is_file():
        raise LlmrackError("no such inventory file", source=str(p))
    if p.suffix != ".py":
        raise LlmrackError("an inventory is a Python file (inventories/<name>.py)", source=str(p))
    project = (project_dir or find_project_dir(p.parent)).resolve()
    groups = _groups_of(_exec_python(p), str(p))
    gdata = _group_data([project / "group_data", p.parent.resolve() / "group_data"])
    all_data = {**gdata.get("all", {}), **(groups.pop("all", ([], {}))[1])}
    order: list[str] = []
    host_data: dict[str, dict[str, Any]] = {}
    host_groups: dict[str, list[str]] = {}
    file_group = p.stem
    for gname, (entries, _gd) in groups.items():
        for name, data in entries:
            if name not in host_data:
                order.append(name)
                host_data[name] = {}
                host_groups[name] = []
            host_data[name].update(data)
            host_groups[name].append(gname)
    if not order:
        raise LlmrackError("the inventory defines no hosts", source=str(p), field="hosts")
    hosts = []
    for name in order:
        merged = dict(all_data)
        names = [file_group, *host_groups[name]] if file_group not in host_groups[name] else host_groups[name]
        for g in names:
            merged.update(gdata.get(g, {}))
            merged.update(groups.get(g, ([], {}))[1])
        merged.update(host_data[name])
        hosts.append(host_spec(name, merged, source=str(p), project_dir=project, groups=names))
    return Inventory(path=str(p), project_dir=str(project), hosts=hosts)
