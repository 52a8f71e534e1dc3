"""Backup: restic from the distribution, the host-side backup/restore scripts, a systemd timer.

install: the ``restic`` package. configure: ``/etc/llmrack/backup/`` (0700) with ``backup.env`` (no secrets)
and ``restic-password`` (0600, the admin machine's copy), the scripts, the service and timer units, the
textfile collector directory. activate: the timer is enabled and started (``llmrack backup`` starts the
service itself and prints ``<directory>/last-run.log``). The scripts themselves are described in ``llmrack.backup``.
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from llmrack import backup as b
from llmrack.ops import APT_RETRIES, FollowUp, put_text, render_template
from llmrack.packages import backup_packages
from llmrack.settings.backup import BackupSettings
from llmrack.settings.monitoring import MonitoringSettings
from llmrack.settings.stack import StackSettings
from llmrack.stack.compose import QDRANT_HTTP_PORT, backend_address


def render_unit(name: str, **data) -> str:
    return render_template("backup", f"/etc/systemd/system/{name}", **data)


def render_script(path: str) -> str:
    return render_template("backup", path)


@deploy("Backup")
def backup(
    settings: BackupSettings, *, stack: StackSettings, monitoring: MonitoringSettings, host_name: str,
    password: str,
) -> None:
    """Install and schedule the host's backup; ``password`` is the repository's (from ``llmrack.stack.secrets``)."""
    if not settings.enabled:
        return
    apt.packages(name="Install restic", packages=backup_packages(settings), update=False, **APT_RETRIES)
    files.directory(name=f"Create {b.CONFIG_DIR} (owner only)", path=b.CONFIG_DIR, mode="700")
    files.directory(name=f"Create {settings.directory} (owner only)", path=settings.directory, mode="700")
    files.directory(name=f"Create {settings.textfile_dir}", path=settings.textfile_dir, mode="755")
    if not settings.repository.startswith("sftp:"):
        files.directory(name=f"Create {settings.repository} (owner only)", path=settings.repository, mode="700")
    qdrant_url = f"http://{backend_address(stack, 'vector')}:{QDRANT_HTTP_PORT}"
    put_text(f"Write {b.ENV_FILE}", b.backup_env(settings, stack, monitoring, host_name=host_name,
                                                  qdrant_url=qdrant_url), b.ENV_FILE, mode="600")
    put_text(f"Write {b.PASSWORD_FILE} (owner only)", password + "\n", b.PASSWORD_FILE, mode="600")
    for script in (b.BACKUP_SCRIPT, b.RESTORE_SCRIPT):
        put_text(f"Write {script}", render_script(script), script, mode="755")
    restart = FollowUp("backup-timer-restart", f"reloading the units and restarting {b.TIMER}")
    restart.put(f"Write /etc/systemd/system/{b.SERVICE}", render_unit(b.SERVICE, timeout_s=6 * 3600),
                f"/etc/systemd/system/{b.SERVICE}", mode="644")
    restart.put(f"Write /etc/systemd/system/{b.TIMER}", render_unit(b.TIMER, schedule=settings.schedule),
                f"/etc/systemd/system/{b.TIMER}", mode="644")
    restart.run(server.shell, name=f"Reload systemd units and restart {b.TIMER} after the backup units changed",
                commands=["systemctl daemon-reload", f"systemctl enable {b.TIMER}", f"systemctl restart {b.TIMER}"])
    systemd.service(name=f"Enable and start {b.TIMER}", service=b.TIMER, running=True, enabled=True)
