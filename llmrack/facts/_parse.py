"""Parsing helpers shared by the facts: nvidia-smi's "not available" spellings, ``##section`` markers."""

from __future__ import annotations

import re
from collections.abc import Iterable

_NA = re.compile(r"^\[?(N/A|Not Supported|Unknown Error|Unknown|Insufficient Permissions|GPU is lost)\]?$", re.I)

def na(value: str) -> str | None:
    """The value, or None where nvidia-smi printed [N/A], [Not Supported] and the like."""
    value = value.strip()
    return None if not value or _NA.match(value) else value


def _int(value: str) -> int | None:
    v = na(value)
    if v is None:
        return None
    try:
        return int(float(v))
    except ValueError:
        return None


def _float(value: str) -> float | None:
    v = na(value)
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return None


def _sections(lines: Iterable[str]) -> dict[str, list[str]]:
    """Split marker-delimited output (``##name`` lines) into sections; ``##key=value`` lines are kept."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in lines:
        if line.startswith("##") and "=" not in line:
            current = line[2:].strip()
            out.setdefault(current, [])
        elif line.startswith("##") and "=" in line:
            key, _, value = line[2:].partition("=")
            out.setdefault(f"={key.strip()}", []).append(value.strip())
        else:
            out.setdefault(current, []).append(line)
    return out


def _kv(sections: dict[str, list[str]], key: str) -> str | None:
    values = sections.get(f"={key}")
    return values[-1] if values else None
