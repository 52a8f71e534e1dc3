"""What ``llmrack rotate-secrets`` runs on a host, over SSH with the inventory's connection data.

Every secret travels on the SSH channel's standard input, never on a command line (the remote commands
below hold paths and names only) and never in a log: a failure reports the command's stderr, which holds
none. The database password itself never reaches the server either: ``ALTER ROLE`` gets its SCRAM-SHA-256
verifier, computed here (what PostgreSQL stores for ``password_encryption = scram-sha-256``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import shlex
import subprocess
from pathlib import PurePosixPath

from llmrack.config import HostSpec
from llmrack.errors import LlmrackError
from llmrack.facts.stack import HostSecretFiles
from llmrack.monitoring.render import PROJECT as MONITORING_PROJECT
from llmrack.rebuild import ssh_command
from llmrack.secrets import HOST_FILES
from llmrack.stack.compose import StackPaths

NO_STACK = 3
PG_ROLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
SCRAM_ITERATIONS = 4096


def _as_root(spec: HostSpec, command: str) -> str:
    """``command`` as the inventory runs it: through ``sudo -n`` where the host's data says ``_sudo``."""
    return f"sudo -n sh -c {shlex.quote(command)}" if spec.connector.get("_sudo") else command


def run(spec: HostSpec, command: str, *, stdin: str = "", timeout: int = 300) -> subprocess.CompletedProcess:
    """``command`` on the host; ``stdin`` (a secret, if any) goes over the SSH channel, not the command line."""
    try:
        return subprocess.run(ssh_command(spec.connector, _as_root(spec, command)), input=stdin,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{spec.name}: a command ran past {timeout} s over SSH") from None


def _compose(spec: HostSpec) -> str:
    st = spec.profile.stack
    return f"cd {shlex.quote(st.directory)} && docker compose --project-name {shlex.quote(st.project_name)}"


def read_host_secrets(spec: HostSpec) -> dict[str, str]:
    """``{file name: text}`` of the stack's secret files on the host, as the deploy reads them back.

    A host where the stack was never deployed (no compose.yaml) is bad input: nothing is changed anywhere."""
    paths = StackPaths.of(spec.profile.stack)
    fact = HostSecretFiles()
    done = run(spec, f"test -f {shlex.quote(paths.compose_file)} || exit {NO_STACK}; "
                     + fact.command(paths.secrets_dir, " ".join(HOST_FILES)), timeout=120)
    if done.returncode == NO_STACK:
        raise LlmrackError(f"{spec.name} does not run the llmrack stack (no {paths.compose_file}): deploy it first "
                           "(deploys/stack.py)", field="--host")
    if done.returncode != 0:
        raise RuntimeError(f"{spec.name}: cannot read its secrets over SSH (exit {done.returncode}): "
                           f"{done.stderr.strip()[-300:]}")
    return fact.process(done.stdout.splitlines())


def put_secret_file(spec: HostSpec, path: str, text: str) -> None:
    """Replace ``path`` on the host with ``text`` (mode 0600 from its first byte, then moved into place)."""
    p = PurePosixPath(path)
    tmp = shlex.quote(str(p.with_name(f".{p.name}.rotate")))
    done = run(spec, f"umask 077 && cat > {tmp} && chmod 600 {tmp} && mv -f {tmp} {shlex.quote(path)}",
               stdin=text, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{spec.name}: could not write {path} (exit {done.returncode}): "
                           f"{done.stderr.strip()[-300:]}")


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of ``password`` (RFC 5802/7677 SCRAM-SHA-256): what ``ALTER ROLE`` is given."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


def alter_role_sql(role: str, password: str) -> str:
    if not PG_ROLE_RE.match(role):
        raise LlmrackError(f"{role!r} is not a role name llmrack can rotate", field="stack.vector_store.pgvector.user")
    return f"ALTER ROLE \"{role}\" PASSWORD '{scram_verifier(password)}';\n"


def alter_role(spec: HostSpec, password: str) -> None:
    """``ALTER ROLE <user> PASSWORD ...`` inside the running pgvector container (the SQL on stdin, over the
    container's trusted unix socket); raises RuntimeError when it did not take."""
    pg = spec.profile.stack.vector_store.pgvector
    sql = alter_role_sql(pg.user, password)
    psql = (f"exec -T postgres psql -X -q -v ON_ERROR_STOP=1 -U {shlex.quote(pg.user)} "
            f"-d {shlex.quote(pg.database)}")
    done = run(spec, f"{_compose(spec)} {psql}", stdin=sql, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{spec.name}: ALTER ROLE {pg.user} failed in the postgres container (exit "
                           f"{done.returncode}): {done.stderr.strip()[-300:]}")


def restart_postgres_consumers(spec: HostSpec) -> list[str]:
    """Restart what reads the password file at start: the monitoring project's postgres-exporter (it keeps the
    file it was started with). Returns the services restarted (none when it does not run)."""
    mon = spec.profile.monitoring
    if not mon.enabled:
        return []
    d, p = shlex.quote(mon.directory), shlex.quote(MONITORING_PROJECT)
    done = run(spec, f"cd {d} 2>/dev/null || exit 0; if docker compose --project-name {p} ps --status running -q "
                     f"postgres-exporter 2>/dev/null | grep -q .; then docker compose --project-name {p} restart "
                     "postgres-exporter >/dev/null && echo postgres-exporter; fi", timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{spec.name}: could not restart postgres-exporter (exit {done.returncode}): "
                           f"{done.stderr.strip()[-300:]}")
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]
