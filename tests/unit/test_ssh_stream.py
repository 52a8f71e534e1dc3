"""llmrack.ssh_stream on a host reached without an SSH client (pyinfra's @local connector): the file is staged in
a private temporary file, fed to the command and removed; a wrong sha256 fails the operation. The SSH path runs
against a sandbox host in tests/integration/test_base_docker.py."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "integration" / "stream_probe.py"


def _run(src: Path, command: str, sha: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STREAM_SRC": str(src), "STREAM_CMD": command, "STREAM_SHA": sha, "PYINFRA_PROGRESS": "off"}
    return subprocess.run([sys.executable, "-m", "pyinfra", "-y", "@local", str(PROBE)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_local_host_gets_the_file_staged_fed_and_removed(tmp_path: Path) -> None:
    src = tmp_path / "blob"
    src.write_bytes(os.urandom(3 * 2**20 + 11))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "arrived"
    before = set(Path("/tmp").glob("tmp.*"))
    done = _run(src, f"cat > {dest}", digest)
    assert done.returncode == 0, done.stderr[-2000:]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    assert set(Path("/tmp").glob("tmp.*")) <= before, "the staged copy was left behind"


def test_a_wrong_sum_fails_the_operation_before_the_command_runs(tmp_path: Path) -> None:
    src = tmp_path / "blob"
    src.write_bytes(b"not what the manifest says")
    dest = tmp_path / "arrived"
    done = _run(src, f"cat > {dest}", "0" * 64)
    assert done.returncode != 0
    assert "its manifest says 0000000000000000..." in done.stderr + done.stdout
    assert not dest.exists(), "a staged file is checked before the command gets it"
