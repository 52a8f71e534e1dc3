"""Names that reach shells, paths and config lines: hostile values are refused by the types, and commands
built on the admin machine are argv (no shell)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from llmrack.settings import types as t

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ["a;reboot", "$(id)", "`id`", "a b", "a\nb", "a\tb", "a'b", 'a"b', "a|b", "a&b", "a>b", "#a", ""]


@pytest.mark.parametrize("kind", [t.HostName, t.Address, t.ConfigWord, t.ComposeProject, t.FileName,
                                  t.AbsolutePath, t.MountPoint, t.TimeZone])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_refused(kind, value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(kind).validate_python(value)


@pytest.mark.parametrize(("kind", "value"), [
    (t.HostName, "llm-01"), (t.HostName, "gpu1.office.example.com"), (t.Address, "192.0.2.10"),
    (t.Address, "fd00::1"), (t.Address, "ntp.aliyun.com"), (t.ConfigWord, "defaults,noatime"),
    (t.ConfigWord, "UUID=1234-abcd"), (t.ComposeProject, "llmrack"), (t.FileName, "high-performance"),
    (t.AbsolutePath, "/opt/llmrack/models"), (t.MountPoint, "/data"), (t.MountPoint, "/srv/llm"),
    (t.TimeZone, "Asia/Shanghai"), (t.TimeZone, "UTC"),
])
def test_ordinary_values_pass(kind, value: str) -> None:
    assert TypeAdapter(kind).validate_python(value) == value


@pytest.mark.parametrize("value", ["/", "/etc", "/usr/local", "/boot/efi", "/opt/../etc", "data", "/proc/x"])
def test_mount_points_that_would_rewrite_system_lines_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(t.MountPoint).validate_python(value)


@pytest.mark.parametrize("value", ["..", "../x", "/abs", "a/b", "."])
def test_tier_names_stay_inside_tiers(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(t.FileName).validate_python(value)


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            out.append((ast.unparse(node.func), node))
    return out


def test_no_shell_on_the_admin_machine() -> None:
    """os.system / os.popen / shell=True would hand data to /bin/sh on the admin machine."""
    found = []
    for d in ("llmrack", "roles", "deploys", "bench"):
        for path in sorted((ROOT / d).rglob("*.py")):
            for func, call in _calls(path):
                shell = any(k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value
                            for k in call.keywords)
                if func in ("os.system", "os.popen") or shell:
                    found.append(f"{path.relative_to(ROOT)}:{call.lineno}: {func}")
    assert not found, found


def test_project_name_is_quoted_in_host_commands() -> None:
    """Compose project names reach remote shell commands only through shlex.quote."""
    for rel in ("roles/gateway.py", "roles/llm_stack.py"):
        text = (ROOT / rel).read_text(encoding="utf-8")
        assert "--project-name {stack.project_name}" not in text, rel
