"""Backups of a host's stack with restic: the settings file the host-side scripts read, and their output.

The host runs ``/usr/local/sbin/llmrack-backup`` (timer ``llmrack-backup.timer`` on ``BackupSettings.schedule``)
and ``/usr/local/sbin/llmrack-restore``, both installed by ``roles.backup``. One run dumps the vector store
(pgvector: ``pg_dump --format=custom``; Qdrant: one snapshot per collection through its API, with its API
key), writes a manifest of row/point counts (``counts.tsv``), and backs the dump, the compose file, the
gateway configuration, the TLS material, the host-side secrets and the monitoring configuration up into
the restic repository, then forgets snapshots older than ``retention_days``, prunes and runs
``restic check``. The repository password is generated once on the admin machine (kept with the other
secrets, 0600) and on the host in ``PASSWORD_FILE`` (0600); restic reads it from there
(``RESTIC_PASSWORD_FILE``), never from a command line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from llmrack.errors import LlmrackError
from llmrack.settings.backup import BackupSettings
from llmrack.settings.monitoring import MonitoringSettings
from llmrack.settings.stack import StackSettings

CONFIG_DIR = "/etc/llmrack/backup"
ENV_FILE = f"{CONFIG_DIR}/backup.env"
PASSWORD_FILE = f"{CONFIG_DIR}/restic-password"
BACKUP_SCRIPT = "/usr/local/sbin/llmrack-backup"
RESTORE_SCRIPT = "/usr/local/sbin/llmrack-restore"
SERVICE = "llmrack-backup.service"
TIMER = "llmrack-backup.timer"
METRIC_LAST_SUCCESS = "llmrack_backup_last_success_timestamp_seconds"
METRIC_LAST_RUN = "llmrack_backup_last_run_success"
METRIC_INTERVAL = "llmrack_backup_schedule_interval_seconds"
SNAPSHOT_RE = re.compile(r"^(latest|[0-9a-f]{8,64})$")


def backup_env(backup: BackupSettings, stack: StackSettings, monitoring: MonitoringSettings, *, host_name: str,
               qdrant_url: str) -> str:
    """``/etc/llmrack/backup/backup.env``: shell assignments (every value quoted) the scripts source."""
    values = {
        "HOST_NAME": host_name,
        "RESTIC_REPOSITORY": backup.repository,
        "RESTIC_PASSWORD_FILE": PASSWORD_FILE,
        "RESTIC_CACHE_DIR": f"{backup.directory}/cache",
        "WORK_DIR": backup.directory,
        "SCHEDULE": backup.schedule,
        "RETENTION_DAYS": str(backup.retention_days),
        "TEXTFILE_DIR": backup.textfile_dir,
        "PROJECT": stack.project_name,
        "STACK_DIR": stack.directory,
        "DATA_DIR": stack.data_dir,
        "MONITORING_DIR": monitoring.directory,
        "VECTOR_KIND": stack.vector_store.kind,
        "PG_SERVICE": "postgres",
        "PG_USER": stack.vector_store.pgvector.user,
        "PG_DB": stack.vector_store.pgvector.database,
        "QDRANT_URL": qdrant_url,
    }
    lines = [f"{k}={shlex.quote(v)}" for k, v in values.items()]
    head = "# managed by llmrack: read by llmrack-backup and llmrack-restore (no secrets here)\n"
    return head + "\n".join(lines) + "\n"


@dataclass
class BackupRun:
    """What one backup saved: the snapshot id and the row/point count of each table/collection."""

    snapshot: str
    counts: dict[str, int] = field(default_factory=dict)  # "table public.docs" / "collection docs" -> n


def parse_backup_output(text: str) -> BackupRun:
    """The last lines ``llmrack-backup`` prints: ``snapshot ID`` then ``kind<TAB>name<TAB>count`` lines."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("snapshot ")]
    if not starts:
        raise LlmrackError("the backup printed no snapshot id; see the output above")
    run = BackupRun(snapshot=lines[starts[-1]].split()[1])
    for line in lines[starts[-1] + 1:]:
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip().isdigit():
            run.counts[f"{parts[0]} {parts[1]}"] = int(parts[2])
    return run


def parse_restore_output(text: str) -> dict[str, tuple[int, int]]:
    """``kind<TAB>name<TAB>wanted<TAB>found`` lines of ``llmrack-restore`` -> {"kind name": (wanted, found)}."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[2].isdigit() and parts[3].strip().isdigit():
            out[f"{parts[0]} {parts[1]}"] = (int(parts[2]), int(parts[3]))
    return out


RESTORE_COUNTS_DIFFER = 4  # llmrack-restore: a count does not match the manifest (writers left stopped)


def restore_failure(host: str, counts: dict[str, tuple[int, int]], rc: int, *, directory: str) -> str:
    """One line saying what a failed restore found and what state it left the host in."""
    if rc == RESTORE_COUNTS_DIFFER:
        wrong = ", ".join(f"{what}: {have} of {want}" for what, (want, have) in sorted(counts.items())
                          if want != have)
        return (f"restore of {host} stopped: the counts do not match the snapshot's manifest ({wrong}); the "
                f"gateway and embeddings are left stopped, the store as it was before is in "
                f"{directory}/before-restore.dump (or before-restore/ for Qdrant)")
    return f"restore of {host} FAILED (exit {rc}); the store was not replaced unless the output above says so"


def check_snapshot_id(value: str) -> str:
    if not SNAPSHOT_RE.match(value):
        raise LlmrackError("a snapshot id is 8-64 hex digits or 'latest'", field="--snapshot")
    return value


def restore_command(snapshot: str, *, with_secrets: bool = False) -> str:
    parts = [RESTORE_SCRIPT, check_snapshot_id(snapshot)] + (["--with-secrets"] if with_secrets else [])
    return " ".join(shlex.quote(p) for p in parts)


def snapshots_command() -> str:
    """Lists the repository's snapshots as JSON (the password comes from the file named in backup.env)."""
    return (f". {ENV_FILE} && export RESTIC_REPOSITORY RESTIC_PASSWORD_FILE RESTIC_CACHE_DIR && "
            'restic snapshots --json --host "$HOST_NAME" --tag llmrack')
