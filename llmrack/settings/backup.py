"""Settings of the backup role: what is saved, where, how often, for how long."""

from __future__ import annotations

from pydantic import Field

from llmrack.settings._model import Settings


class BackupSettings(Settings):
    enabled: bool = True
    directory: str = Field("/var/backups/llmrack", description="Where archives are written on the host.")
    schedule: str = Field("*-*-* 03:00:00", description="systemd OnCalendar of the nightly backup.")
    retention_days: int = Field(14, ge=1, description="Archives older than this are removed.")
