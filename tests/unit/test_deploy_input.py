"""Bad input reaching a deploy file run by plain pyinfra: exit 2, one message naming file and field, no traceback,
no operation run (the @local connector only connects; nothing is planned)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))


@pytest.mark.parametrize("deploy", ["full_stack", "docker_host", "base", "stack", "gpu_host", "nvidia_driver",
                                    "hardening"])
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"tier": "nope"}', "@local.tier: unknown tier 'nope'"),
        ('{"tier": "sandbox", "colour": "red"}', "@local.colour: unknown key"),
    ],
)
def test_bad_inventory_stops_the_deploy_cleanly(tmp_path: Path, deploy: str, data: str, expected: str) -> None:
    inv = ROOT / "inventories" / f"_test_bad_{tmp_path.name}.py"
    inv.write_text(f"hosts = [('@local', {data})]\n")
    try:
        proc = subprocess.run([PYINFRA, "-y", str(inv), f"deploys/{deploy}.py"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    finally:
        inv.unlink()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert f"llmrack: {inv}: {expected}" in out
    assert "Beginning operation run" not in out
