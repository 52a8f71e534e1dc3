"""Facts of the stack roles: what images the host's engine holds, whether the compose plugin works."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class DockerImageIds(FactBase):
    """``{ref: image id or None}`` for image references given as one space-separated string."""

    def requires_command(self, refs: str = "") -> str:
        return "docker"

    def command(self, refs: str = "") -> str:
        parts = [
            f"printf '%s ' {shlex.quote(r)}; docker image inspect --format '{{{{.Id}}}}' {shlex.quote(r)} "
            "2>/dev/null || echo -"
            for r in refs.split()
        ]
        return "; ".join(parts) if parts else "true"

    @staticmethod
    def default() -> dict[str, str | None]:
        return {}

    def process(self, output: list[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for line in output:
            ref, _, iid = line.strip().partition(" ")
            if ref:
                out[ref] = iid if iid.startswith("sha256:") else None
        return out


class ComposeVersion(FactBase):
    """Version of the ``docker compose`` v2 plugin, or None when it is missing."""

    def requires_command(self) -> str:
        return "docker"

    def command(self) -> str:
        return "docker compose version --short 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        text = "".join(output).strip()
        return text or None
