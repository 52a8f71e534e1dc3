"""Typed configuration: tiers (tiers/*.yaml) + inventories (inventories/*.py, group_data) -> HostSpec.

One loader for the deploys, the CLI and the tests. Every problem becomes an ``LlmrackError`` that names the
file and the field, raised before any host is contacted.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
    device: str = Field(..., description="Block device or UUID=... / LABEL=... of the data volume.")
    mount: str = Field("/data", description="Mount point.")
    fstype: str = Field("ext4")
    options: str = Field("defaults,noatime")


class HostFields(Settings):
    """The llmrack keys accepted in an inventory's host or group data."""

    tier: str = Field(..., description="Tier name: a file tiers/<tier>.yaml.")
    roles: list[HostRole] = Field(list(ALL_ROLES), description="What this host runs.")
    overrides: dict[str, Any] = Field({}, description="Per-host changes deep-merged onto the tier.")
    data_disk: DataDisk | None = None
    address: str = Field("", description="Address other hosts and clients use; default: the SSH hostname.")


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


# -------------------------------------------------------------------------------------------------- helpers


def _loc(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(top level)"


def validation_error(exc: ValidationError, source: str, prefix: str = "") -> LlmrackError:
    """The first pydantic error as one clear message naming the file and field."""
    err = exc.errors()[0]
    field = _loc(err)
    if prefix:
        field = f"{prefix}.{field}" if field != "(top level)" else prefix
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (not a setting llmrack knows; check the spelling)"
    elif err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        # model validators name their own field in the message: "a.b: text"
        head, sep, rest = msg.partition(": ")
        if sep and " " not in head:
            field = f"{prefix}.{head}" if prefix else head
            msg = rest
    extra = ""
    if len(exc.errors()) > 1:
        extra = f" (and {len(exc.errors()) - 1} more problem(s))"
    return LlmrackError(f"{msg}{extra}", source=source, field=field)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


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
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except SyntaxError as exc:
        raise LlmrackError(f"Python syntax error: {exc.msg}", source=str(path), field=f"line {exc.lineno}") from None
    try:
        return runpy.run_path(str(path))
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


def _inventory_path_from_argv() -> str:
    """The inventory file pyinfra was started with (its first .py argument), for messages."""
    import sys

    for arg in sys.argv[1:]:
        if arg.endswith(".py") and "inventor" in arg:
            return arg
    return "inventory"


def spec_for_pyinfra_host(host: Any) -> HostSpec:
    """The HostSpec of the host pyinfra is running a deploy for (deploys/*.py call this).

    Bad input raises ``LlmrackError``; use ``deploy_spec`` in deploy files for a clean exit.
    """
    source = _inventory_path_from_argv()
    project = find_project_dir(Path(source).parent if source != "inventory" else Path.cwd())
    return host_spec(
        host.name,
        host.data.dict(),
        source=source,
        project_dir=project,
        groups=[str(g) for g in getattr(host, "groups", [])],
    )


@contextmanager
def exit_on_bad_input() -> Iterator[None]:
    """In deploy files: an ``LlmrackError`` becomes one clear message and exit code 2, no traceback."""
    import sys

    try:
        yield
    except LlmrackError as exc:
        sys.stderr.write(f"llmrack: {exc}\n")
        raise SystemExit(exc.exit_code) from None


def deploy_specs() -> tuple[HostSpec, list[HostSpec]]:
    """For deploy files: this host's spec and every host's, all validated before any operation is planned.

    Bad input prints one clear message and exits with code 2, so nothing is changed on any host.
    """
    from pyinfra import host

    with exit_on_bad_input():
        specs = [spec_for_pyinfra_host(other) for other in host.inventory]
        return next(s for s in specs if s.name == host.name), specs


def deploy_spec() -> HostSpec:
    """For deploy files: this host's validated spec (see ``deploy_specs``)."""
    return deploy_specs()[0]
