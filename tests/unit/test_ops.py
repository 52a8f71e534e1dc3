"""llmrack.ops: the one Jinja environment, and the check-then-make-live script run by real bash with a real
checker (``python3 -m json.tool`` stands in for nginx -t / sshd -t: same contract, exit status on a file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmrack import ops

CHECK = f"{sys.executable} -m json.tool {{}} >/dev/null"


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)


def test_one_environment_renders_every_role() -> None:
    env = ops.environment()
    text = ops.render_template("cuda", "/etc/apt/sources.list.d/llmrack-cuda.list", keyring="/k", repo_url="http://r")
    assert ops.environment() is env
    assert "deb [signed-by=/k] http://r /" in text
    assert text.startswith("# managed by llmrack")


def test_undefined_template_names_fail() -> None:
    with pytest.raises(Exception, match="keyring"):
        ops.render_template("cuda", "/etc/apt/sources.list.d/llmrack-cuda.list", repo_url="http://r")


def test_a_passing_candidate_goes_live(tmp_path: Path) -> None:
    dest = tmp_path / "conf.json"
    dest.write_text('{"old": 1}')
    (tmp_path / "conf.json.new").write_text('{"new": 2}')
    res = _run(ops.checked_install_script(str(dest), CHECK))
    assert res.returncode == 0, res.stderr
    assert dest.read_text() == '{"new": 2}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf.json"]


def test_a_rejected_candidate_leaves_the_live_file(tmp_path: Path) -> None:
    dest = tmp_path / "conf.json"
    dest.write_text('{"old": 1}')
    (tmp_path / "conf.json.new").write_text("{not json")
    res = _run(ops.checked_install_script(str(dest), CHECK))
    assert res.returncode == 1
    assert "left unchanged" in res.stderr
    assert dest.read_text() == '{"old": 1}'
    assert not (tmp_path / "conf.json.new").exists()


def test_a_compound_check_is_one_condition(tmp_path: Path) -> None:
    """``cd dir && tool {}`` must reject as a whole (``! a && b`` would only negate the cd)."""
    dest = tmp_path / "conf.json"
    dest.write_text('{"old": 1}')
    (tmp_path / "conf.json.new").write_text("{not json")
    res = _run(ops.checked_install_script(str(dest), f"cd {tmp_path} && {CHECK}"))
    assert res.returncode == 1
    assert dest.read_text() == '{"old": 1}'


def test_a_failing_whole_configuration_check_restores_the_previous_file(tmp_path: Path) -> None:
    dest = tmp_path / "conf.json"
    dest.write_text('{"old": 1}')
    (tmp_path / "conf.json.new").write_text('{"new": 2}')
    res = _run(ops.checked_install_script(str(dest), CHECK, after=f"grep -q old {dest}"))
    assert res.returncode == 1
    assert "restored" in res.stderr
    assert dest.read_text() == '{"old": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf.json"]


def test_a_first_install_rejected_by_the_whole_check_leaves_no_file(tmp_path: Path) -> None:
    dest = tmp_path / "conf.json"
    (tmp_path / "conf.json.new").write_text('{"new": 2}')
    res = _run(ops.checked_install_script(str(dest), CHECK, after="false"))
    assert res.returncode == 1
    assert not dest.exists()


def test_a_passing_candidate_records_its_follow_up_before_it_goes_live(tmp_path: Path) -> None:
    dest, mark = tmp_path / "conf.json", tmp_path / "pending" / "svc-reload"
    (tmp_path / "conf.json.new").write_text('{"new": 2}')
    # the move only runs when the mark is already there: an interruption at the move leaves the reload owed
    script = ops.checked_install_script(str(dest), CHECK, mark=str(mark)).replace("mv -f", f"test -e {mark} && mv -f")
    res = _run(script)
    assert res.returncode == 0, res.stderr
    assert mark.exists() and dest.read_text() == '{"new": 2}'


def test_a_rejected_candidate_owes_nothing(tmp_path: Path) -> None:
    dest, mark = tmp_path / "conf.json", tmp_path / "pending" / "svc-reload"
    dest.write_text('{"old": 1}')
    (tmp_path / "conf.json.new").write_text("{not json")
    res = _run(ops.checked_install_script(str(dest), CHECK, mark=str(mark)))
    assert res.returncode == 1
    assert not mark.exists()
