"""Writing an export to a directory: all checks first, then every file; a file someone else wrote is never replaced."""

from __future__ import annotations

import os
from pathlib import Path

from llmrack.errors import LlmrackError

MARKERS = ("# managed by llmrack", "<!-- managed by llmrack")


def check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise LlmrackError("is a file, not a directory: give a directory to write the export into",
                           source=str(out), field="--out")


def write_files(out: Path, files: dict[str, str]) -> list[tuple[str, bool]]:
    """Write ``files`` under ``out``; returns (name, changed). Nothing is written if any target is foreign."""
    check_out_dir(out)
    for name in files:
        target = out / name
        if target.is_dir():
            raise LlmrackError("is a directory where the export writes a file", source=str(target), field="--out")
        if target.exists():
            try:
                head = target.read_text(encoding="utf-8")[:200]
            except (OSError, UnicodeDecodeError):
                head = ""
            if not head.startswith(MARKERS):
                raise LlmrackError("exists and was not written by llmrack export: move it away or choose another "
                                   "--out", source=str(target), field="--out")
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for name, text in files.items():
        target = out / name
        if target.exists() and target.read_text(encoding="utf-8") == text:
            done.append((name, False))
            continue
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        done.append((name, True))
    return done
