"""Reading the admin machine's files: UTF-8 text, YAML that refuses a key given twice, pydantic errors as one
``LlmrackError`` that names the file and the field, and the merge that layers tier, group and host data.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llmrack.errors import LlmrackError


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


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {key_node.start_mark.line + 1})", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """YAML with duplicate keys refused (tiers, secrets files and any other YAML the admin machine reads)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def read_text_utf8(path: Path) -> str:
    """A file of the admin machine as UTF-8 text; anything else is bad input naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LlmrackError(f"not UTF-8 text (byte {exc.start}): save the file as UTF-8", source=str(path)) from None
    except OSError as exc:
        raise LlmrackError(f"cannot read: {exc.strerror}", source=str(path)) from None
