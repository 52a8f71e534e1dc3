"""Reading an offline bundle: its manifest and the control fields of its .deb files.

At the bottom of the layers so that everything that consumes a bundle (the stack's host plan, the offline
bundle role, the deploys) reads it without importing the code that builds one (``llmrack.bundle``).
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import subprocess
import tarfile
import zlib
from pathlib import Path

from llmrack.errors import LlmrackError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(bundle: Path) -> dict:
    """The bundle's manifest, or an error naming what is wrong with it."""
    path = Path(bundle) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LlmrackError("no manifest.json: not an llmrack bundle", source=str(bundle)) from None
    except ValueError as exc:
        raise LlmrackError(f"manifest.json is not valid JSON: {exc}", source=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise LlmrackError("manifest.json has no 'files' table", source=str(path))
    return data


def deb_control(path: str | Path) -> dict[str, str]:
    """The control fields (Package, Version, ...) of a local .deb, read on the admin machine."""
    data = Path(path).read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(f"{path} is not a .deb archive")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
        if not name.startswith("control.tar"):
            continue
        if name.endswith(".xz"):
            raw = lzma.decompress(body)
        elif name.endswith(".gz"):
            raw = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif name.endswith(".zst"):
            raw = subprocess.run(["zstd", "-dc"], input=body, capture_output=True, check=True).stdout
        else:
            raw = body
        with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
            member = next(m for m in tf.getmembers() if m.name.lstrip("./") == "control")
            text = tf.extractfile(member).read().decode()  # type: ignore[union-attr]
        fields: dict[str, str] = {}
        for line in text.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        return fields
    raise ValueError(f"{path} has no control archive")
