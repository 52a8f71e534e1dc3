"""Validated types for values that become paths, shell words, config lines, unit names or DNS names.

Checked once, at load: a value that passes can be written into chrony.conf, fstab, a compose project name or a
hostname without quoting tricks (commands still quote or pass argv).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator

HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                         r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
COMPOSE_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._@+-]+$")
WORD_RE = re.compile(r"^[^\s\"'`$\\;|&<>(){}#]+$")
CONNECTOR_NAME_RE = re.compile(r"^@[a-z]+(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,99})?$")  # pyinfra's @local, @docker/x
TIMEZONE_RE = re.compile(r"^[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*$")


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_hostname(value: str) -> str:
    if not HOSTNAME_RE.match(value):
        raise ValueError(f"{value!r} is not a host name (letters, digits, '-' and '.', labels of 1-63)")
    return value


def check_inventory_host_name(value: str) -> str:
    """A host name, or one of pyinfra's connector names (``@local``, ``@docker/<container>``)."""
    if CONNECTOR_NAME_RE.match(value) and ".." not in value:
        return value
    return check_hostname(value)


def check_address(value: str) -> str:
    if not (is_ip(value) or HOSTNAME_RE.match(value)):
        raise ValueError(f"{value!r} is neither an IP address nor a host name")
    return value


def check_address_or_empty(value: str) -> str:
    return check_address(value) if value else value


def check_absolute_path(value: str) -> str:
    """An absolute path of plain segments: no '..', no spaces, quotes or control characters."""
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    segments = [s for s in value.split("/") if s]
    for s in segments:
        if s in (".", "..") or not PATH_SEGMENT_RE.match(s):
            raise ValueError(f"path segment {s!r} of {value!r} is not allowed (plain names, no '..')")
    return value


def check_mount_point(value: str) -> str:
    check_absolute_path(value)
    top = "/" + (value.strip("/").split("/")[0] if value.strip("/") else "")
    system = {"/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr"}
    if value.rstrip("/") in ("", *system) or top in system - {"/"}:
        raise ValueError(f"{value!r} is a system directory; mount the data disk on its own path, e.g. /data")
    return value.rstrip("/") or "/"


def check_word(value: str) -> str:
    """One token of a configuration line: no whitespace, quotes, shell metacharacters or comment signs."""
    if not WORD_RE.match(value):
        raise ValueError(f"{value!r} is not one word (no spaces, newlines, quotes or shell characters)")
    return value


def check_compose_project(value: str) -> str:
    if not COMPOSE_PROJECT_RE.match(value):
        raise ValueError(f"{value!r} is not a compose project name (lower-case letters, digits, '_' and '-')")
    return value


def check_file_name(value: str) -> str:
    if not FILE_NAME_RE.match(value) or value in (".", ".."):
        raise ValueError(f"{value!r} is not a plain name (letters, digits, '.', '_' and '-'; no '/' or '..')")
    return value


def check_timezone(value: str) -> str:
    if not TIMEZONE_RE.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a time zone name like Asia/Shanghai")
    return value


HostName = Annotated[str, AfterValidator(check_hostname)]
Address = Annotated[str, AfterValidator(check_address)]
OptionalAddress = Annotated[str, AfterValidator(check_address_or_empty)]
AbsolutePath = Annotated[str, AfterValidator(check_absolute_path)]
MountPoint = Annotated[str, AfterValidator(check_mount_point)]
ConfigWord = Annotated[str, AfterValidator(check_word)]
ComposeProject = Annotated[str, AfterValidator(check_compose_project)]
FileName = Annotated[str, AfterValidator(check_file_name)]
TimeZone = Annotated[str, AfterValidator(check_timezone)]
