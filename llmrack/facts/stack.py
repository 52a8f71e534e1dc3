"""pyinfra facts about the serving stack: images the engine holds, secret files, compose drift."""

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


class HostSecretFiles(FactBase):
    """``{file name: text}`` of the stack's secret files present in ``directory`` on the host (read back so a
    deploy never replaces a secret a running service was started with; the text is never logged)."""

    def command(self, directory: str, names: str) -> str:
        d = shlex.quote(directory)
        parts = [f"if [ -f {d}/{shlex.quote(n)} ]; then echo '==> {n}'; cat {d}/{shlex.quote(n)}; echo; fi"
                 for n in names.split()]
        return "; ".join(parts) + "; true"

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def process(self, output: list[str]) -> dict[str, str]:
        out: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in output:
            if line.startswith("==> "):
                current = out.setdefault(line[4:].strip(), [])
            elif current is not None:
                current.append(line)
        return {name: "\n".join(lines).strip() + "\n" for name, lines in out.items()}


class ComposeDrift(FactBase):
    """Services of a compose project that compose itself would recreate or start from the live compose file.

    Asks compose (``up --dry-run``: nothing is changed) what bringing the project up would do; a service it
    would recreate, create or start does not run the live file's configuration: the state an interrupted run
    leaves (file rewritten, services not yet recreated) shows up here even though this run writes nothing.
    (compose's ``config --hash`` is not used: it differs from the running containers' config-hash label for
    services with an ``env_file``.) A project with nothing running is empty here: it is started, not
    reloaded. Empty too when the file or compose is missing.
    """

    def requires_command(self, directory: str, project: str, file: str = "compose.yaml") -> str:
        return "docker"

    def command(self, directory: str, project: str, file: str = "compose.yaml") -> str:
        d, p, f = shlex.quote(directory), shlex.quote(project), shlex.quote(file)
        return (f"cd {d} 2>/dev/null && [ -f {f} ] || exit 0; "
                f"docker compose --project-name {p} -f {f} --dry-run up --detach --no-build --pull never "
                f"2>&1 | sed -n 's/^.*Container {project}-\\(.*\\)-[0-9][0-9]*  *\\([A-Za-z]*\\)$/\\1 \\2/p'; true")

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str]:
        states: dict[str, set[str]] = {}
        for line in output:
            parts = line.split()
            if len(parts) == 2:
                states.setdefault(parts[0], set()).add(parts[1])
        if not any("Running" in s for s in states.values()):
            return []
        return sorted(name for name, s in states.items() if s != {"Running"})
