"""The acceptance suite users run (tests/acceptance), as a user runs it: pytest in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def _pytest(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", str(PROJECT / "tests" / "acceptance"), "-q", "-p",
                           "no:cacheprovider", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_without_hosts_it_exits_2_with_the_usage() -> None:
    done = _pytest()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs hosts to check: pytest tests/acceptance --inventory FILE (or --local --tier TIER)" in (
        done.stdout + done.stderr)
    assert "passed" not in done.stdout and "skipped" not in done.stdout


def test_local_checks_run_and_a_failing_threshold_fails_the_run(tmp_path: Path) -> None:
    done = _pytest("--local", "--tier", "sandbox", "--only", "hw.ram,hw.cpu")
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout[-2000:]
    # a project whose tier asks for more CPUs than any machine has (--local reads tiers/ of the current directory)
    (tmp_path / "tiers").mkdir()
    text = (PROJECT / "tiers" / "sandbox.yaml").read_text().replace("cpu_cores_min: 1", "cpu_cores_min: 100000")
    (tmp_path / "tiers" / "huge.yaml").write_text(text)
    done = _pytest("--local", "--tier", "huge", "--only", "hw.cpu", cwd=tmp_path)
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout[-2000:]
    assert "logical CPU(s)" in done.stdout and ">= 100000" in done.stdout
