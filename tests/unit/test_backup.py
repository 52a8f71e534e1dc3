"""Backup settings, the host-side scripts' settings file and output, and the CLI's bad input."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from llmrack import backup as b
from llmrack import rebuild
from llmrack.cli import app
from llmrack.errors import LlmrackError
from llmrack.settings.backup import BackupSettings
from llmrack.settings.monitoring import MonitoringSettings
from llmrack.settings.stack import StackSettings
from roles.backup import render_script, render_unit


@pytest.mark.parametrize("field,value", [
    ("repository", "relative/path"), ("repository", "/srv/$(reboot)"), ("repository", "/srv/../etc"),
    ("repository", "sftp:nas:/x"), ("directory", "/var/backups/x y"), ("schedule", "daily; rm -rf /"),
    ("retention_days", 0),
])
def test_bad_backup_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        BackupSettings.model_validate({field: value})


def test_sftp_and_nas_targets_are_accepted() -> None:
    assert BackupSettings(repository="sftp:backup@nas.lan:/srv/llmrack").repository.startswith("sftp:")
    assert BackupSettings(repository="/mnt/nas/llmrack/").repository == "/mnt/nas/llmrack"


def test_env_file_is_shell_safe_and_holds_no_secret() -> None:
    text = b.backup_env(BackupSettings(schedule="Mon *-*-* 02:00"), StackSettings(models=[{"name": "m"}]),
                        MonitoringSettings(), host_name="node1", qdrant_url="http://10.0.0.1:6333")
    env = subprocess.run(["bash", "-c", f"set -u; {text}\nprintf '%s|%s|%s' \"$SCHEDULE\" \"$HOST_NAME\" "
                          "\"$RESTIC_PASSWORD_FILE\""], capture_output=True, text=True, check=True).stdout
    assert env == f"Mon *-*-* 02:00|node1|{b.PASSWORD_FILE}"
    assert "PASSWORD=" not in text.replace("PASSWORD_FILE=", "")


def test_scripts_are_valid_bash_and_read_the_password_from_a_file() -> None:
    for path in (b.BACKUP_SCRIPT, b.RESTORE_SCRIPT):
        text = render_script(path)
        assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0, path
        assert "--password " not in text and "RESTIC_PASSWORD=" not in text
    backup = render_script(b.BACKUP_SCRIPT)
    assert "pg_dump" in backup and "--format=custom" in backup and "restic check" in backup
    assert "--keep-within" in backup and "--prune" in backup
    assert "/snapshots?wait=true" in backup and "api-key" in backup  # Qdrant: snapshot API with its key
    assert "OnCalendar=*-*-* 03:00:00" in render_unit(b.TIMER, schedule="*-*-* 03:00:00")


def test_backup_and_restore_output_are_parsed() -> None:
    run = b.parse_backup_output("noise\nsnapshot 1a2b3c4d\ntable\tpublic.docs\t10000\ncollection\tkb\t7\n")
    assert run.snapshot == "1a2b3c4d" and run.counts == {"table public.docs": 10000, "collection kb": 7}
    with pytest.raises(LlmrackError):
        b.parse_backup_output("restic: repository not found\n")
    assert b.parse_restore_output("table\tpublic.docs\t10\t9\nrestored x\n") == {"table public.docs": (10, 9)}


def test_snapshot_ids_are_checked_before_they_reach_a_shell() -> None:
    assert b.restore_command("latest") == f"{b.RESTORE_SCRIPT} latest"
    assert shlex.split(b.restore_command("1a2b3c4d", with_secrets=True))[-1] == "--with-secrets"
    with pytest.raises(LlmrackError, match="--snapshot"):
        b.restore_command("x; reboot")


def test_pick_snapshot() -> None:
    found = [{"id": "aaaa1111" + "0" * 56, "short_id": "aaaa1111"}, {"id": "bbbb2222" + "0" * 56,
                                                                      "short_id": "bbbb2222"}]
    assert rebuild.pick_snapshot(found, None, "h") == "bbbb2222"
    assert rebuild.pick_snapshot(found, "aaaa1111", "h") == "aaaa1111"
    with pytest.raises(LlmrackError, match="no snapshot 'cccc3333'"):
        rebuild.pick_snapshot(found, "cccc3333", "h")
    with pytest.raises(LlmrackError, match="no backup yet"):
        rebuild.pick_snapshot([], None, "h")


def test_cli_bad_input_exits_2_with_one_message(tmp_path) -> None:
    inv = tmp_path / "inv.py"
    inv.write_text('office = [("node1", {"tier": "sandbox", "address": "10.0.0.5"})]\n')
    runner = CliRunner()
    for args in (["restore", str(inv), "--host", "nope", "--yes"], ["backup", str(inv), "--host", "nope"],
                 ["restore", str(inv), "--host", "node1", "--snapshot", "x;y", "--yes"],
                 ["rebuild", str(inv), "--host", "nope", "--yes"],
                 ["rebuild", str(inv), "--host", "node1", "--snapshot", "../x", "--yes"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output


def test_a_restore_failure_says_what_it_found_and_what_it_left() -> None:
    line = b.restore_failure("gpu1", {"table public.docs": (10001, 10000), "table public.x": (3, 3)},
                             b.RESTORE_COUNTS_DIFFER, directory="/var/backups/llmrack")
    assert "public.docs: 10000 of 10001" in line and "public.x" not in line
    assert "left stopped" in line and "/var/backups/llmrack/before-restore.dump" in line
    assert "FAILED (exit 1)" in b.restore_failure("gpu1", {}, 1, directory="/d")


def test_the_restore_script_keeps_the_writers_stopped_when_counts_differ() -> None:
    script = render_script(b.RESTORE_SCRIPT)
    assert f"exit {b.RESTORE_COUNTS_DIFFER}" in script and "keep_stopped=1" in script
    assert script.index("before-restore.dump") < script.index("pg_restore")  # the store is saved first
    assert 'RESTIC_REPOSITORY="${LLMRACK_SOURCE_REPOSITORY:-$RESTIC_REPOSITORY}"' in script
