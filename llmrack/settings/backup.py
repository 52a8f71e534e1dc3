"""Settings of the backup role: what is saved, where, how often, for how long.

The repository is a restic repository (encrypted, deduplicated, checked with ``restic check`` after every
run): a local directory, a mounted NFS/NAS directory (``repository: /mnt/nas/llmrack``) or an SFTP target
(``repository: sftp:backup@nas.lan:/srv/llmrack``; the host's root needs key access to it). A repository on
the server it protects does not survive the server: put it on a NAS for anything that matters.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from llmrack.settings._model import Settings

PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]*$")
SFTP_RE = re.compile(r"^sftp:[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/[A-Za-z0-9._/-]*$")
CALENDAR_RE = re.compile(r"^[A-Za-z0-9*:,./~ -]{1,80}$")


def _abs_path(value: str, what: str) -> str:
    if not PATH_RE.match(value) or "/../" in f"{value}/" or value.rstrip("/") == "":
        raise ValueError(f"{what} must be an absolute path of plain characters (got {value!r})")
    return value.rstrip("/") or "/"


class BackupSettings(Settings):
    enabled: bool = True
    directory: str = Field("/var/backups/llmrack", description="Working directory on the host: the dumps of one "
                           "run (vector store, manifest) before they go into the repository.")
    repository: str = Field("/var/backups/llmrack/repository", description="restic repository: an absolute path "
                            "(local disk or a NAS mount) or sftp:user@host:/path.")
    schedule: str = Field("*-*-* 03:00:00", description="systemd OnCalendar of the nightly backup.")
    retention_days: int = Field(14, ge=1, description="Snapshots older than this are removed (restic forget "
                                "--keep-within, then prune).")
    textfile_dir: str = Field("/var/lib/llmrack/textfile", description="node-exporter's textfile collector "
                              "directory: the backup's last-success time is exported here.")

    @field_validator("directory", "textfile_dir")
    @classmethod
    def _paths(cls, v: str) -> str:
        return _abs_path(v, "the directory")

    @field_validator("repository")
    @classmethod
    def _repository(cls, v: str) -> str:
        if v.startswith("sftp:"):
            if not SFTP_RE.match(v):
                raise ValueError(f"an SFTP repository is sftp:user@host:/absolute/path (got {v!r})")
            return v
        return _abs_path(v, "the repository")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        if not CALENDAR_RE.match(v):
            raise ValueError(f"not a systemd OnCalendar expression llmrack accepts (got {v!r})")
        return v
